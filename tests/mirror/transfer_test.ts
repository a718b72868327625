/**
 * How `airlock mirror` moves bytes: cross-repository mounts on one registry (requests counted by the testbed
 * proxy: no blob is read or uploaded), and a 64 MiB layer between two registries streamed through bounded
 * memory (the peak resident memory of the CLI process, measured, grows far less than the layer).
 *
 * @module
 */
import { join } from "node:path";
import { assert, assertEquals } from "../assert.ts";
import { RegistryClient } from "../../core/registry/client.ts";
import { MediaType } from "../../core/registry/types.ts";
import {
  airlock,
  ATTACHMENTS_ON,
  pushImage,
  pushMulti,
  pushSingle,
  rawSink,
  sha256Digest,
  startProxy,
  startRegistry,
  tempDir,
  type TestImage,
  writeList,
  writeRegistriesD,
} from "../testbed/mod.ts";
import { makeKey } from "../testbed/keys.ts";
import { readSig, signInProcess } from "../testbed/signatures.ts";
import { endpoint, hasBlob, rawManifest } from "./helpers.ts";

const enc = new TextEncoder();
const MiB = 1024 * 1024;

Deno.test("mirror: same registry → blobs are mounted, never read or uploaded", async () => {
  await using tmp = await tempDir("airlock-mirror-mount-");
  await using reg = await startRegistry();
  await using proxy = await startProxy(reg.url);
  const key = await makeKey(tmp.path, "k");
  const rd = await writeRegistriesD(tmp.path, ATTACHMENTS_ON);
  const img = await pushMulti(reg, "proj/app", "v1", "mount");
  const client = new RegistryClient({ tlsVerify: false });
  try {
    await signInProcess([`${reg.host}/proj/app:v1`], key, rd, client);
  } finally {
    client.close();
  }
  const P = endpoint(reg);
  // Every blob the copy needs: image blobs, and the config + layers of each .sig manifest.
  const blobs = new Set(img.blobs.keys());
  for (const d of [...img.platforms.map((p) => p.digest), img.top.digest]) {
    const sig = await readSig(P, "proj/app", d);
    blobs.add(sig!.manifest.config.digest);
    for (const l of sig!.manifest.layers) blobs.add(l.digest);
  }
  await writeList(join(tmp.path, "list.txt"), [`${proxy.host}/proj/app ${proxy.host}/mirror/app v1`]);
  proxy.resetCounts();
  const r = await airlock(["mirror", "-f", "list.txt", "--tls-verify=false", "--registries.d", rd], {
    cwd: tmp.path,
  });
  assertEquals(r.code, 0, r.stdout + r.stderr);
  const mounts = proxy.requests.filter((q) => q.method === "POST" && q.search.includes("mount="));
  assertEquals(mounts.length, blobs.size, "one mount per distinct blob");
  assert(mounts.every((q) => q.status === 201), "every mount succeeded");
  assertEquals(proxy.count("PATCH", /blobs\/uploads/), 0);
  assertEquals(proxy.count("PUT", /blobs\/uploads/), 0);
  assertEquals(proxy.count("GET", /\/blobs\//), 0, "no blob was read");
  assertEquals((await rawManifest(P, "mirror/app", "v1"))?.bytes, img.top.bytes);
  for (const d of blobs) assert(await hasBlob(P, "mirror/app", d), `${d} is in mirror/app`);
});

/** A single-arch image whose only layer is `size` random bytes. */
async function bigImage(size: number): Promise<TestImage> {
  const layer = new Uint8Array(size);
  for (let off = 0; off < size; off += 65536) crypto.getRandomValues(layer.subarray(off, off + 65536));
  const layerDigest = await sha256Digest(layer);
  const config = enc.encode(JSON.stringify({
    architecture: "amd64",
    os: "linux",
    rootfs: { type: "layers", diff_ids: [layerDigest] },
  }));
  const configDigest = await sha256Digest(config);
  const bytes = enc.encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: configDigest, size: config.length },
    layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: layerDigest, size }],
  }));
  const top = { digest: await sha256Digest(bytes), mediaType: MediaType.ociManifest, bytes };
  return {
    blobs: new Map([[layerDigest, layer], [configDigest, config]]),
    manifests: [top],
    top,
    platforms: [],
  };
}

Deno.test("mirror: a 64 MiB layer is streamed between registries in bounded memory", async () => {
  await using tmp = await tempDir("airlock-mirror-big-");
  await using a = await startRegistry();
  await using b = await startRegistry();
  const big = await bigImage(64 * MiB);
  await pushImage(big, { registry: a.host, repository: "proj/big" }, "v1", rawSink(a.url));
  await pushSingle(a, "proj/tiny", "v1", "tiny");
  const layer = [...big.blobs.keys()][0];
  big.blobs.clear(); // let the test process drop the bytes

  const run = async (name: string) => {
    await writeList(join(tmp.path, `${name}.txt`), [`${a.host}/proj/${name} ${b.host}/copy/${name} v1`]);
    return await airlock(["mirror", "-f", `${name}.txt`, "--tls-verify=false"], {
      cwd: tmp.path,
      measureMemory: true,
    });
  };
  const tiny = await run("tiny");
  assertEquals(tiny.code, 0, tiny.stderr);
  const large = await run("big");
  assertEquals(large.code, 0, large.stdout + large.stderr);
  const B = endpoint(b);
  assertEquals((await rawManifest(B, "copy/big", "v1"))?.bytes, big.top.bytes);
  assert(await hasBlob(B, "copy/big", layer));
  const growth = large.peakRss - tiny.peakRss;
  console.log(
    `peak RSS: tiny image ${(tiny.peakRss / MiB).toFixed(1)} MiB, 64 MiB layer ${
      (large.peakRss / MiB).toFixed(1)
    } MiB ` +
      `(growth ${(growth / MiB).toFixed(1)} MiB)`,
  );
  assert(tiny.peakRss > 0 && large.peakRss > 0, "memory was measured");
  assert(growth < 32 * MiB, `peak memory grew by ${(growth / MiB).toFixed(1)} MiB for a 64 MiB layer`);
});
