/**
 * `airlock serve` benchmark: `POST /v1/sign` of one (fresh, single-arch) image per request, under 1, 8 and 32
 * concurrent clients, against a real `airlock serve` process (file key, `--jobs 32`, no rate limit in the way)
 * and a local registry. Each client submits, then follows the job's event stream until `done`. Prints, per level:
 * the latency of the `202` answer and of the whole job (submit → signed and confirmed), p50 and p95, and the
 * throughput in signatures per second. Asserts nothing. `BENCH_SERVE_REQUESTS` sets the requests per level
 * (default 64), `BENCH_SERVE_CLIENTS` the levels.
 *
 * @module
 */
import { buildImage, spawnAirlock, startRegistry } from "../tests/testbed/mod.ts";
import { runPool } from "../core/pool.ts";
import { addToken } from "../server/tokens.ts";
import { prepareSigning, printTable, pushImages, SIGNING } from "./bench_util.ts";

const REQUESTS = Number(Deno.env.get("BENCH_SERVE_REQUESTS") ?? 64);
const LEVELS = (Deno.env.get("BENCH_SERVE_CLIENTS") ?? "1,8,32").split(",").map(Number);

function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

await using registry = await startRegistry();
const work = await Deno.makeTempDir({ prefix: "airlock-serve-bench-" });
try {
  const repos = LEVELS.flatMap((c) =>
    Array.from({ length: REQUESTS }, (_, i) => `serve-bench/c${c}/img${i}`)
  );
  const t0 = performance.now();
  await pushImages(registry, repos, (seed) => buildImage({ seed }));
  console.log(
    `registry ${registry.host}; pushed ${repos.length} images in ${
      ((performance.now() - t0) / 1000).toFixed(1)
    } s; ` +
      `${REQUESTS} sign requests per level (one fresh single-arch image each = one signature)`,
  );

  await prepareSigning(work);
  const { token } = await addToken(`${work}/tokens`, "bench");

  await using server = await spawnAirlock([
    "serve",
    "--key",
    `${work}/${SIGNING.key}`,
    "--passphrase-file",
    `${work}/${SIGNING.pass}`,
    "--token-file",
    `${work}/tokens`,
    "--listen",
    "127.0.0.1:0",
    "--tls-verify=false",
    "--registries.d",
    `${work}/${SIGNING.registriesD}`,
    "--jobs",
    "32",
    "--rate-limit",
    "1000000/min",
  ], work);
  const url = (await server.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+)/))[1];
  const auth = { authorization: `Bearer ${token}` };

  const rows: string[][] = [];
  for (const clients of LEVELS) {
    const images = Array.from(
      { length: REQUESTS },
      (_, i) => `${registry.host}/serve-bench/c${clients}/img${i}:v1`,
    );
    const accept: number[] = [];
    const total: number[] = [];
    let failed = 0;
    const start = performance.now();
    await runPool(images, clients, async (image) => {
      const t = performance.now();
      const res = await fetch(`${url}/v1/sign`, {
        method: "POST",
        headers: { ...auth, "content-type": "application/json" },
        body: JSON.stringify({ images: [image] }),
      });
      const body = await res.json();
      accept.push(performance.now() - t);
      if (res.status !== 202) throw new Error(`POST /v1/sign: ${res.status} ${JSON.stringify(body)}`);
      const events = await (await fetch(`${url}/v1/jobs/${body.id}/events`, { headers: auth })).text();
      total.push(performance.now() - t);
      if (!events.includes('"state":"succeeded"')) failed++;
    });
    const seconds = (performance.now() - start) / 1000;
    rows.push([
      String(clients),
      String(REQUESTS),
      percentile(accept, 50).toFixed(1),
      percentile(accept, 95).toFixed(1),
      percentile(total, 50).toFixed(0),
      percentile(total, 95).toFixed(0),
      (REQUESTS / seconds).toFixed(1),
      String(failed),
    ]);
  }
  printTable(
    ["clients", "requests", "202 p50 ms", "202 p95 ms", "job p50 ms", "job p95 ms", "sig/s", "failed"],
    rows,
  );
  console.log(
    "job latency includes the signer's confirmation wait (≥100 ms after the write, to catch writers on other hosts).",
  );
  server.child.kill("SIGTERM");
  await server.status;
} finally {
  await Deno.remove(work, { recursive: true });
}
