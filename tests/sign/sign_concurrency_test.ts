/**
 * No lost signatures under concurrency (DESIGN.md): N `airlock sign` processes, each with its own key, signing
 * the same image at the same moment must leave N signatures in its `.sig` tag. 8 processes per run, 12 runs
 * (a fresh image each run) against one real registry; every run must keep all 8. The processes share this host's
 * lock directory, as any airlock runs of one user on one machine do; how writers on different hosts repair each
 * other's lost layers is tested in tests/sign/sign_hosts_test.ts and tests/core/signature/attachment_writer_test.ts.
 *
 * @module
 */
import { join } from "node:path";
import { parsePublicKeyPem, verifySignature } from "../../core/signature/public_key.ts";
import { assertEquals } from "../assert.ts";
import {
  airlock,
  ATTACHMENTS_ON,
  pushSingle,
  signArgs,
  startRegistry,
  tempDir,
  type TestImage,
  writeList,
  writeRegistriesD,
} from "../testbed/mod.ts";
import { type KeyFiles, makeKey } from "../testbed/keys.ts";
import { b64decode, readSig, SIG_ANNOTATION, SIMPLE_SIGNING } from "../testbed/signatures.ts";

const PROCESSES = 8;
const RUNS = 12;
const LANES = 3;

Deno.test(`sign: ${PROCESSES} concurrent signer processes on one image leave ${PROCESSES} signatures (${RUNS} runs)`, async () => {
  await using tmp = await tempDir("airlock-sign-conc-");
  await using reg = await startRegistry();
  const rd = await writeRegistriesD(tmp.path, ATTACHMENTS_ON);
  const keys: KeyFiles[] = [];
  for (let k = 0; k < PROCESSES; k++) keys.push(await makeKey(tmp.path, `k${k}`));
  const publicKeys = keys.map((k) => parsePublicKeyPem(k.publicPem));
  const images: TestImage[] = [];
  for (let i = 0; i < RUNS; i++) {
    const img = await pushSingle(reg, "conc/img", `r${i}`, `conc-${i}`);
    images.push(img);
    await writeList(join(tmp.path, `list-${i}.txt`), [`${reg.host}/conc/img:r${i}`]);
  }

  const failures: string[] = [];
  const times: number[] = [];
  const oneRun = async (i: number) => {
    const t = performance.now();
    const results = await Promise.all(keys.map((k, p) => {
      const args = signArgs({
        list: `list-${i}.txt`,
        key: k,
        registriesD: rd,
        insecure: true,
        extra: ["-o", `failed-${i}-${p}.txt`],
      });
      return airlock(args, { cwd: tmp.path });
    }));
    times.push(performance.now() - t);
    const bad = results.findIndex((r) => r.code !== 0);
    if (bad >= 0) {
      failures.push(`run ${i}: process ${bad} exited ${results[bad].code}: ${results[bad].stderr}`);
      return;
    }
    const digest = images[i].top.digest;
    const sig = await readSig(reg, "conc/img", digest);
    const layers = sig?.layers.filter((l) => l.desc.mediaType === SIMPLE_SIGNING) ?? [];
    // Which key made each layer: exactly one key must verify each, and every key must be found once.
    const signers: number[] = [];
    for (const l of layers) {
      const s = b64decode(l.desc.annotations?.[SIG_ANNOTATION] ?? "");
      const ok: number[] = [];
      for (let k = 0; k < publicKeys.length; k++) {
        if (await verifySignature(publicKeys[k], l.payload, s)) ok.push(k);
      }
      if (ok.length === 1) signers.push(ok[0]);
      if (l.json?.critical.image["docker-manifest-digest"] !== digest) {
        failures.push(`run ${i}: wrong digest`);
      }
      if (l.json?.critical.identity["docker-reference"] !== `${reg.host}/conc/img:r${i}`) {
        failures.push(`run ${i}: wrong identity`);
      }
    }
    const distinct = [...new Set(signers)].sort((a, b) => a - b);
    if (layers.length !== PROCESSES || distinct.length !== PROCESSES) {
      failures.push(`run ${i}: ${layers.length} layers, signed by keys [${distinct}]`);
    }
  };
  // Runs go in LANES lanes (each run: its own image, its own 8 processes started together), so that one run's
  // confirmation waits overlap the next run's CPU work; more processes at once only makes races likelier.
  const t0 = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: LANES }, async () => {
    while (next < RUNS) await oneRun(next++);
  }));
  const total = performance.now() - t0;
  const sorted = [...times].sort((a, b) => a - b);
  console.log(
    `concurrency: ${RUNS - new Set(failures.map((f) => f.split(":")[0])).size}/${RUNS} runs kept all ` +
      `${PROCESSES} signatures; per run median ${Math.round(sorted[RUNS >> 1])} ms, max ${
        Math.round(sorted[RUNS - 1])
      } ms; all ${RUNS} runs ${Math.round(total)} ms (${LANES} lanes)`,
  );
  assertEquals(failures, []);
});
