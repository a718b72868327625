/**
 * Signing and validation at scale (`deno task bench`): N multi-arch images (index + 2 platforms, each image in its
 * own repository, as in the usual image list) for N = 40, 200 and 5,000, with `-j 4`. Per size it prints, next to
 * floors measured in the same run against the same registry:
 *
 * - sign (3N signatures): wall time, requests per signature and peak memory of `airlock sign`; the **floor**, a
 *   bare loop doing only what a first signature needs (`GET` of the `.sig` tag → 404, two monolithic `POST` +
 *   `PUT` uploads, `PUT` of the manifest: 6 requests, spec/testbed.md §6); and **floor+reads**, the same plus the
 *   reads a signer must make that the floor leaves out (the image's index, one `GET` per image, and one `HEAD` of
 *   each tag written, the confirmation against writers on other hosts: 7.33 requests);
 * - validate (2N platform signatures): wall time, requests per signature and peak memory of `airlock sign
 *   validate`, next to its floor (the index, then per platform the `.sig` manifest and its payload blob).
 *
 * Requests are counted where they are served: the registry's own access log. Every phase runs against a fresh
 * registry started from a copy of the same storage (the images are pushed once per size). Then the cost every
 * run pays whatever its size (process start, key decryption, the confirmation wait after the last write): a
 * one-image run, and what the concurrency guarantee costs. Sizes up to 200 are measured three times, floors and
 * airlock alternating, and the medians printed; the machine's load average is printed beside each size (the
 * machine may be shared). Prints figures; asserts nothing. `BENCH_SIZES` (default `40,200,5000`) and
 * `BENCH_JOBS` (default `4`) change the sizes and the jobs. The 5,000-image size takes ~15 minutes on 2 cores.
 *
 * @module
 */
import { buildMultiArchImage, startRegistry, type TestRegistry, writeList } from "../tests/testbed/mod.ts";
import { runPool } from "../core/pool.ts";
import { LatencyGauge, WRITE_WINDOW } from "../core/signature/write_window.ts";
import {
  hex,
  INDEX_ACCEPT,
  type MeasuredRun,
  measureSign,
  measureValidate,
  OCI_MANIFEST,
  prepareSigning,
  printTable,
  pushImages,
  validateFloor,
} from "./bench_util.ts";

const SIZES = (Deno.env.get("BENCH_SIZES") ?? "40,200,5000").split(",").map(Number);
const JOBS = Number(Deno.env.get("BENCH_JOBS") ?? 4);

