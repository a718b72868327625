/**
 * The admission webhook end to end against a real registry (`docker-registry`): images signed by airlock's
 * signer (and crafted signatures for the attacks), `airlock serve --admission-config` in-process over HTTPS with
 * `--client-ca`, and AdmissionReviews in the API server's shape (`reviews.ts`). Both trust modes: a containers
 * policy (what `sign validate --policy` accepts) and cosign with a key (what `airlock verify` accepts).
 *
 * Expected reasons are containers/image's and cosign's texts, written here by hand.
 *
 * @module
 */
import { join } from "node:path";
import { openKey } from "../../backends/key_backend.ts";
import { RegistryClient } from "../../core/registry/client.ts";
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../assert.ts";
import { pushMulti, pushSingle, startRegistry, tempDir, type TestRegistry } from "../testbed/mod.ts";
import { type KeyFiles, makeKey } from "../testbed/keys.ts";
import { cosignPayloadBytes, pushSig, SIG_ANNOTATION, signInProcess } from "../testbed/signatures.ts";
import { ATTACHMENTS_ON, writeRegistriesD } from "../testbed/files.ts";
import { patchOf, responseOf, startWebhook } from "./helpers.ts";
import { kubectlMissing, kubectlPatch } from "./kubectl.ts";
import {
  container,
  cronJob,
  debugContainerReview,
  deploymentWithSidecar,
  type Json,
  pod,
  podSpec,
  review,
} from "./reviews.ts";

interface Bed {
  reg: TestRegistry;
  trusted: KeyFiles;
  other: KeyFiles;
  /** Image references by name, and their top-level digests. */
  img: Record<string, { ref: string; digest: string }>;
}

/** A registry with: signed app/migrate/shipper/multi (trusted key), unsigned, wrong key, tampered, foreign identity. */
async function signedRegistry(dir: string): Promise<Bed> {
  const reg = await startRegistry();
  try {
    const trusted = await makeKey(dir, "trusted");
    const other = await makeKey(dir, "other");
    const img: Bed["img"] = {};
    const push = async (name: string, repo: string, tag: string, multi = false) => {
      const i = multi
        ? await pushMulti(reg, repo, tag, `seed-${name}`)
        : await pushSingle(reg, repo, tag, `seed-${name}`);
      img[name] = { ref: `${reg.host}/${repo}:${tag}`, digest: i.top.digest };
    };
    await push("app", "shop/app", "1");
    await push("migrate", "shop/migrate", "1");
    await push("shipper", "shop/shipper", "2");
    await push("multi", "shop/multi", "1", true);
    await push("busybox", "tools/busybox", "1.36");
    await push("unsigned", "shop/unsigned", "1");
    await push("wrongkey", "shop/wrongkey", "1");
    await push("tampered", "shop/tampered", "1");
    await push("foreign", "shop/foreign", "1");
    const rd = await writeRegistriesD(dir, ATTACHMENTS_ON, "signer-registries.d");
    const client = new RegistryClient({ tlsVerify: false });
    try {
      await signInProcess(
        ["app", "migrate", "shipper", "multi", "busybox"].map((n) => img[n].ref),
        trusted,
        rd,
        client,
      );
      await signInProcess([img.wrongkey.ref], other, rd, client);
    } finally {
      client.close();
    }
    // Crafted with the trusted key: a payload altered after signing, and a signature naming another repository.
    const key = await openKey(trusted.key, { passphraseFile: trusted.pass });
    try {
      const signed = cosignPayloadBytes(img.tampered.ref, img.tampered.digest);
      const altered = cosignPayloadBytes(
        img.tampered.ref.replace("tampered", "tamperex"),
        img.tampered.digest,
      );
      await pushSig(reg, "shop/tampered", img.tampered.digest, [{
        payload: altered,
        annotations: { [SIG_ANNOTATION]: btoa(String.fromCharCode(...await key.sign(signed))) },
      }]);
      const elsewhere = cosignPayloadBytes(`${reg.host}/shop/elsewhere:1`, img.foreign.digest);
      await pushSig(reg, "shop/foreign", img.foreign.digest, [{
        payload: elsewhere,
        annotations: { [SIG_ANNOTATION]: btoa(String.fromCharCode(...await key.sign(elsewhere))) },
      }]);
    } finally {
      await key.close();
    }
    return { reg, trusted, other, img };
  } catch (e) {
    await reg.stop();
    throw e;
  }
}

