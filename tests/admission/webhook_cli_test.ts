/**
 * The command line of the admission webhook, through the real CLI: `airlock serve webhook-config` (its YAML read
 * back by `kubectl apply --dry-run=client --validate=false -f -`, which needs an API server for discovery: the
 * test bed's FAKE one answers it, see `fake_kube_apiserver.ts`), `airlock serve --admission-config` refusing to
 * start on a malformed file or without TLS, and a real `airlock serve` process answering reviews with
 * `--client-ca` and `--admission-timeout`.
 *
 * @module
 */
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { assert, assertEquals, assertStringIncludes } from "../assert.ts";
import {
  airlock,
  pushSingle,
  show,
  spawnAirlock,
  startFakeKubeApiServer,
  startRegistry,
  tempDir,
  writeRegistriesD,
} from "../testbed/mod.ts";
import { ATTACHMENTS_ON } from "../testbed/files.ts";
import { makeKey } from "../testbed/keys.ts";
import { makeWebhookTls } from "./helpers.ts";
import { kubectl, kubectlMissing } from "./kubectl.ts";
import { container, type Json, pod, podSpec, review } from "./reviews.ts";

type Doc = Record<string, unknown>;

Deno.test("serve webhook-config: both configurations, as kubectl reads them", async () => {
  await using tmp = await tempDir("airlock-webhook-config-");
  const tls = await makeWebhookTls(tmp.path);
  const cfg = join(tmp.path, "admission.yaml");
  await Deno.writeTextFile(
    cfg,
    "policy: /etc/containers/policy.json\nexemptNamespaces: [kube-system, airlock]\ntimeout: 6s\n",
  );
  const r = await airlock([
    "serve",
    "webhook-config",
    "--service",
    "airlock/airlock-webhook",
    "--ca-bundle",
    tls.serverCa.certPath,
    "--admission-config",
    cfg,
  ], { cwd: tmp.path });
  assertEquals(r.code, 0, show(r));
  const docs = parseAllDocuments(r.stdout).map((d) => d.toJS() as Doc);
  assertEquals(docs.map((d) => [d.apiVersion, d.kind, (d.metadata as Doc).name]), [
    ["admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", "airlock"],
    ["admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "airlock"],
  ]);
  const caBundle = btoa(tls.serverCa.certPem);
  const expectedWebhook = (kind: "mutate" | "validate") => ({
    name: `${kind}.airlock-webhook.airlock.svc`,
    admissionReviewVersions: ["v1"],
    sideEffects: "None",
    failurePolicy: "Fail",
    matchPolicy: "Equivalent",
    timeoutSeconds: 8,
    clientConfig: {
      service: { namespace: "airlock", name: "airlock-webhook", path: `/v1/admission/${kind}`, port: 443 },
      caBundle,
    },
    namespaceSelector: {
      matchExpressions: [{
        key: "kubernetes.io/metadata.name",
        operator: "NotIn",
        values: ["kube-system", "airlock"],
      }],
    },
    rules: [
      {
        apiGroups: [""],
        apiVersions: ["v1"],
        operations: ["CREATE", "UPDATE"],
        resources: ["pods", "pods/ephemeralcontainers", "podtemplates", "replicationcontrollers"],
        scope: "Namespaced",
      },
      {
        apiGroups: ["apps"],
        apiVersions: ["v1"],
        operations: ["CREATE", "UPDATE"],
        resources: ["deployments", "replicasets", "statefulsets", "daemonsets"],
        scope: "Namespaced",
      },
      {
        apiGroups: ["batch"],
        apiVersions: ["v1"],
        operations: ["CREATE", "UPDATE"],
        resources: ["jobs", "cronjobs"],
        scope: "Namespaced",
      },
    ],
    ...(kind === "mutate" ? { reinvocationPolicy: "IfNeeded" } : {}),
  });
  assertEquals(docs[0].webhooks as Doc[], [expectedWebhook("mutate")]);
  assertEquals(docs[1].webhooks as Doc[], [expectedWebhook("validate")]);

  // Usage errors.
  for (
    const [args, message] of [
      [["--ca-bundle", tls.serverCa.certPath], "--service NAMESPACE/NAME is required"],
      [["--service", "airlock/airlock"], "--ca-bundle FILE is required"],
      [["--service", "Airlock/x", "--ca-bundle", tls.serverCa.certPath], "not a DNS label"],
      [["--service", "a/b", "--ca-bundle", cfg], "holds no PEM certificate"],
      [
        ["--service", "a/b", "--ca-bundle", tls.serverCa.certPath, "--admission-timeout", "40s"],
        "at most 28s",
      ],
    ] as const
  ) {
    const bad = await airlock(["serve", "webhook-config", ...args], { cwd: tmp.path });
    assertEquals(bad.code, 1, show(bad));
    assertStringIncludes(bad.stderr, message);
    assertEquals(bad.stdout, "");
  }

  const missing = await kubectlMissing();
  if (missing) {
    console.log(`skipped: kubectl apply --dry-run=client (${missing})`);
    return;
  }
  await using api = await startFakeKubeApiServer();
  const applied = await kubectl(tmp.path, ["apply", "--dry-run=client", "--validate=false", "-f", "-"], {
    stdin: r.stdout,
    server: api.url,
  });
  assertEquals(applied.code, 0, applied.stderr);
  assertEquals(
    applied.stdout,
    [
      "mutatingwebhookconfiguration.admissionregistration.k8s.io/airlock created (dry run)",
      "validatingwebhookconfiguration.admissionregistration.k8s.io/airlock created (dry run)",
      "",
    ].join("\n"),
  );
  // kubectl looked both objects up by the names it parsed (that is what a dry run of "apply" does).
  for (const kind of ["mutating", "validating"]) {
    assert(
      api.requests.some((q) =>
        q.path === `/apis/admissionregistration.k8s.io/v1/${kind}webhookconfigurations/airlock`
      ),
    );
  }
  // What kubectl parsed: the same objects, field for field.
  const asJson = await kubectl(tmp.path, [
    "apply",
    "--dry-run=client",
    "--validate=false",
    "-o",
    "json",
    "-f",
    "-",
  ], {
    stdin: r.stdout,
    server: api.url,
  });
  assertEquals(asJson.code, 0, asJson.stderr);
  const list = JSON.parse(asJson.stdout) as Doc;
  const items = (list.items ?? [list]) as Doc[];
  assertEquals(items.map((i) => i.webhooks), [[expectedWebhook("mutate")], [expectedWebhook("validate")]]);
});

Deno.test("serve --admission-config: a malformed file or a missing TLS certificate keeps the service from starting", async () => {
  await using tmp = await tempDir("airlock-admission-start-");
  const tls = await makeWebhookTls(tmp.path);
  const tokens = join(tmp.path, "tokens");
  assertEquals(
    (await airlock(["serve", "token-add", "--token-file", tokens, "ci"], { cwd: tmp.path })).code,
    0,
  );
  const start = (config: string, extra: string[] = []) =>
    airlock([
      "serve",
      "--admission-config",
      config,
      "--token-file",
      tokens,
      "--listen",
      "127.0.0.1:0",
      ...extra,
    ], { cwd: tmp.path, timeoutMs: 60_000 });
  const tlsFlags = ["--tls-cert", tls.server.certPath, "--tls-key", tls.server.keyPath];
  await Deno.writeTextFile(join(tmp.path, "bad.yaml"), "policy: p.json\ncosign: {key: k.pub}\n");
  await Deno.writeTextFile(join(tmp.path, "nopolicy.yaml"), "policy: missing.json\n");
  await makeKey(tmp.path, "k");
  await Deno.writeTextFile(join(tmp.path, "ok.yaml"), "cosign: {key: k.pub, insecureIgnoreTlog: true}\n");
  for (
    const [config, extra, message] of [
      ["bad.yaml", tlsFlags, `give "policy" or "cosign", not both`],
      ["nopolicy.yaml", tlsFlags, "missing.json: no such file or directory"],
      ["ok.yaml", [], "--admission-config needs --tls-cert and --tls-key"],
      [
        "ok.yaml",
        [...tlsFlags, "--admission-timeout", "31s"],
        "--admission-timeout must be above 0 and at most 28s",
      ],
    ] as const
  ) {
    const r = await start(join(tmp.path, config), [...extra]);
    assertEquals(r.code, 1, show(r));
    assertStringIncludes(r.stderr, message);
    assert(!r.stderr.includes("listening on"), show(r));
  }
  // Neither a key nor an admission configuration: nothing to serve.
  const none = await airlock(["serve", "--token-file", tokens], { cwd: tmp.path });
  assertEquals(none.code, 1);
  assertStringIncludes(none.stderr, "--key is required");
});

Deno.test("serve --admission-config process: reviews answered over HTTPS with --client-ca, decisions logged", async () => {
  await using tmp = await tempDir("airlock-admission-proc-");
  await using reg = await startRegistry();
  const unsigned = await pushSingle(reg, "shop/unsigned", "1", "seed-unsigned");
  const tls = await makeWebhookTls(tmp.path);
  const tokens = join(tmp.path, "tokens");
  assertEquals(
    (await airlock(["serve", "token-add", "--token-file", tokens, "ci"], { cwd: tmp.path })).code,
    0,
  );
  const key = await airlock(["generate-key-pair", "--output-key-prefix", "k"], {
    cwd: tmp.path,
    env: { COSIGN_PASSWORD: "" },
  });
  assertEquals(key.code, 0, show(key));
  await Deno.writeTextFile(
    join(tmp.path, "admission.yaml"),
    "cosign: {key: k.pub, insecureIgnoreTlog: true}\nallowImages: ['registry.local/infra/pause:*']\n",
  );
  const rd = await writeRegistriesD(tmp.path, ATTACHMENTS_ON);
  await using proc = await spawnAirlock([
    "serve",
    "--admission-config",
    "admission.yaml",
    "--admission-timeout",
    "3s",
    "--client-ca",
    tls.clientCa.certPath,
    "--tls-cert",
    tls.server.certPath,
    "--tls-key",
    tls.server.keyPath,
    "--token-file",
    tokens,
    "--listen",
    "127.0.0.1:0",
    "--tls-verify=false",
    "--registries.d",
    rd,
  ], tmp.path);
  const url = (await proc.waitFor(/listening on (https:\/\/127\.0\.0\.1:\d+)/))[1];
  await proc.waitFor(/admission webhook on .*timeout 3s; client certificates required/);
  const client = Deno.createHttpClient({
    caCerts: [tls.serverCa.certPem],
    cert: tls.apiserver.certPem,
    key: tls.apiserver.keyPem,
  });
  try {
    const post = async (body: Json) => {
      const res = await fetch(`${url}/v1/admission/validate`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
        client,
      });
      assertEquals(res.status, 200);
      return ((await res.json()) as Json).response as Json;
    };
    const image = `${reg.host}/shop/unsigned:1`;
    const denied = await post(review(pod("shop", "p", podSpec({ containers: [container("c", image)] }))));
    assertEquals(denied.allowed, false);
    assertEquals(
      (denied.status as Json).message,
      `airlock: image "${image}" (container "c") denied: no signatures found`,
    );
    const ok = await post(
      review(pod("shop", "q", podSpec({ containers: [container("c", "registry.local/infra/pause:3.9")] }))),
    );
    assertEquals(ok.allowed, true);
    await proc.waitFor(
      new RegExp(
        `admission: denied endpoint=validate .* image=${
          image.replaceAll(".", "\\.")
        } digest=${unsigned.top.digest}`,
      ),
    );
    await proc.waitFor(
      /admission: allowed endpoint=validate .* image=registry\.local\/infra\/pause:3\.9 digest=- cached=false reason="allowImages/,
    );
  } finally {
    client.close();
  }
  proc.child.kill("SIGTERM");
  assertEquals((await proc.status).code, 0, proc.stderr());
});
