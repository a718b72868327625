/**
 * Mirror benchmark (`deno task bench`): N signed multi-arch images (2 platforms, a random 256 KiB layer each) are
 * copied between two local registries by `airlock mirror -j 8`, signatures included; prints wall time (process
 * start included), MB/s of blob data, images/s and peak memory. Prints figures; asserts nothing. `BENCH_IMAGES`
 * sets N (default 200), `BENCH_LAYER_KIB` the layer size.
 *
 * @module
 */
import { buildImage, startRegistry, type TestImage, writeList } from "../tests/testbed/mod.ts";
import { signInProcess } from "../tests/testbed/signatures.ts";
import { RegistryClient } from "../core/registry/client.ts";
import { MediaType } from "../core/registry/types.ts";
import { sha256Digest } from "../core/encoding/digest.ts";
import { prepareSigning, printTable, pushImages, runMeasured, SIGNING } from "./bench_util.ts";

const N = Number(Deno.env.get("BENCH_IMAGES") ?? 200);
const LAYER = Number(Deno.env.get("BENCH_LAYER_KIB") ?? 256) * 1024;
const JOBS = 8;

/** A 2-platform image with one random layer per platform. */
async function image(seed: string): Promise<TestImage> {
  const blobs = new Map<string, Uint8Array>();
  const children = [];
  for (const platform of ["linux/amd64", "linux/arm64"]) {
    const data = new Uint8Array(LAYER);
    for (let o = 0; o < LAYER; o += 65536) {
      crypto.getRandomValues(data.subarray(o, Math.min(LAYER, o + 65536)));
    }
    const img = await buildImage({ platform, seed, files: { "data.bin": data } });
    for (const [d, b] of img.blobs) blobs.set(d, b);
    children.push({ img, platform });
  }
  const bytes = new TextEncoder().encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: children.map(({ img, platform }) => ({
      mediaType: img.top.mediaType,
      digest: img.top.digest,
      size: img.top.bytes.length,
      platform: { os: "linux", architecture: platform.split("/")[1] },
    })),
  }));
  const top = { digest: sha256Digest(bytes), mediaType: MediaType.ociIndex, bytes };
  return { blobs, manifests: [...children.map((c) => c.img.top), top], top, platforms: [] };
}

await using source = await startRegistry();
await using destination = await startRegistry();
const work = await Deno.makeTempDir({ prefix: "airlock-mirror-bench-" });
try {
  console.log(
    `mirror: ${N} signed multi-arch images, ${LAYER / 1024} KiB layers, ${source.host} → ${destination.host}`,
  );
  const refs = Array.from({ length: N }, (_, i) => `bench/img${i}`);
  const t0 = performance.now();
  const bytes = await pushImages(source, refs, image);
  await prepareSigning(work);
  const client = new RegistryClient({ tlsVerify: false });
  const failures = await signInProcess(
    refs.map((r) => `${source.host}/${r}:v1`),
    { key: `${work}/${SIGNING.key}`, pass: `${work}/${SIGNING.pass}` },
    `${work}/${SIGNING.registriesD}`,
    client,
    { jobs: 8, allowFailures: true },
  );
  client.close();
  console.log(
    `prepared in ${((performance.now() - t0) / 1000).toFixed(1)} s (${
      (bytes / 1e6).toFixed(1)
    } MB of blobs, ` +
      `${failures} signing failures)`,
  );
  await writeList(`${work}/list.txt`, refs.map((r) => `${source.host}/${r} ${destination.host}/${r} v1`));
  const run = await runMeasured(
    [
      "mirror",
      "-f",
      "list.txt",
      "-j",
      String(JOBS),
      "--tls-verify=false",
      "--registries.d",
      SIGNING.registriesD,
    ],
    work,
  );
  printTable(
    ["images", "jobs", "exit", "seconds", "MB/s", "images/s", "peak MiB"],
    [[
      String(N),
      String(JOBS),
      String(run.code),
      run.seconds.toFixed(2),
      (bytes / 1e6 / run.seconds).toFixed(1),
      (N / run.seconds).toFixed(1),
      run.peakMiB.toFixed(0),
    ]],
  );
} finally {
  await Deno.remove(work, { recursive: true });
}