function policyJson(bed: Bed): string {
  return JSON.stringify({
    default: [{ type: "reject" }],
    transports: {
      docker: {
        [bed.reg.host]: [{
          type: "sigstoreSigned",
          keyPath: bed.trusted.pub,
          signedIdentity: { type: "matchRepoDigestOrExact" },
        }],
      },
    },
  });
}

const NO_SIGNATURE = "A signature was required, but no signature exists";
const CRYPTO =
  "cryptographic signature verification failed: invalid signature when validating ASN.1 encoded signature";

function denial(body: Json): string {
  const r = responseOf(body);
  assertEquals(r.allowed, false, JSON.stringify(r));
  assertEquals((r.status as Json).code, 403);
  assert(r.patch === undefined && r.patchType === undefined);
  return (r.status as Json).message as string;
}

function allowed(body: Json, uid?: string): Json {
  const r = responseOf(body);
  assertEquals(r.allowed, true, JSON.stringify(r));
  if (uid !== undefined) assertEquals(r.uid, uid);
  assertEquals([body.apiVersion, body.kind], ["admission.k8s.io/v1", "AdmissionReview"]);
  return r;
}

function uidOf(review: Json): string {
  return (review.request as Json).uid as string;
}

Deno.test("admission, policy mode: what sign validate --policy accepts is admitted; the rest denied with the reason", async () => {
  await using tmp = await tempDir("airlock-admission-policy-");
  const bed = await signedRegistry(tmp.path);
  try {
    await Deno.writeTextFile(join(tmp.path, "policy.json"), policyJson(bed));
    await using hook = await startWebhook({
      dir: tmp.path,
      config: "policy: policy.json\narch: [amd64, arm64]\nexemptNamespaces: [kube-system, airlock]\n",
    });
    const i = bed.img;

    // A Deployment with an init container and a sidecar, all signed: allowed; the uid is echoed.
    const web = deploymentWithSidecar("shop", "web", {
      app: i.app.ref,
      init: i.migrate.ref,
      sidecar: i.shipper.ref,
    });
    const webReview = review(web);
    let r = await hook.post("validate", webReview);
    assertEquals(r.status, 200);
    allowed(r.body, uidOf(webReview));
    assertEquals(responseOf(r.body).patch, undefined);

    // A multi-arch image: every platform manifest the nodes run is checked under the tag.
    r = await hook.post(
      "validate",
      review(pod("shop", "multi", podSpec({ containers: [container("m", i.multi.ref)] }))),
    );
    allowed(r.body);

    // A CronJob with an unsigned image: denied, naming image, container and containers/image's reason.
    const backup = review(
      cronJob("ops", "backup", podSpec({ containers: [container("backup", i.unsigned.ref)] })),
    );
    r = await hook.post("validate", backup);
    assertEquals(
      denial(r.body),
      `airlock: image "${i.unsigned.ref}" (container "backup") denied: ${NO_SIGNATURE}`,
    );

    // Signed with another key; a payload altered after signing; a signature for another repository.
    for (
      const [name, reason] of [["wrongkey", CRYPTO], ["tampered", CRYPTO], [
        "foreign",
        `Signature for identity "${bed.reg.host}/shop/elsewhere:1" is not accepted`,
      ]]
    ) {
      r = await hook.post(
        "validate",
        review(pod("shop", name, podSpec({ containers: [container("app", i[name].ref)] }))),
      );
      assertEquals(denial(r.body), `airlock: image "${i[name].ref}" (container "app") denied: ${reason}`);
    }

    // The Deployment with one bad sidecar: the whole object is denied and only the bad image is named.
    r = await hook.post(
      "validate",
      review(
        deploymentWithSidecar("shop", "web2", {
          app: i.app.ref,
          init: i.migrate.ref,
          sidecar: i.unsigned.ref,
        }),
      ),
    );
    assertEquals(
      denial(r.body),
      `airlock: image "${i.unsigned.ref}" (init container "log-shipper") denied: ${NO_SIGNATURE}`,
    );

    // An image from a registry the policy does not name: the default (reject) applies.
    r = await hook.post(
      "validate",
      review(pod("shop", "hub", podSpec({ containers: [container("x", "docker.io/library/busybox:1.36")] }))),
    );
    assertEquals(
      denial(r.body),
      `airlock: image "docker.io/library/busybox:1.36" (container "x") denied: Running image docker://docker.io/library/busybox:1.36 is rejected by policy.`,
    );

    // Exempt namespace: allowed unchecked.
    r = await hook.post(
      "validate",
      review(pod("kube-system", "dns", podSpec({ containers: [container("x", i.unsigned.ref)] }))),
    );
    allowed(r.body);

    // kubectl debug: the UPDATE of pods/ephemeralcontainers checks the debug image only.
    const running = pod("shop", "web-7d4b9c", podSpec({ containers: [container("app", i.app.ref)] }));
    r = await hook.post("validate", debugContainerReview(running, i.unsigned.ref));
    assertEquals(
      denial(r.body),
      `airlock: image "${i.unsigned.ref}" (ephemeral container "debugger-x7k2q") denied: ${NO_SIGNATURE}`,
    );
    r = await hook.post("validate", debugContainerReview(running, i.busybox.ref));
    allowed(r.body);

    // Dry run (kubectl apply --dry-run=server): the same verdict, logged as a dry run.
    const dry = review(cronJob("ops", "dry", podSpec({ containers: [container("c", i.unsigned.ref)] })), {
      dryRun: true,
    });
    r = await hook.post("validate", dry);
    denial(r.body);
    const dryLine = hook.log.find((l) => l.includes(`uid=${(dry.request as Json).uid}`));
    assertMatch(dryLine ?? "", / dry-run=true /);

    // The log: one line per image with uid, namespace, kind, image, digest, reason.
    const line = hook.log.find((l) => l.includes("name=backup"));
    assertEquals(
      line,
      `- [WARN] admission: denied endpoint=validate uid=${uidOf(backup)} namespace=ops kind=CronJob ` +
        `name=backup op=CREATE image=${i.unsigned.ref} digest=${i.unsigned.digest} ` +
        `cached=false reason=${JSON.stringify(NO_SIGNATURE)}\n`,
    );
    assert(
      hook.log.some((l) =>
        l.startsWith("- [INFO] admission: allowed endpoint=validate") &&
        l.includes(`image=${i.app.ref} digest=${i.app.digest}`)
      ),
    );
    assert(
      hook.log.some((l) =>
        l.includes("namespace=kube-system") && l.includes(`reason="namespace kube-system is exempt"`)
      ),
    );

    // Metrics count the decisions; the page lists them.
    const metrics = await (await hook.call("/metrics")).text();
    assertStringIncludes(
      metrics,
      'airlock_admission_reviews_total{endpoint="validate",decision="denied",dry_run="false"} 7',
    );
    assertStringIncludes(
      metrics,
      'airlock_admission_reviews_total{endpoint="validate",decision="denied",dry_run="true"} 1',
    );
    assertStringIncludes(metrics, 'airlock_admission_images_total{endpoint="validate",category="rejected"}');
    assertMatch(metrics, /airlock_admission_cache_hits_total \d+/);
    const page = await (await hook.call("/", { headers: { cookie: `airlock_token=${hook.token}` } })).text();
    assertStringIncludes(page, `<table id="decisions">`);
    assertStringIncludes(page, `data-decision="denied"`);
    assertStringIncludes(page, i.unsigned.ref);
  } finally {
    await bed.reg.stop();
  }
});

