/**
 * Admission webhook benchmark: a real `airlock serve --admission-config` process (policy mode: a containers
 * policy with one `sigstoreSigned` key, the default amd64+arm64 platforms), HTTPS, against a local registry of
 * signed single-arch and multi-arch images. AdmissionReviews are Deployments with one container, posted to
 * `/v1/admission/validate` the way the API server does.
 *
 * Prints, for the listener with `--client-ca` (node:https, client certificate checked) and without (Deno.serve):
 * - uncached: every review names an image never seen (one registry check each), 1 client and 50 concurrent;
 * - cached: reviews of images already judged, 1 client and 50 concurrent;
 * with p50 and p99 latency (ms, client side: request sent → answer read, HTTP/1.1 keep-alive), reviews per
 * second, and the share of reviews the service itself answered within 10 and 25 ms (from its own `/metrics`
 * latency histogram, so client-side queueing on a busy machine is told apart). Asserts nothing.
 * `BENCH_ADMISSION_IMAGES` sets the images per uncached run (default 100), `BENCH_ADMISSION_CACHED` the
 * reviews per cached run (default 2000).
 *
 * @module
 */
import { join } from "node:path";
import { RegistryClient } from "../core/registry/client.ts";
import { runPool } from "../core/pool.ts";
import { addToken } from "../server/tokens.ts";
import { buildImage, buildMultiArchImage, spawnAirlock, startRegistry } from "../tests/testbed/mod.ts";
import { ATTACHMENTS_ON, writeRegistriesD } from "../tests/testbed/files.ts";
import { makeKey } from "../tests/testbed/keys.ts";
import { signInProcess } from "../tests/testbed/signatures.ts";
import { makeWebhookTls } from "../tests/admission/helpers.ts";
import { container, deployment, podSpec, review } from "../tests/admission/reviews.ts";
import { printTable, pushImages } from "./bench_util.ts";

const IMAGES = Number(Deno.env.get("BENCH_ADMISSION_IMAGES") ?? 100);
const CACHED = Number(Deno.env.get("BENCH_ADMISSION_CACHED") ?? 2000);

function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

