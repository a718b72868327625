/**
 * Key backend benchmark (`deno task bench`): signatures per second through `KeyBackend.sign` for an ECDSA P-256
 * key file (WebCrypto), SoftHSM2 keys (P-256 and RSA-2048; synchronous FFI calls on one session, the default,
 * vs. `nonblocking` calls on a pool of 4 sessions) and the test KMS plugin (one process per signature). Each
 * runs with 1 and with 4 signers at once. Prints figures; asserts nothing. `BENCH_KEY_SIGS` sets the payload
 * count (default 1000; the plugin does a tenth).
 *
 * @module
 */
import { join } from "node:path";
import { openKey } from "../backends/key_backend.ts";
import { generateKeyPair, keyPairPaths, writeKeyPair } from "../backends/keygen.ts";
import { openPkcs11Key } from "../backends/pkcs11/key.ts";
import { openPluginKey } from "../backends/plugin.ts";
import type { KeyBackend } from "../backends/key_backend.ts";
import { startSoftHsm, tempDir } from "../tests/testbed/mod.ts";
import { installTestKms, makeTestKmsKey } from "../tests/backends/testkms.ts";
import { printTable } from "./bench_util.ts";

const N = Number(Deno.env.get("BENCH_KEY_SIGS") ?? 1000);
const enc = new TextEncoder();

/** Signs `count` distinct payloads with `concurrency` signers; returns signatures per second. */
async function measure(key: KeyBackend, count: number, concurrency: number): Promise<number> {
  const payloads = Array.from({ length: count }, (_, i) => enc.encode(`{"critical":{"n":${i}}}`));
  await key.sign(payloads[0]); // warm-up
  let next = 0;
  const t = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < count) await key.sign(payloads[next++]);
  }));
  return count / ((performance.now() - t) / 1000);
}

const rows: string[][] = [];
async function row(name: string, key: KeyBackend, count: number): Promise<void> {
  try {
    const one = await measure(key, count, 1);
    const four = await measure(key, count, 4);
    rows.push([name, String(count), one.toFixed(0), four.toFixed(0)]);
  } finally {
    await key.close();
  }
}

await using tmp = await tempDir("airlock-keys-bench-");

const pair = await generateKeyPair({ passphrase: "bench", scryptN: 32768 });
const paths = keyPairPaths(join(tmp.path, "file"));
await writeKeyPair(pair, paths);
await row("file key, ECDSA P-256", await openKey(paths.keyFile, { passphrase: "bench" }), N);

{
  await using hsm = await startSoftHsm();
  const token = await hsm.initToken("bench", { pin: "1234" });
  await hsm.generateKey(token, { type: "EC:prime256v1", label: "ec", id: "01" });
  await hsm.generateKey(token, { type: "rsa:2048", label: "rsa", id: "02" });
  for (const [label, name] of [["ec", "ECDSA P-256"], ["rsa", "RSA-2048"]]) {
    const ref = hsm.uri(token, { object: label });
    await row(
      `SoftHSM2 ${name}, 1 session, sync FFI (default)`,
      await openPkcs11Key(ref, { sessions: 1 }),
      N,
    );
    await row(`SoftHSM2 ${name}, 4 sessions, nonblocking FFI`, await openPkcs11Key(ref, { sessions: 4 }), N);
  }
}

{
  const bin = join(tmp.path, "bin");
  await installTestKms(bin);
  const ref = await makeTestKmsKey(tmp.path, bin);
  const path = `${bin}:${Deno.env.get("PATH")}`;
  const key = await openPluginKey(ref, { env: (n) => n === "PATH" ? path : undefined });
  await row("KMS plugin (Deno script, 1 process per signature)", key, Math.max(10, Math.round(N / 10)));
}

console.log("\nKey backends: signatures per second through KeyBackend.sign");
printTable(["backend", "payloads", "sig/s (1 signer)", "sig/s (4 signers)"], rows);
