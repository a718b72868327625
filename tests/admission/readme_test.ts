/**
 * The README's admission section, run as it is written: its `admission.yaml` example is a valid configuration,
 * and its walkthrough "Running it in an air-gapped containerd cluster" works end to end here — the image carried
 * from one real registry to another with `airlock save`/`load` and signed, the certificates made with its openssl
 * commands, the ConfigMaps and Secrets made with its kubectl commands (`--dry-run=client -o json`), mounted where
 * its Deployment mounts them, airlock started with the Deployment's arguments, and the API server's calls made
 * with the client certificate to the service name in the serving certificate.
 *
 * What the test changes, and why: registry host names (`registry.example.io`, `registry.local`) become the two
 * local registries; `--tls-verify=false` is added where airlock talks to them (they are plain HTTP); the
 * Deployment's `/etc/airlock/…` paths live under a temporary directory, and it listens on a free loopback port
 * instead of `0.0.0.0:8443`. The image build itself (the Containerfile) is not run: no image builder here. kubectl
 * reads the manifests against the test bed's FAKE API server (discovery only; no kube-apiserver runs here).
 *
 * @module
 */
import https from "node:https";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { parseAdmissionConfig } from "../../core/admission/config.ts";
import { assert, assertEquals } from "../assert.ts";
import {
  CLI,
  CONFIG,
  denoDir,
  makeCa,
  makeLeaf,
  pushSingle,
  spawnAirlock,
  startFakeKubeApiServer,
  startRegistry,
  tempDir,
} from "../testbed/mod.ts";
import { KUBECTL, kubectl, kubectlMissing } from "./kubectl.ts";
import { container, type Json, pod, podSpec, review } from "./reviews.ts";

const README = await Deno.readTextFile(new URL("../../README.md", import.meta.url));