Deno.test("admission, mutate: verified tags pinned to the verified digest; kubectl applies the JSON Patch cleanly", async () => {
  await using tmp = await tempDir("airlock-admission-mutate-");
  const bed = await signedRegistry(tmp.path);
  try {
    await Deno.writeTextFile(join(tmp.path, "policy.json"), policyJson(bed));
    await using hook = await startWebhook({
      dir: tmp.path,
      config: "policy: policy.json\nexemptNamespaces: [kube-system]\n",
    });
    const i = bed.img;
    const web = deploymentWithSidecar("shop", "web", {
      app: i.app.ref,
      init: i.migrate.ref,
      sidecar: i.shipper.ref,
    });
    const r = await hook.post("mutate", review(web));
    const resp = allowed(r.body);
    assertEquals(resp.patchType, "JSONPatch");
    const patch = patchOf(r.body);
    assertEquals(patch, [
      {
        op: "replace",
        path: "/spec/template/spec/containers/0/image",
        value: `${i.app.ref}@${i.app.digest}`,
      },
      {
        op: "replace",
        path: "/spec/template/spec/initContainers/0/image",
        value: `${i.migrate.ref}@${i.migrate.digest}`,
      },
      {
        op: "replace",
        path: "/spec/template/spec/initContainers/1/image",
        value: `${i.shipper.ref}@${i.shipper.digest}`,
      },
    ]);
    // The digests are the registry's own (read here with plain fetch).
    const head = await fetch(`${bed.reg.url}/v2/shop/app/manifests/1`, {
      method: "HEAD",
      headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
    });
    assertEquals(head.headers.get("docker-content-digest"), i.app.digest);

    // The pinned object passes the validating endpoint (judged by digest), and an unsigned image is not pinned.
    const denied = await hook.post(
      "mutate",
      review(pod("shop", "x", podSpec({ containers: [container("x", i.unsigned.ref)] }))),
    );
    denial(denied.body);

    const missing = await kubectlMissing();
    if (missing) {
      console.log(`skipped: kubectl patch --local (${missing})`);
      return;
    }
    const patched = await kubectlPatch(tmp.path, web, patch);
    const spec = ((patched.spec as Json).template as Json).spec as Json;
    assertEquals((spec.containers as Json[]).map((c) => c.image), [`${i.app.ref}@${i.app.digest}`]);
    assertEquals((spec.initContainers as Json[]).map((c) => c.image), [
      `${i.migrate.ref}@${i.migrate.digest}`,
      `${i.shipper.ref}@${i.shipper.digest}`,
    ]);
    // Nothing else changed (kubectl 1.21+ leaves managedFields out of its output: compared without them).
    const expected = structuredClone(web);
    delete (expected.metadata as Json).managedFields;
    delete (patched.metadata as Json).managedFields;
    const es = ((expected.spec as Json).template as Json).spec as Json;
    (es.containers as Json[])[0].image = `${i.app.ref}@${i.app.digest}`;
    (es.initContainers as Json[])[0].image = `${i.migrate.ref}@${i.migrate.digest}`;
    (es.initContainers as Json[])[1].image = `${i.shipper.ref}@${i.shipper.digest}`;
    assertEquals(patched, expected);
    const again = await hook.post("validate", review(patched));
    allowed(again.body);

    // A matchExact policy accepts the tag it was signed for, and refuses the pinned (digest) reference.
    const exactDir = await Deno.makeTempDir({ dir: tmp.path });
    const exact = JSON.parse(policyJson(bed));
    exact.transports.docker[bed.reg.host][0].signedIdentity = { type: "matchExact" };
    await Deno.writeTextFile(join(exactDir, "policy.json"), JSON.stringify(exact));
    {
      await using strict = await startWebhook({ dir: exactDir, config: "policy: policy.json\n" });
      allowed(
        (await strict.post(
          "validate",
          review(pod("shop", "t", podSpec({ containers: [container("c", i.app.ref)] }))),
        )).body,
      );
      const pinned = `${i.app.ref}@${i.app.digest}`;
      const refused = await strict.post(
        "validate",
        review(pod("shop", "d", podSpec({ containers: [container("c", pinned)] }))),
      );
      assertEquals(
        denial(refused.body),
        `airlock: image "${pinned}" (container "c") denied: Signature for identity "${i.app.ref}" is not accepted`,
      );
    }

    // A CronJob and a debug container: their patches apply too.
    const cj = cronJob("ops", "backup", podSpec({ containers: [container("b", i.busybox.ref)] }));
    const cjPatched = await kubectlPatch(tmp.path, cj, patchOf((await hook.post("mutate", review(cj))).body));
    const cjSpec = ((((cjPatched.spec as Json).jobTemplate as Json).spec as Json).template as Json)
      .spec as Json;
    assertEquals((cjSpec.containers as Json[])[0].image, `${i.busybox.ref}@${i.busybox.digest}`);
    const running = pod("shop", "web-7d4b9c", podSpec({ containers: [container("app", i.app.ref)] }));
    const dbg = debugContainerReview(running, i.busybox.ref);
    const dbgPatched = await kubectlPatch(
      tmp.path,
      (dbg.request as Json).object,
      patchOf((await hook.post("mutate", dbg)).body),
    );
    assertEquals(
      ((dbgPatched.spec as Json).ephemeralContainers as Json[])[0].image,
      `${i.busybox.ref}@${i.busybox.digest}`,
    );
    assertEquals(((dbgPatched.spec as Json).containers as Json[])[0].image, i.app.ref);
  } finally {
    await bed.reg.stop();
  }
});