await using registry = await startRegistry();
const work = await Deno.makeTempDir({ prefix: "airlock-admission-bench-" });
try {
  // Images: per run of uncached reviews its own set (half single-arch, half multi-arch), all signed.
  const runs = ["ca-1", "ca-50", "plain-1", "plain-50"];
  const repos = runs.flatMap((r) => Array.from({ length: IMAGES }, (_, i) => `bench/${r}/img${i}`));
  const t0 = performance.now();
  await pushImages(
    registry,
    repos,
    (seed) => (Number(seed.split("img")[1]) % 2 === 0 ? buildImage({ seed }) : buildMultiArchImage({ seed })),
  );
  const key = await makeKey(work, "trusted");
  const rd = await writeRegistriesD(work, ATTACHMENTS_ON, "registries.d");
  const client = new RegistryClient({ tlsVerify: false });
  try {
    await signInProcess(repos.map((r) => `${registry.host}/${r}:v1`), key, rd, client, { jobs: 16 });
  } finally {
    client.close();
  }
  console.log(
    `registry ${registry.host}; ${repos.length} images pushed and signed in ${
      ((performance.now() - t0) / 1000).toFixed(1)
    } s ` +
      `(half multi-arch: index + 2 platforms checked per image)`,
  );
  await Deno.writeTextFile(
    join(work, "policy.json"),
    JSON.stringify({
      default: [{ type: "reject" }],
      transports: { docker: { [registry.host]: [{ type: "sigstoreSigned", keyPath: key.pub }] } },
    }),
  );
  await Deno.writeTextFile(
    join(work, "admission.yaml"),
    "policy: policy.json\nexemptNamespaces: [kube-system]\n",
  );
  const { token } = await addToken(join(work, "tokens"), "bench");
  const tls = await makeWebhookTls(work);

  const rows: string[][] = [];
  for (const withCa of [true, false]) {
    await using server = await spawnAirlock([
      "serve",
      "--admission-config",
      "admission.yaml",
      ...(withCa ? ["--client-ca", tls.clientCa.certPath] : []),
      "--tls-cert",
      tls.server.certPath,
      "--tls-key",
      tls.server.keyPath,
      "--token-file",
      "tokens",
      "--listen",
      "127.0.0.1:0",
      "--tls-verify=false",
      "--registries.d",
      rd,
    ], work);
    const url = (await server.waitFor(/listening on (https:\/\/127\.0\.0\.1:\d+)/))[1];
    // HTTP/1.1: Deno's fetch over HTTP/2 adds ~40 ms to every POST with a body of a few KiB (a client-side
    // artefact: curl --http2 against the same Deno.serve answers in < 1 ms), which would hide the server's time.
    const http = Deno.createHttpClient({
      http2: false,
      caCerts: [tls.serverCa.certPem],
      cert: tls.apiserver.certPem,
      key: tls.apiserver.keyPem,
    });
    const post = async (image: string) => {
      const body = JSON.stringify(
        review(deployment("shop", "web", podSpec({ containers: [container("app", image)] }))),
      );
      const t = performance.now();
      const res = await fetch(`${url}/v1/admission/validate`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
        client: http,
      });
      const answer = await res.json();
      const ms = performance.now() - t;
      if (res.status !== 200 || answer.response?.allowed !== true) {
        throw new Error(`review of ${image}: ${res.status} ${JSON.stringify(answer)}`);
      }
      return ms;
    };
    /** The server's own latency histogram of the validate route (cumulative bucket counts by bound). */
    const histogram = async () => {
      const text =
        await (await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${token}` }, client: http }))
          .text();
      const counts = new Map<string, number>();
      for (
        const m of text.matchAll(
          /^airlock_http_request_duration_seconds_bucket\{route="\/v1\/admission\/validate",le="([^"]+)"\} (\d+)$/gm,
        )
      ) {
        counts.set(m[1], Number(m[2]));
      }
      return counts;
    };
    const measure = async (label: string, images: string[], clients: number) => {
      const latencies: number[] = [];
      const before = await histogram();
      const start = performance.now();
      const results = await runPool(images, clients, async (image) => {
        latencies.push(await post(image));
      });
      const failed = results.filter((r) => !r.ok);
      if (failed.length > 0) throw failed[0].error;
      const seconds = (performance.now() - start) / 1000;
      const after = await histogram();
      const share = (le: string) => {
        const n = (after.get(le) ?? 0) - (before.get(le) ?? 0);
        const all = (after.get("+Inf") ?? 0) - (before.get("+Inf") ?? 0);
        return all === 0 ? "-" : `${(100 * n / all).toFixed(1)}%`;
      };
      rows.push([
        withCa ? "node:https + --client-ca" : "Deno.serve",
        label,
        String(clients),
        String(images.length),
        percentile(latencies, 50).toFixed(1),
        percentile(latencies, 99).toFixed(1),
        (images.length / seconds).toFixed(0),
        share("0.01"),
        share("0.025"),
      ]);
    };
    const prefix = withCa ? "ca" : "plain";
    const set = (c: number) =>
      Array.from({ length: IMAGES }, (_, i) => `${registry.host}/bench/${prefix}-${c}/img${i}:v1`);
    await measure("uncached", set(1), 1);
    await measure("uncached", set(50), 50);
    // Cached: the images of the uncached runs, round robin.
    const judged = [...set(1), ...set(50)];
    const cached = Array.from({ length: CACHED }, (_, i) => judged[i % judged.length]);
    await post(judged[0]); // warm the connection
    await measure("cached", cached, 1);
    await measure("cached", cached, 50);
    http.close();
    server.child.kill("SIGTERM");
    await server.status;
  }
  printTable(
    [
      "listener",
      "verdict",
      "clients",
      "reviews",
      "p50 ms",
      "p99 ms",
      "reviews/s",
      "server ≤10ms",
      "server ≤25ms",
    ],
    rows,
  );
  const load = Deno.loadavg();
  console.log(
    `client-side latency (request sent → answer read); "server ≤Nms": share of reviews the service itself answered ` +
      `within N ms (its /metrics histogram, until the answer's headers). Load average ${
        load[0].toFixed(1)
      } on ` +
      `${navigator.hardwareConcurrency} cores.`,
  );
  console.log(
    "uncached = one registry check per review (tag resolution, .sig manifest, payload blobs; index + 2 platforms for multi-arch)",
  );
} finally {
  await Deno.remove(work, { recursive: true });
}
