/**
 * Mirror benchmark (`deno task bench`): N signed multi-arch images (2 platforms, a random 256 KiB layer each) are
 * copied between two local registries by `airlock mirror -j 8`, signatures included; prints wall time (process
 * start included), MB/s of blob data, images/s and peak memory. Prints figures; asserts nothing. `BENCH_IMAGES`
 * sets N (default 200), `BENCH_LAYER_KIB` the layer size.
 *
 * @module
 */
import { buildImage, pushImage, startRegistry, type TestImage } from "../tests/testbed/mod.ts";
import { RegistryClient } from "../core/registry/client.ts";
import { runPool } from "../core/pool.ts";
import { MediaType } from "../core/registry/types.ts";
import { sha256Digest } from "../core/encoding/digest.ts";
import { generateKeyPair, keyPairPaths, writeKeyPair } from "../backends/keygen.ts";
import { openKey } from "../backends/key_backend.ts";
import { loadRegistriesD } from "../core/config/registries_d.ts";
import { signImages } from "../core/sign.ts";
import { parseReference } from "../core/reference.ts";
import { printTable, runMeasured } from "./bench_util.ts";

const N = Number(Deno.env.get("BENCH_IMAGES") ?? 200);
const LAYER = Number(Deno.env.get("BENCH_LAYER_KIB") ?? 256) * 1024;
const JOBS = 8;
const cli = new URL("../cli.ts", import.meta.url).pathname;

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
  const client = new RegistryClient({ tlsVerify: false });
  const refs = Array.from({ length: N }, (_, i) => `bench/img${i}`);
  let bytes = 0;
  const t0 = performance.now();
  await runPool(refs, 8, async (repository) => {
    const img = await image(repository);
    for (const b of img.blobs.values()) bytes += b.length;
    await pushImage(img, { registry: source.host, repository }, "v1", client);
  });
  await writeKeyPair(
    await generateKeyPair({ passphrase: "bench", scryptN: 32768 }),
    keyPairPaths(`${work}/k`),
  );
  await Deno.writeTextFile(`${work}/pass`, "bench");
  await Deno.mkdir(`${work}/registries.d`);
  await Deno.writeTextFile(
    `${work}/registries.d/d.yaml`,
    "default-docker:\n  use-sigstore-attachments: true\n",
  );
  const key = await openKey(`${work}/k.key`, { passphraseFile: `${work}/pass` });
  const signed = await signImages(
    refs.map((r, i) => ({
      status: "ok" as const,
      line: { id: i + 1, line: r, text: r, kind: "default" as const },
      reference: parseReference(`${source.host}/${r}:v1`),
    })),
    {
      client,
      key,
      registriesD: await loadRegistriesD({ dir: `${work}/registries.d` }),
      platforms: { arch: [], os: [], variant: [] },
      jobs: 8,
      timeoutMs: 0,
      confirmDelayMs: 1,
    },
  );
  await key.close();
  client.close();
  console.log(
    `prepared in ${((performance.now() - t0) / 1000).toFixed(1)} s (${
      (bytes / 1e6).toFixed(1)
    } MB of blobs, ` +
      `${signed.failed.length} signing failures)`,
  );
  await Deno.writeTextFile(
    `${work}/list.txt`,
    refs.map((r) => `${source.host}/${r} ${destination.host}/${r} v1`).join("\n") + "\n",
  );
  const run = await runMeasured(
    cli,
    [
      "mirror",
      "-f",
      "list.txt",
      "-j",
      String(JOBS),
      "--tls-verify=false",
      "--registries.d",
      `${work}/registries.d`,
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
