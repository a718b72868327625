/**
 * The pure admission core: reading reviews, finding images in every pod holder, allowImages globs, the decision
 * (exempt namespaces, unknown kinds, UPDATE of changed images only, fail-closed timeout, the JSON Patch) and the
 * response the API server accepts. Verdicts come from a scripted source here; the registry tests use real ones.
 *
 * @module
 */
import { assert, assertEquals, assertStringIncludes, assertThrows } from "../assert.ts";
import { decideReview, type VerdictSource } from "../../core/admission/decide.ts";
import { compileImageGlob, matchImageGlobs } from "../../core/admission/glob.ts";
import { changedImages, podImages } from "../../core/admission/pod_images.ts";
import { admissionResponse, parseAdmissionReview } from "../../core/admission/review.ts";
import { parseReference } from "../../core/reference.ts";
import {
  container,
  cronJob,
  debugContainerReview,
  deployment,
  deploymentWithSidecar,
  type Json,
  pod,
  podSpec,
  review,
} from "./reviews.ts";

const D1 = "sha256:" + "1".repeat(64);
const D2 = "sha256:" + "2".repeat(64);

/** Signed: `reg.io/good/*`; unsigned: everything else. Records what was asked. */
function scripted(asked: string[] = []): VerdictSource {
  return (ref) => {
    const name = `${ref.registry}/${ref.repository}${ref.tag ? ":" + ref.tag : ""}${
      ref.digest ? "@" + ref.digest : ""
    }`;
    asked.push(name);
    const good = ref.repository.startsWith("good/");
    return Promise.resolve({
      allowed: good,
      digest: ref.digest ?? D1,
      reason: good ? "1 signature verified" : "no signatures found",
      kind: good ? "verified" : "rejected",
      cached: false,
    });
  };
}

const RULES = {
  exemptNamespaces: ["kube-system"],
  allowImages: [compileImageGlob("reg.io/infra/pause:*")],
  timeoutMs: 8000,
};

Deno.test("admission review: parsed as the API server sends it; the response has the shape it checks", () => {
  const body = review(pod("shop", "web", podSpec({ containers: [container("app", "reg.io/good/app:1")] })), {
    uid: "705ab4f5-6393-11e8-b7cc-42010a800002",
  });
  const req = parseAdmissionReview(JSON.parse(JSON.stringify(body)));
  assertEquals(req.uid, "705ab4f5-6393-11e8-b7cc-42010a800002");
  assertEquals(req.kind, { group: "", version: "v1", kind: "Pod" });
  assertEquals([req.namespace, req.name, req.operation, req.dryRun, req.subResource], [
    "shop",
    "web",
    "CREATE",
    false,
    "",
  ]);
  assertEquals(req.oldObject, undefined);

  // Denial: status with message and code; no patch fields at all (a validating webhook may not return them).
  assertEquals(admissionResponse("u1", { allowed: false, message: "no", code: 403 }), {
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    response: {
      uid: "u1",
      allowed: false,
      status: { status: "Failure", message: "no", reason: "Forbidden", code: 403 },
    },
  });
  // A patch is base64 of the JSON Patch text, with patchType; an empty patch is left out entirely.
  const ops = [{ op: "replace" as const, path: "/spec/containers/0/image", value: "r/a:1@" + D1 }];
  const withPatch = admissionResponse("u2", { allowed: true, patch: ops }).response as Json;
  assertEquals(withPatch.patchType, "JSONPatch");
  assertEquals(JSON.parse(atob(withPatch.patch as string)), ops);
  const empty = admissionResponse("u3", { allowed: true, patch: [] }).response as Json;
  assertEquals(Object.keys(empty).sort(), ["allowed", "uid"]);

  // Not a v1 review: refused with the reason.
  for (
    const [bad, why] of [
      [{ ...body, apiVersion: "admission.k8s.io/v1beta1" }, "admissionReviewVersions: [v1]"],
      [{ ...body, request: { ...(body.request as Json), uid: "" } }, "request.uid"],
      [{ ...body, request: { ...(body.request as Json), operation: "PATCH" } }, "request.operation"],
      [{ ...body, request: { ...(body.request as Json), dryRun: "yes" } }, "request.dryRun"],
      [[], "JSON object"],
    ] as const
  ) {
    const e = assertThrows(() => parseAdmissionReview(bad));
    assertStringIncludes((e as Error).message, why);
  }
});