Deno.test("admission, cosign mode: what airlock verify accepts with the key is admitted (identity unchecked, as cosign)", async () => {
  await using tmp = await tempDir("airlock-admission-cosign-");
  const bed = await signedRegistry(tmp.path);
  try {
    await using hook = await startWebhook({
      dir: tmp.path,
      config: `cosign:\n  key: ${JSON.stringify(bed.trusted.pub)}\n  insecureIgnoreTlog: true\n`,
    });
    const i = bed.img;
    let r = await hook.post(
      "mutate",
      review(
        deploymentWithSidecar("shop", "web", { app: i.app.ref, init: i.migrate.ref, sidecar: i.multi.ref }),
      ),
    );
    allowed(r.body);
    // The multi-arch tag is pinned to its index, the digest cosign verified.
    assertEquals(
      patchOf(r.body).find((p) => (p.path as string).endsWith("initContainers/1/image"))?.value,
      `${i.multi.ref}@${i.multi.digest}`,
    );
    // cosign does not check the identity: the signature naming another repository verifies.
    r = await hook.post(
      "validate",
      review(pod("shop", "f", podSpec({ containers: [container("f", i.foreign.ref)] }))),
    );
    allowed(r.body);
    for (
      const [name, reason] of [["unsigned", "no signatures found"], [
        "wrongkey",
        "no matching signatures:\ninvalid signature when validating ASN.1 encoded signature",
      ], ["tampered", "no matching signatures:\ninvalid signature when validating ASN.1 encoded signature"]]
    ) {
      r = await hook.post(
        "validate",
        review(pod("shop", name, podSpec({ containers: [container("c", i[name].ref)] }))),
      );
      assertEquals(denial(r.body), `airlock: image "${i[name].ref}" (container "c") denied: ${reason}`);
    }
    // annotations: airlock's signatures here carry none, so a rule asking for one refuses them.
    const annotated = await Deno.makeTempDir({ dir: tmp.path });
    await using strict = await startWebhook({
      dir: annotated,
      config: `cosign:\n  key: ${
        JSON.stringify(bed.trusted.pub)
      }\n  insecureIgnoreTlog: true\n  annotations: {env: prod}\n`,
    });
    r = await strict.post(
      "validate",
      review(pod("shop", "a", podSpec({ containers: [container("c", i.app.ref)] }))),
    );
    assertStringIncludes(
      denial(r.body),
      `airlock: image "${i.app.ref}" (container "c") denied: no matching signatures:`,
    );
  } finally {
    await bed.reg.stop();
  }
});