/** The text from the heading line `title` to the next heading of its level or higher (outside code blocks). */
function section(title: string): string {
  const lines = README.split("\n");
  const at = lines.indexOf(title);
  assert(at >= 0, `README has no heading ${title}`);
  const level = title.split(" ")[0].length;
  let fenced = false;
  let end = lines.length;
  for (let i = at + 1; i < lines.length; i++) {
    if (/^\s*```/.test(lines[i])) fenced = !fenced;
    const h = !fenced && /^(#+) /.exec(lines[i]);
    if (h && h[1].length <= level) {
      end = i;
      break;
    }
  }
  return lines.slice(at + 1, end).join("\n") + "\n";
}

/** The fenced code blocks of `text` (indentation removed), with their language. */
function blocks(text: string): { lang: string; body: string }[] {
  const out: { lang: string; body: string }[] = [];
  for (const m of text.matchAll(/^( *)```(\w*)\n([\s\S]*?)^\1```$/gm)) {
    const indent = m[1].length;
    out.push({
      lang: m[2],
      body: m[3].split("\n").map((l) => l.slice(Math.min(indent, l.search(/\S|$/)))).join("\n"),
    });
  }
  return out;
}

function block(text: string, lang: string, includes: string): string {
  const b = blocks(text).find((x) => x.lang === lang && x.body.includes(includes));
  assert(b, `no ${lang} block with ${JSON.stringify(includes)}`);
  return b.body;
}

const MAIN = section("### Enforcing in the cluster: `airlock serve` as a Kubernetes admission webhook");
const WALK = section("#### Running it in an air-gapped containerd cluster");

Deno.test("README admission.yaml: the example (and its cosign variants) is a valid configuration", async () => {
  const text = block(MAIN, "yaml", "exemptNamespaces:");
  const cfg = await parseAdmissionConfig(text, "/etc/airlock/config/admission.yaml");
  assertEquals(cfg.mode.kind, "policy");
  assertEquals([cfg.exemptNamespaces, cfg.allowImages.map((g) => g.pattern), cfg.cacheTtlMs, cfg.timeoutMs], [
    ["kube-system", "airlock"],
    ["registry.local/k8s/pause:*"],
    300_000,
    8_000,
  ]);
  // The commented cosign lines: a key variant and a keyless one, each valid on its own.
  const commented = new Map(
    [...text.matchAll(/^# {5}(\w+): (\S+)/gm)].map((m) => [m[1], m[2]] as const),
  );
  const variant = (keys: string[]) =>
    "cosign:\n" +
    keys.map((k) => `  ${k}: ${commented.get(k) ?? assert(false, `no ${k} in the example`)}\n`).join("");
  const key = await parseAdmissionConfig(variant(["key", "insecureIgnoreTlog"]), "/a.yaml");
  assertEquals(key.mode.kind === "cosign" && [key.mode.keyPath, key.mode.ignoreTlog], [
    "/etc/airlock/config/cosign.pub",
    true,
  ]);
  const keyless = await parseAdmissionConfig(
    variant(["certificateIdentity", "certificateOidcIssuer", "trustedRoot"]),
    "/a.yaml",
  );
  assertEquals(keyless.mode.kind === "cosign" && keyless.mode.identity?.subject, "ci@example.com");
});

Deno.test("README walkthrough: image carried and signed, certificates, objects, airlock started as the Deployment says", async () => {
  const missing = await kubectlMissing();
  if (missing) {
    console.log(`skipped: the README walkthrough needs kubectl (${missing})`);
    return;
  }
  await using tmp = await tempDir("airlock-readme-admission-");
  const work = tmp.path;
  await using connected = await startRegistry();
  await using local = await startRegistry();
  await pushSingle(connected, "tools/airlock", "0.1.0", "the airlock image");
  const unsigned = await pushSingle(local, "x", "unsigned", "an unsigned image");
  const bash = async (script: string, env: Record<string, string> = {}) => {
    const shims = [
      `airlock() { case "$1" in save|load|sign) set -- "$@" --tls-verify=false;; esac; ` +
      `"${Deno.execPath()}" run -A --config "${CONFIG}" "${CLI}" "$@"; }`,
      `n=0; kubectl() { n=$((n+1)); command "${KUBECTL}" "$@" --dry-run=client -o json > "objects-$n.json"; }`,
      "set -euo pipefail",
    ].join("\n");
    const out = await new Deno.Command("bash", {
      args: ["-c", `${shims}\n${script}`],
      cwd: work,
      clearEnv: true,
      env: {
        PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
        HOME: work,
        DENO_DIR: await denoDir(),
        NO_COLOR: "1",
        KUBECONFIG: join(work, "no-kubeconfig"),
        ...env,
      },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(120_000),
    }).output();
    const dec = new TextDecoder();
    assertEquals(out.code, 0, `${script}\n${dec.decode(out.stdout)}\n${dec.decode(out.stderr)}`);
  };

  // 1. The image across the gap, signed with the cluster's key.
  await bash("airlock generate-key-pair >/dev/null", { COSIGN_PASSWORD: "readme" });
  const carry = block(WALK, "sh", "airlock save -f airlock-image.txt")
    .replaceAll("registry.example.io", connected.host).replaceAll("registry.local", local.host);
  await bash(carry, { COSIGN_PASSWORD: "readme" });

  // 2. Certificates: the README's openssl commands; the client pair made the same way by the test bed.
  await bash(block(WALK, "sh", "openssl req -x509"));
  const clientCa = await makeCa(work, { name: "client-ca" });
  const apiserver = await makeLeaf(work, clientCa, { name: "apiserver", sans: [], usage: "clientAuth" });

  // 3. The files the README's kubectl commands read, then the commands themselves.
  await Deno.writeTextFile(
    join(work, "admission.yaml"),
    "policy: /etc/airlock/config/policy.json\nexemptNamespaces: [kube-system, airlock]\n",
  );
  await Deno.writeTextFile(
    join(work, "policy.json"),
    JSON.stringify({
      default: [{ type: "reject" }],
      transports: {
        docker: { [local.host]: [{ type: "sigstoreSigned", keyPath: "/etc/airlock/config/cosign.pub" }] },
      },
    }),
  );
  await bash(block(WALK, "sh", "kubectl -n airlock create secret tls"));
  const objects: Json[] = [];
  for await (const e of Deno.readDir(work)) {
    if (/^objects-\d+\.json$/.test(e.name)) {
      objects.push(JSON.parse(await Deno.readTextFile(join(work, e.name))));
    }
  }
  const manifests = block(WALK, "yaml", "kind: Deployment");
  const [deployment] = parseAllDocuments(manifests).map((d) => d.toJS() as Json);
  const podSpecOf = ((deployment.spec as Json).template as Json).spec as Json;
  const c0 = (podSpecOf.containers as Json[])[0];
  const root = join(work, "root");
  // Mount each volume where the Deployment mounts it.
  for (const mount of c0.volumeMounts as Json[]) {
    const volume = (podSpecOf.volumes as Json[]).find((v) => v.name === mount.name)!;
    const source = volume.configMap
      ? { kind: "ConfigMap", name: (volume.configMap as Json).name }
      : { kind: "Secret", name: (volume.secret as Json).secretName };
    const object = objects.find((o) => o.kind === source.kind && (o.metadata as Json).name === source.name);
    assert(object, `no ${source.kind} ${source.name} made by the README's commands`);
    const dir = join(root, mount.mountPath as string);
    await Deno.mkdir(dir, { recursive: true });
    for (const [k, v] of Object.entries((object.data ?? {}) as Record<string, string>)) {
      const text = source.kind === "Secret"
        ? new TextDecoder().decode(Uint8Array.from(atob(v), (ch) => ch.charCodeAt(0)))
        : v;
      await Deno.writeTextFile(join(dir, k), text.replaceAll("/etc/airlock/", `${root}/etc/airlock/`));
    }
  }
  // The Deployment's arguments (listen address and --tls-verify=false for the local plain-HTTP registry).
  const args = (c0.args as string[]).map((a) =>
    a === "--listen=0.0.0.0:8443"
      ? "--listen=127.0.0.1:0"
      : a.replaceAll("/etc/airlock/", `${root}/etc/airlock/`)
  );
  assert(args.includes("--listen=127.0.0.1:0"));
  await using server = await spawnAirlock([...args, "--tls-verify=false"], work);
  const port = Number((await server.waitFor(/listening on https:\/\/127\.0\.0\.1:(\d+)/))[1]);

  // The API server's side: HTTPS to airlock.airlock.svc (the serving certificate's name), with its client certificate.
  const ca = await Deno.readTextFile(join(work, "ca.crt"));
  const call = (path: string, body?: Json, withCert = true) =>
    new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = https.request({
        host: "127.0.0.1",
        port,
        servername: "airlock.airlock.svc",
        path,
        method: body ? "POST" : "GET",
        ca,
        ...(withCert ? { cert: apiserver.certPem, key: apiserver.keyPem } : {}),
        headers: body ? { "content-type": "application/json" } : {},
      }, (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => text += d);
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
      });
      req.on("error", reject);
      req.end(body ? JSON.stringify(body) : undefined);
    });
  // The readiness probe (no client certificate).
  assertEquals((await call("/healthz", undefined, false)).status, 200);
  // The airlock image itself, loaded and signed as the README says: admitted; an unsigned image: refused.
  const airlockImage = `${local.host}/tools/airlock:0.1.0`;
  let r = await call(
    "/v1/admission/validate",
    review(pod("shop", "a", podSpec({ containers: [container("airlock", airlockImage)] }))),
  );
  assertEquals(JSON.parse(r.text).response.allowed, true, r.text);
  const probe = `${local.host}/x:unsigned`;
  r = await call(
    "/v1/admission/mutate",
    review(pod("default", "probe", podSpec({ containers: [container("probe", probe)] }))),
  );
  assertEquals(
    JSON.parse(r.text).response.status.message,
    `airlock: image "${probe}" (container "probe") denied: A signature was required, but no signature exists`,
  );
  assert(server.stderr().includes(`digest=${unsigned.top.digest}`));

  // 4. kubectl reads the manifests and the webhook configuration the README applies.
  await using api = await startFakeKubeApiServer();
  let applied = await kubectl(work, ["apply", "--dry-run=client", "--validate=false", "-f", "-"], {
    stdin: manifests,
    server: api.url,
  });
  assertEquals(applied.code, 0, applied.stderr);
  assertEquals(
    applied.stdout,
    "deployment.apps/airlock created (dry run)\nservice/airlock created (dry run)\n",
  );
  const step4 = WALK.match(/`(airlock serve webhook-config [^`]+)`/)![1].replace(/\s+/g, " ");
  const [cmd, apply] = step4.split(" | ");
  assertEquals(apply, "kubectl apply -f -");
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", CONFIG, CLI, ...cmd.split(" ").slice(1)],
    cwd: work,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  applied = await kubectl(work, ["apply", "--dry-run=client", "--validate=false", "-f", "-"], {
    stdin: new TextDecoder().decode(out.stdout),
    server: api.url,
  });
  assertEquals(applied.code, 0, applied.stderr);
  assertEquals(
    applied.stdout,
    "mutatingwebhookconfiguration.admissionregistration.k8s.io/airlock created (dry run)\n" +
      "validatingwebhookconfiguration.admissionregistration.k8s.io/airlock created (dry run)\n",
  );
  server.child.kill("SIGTERM");
  assertEquals((await server.status).code, 0);
});