Deno.test("pod images: every holder, init containers, sidecars, ephemeral containers, image volumes", () => {
  const d = deploymentWithSidecar("shop", "web", {
    app: "reg.io/a:1",
    init: "reg.io/m:1",
    sidecar: "reg.io/s:1",
  });
  const req = parseAdmissionReview(review(d));
  assertEquals(podImages(req.object, req.kind).map((s) => [s.field, s.container, s.image, s.path]), [
    ["containers", "app", "reg.io/a:1", "/spec/template/spec/containers/0/image"],
    ["initContainers", "migrate", "reg.io/m:1", "/spec/template/spec/initContainers/0/image"],
    ["initContainers", "log-shipper", "reg.io/s:1", "/spec/template/spec/initContainers/1/image"],
  ]);
  const cj = parseAdmissionReview(
    review(cronJob("ops", "backup", podSpec({ containers: [container("b", "reg.io/b:2")] }))),
  );
  assertEquals(podImages(cj.object, cj.kind).map((s) => s.path), [
    "/spec/jobTemplate/spec/template/spec/containers/0/image",
  ]);
  const withVolume = pod(
    "shop",
    "p",
    podSpec({
      containers: [container("app", "reg.io/a:1")],
      volumes: [{ name: "cfg", configMap: { name: "x" } }, {
        name: "models",
        image: { reference: "reg.io/model:7", pullPolicy: "IfNotPresent" },
      }],
    }),
  );
  const pv = parseAdmissionReview(review(withVolume));
  assertEquals(podImages(pv.object, pv.kind).map((s) => [s.field, s.image, s.path]), [
    ["containers", "reg.io/a:1", "/spec/containers/0/image"],
    ["volumes", "reg.io/model:7", "/spec/volumes/1/image/reference"],
  ]);
  const dbg = parseAdmissionReview(
    debugContainerReview(
      pod("shop", "p", podSpec({ containers: [container("app", "reg.io/a:1")] })),
      "reg.io/busybox:1.36",
    ),
  );
  assertEquals(dbg.subResource, "ephemeralcontainers");
  assertEquals(
    changedImages(podImages(dbg.object, dbg.kind), podImages(dbg.oldObject, dbg.kind)).map((
      s,
    ) => [s.field, s.path]),
    [["ephemeralContainers", "/spec/ephemeralContainers/0/image"]],
  );
  // Malformed objects are refused, never skipped.
  for (
    const spec of [{ containers: {} }, { containers: [{ name: "x" }] }, {
      containers: [{ name: "x", image: 7 }],
    }]
  ) {
    const r = parseAdmissionReview(review(pod("a", "b", spec)));
    assertThrows(() => podImages(r.object, r.kind));
  }
});

Deno.test("allowImages globs: * stops at /, ** does not, a pattern without @ also covers the pinned form", () => {
  const g = (p: string, ref: string) =>
    matchImageGlobs([compileImageGlob(p)], parseReference(ref)) !== undefined;
  assert(g("reg.io/infra/pause:*", "reg.io/infra/pause:3.9"));
  assert(g("reg.io/infra/pause:*", `reg.io/infra/pause:3.9@${D1}`));
  assert(!g("reg.io/infra/*", "reg.io/infra/team/x:1"));
  assert(g("reg.io/infra/**", "reg.io/infra/team/x:1"));
  assert(!g("reg.io/infra/pause:*", "reg.io/infra/pause2:3.9"));
  assert(!g(`reg.io/infra/pause@${D2}`, `reg.io/infra/pause@${D1}`));
  assert(g("docker.io/library/busybox:*", "busybox:1.36"));
  assert(!g("reg.io/infra/pause:3.?", "reg.io/infra/pause:3.10"));
  for (const bad of ["", "reg.io/a b", "reg.io/***", "reg.io/$x"]) assertThrows(() => compileImageGlob(bad));
});

