/**
 * Signing benchmark (`deno task bench`): signs N multi-arch images (index + 2 platforms = 3N signatures) in a local
 * registry with `-j 1`, `-j 4` and `-j 8`, and prints wall time, signatures per second and peak memory next to
 * the floor measured in the same run: a bare loop doing only the HTTP requests one signature needs when none exists
 * yet (GET `.sig` → 404, two monolithic blob uploads, PUT manifest; spec/testbed.md §6). A second floor adds the
 * reads airlock cannot skip: the image's index (one `GET` per image, to learn what to sign) and the confirmation
 * re-read of each written `.sig` tag (one `HEAD`, which the issue requires against concurrent writers on other
 * hosts); on this registry every request costs a few milliseconds of its CPU under load, so these reads are not
 * free. Prints figures; asserts nothing. `BENCH_IMAGES` sets N (default 200).
 *
 * @module
 */
import { buildMultiArchImage, startRegistry, writeList } from "../tests/testbed/mod.ts";
import { runPool } from "../core/pool.ts";
import { floorTable, hex, measureSign, prepareSigning, pushImages } from "./bench_util.ts";

const N = Number(Deno.env.get("BENCH_IMAGES") ?? 200);
const JOBS = (Deno.env.get("BENCH_JOBS") ?? "1,4,8").split(",").map(Number);

await using registry = await startRegistry();
const work = await Deno.makeTempDir({ prefix: "airlock-bench-" });
try {
  console.log(
    `registry ${registry.host}; ${N} multi-arch images per run (${3 * N} signatures); jobs ${
      JOBS.join(", ")
    }`,
  );
  const t0 = performance.now();
  for (const j of JOBS) {
    const refs = Array.from({ length: N }, (_, i) => `bench/j${j}/img${i}`);
    await pushImages(registry, refs, (seed) => buildMultiArchImage({ seed }));
    await writeList(`${work}/list-j${j}.txt`, refs.map((r) => `${registry.host}/${r}:v1`));
  }
  console.log(`pushed ${N * JOBS.length} images in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  await prepareSigning(work);

  const table = floorTable("sig/s");
  for (const j of JOBS) {
    const floor = await floorLoop(registry.url, `floor/j${j}`, 3 * N, j);
    const reads = await floorLoop(registry.url, `floor-reads/j${j}`, 3 * N, j, `bench/j${j}`);
    table.add(j, 3 * N, floor, await measureSign(work, `list-j${j}.txt`, j), reads);
  }
  table.print();
  // What every run pays whatever its size: process start, key decryption, one image and its confirmation wait.
  const one: number[] = [];
  for (let k = 0; k < 3; k++) {
    const ref = `bench/one/img${k}`;
    await pushImages(registry, [ref], (seed) => buildMultiArchImage({ seed }));
    await writeList(`${work}/list-one-${k}.txt`, [`${registry.host}/${ref}:v1`]);
    one.push((await measureSign(work, `list-one-${k}.txt`, 1)).seconds);
  }
  console.log(
    `airlock's time includes process start and key decryption (scrypt N=65536): signing one image takes ${
      one.map((x) => x.toFixed(2)).join(" / ")
    } s (start, decryption, 3 signatures, confirmation wait).`,
  );
} finally {
  await Deno.remove(work, { recursive: true });
}

/**
 * The floor: only the requests a first signature needs, `count` times with `jobs` in flight. With `images` (the
 * repositories airlock signs, `<images>/img<k>:v1`), also the reads airlock must make: the image's index once per
 * three signatures and a `HEAD` of each tag written. Returns seconds.
 */
async function floorLoop(
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
        headers: { accept: "application/vnd.oci.image.index.v1+json" },
      });
      await index.body?.cancel();
      if (index.status !== 200) throw new Error(`index: ${index.status}`);
    }
    const get = await fetch(`${base}/v2/${repo}/manifests/${tag}`, {
      headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
    });
    await get.body?.cancel();
    if (get.status !== 404) throw new Error(`expected 404, got ${get.status}`);
    const payload = await upload(repo, enc.encode(`{"critical":{"n":${i},"r":"${fake}"},"optional":{}}`));
    const config = await upload(
      repo,
      enc.encode(`{"architecture":"","os":"","config":{},"rootfs":{"diff_ids":["${payload.digest}"]}}`),
    );
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
      layers: [{ mediaType: "application/vnd.dev.cosign.simplesigning.v1+json", ...payload }],
    });
    const put = await fetch(`${base}/v2/${repo}/manifests/${tag}`, {
      method: "PUT",
      body: manifest,
      headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" },
    });
    await put.body?.cancel();
    if (put.status !== 201) throw new Error(`manifest put: ${put.status}`);
    if (images !== undefined) {
      const head = await fetch(`${base}/v2/${repo}/manifests/${tag}`, {
        method: "HEAD",
        headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
      });
      await head.body?.cancel();
      if (head.status !== 200) throw new Error(`confirmation HEAD: ${head.status}`);
    }
  });
  return (performance.now() - t0) / 1000;
}