const work = await Deno.makeTempDir({ prefix: "airlock-bench-" });
try {
  console.log(`multi-arch images of ${SIZES.join(", ")}; -j ${JOBS}`);
  await prepareSigning(work);
  const signRows: string[][] = [];
  const validateRows: string[][] = [];
  for (const n of SIZES) {
    // Small sizes are measured 3 times, floors and airlock alternating (this machine is shared and noisy); the
    // median is printed. Each airlock run signs images of its own (a second run would find them signed).
    const reps = n <= 200 ? 3 : 1;
    const sigs = 3 * n;
    const setOf = (rep: number) => Array.from({ length: n }, (_, i) => `bench/n${n}r${rep}/img${i}`);
    // Every phase runs against a fresh registry started from the same storage (a copy of the pushed images): a
    // registry that has served the phases before answers more slowly (more repositories, a larger cache), which
    // would favour whatever runs first.
    const pushed = `${work}/pushed-${n}`;
    {
      await using origin = await startRegistry();
      const t0 = performance.now();
      for (let rep = 0; rep < reps; rep++) {
        await pushImages(origin, setOf(rep), (seed) => buildMultiArchImage({ seed }));
      }
      await snapshot(origin, pushed);
      console.log(`${n} images x ${reps} pushed in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
    const signed = `${work}/signed-${n}`;
    // Signatures name the registry they were made in: the validate phases serve them on the signing port.
    let signedPort = 0;
    const signLoad = await loadavg();
    const floors: number[] = [], readsRuns: number[] = [], signRuns: MeasuredRun[] = [];
    let floorReq = 0, readsReq = 0, signReq = 0;
    for (let rep = 0; rep < reps; rep++) {
      const floor = await phase(pushed, (reg) => signFloor(reg.url, `floor/n${n}r${rep}`, sigs, JOBS));
      const reads = await phase(
        pushed,
        (reg) => signFloor(reg.url, `floor-reads/n${n}r${rep}`, sigs, JOBS, `bench/n${n}r${rep}`),
      );
      const sign = await phase(pushed, async (reg) => {
        await writeList(`${work}/list-${n}-${rep}.txt`, setOf(rep).map((r) => `${reg.host}/${r}:v1`));
        return await measureSign(work, `list-${n}-${rep}.txt`, JOBS);
      }, rep === 0 ? signed : undefined);
      if (rep === 0) signedPort = sign.port;
      floors.push(floor.value);
      readsRuns.push(reads.value);
      signRuns.push(sign.value);
      [floorReq, readsReq, signReq] = [
        floorReq + floor.requests,
        readsReq + reads.requests,
        signReq + sign.requests,
      ];
    }
    const sign = signRuns[medianIndex(signRuns.map((r) => r.seconds))];
    signRows.push([
      String(n),
      String(sigs),
      secs(median(floors)),
      perItem(floorReq, sigs * reps),
      secs(median(readsRuns)),
      perItem(readsReq, sigs * reps),
      secs(sign.seconds),
      perItem(signReq, sigs * reps),
      ratio(sign.seconds, median(floors)),
      ratio(sign.seconds, median(readsRuns)),
      Math.max(...signRuns.map((r) => r.peakMiB)).toFixed(0),
      signRuns.map((r) => r.code).join(","),
      signLoad,
    ]);

    const manifests = 2 * n;
    const validateLoad = await loadavg();
    const vFloors: number[] = [], validateRuns: MeasuredRun[] = [];
    let vFloorReq = 0, validateReq = 0;
    for (let rep = 0; rep < reps; rep++) {
      const vFloor = await phase(
        signed,
        (reg) => validateFloor(reg.url, setOf(0), JOBS),
        undefined,
        signedPort,
      );
      const validate = await phase(
        signed,
        async (reg) => {
          await writeList(`${work}/vlist-${n}.txt`, setOf(0).map((r) => `${reg.host}/${r}:v1`));
          return await measureValidate(work, `vlist-${n}.txt`, JOBS);
        },
        undefined,
        signedPort,
      );
      vFloors.push(vFloor.value);
      validateRuns.push(validate.value);
      [vFloorReq, validateReq] = [vFloorReq + vFloor.requests, validateReq + validate.requests];
    }
    const validate = validateRuns[medianIndex(validateRuns.map((r) => r.seconds))];
    validateRows.push([
      String(n),
      String(manifests),
      secs(median(vFloors)),
      perItem(vFloorReq, manifests * reps),
      secs(validate.seconds),
      perItem(validateReq, manifests * reps),
      ratio(validate.seconds, median(vFloors)),
      Math.max(...validateRuns.map((r) => r.peakMiB)).toFixed(0),
      validateRuns.map((r) => r.code).join(","),
      validateLoad,
    ]);
    await Deno.remove(pushed, { recursive: true });
    await Deno.remove(signed, { recursive: true });
  }
  console.log(`\nsign -j ${JOBS} (3 signatures per image; req/sig counted in the registry's access log)`);
  printTable([
    "images",
    "sigs",
    "floor s",
    "req/sig",
    "floor+reads s",
    "req/sig",
    "airlock s",
    "req/sig",
    "/floor",
    "/floor+reads",
    "peak MiB",
    "exit",
    "load",
  ], signRows);
  console.log(`\nsign validate -j ${JOBS} (2 platform signatures per image)`);
  printTable(
    ["images", "sigs", "floor s", "req/sig", "airlock s", "req/sig", "/floor", "peak MiB", "exit", "load"],
    validateRows,
  );

  // What every run pays whatever its size: process start, key decryption, one image and its confirmation wait.
  await using registry = await startRegistry();
  const one: number[] = [];
  for (let k = 0; k < 3; k++) {
    const ref = `bench/one/img${k}`;
    await pushImages(registry, [ref], (seed) => buildMultiArchImage({ seed }));
    await writeList(`${work}/list-one-${k}.txt`, [`${registry.host}/${ref}:v1`]);
    one.push((await measureSign(work, `list-one-${k}.txt`, 1)).seconds);
  }
  const wait = (new LatencyGauge(WRITE_WINDOW).settleMs() / 1000).toFixed(2);
  console.log(
    `\nsigning one image takes ${
      one.map((x) => x.toFixed(2)).join(" / ")
    } s (load ${await loadavg()}; process start, key decryption overlapped with the first reads, 3 signatures, ` +
      `the confirmation wait).\nWhat the concurrency guarantee costs: a wait of S + T after the last write ` +
      `(at least ${wait} s: every run pays it once), one confirmation HEAD per tag written (+1 request per ` +
      `signature, in floor+reads), and a HEAD before a PUT built on a read older than S (rare unless the ` +
      `registry is slow or the tag's listing was made long before).`,
  );
} finally {
  await Deno.remove(work, { recursive: true });
}

/** The machine's load (1-minute average) now: the machine is shared, so figures are printed beside it. */
async function loadavg(): Promise<string> {
  return (await Deno.readTextFile("/proc/loadavg")).split(" ")[0];
}

/**
 * Runs `fn` against a fresh registry started from a copy of the storage `from` (with its access log; on `port`
 * when given), returning its value, how many requests the registry served meanwhile and its port; with `keep`,
 * the storage afterwards is copied there.
 */
async function phase<T>(
  from: string,
  fn: (reg: TestRegistry) => Promise<T>,
  keep?: string,
  port?: number,
): Promise<{ value: T; requests: number; port: number }> {
  await using reg = await startRegistry({ storageFrom: from, accessLog: true, port });
  const before = await reg.requestCount();
  const value = await fn(reg);
  // The registry writes its log asynchronously: let the lines of the last requests land.
  await new Promise((r) => setTimeout(r, 300));
  const requests = (await reg.requestCount()) - before;
  if (keep) await snapshot(reg, keep);
  return { value, requests, port: Number(new URL(reg.url).port) };
}

/** Copies a registry's storage to `to` (a directory `startRegistry({ storageFrom })` accepts). */
async function snapshot(reg: TestRegistry, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  const cp = await new Deno.Command("cp", { args: ["-a", `${reg.storageDir}/.`, `${to}/`] }).output();
  if (!cp.success) throw new Error(`copying ${reg.storageDir}: ${new TextDecoder().decode(cp.stderr)}`);
}

/** The median of `xs` (the upper one of an even count). */
function median(xs: number[]): number {
  return xs[medianIndex(xs)];
}

/** The index of the median of `xs`. */
function medianIndex(xs: number[]): number {
  const order = xs.map((x, i) => [x, i]).sort((a, b) => a[0] - b[0]);
  return order[Math.floor(order.length / 2)][1];
}

function secs(s: number): string {
  return s.toFixed(2);
}

function perItem(requests: number, items: number): string {
  return (requests / items).toFixed(2);
}

function ratio(a: number, b: number): string {
  return (a / b).toFixed(2);
}

/**
 * The signing floor: only the requests a first signature needs, `count` times with `jobs` in flight. With
 * `images` (the repositories airlock signs, `<images>/img<k>:v1`), also the reads airlock must make: the image's
 * index once per three signatures and a `HEAD` of each tag written. Returns seconds.
 */
async function signFloor(
  base: string,
  prefix: string,
  count: number,
  jobs: number,
  images?: string,
): Promise<number> {
  const enc = new TextEncoder();
  const upload = async (repo: string, bytes: Uint8Array<ArrayBuffer>) => {
    const digest = "sha256:" + hex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
    const post = await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: "POST" });
    await post.body?.cancel();
    const loc = new URL(post.headers.get("location")!, base);
    loc.searchParams.set("digest", digest);
    const put = await fetch(loc, {
      method: "PUT",
      body: bytes,
      headers: { "content-type": "application/octet-stream" },
    });
    await put.body?.cancel();
    if (put.status !== 201) throw new Error(`blob upload: ${put.status}`);
    return { digest, size: bytes.length };
  };
  const t0 = performance.now();
  await runPool(Array.from({ length: count }, (_, i) => i), jobs, async (i) => {
    // Three signatures per repository, as for a multi-arch image (index + 2 platforms): a registry spends more
    // per repository than per tag, so one repository for everything would flatter the floor.
    const repo = `${prefix}/img${Math.floor(i / 3)}`;
    const fake = hex(crypto.getRandomValues(new Uint8Array(32)));
    const tag = `sha256-${fake}.sig`;
    if (images !== undefined && i % 3 === 0) {
      const index = await fetch(`${base}/v2/${images}/img${i / 3}/manifests/v1`, {
        headers: { accept: INDEX_ACCEPT },
      });
      await index.body?.cancel();
      if (index.status !== 200) throw new Error(`index: ${index.status}`);
    }
    const get = await fetch(`${base}/v2/${repo}/manifests/${tag}`, { headers: { accept: OCI_MANIFEST } });
    await get.body?.cancel();
    if (get.status !== 404) throw new Error(`expected 404, got ${get.status}`);
    const payload = await upload(repo, enc.encode(`{"critical":{"n":${i},"r":"${fake}"},"optional":{}}`));
    const config = await upload(
      repo,
      enc.encode(`{"architecture":"","os":"","config":{},"rootfs":{"diff_ids":["${payload.digest}"]}}`),
    );
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
      layers: [{ mediaType: "application/vnd.dev.cosign.simplesigning.v1+json", ...payload }],
    });
    const put = await fetch(`${base}/v2/${repo}/manifests/${tag}`, {
      method: "PUT",
      body: manifest,
      headers: { "content-type": OCI_MANIFEST },
    });
    await put.body?.cancel();
    if (put.status !== 201) throw new Error(`manifest put: ${put.status}`);
    if (images !== undefined) {
      const head = await fetch(`${base}/v2/${repo}/manifests/${tag}`, {
        method: "HEAD",
        headers: { accept: OCI_MANIFEST },
      });
      await head.body?.cancel();
      if (head.status !== 200) throw new Error(`confirmation HEAD: ${head.status}`);
    }
  });
  return (performance.now() - t0) / 1000;
}