Deno.test("decide: signed allowed, unsigned denied naming image, container and reason; exempt and unknown kinds", async () => {
  const asked: string[] = [];
  const d = deploymentWithSidecar("shop", "web", {
    app: "reg.io/good/app:1",
    init: "reg.io/good/migrate:1",
    sidecar: "reg.io/evil/shipper:2",
  });
  let r = await decideReview(parseAdmissionReview(review(d)), RULES, scripted(asked), { mutate: false });
  assertEquals(r.answer.allowed, false);
  assertEquals(
    r.answer.message,
    'airlock: image "reg.io/evil/shipper:2" (init container "log-shipper") denied: no signatures found',
  );
  assertEquals(asked.sort(), ["reg.io/evil/shipper:2", "reg.io/good/app:1", "reg.io/good/migrate:1"]);

  // The same Deployment in an exempt namespace: nothing asked.
  asked.length = 0;
  r = await decideReview(
    parseAdmissionReview(
      review(deploymentWithSidecar("kube-system", "web", { app: "x", init: "y", sidecar: "z" })),
    ),
    RULES,
    scripted(asked),
    { mutate: false },
  );
  assertEquals([r.answer.allowed, r.note, asked.length], [true, "namespace kube-system is exempt", 0]);

  // A ConfigMap is no pod holder: allowed, with a warning.
  const cm = { kind: "ConfigMap", apiVersion: "v1", metadata: { name: "c", namespace: "shop" }, data: {} };
  r = await decideReview(parseAdmissionReview(review(cm)), RULES, scripted(), { mutate: false });
  assertEquals(r.answer.allowed, true);
  assertEquals(r.answer.warnings, ["airlock: v1/ConfigMap holds no pod template airlock knows; not checked"]);

  // allowImages: admitted without a verdict; an unparseable image is denied with the parser's reason.
  asked.length = 0;
  const p = pod(
    "shop",
    "p",
    podSpec({ containers: [container("pause", "reg.io/infra/pause:3.9"), container("x", "Reg.io/UPPER:1")] }),
  );
  r = await decideReview(parseAdmissionReview(review(p)), RULES, scripted(asked), { mutate: false });
  assertEquals(asked, []);
  assertEquals(r.images.map((i) => [i.image, i.category]), [["reg.io/infra/pause:3.9", "allowlisted"], [
    "Reg.io/UPPER:1",
    "invalid",
  ]]);
  assertStringIncludes(r.answer.message!, 'image "Reg.io/UPPER:1" (container "x") denied: invalid reference');
});

Deno.test("decide: an UPDATE checks only the images that changed; a CronJob and a dry run are decided alike", async () => {
  const asked: string[] = [];
  const old = deployment(
    "shop",
    "web",
    podSpec({ containers: [container("app", "reg.io/evil/old:1"), container("side", "reg.io/good/s:1")] }),
  );
  const scaled = structuredClone(old);
  ((scaled.spec as Json).replicas as number) = 5;
  let r = await decideReview(
    parseAdmissionReview(review(scaled, { operation: "UPDATE", oldObject: old })),
    RULES,
    scripted(asked),
    { mutate: true },
  );
  assertEquals([r.answer.allowed, r.note, asked.length], [true, "no new or changed image", 0]);

  const bumped = structuredClone(old);
  ((((bumped.spec as Json).template as Json).spec as Json).containers as Json[])[1].image = "reg.io/good/s:2";
  r = await decideReview(
    parseAdmissionReview(review(bumped, { operation: "UPDATE", oldObject: old })),
    RULES,
    scripted(asked),
    { mutate: true },
  );
  assertEquals(asked, ["reg.io/good/s:2"]);
  assertEquals(r.answer.allowed, true);
  assertEquals(r.answer.patch, [{
    op: "replace",
    path: "/spec/template/spec/containers/1/image",
    value: `reg.io/good/s:2@${D1}`,
  }]);

  const cj = cronJob("ops", "backup", podSpec({ containers: [container("b", "reg.io/evil/b:1")] }));
  r = await decideReview(parseAdmissionReview(review(cj, { dryRun: true })), RULES, scripted(), {
    mutate: false,
  });
  assertEquals(r.answer.allowed, false);
  assertStringIncludes(r.answer.message!, 'image "reg.io/evil/b:1" (container "b") denied');

  // DELETE is not checked.
  r = await decideReview(
    parseAdmissionReview(review(cj, { operation: "DELETE", oldObject: cj })),
    RULES,
    scripted(),
    { mutate: false },
  );
  assertEquals([r.answer.allowed, r.note], [true, "operation DELETE is not checked"]);
});