Deno.test("admission endpoints: client certificate required with --client-ca; bearer API beside them unchanged; no key, no jobs", async () => {
  await using tmp = await tempDir("airlock-admission-tls-");
  const bed = await signedRegistry(tmp.path);
  try {
    await Deno.writeTextFile(join(tmp.path, "policy.json"), policyJson(bed));
    await using hook = await startWebhook({ dir: tmp.path, config: "policy: policy.json\n" });
    const body = review(pod("shop", "p", podSpec({ containers: [container("app", bed.img.app.ref)] })));
    for (const as of ["none", "stranger"] as const) {
      const r = await hook.post("validate", body, as);
      assertEquals(r.status, 403);
      assertEquals((r.body.error as Json).code, "DENIED");
    }
    allowed((await hook.post("validate", body, "apiserver")).body);

    // Not a v1 AdmissionReview: refused with an HTTP error naming the fix.
    const bad = await hook.post("validate", {
      apiVersion: "admission.k8s.io/v1beta1",
      kind: "AdmissionReview",
      request: {},
    });
    assertEquals(bad.status, 400);
    assertStringIncludes((bad.body.error as Json).message as string, "admissionReviewVersions: [v1]");

    // The OpenAPI document lists the two endpoints.
    const doc = await (await hook.call("/openapi.json")).json();
    assert("/v1/admission/validate" in doc.paths && "/v1/admission/mutate" in doc.paths);

    // The bearer-token API is still there (no client certificate needed); the job routes need a key.
    assertEquals((await hook.call("/v1/jobs")).status, 200);
    assertEquals((await hook.call("/v1/jobs", { headers: { authorization: "Bearer nope" } })).status, 401);
    const sign = await hook.call("/v1/sign", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ images: [bed.img.app.ref] }),
    });
    assertEquals(sign.status, 501);
    assertEquals(((await sign.json()).error as Json).code, "NOT_CONFIGURED");
    assertEquals((await hook.call("/v1/public-key")).status, 501);
    assertEquals((await hook.call("/metrics", { headers: { authorization: "" } })).status, 401);
  } finally {
    await bed.reg.stop();
  }
});

