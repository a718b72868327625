/**
 * Memory bounded by design (issue 15 §3), against registries built to exhaust it (`heavy_sig.ts`: the test bed's
 * static registry, a FAKE that speaks the distribution protocol, serving `.sig` tags no signer writes):
 *
 * - a `.sig` of 10,000 layers: `sign` refuses it before reading a single payload (it used to read every one:
 *   4,200 GETs, 1.09 GB);
 * - 1000 payloads of 1 MiB: `sign validate` and `verify` refuse the manifest (more than 64 MiB announced) before
 *   reading one (they used to hold all of them, ~1.17 GB);
 * - 20 images whose `.sig` holds 1000 payloads of 32 KiB (32 MiB each, under the caps, so every one is read):
 *   `sign`, `sign validate` and `verify` at `-j 20` stay under 300 MiB of resident memory, because payloads are
 *   read a few at a time and dropped once checked (holding them took 640 MiB and more).
 *
 * Peak memory is the child's `VmHWM`. The request counts show that the reads this test claims happen (or not).
 *
 * @module
 */
import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "../assert.ts";
import {
  airlock,
  ATTACHMENTS_ON,
  show,
  signArgs,
  tempDir,
  validateArgs,
  writeList,
  writeRegistriesD,
} from "../testbed/mod.ts";
import { makeKey, makeSigner } from "../testbed/keys.ts";
import { blobReads, startHeavyRegistry } from "./heavy_sig.ts";

const MiB = 1024 * 1024;

Deno.test("sign refuses a .sig of 10,000 layers before reading any payload", async () => {
  await using tmp = await tempDir("airlock-heavy-sign-");
  await using reg = await startHeavyRegistry({ images: 1, layers: 10_000, payloadBytes: 300 });
  const [image] = reg.images;
  const key = await makeKey(tmp.path, "k");
  const rd = await writeRegistriesD(tmp.path, ATTACHMENTS_ON);
  await writeList(join(tmp.path, "list.txt"), [image]);
  const r = await airlock(signArgs({ list: "list.txt", key, registriesD: rd, insecure: true }), {
    cwd: tmp.path,
  });
  assertEquals(r.code, 1, show(r));
  assertMatch(r.stderr, /has 10000 layers, more than the 1000 accepted/, show(r));
  // The one blob read is the image's config (the platform filter); no payload.
  assertEquals(
    blobReads(reg.requests),
    1,
    reg.requests.filter((q) => q.includes("/blobs/")).slice(0, 5).join("\n"),
  );
});

Deno.test("validate and verify refuse 1000 payloads of 1 MiB before reading any", async () => {
  await using tmp = await tempDir("airlock-heavy-big-");
  await using reg = await startHeavyRegistry({ images: 1, layers: 1000, payloadBytes: MiB });
  const [image] = reg.images;
  const signer = await makeSigner(tmp.path, "s");
  const rd = await writeRegistriesD(tmp.path, ATTACHMENTS_ON);
  await writeList(join(tmp.path, "list.txt"), [image]);
  const runs = [
    validateArgs({ list: "list.txt", pub: signer.pub, registriesD: rd, insecure: true }),
    ["verify", "--key", signer.pub, "--insecure-ignore-tlog", "--tls-verify=false", image],
  ];
  for (const args of runs) {
    reg.requests.length = 0;
    const r = await airlock(args, { cwd: tmp.path });
    assertEquals(r.code, 1, show(r));
    assertMatch(r.stderr, /announce 1048576000 bytes, more than the 67108864 read/, show(r));
    assert(blobReads(reg.requests) <= 1, `${args[0]}: ${blobReads(reg.requests)} blob reads`);
  }
});

Deno.test("sign, validate, verify at -j 20: 20 images x 1000 payloads of 32 KiB, every one read, under 300 MiB", async () => {
  await using tmp = await tempDir("airlock-heavy-mem-");
  await using reg = await startHeavyRegistry({ images: 20, layers: 1000, payloadBytes: 32 * 1024 });
  const images = reg.images;
  const key = await makeKey(tmp.path, "k");
  const signer = await makeSigner(tmp.path, "s");
  const rd = await writeRegistriesD(tmp.path, ATTACHMENTS_ON);
  await writeList(join(tmp.path, "list.txt"), images);
  const insecure = "--tls-verify=false";
  const runs: [string, string[]][] = [
    ["sign", signArgs({ list: "list.txt", jobs: 20, key, registriesD: rd, insecure: true })],
    [
      "sign validate",
      validateArgs({ list: "list.txt", jobs: 20, pub: signer.pub, registriesD: rd, insecure: true }),
    ],
    ["verify", ["verify", "--key", signer.pub, "--insecure-ignore-tlog", insecure, ...images]],
  ];
  for (const [name, args] of runs) {
    reg.requests.length = 0;
    const r = await airlock(args, { cwd: tmp.path, measureMemory: true });
    // Nothing here is valid: every image fails, after every payload was read and checked.
    assert(r.code !== 0, `${name}\n${show(r)}`);
    assert(!/TypeError|RangeError|out of memory/i.test(r.stderr), `${name}\n${show(r)}`);
    const reads = blobReads(reg.requests);
    assert(reads >= 20 * 1000, `${name}: only ${reads} blob reads: the payloads were not all read`);
    console.log(
      `${name}: peak ${(r.peakRss / MiB).toFixed(0)} MiB, ${reads} blob reads, ${(r.ms / 1000).toFixed(1)} s`,
    );
    assert(
      r.peakRss > 0 && r.peakRss < 300 * MiB,
      `${name}: peak resident memory ${(r.peakRss / MiB).toFixed(0)} MiB`,
    );
  }
});