Deno.test("decide: mutate pins every slot of a verified tag, leaves digests and allowlisted images alone", async () => {
  const p = pod(
    "shop",
    "p",
    podSpec({
      initContainers: [container("init", "reg.io/good/app:1")],
      containers: [
        container("app", "reg.io/good/app:1"),
        container("pinned", `reg.io/good/app@${D2}`),
        container("pause", "reg.io/infra/pause:3.9"),
      ],
    }),
  );
  const r = await decideReview(parseAdmissionReview(review(p)), RULES, scripted(), { mutate: true });
  assertEquals(r.answer.patch, [
    { op: "replace", path: "/spec/containers/0/image", value: `reg.io/good/app:1@${D1}` },
    { op: "replace", path: "/spec/initContainers/0/image", value: `reg.io/good/app:1@${D1}` },
  ]);
  // The validating endpoint never patches.
  const v = await decideReview(parseAdmissionReview(review(p)), RULES, scripted(), { mutate: false });
  assertEquals(v.answer.patch, undefined);
});

Deno.test("decide: no verdict within the timeout is a denial (fail-closed), naming the image", async () => {
  let fire: (() => void) | undefined;
  const never: VerdictSource = () => new Promise(() => {});
  const p = pod("shop", "p", podSpec({ containers: [container("app", "reg.io/good/slow:1")] }));
  const pending = decideReview(parseAdmissionReview(review(p)), { ...RULES, timeoutMs: 8000 }, never, {
    mutate: true,
    timer: (_ms, f) => {
      fire = f;
      return () => {};
    },
  });
  await new Promise((r) => setTimeout(r, 0));
  fire!();
  const r = await pending;
  assertEquals(r.answer.allowed, false);
  assertEquals(r.images[0].category, "timeout");
  assertStringIncludes(
    r.answer.message!,
    'image "reg.io/good/slow:1" (container "app") denied: no verdict within 8s',
  );
});

Deno.test("pod holders: every kind's pod spec is found; an image without tag is judged as the kubelet pulls it", async () => {
  const spec = podSpec({ containers: [container("c", "nginx")] });
  const holders: [string, string, Json, string][] = [
    ["v1", "PodTemplate", { template: { spec } }, "/template/spec/containers/0/image"],
    [
      "v1",
      "ReplicationController",
      { spec: { template: { spec } } },
      "/spec/template/spec/containers/0/image",
    ],
    ["apps/v1", "ReplicaSet", { spec: { template: { spec } } }, "/spec/template/spec/containers/0/image"],
    ["apps/v1", "StatefulSet", { spec: { template: { spec } } }, "/spec/template/spec/containers/0/image"],
    ["apps/v1", "DaemonSet", { spec: { template: { spec } } }, "/spec/template/spec/containers/0/image"],
    ["batch/v1", "Job", { spec: { template: { spec } } }, "/spec/template/spec/containers/0/image"],
  ];
  for (const [apiVersion, kind, body, path] of holders) {
    const asked: string[] = [];
    const object = { apiVersion, kind, metadata: { name: "x", namespace: "shop" }, ...body };
    const r = await decideReview(parseAdmissionReview(review(object)), RULES, scripted(asked), {
      mutate: true,
    });
    assertEquals(asked, ["docker.io/library/nginx:latest"], kind);
    assertEquals(r.answer.allowed, false, kind);
    assertEquals(r.images[0].slots.map((s) => s.path), [path], kind);
  }
});