Deno.test("with --client-ca and a key: the job API, its event stream and the page work through the same listener", async () => {
  await using tmp = await tempDir("airlock-admission-jobs-");
  const bed = await signedRegistry(tmp.path);
  try {
    await Deno.writeTextFile(join(tmp.path, "policy.json"), policyJson(bed));
    const signer = await makeKey(tmp.path, "service");
    await pushSingle(bed.reg, "shop/fresh", "1", "seed-fresh");
    await using hook = await startWebhook({
      dir: tmp.path,
      config: "policy: policy.json\n",
      serve: { keyRef: signer.key, passphraseFile: signer.pass },
    });
    // A sign job over HTTPS without a client certificate (the bearer token is what counts there).
    const submitted = await hook.call("/v1/sign", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ images: [`${bed.reg.host}/shop/fresh:1`] }),
    });
    assertEquals(submitted.status, 202);
    const { id } = await submitted.json();
    // The event stream, read to its end through the node:https adapter.
    const events = await (await hook.call(`/v1/jobs/${id}/events`)).text();
    assertStringIncludes(events, "event: done");
    assertStringIncludes(events, '"state":"succeeded"');
    assertEquals((await (await hook.call("/v1/public-key")).text()).trim(), signer.publicPem.trim());
    // The page sets its cookie Secure (TLS), and the admission endpoints still need the client certificate.
    const login = await hook.call(`/?token=${hook.token}`, {
      redirect: "manual",
      headers: { authorization: "" },
    });
    assertEquals(login.status, 303);
    assertMatch(login.headers.get("set-cookie") ?? "", /; Secure/);
    const r = await hook.post(
      "validate",
      review(pod("shop", "p", podSpec({ containers: [container("c", `${bed.reg.host}/shop/fresh:1`)] }))),
      "none",
    );
    assertEquals(r.status, 403);
  } finally {
    await bed.reg.stop();
  }
});
