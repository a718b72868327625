/**
 * Hostile-input benchmark (issue 15 §3, §6): peak memory and time of `sign`, `sign validate` and `verify` against
 * registries built to exhaust them — the test bed's static registry, a FAKE that speaks the distribution protocol,
 * serving `.sig` tags of 10,000 layers, of 1000 payloads of 1 MiB, and 20 images of 1000 payloads of 32 KiB each at
 * `-j 20` (long image lists are `list_bench.ts`); then the seeded hostile-input suite (`deno task hostile`'s
 * tests) with `HOSTILE_CASES` (default 2000) cases per generator, printing the cases each generator ran and what
 * it saw. Prints figures; asserts nothing.
 *
 * @module
 */
import { join } from "node:path";
import {
  airlock,
  ATTACHMENTS_ON,
  signArgs,
  validateArgs,
  writeList,
  writeRegistriesD,
} from "../tests/testbed/mod.ts";
import { makeKey, makeSigner } from "../tests/testbed/keys.ts";
import { blobReads, type HeavySigShape, startHeavyRegistry } from "../tests/hostile/heavy_sig.ts";
import { printTable } from "./bench_util.ts";

const MiB = 1024 * 1024;

/** Runs the CLI quietly (every run here is meant to fail), measuring wall time and peak memory. */
async function measured(
  args: string[],
  cwd: string,
): Promise<{ peakMiB: number; seconds: number; code: number }> {
  const r = await airlock(args, { cwd, timeoutMs: 0, measureMemory: true, stripLockNotice: true });
  return { peakMiB: r.peakRss / MiB, seconds: r.ms / 1000, code: r.code };
}

const work = await Deno.makeTempDir({ prefix: "airlock-hostile-bench-" });
try {
  const key = await makeKey(work, "k");
  const signer = await makeSigner(work, "s");
  const rd = await writeRegistriesD(work, ATTACHMENTS_ON);
  const insecure = "--tls-verify=false";
  const commands = (images: string[]): [string, string[]][] => [
    ["sign -j 20", signArgs({ list: "list.txt", jobs: 20, key, registriesD: rd, insecure: true })],
    [
      "sign validate -j 20",
      validateArgs({ list: "list.txt", jobs: 20, pub: signer.pub, registriesD: rd, insecure: true }),
    ],
    ["verify", ["verify", "--key", signer.pub, "--insecure-ignore-tlog", insecure, ...images]],
  ];

  // 1. Registries built to exhaust memory.
  const shapes: [string, HeavySigShape][] = [
    ["1 image, .sig of 10,000 layers", { images: 1, layers: 10_000, payloadBytes: 300 }],
    ["1 image, 1000 payloads of 1 MiB", { images: 1, layers: 1000, payloadBytes: 1024 * 1024 }],
    ["20 images, 1000 payloads of 32 KiB each", { images: 20, layers: 1000, payloadBytes: 32 * 1024 }],
  ];
  const rows: string[][] = [];
  // `deno task hostile` runs only the seeded suite (HOSTILE_SEEDED_ONLY=1).
  for (const [label, shape] of Deno.env.get("HOSTILE_SEEDED_ONLY") === "1" ? [] : shapes) {
    await using reg = await startHeavyRegistry(shape);
    const images = reg.images;
    await writeList(join(work, "list.txt"), images);
    for (const [name, args] of commands(images)) {
      reg.requests.length = 0;
      const r = await measured(args, work);
      rows.push([
        label,
        name,
        r.peakMiB.toFixed(0),
        r.seconds.toFixed(1),
        String(blobReads(reg.requests)),
        String(r.code),
      ]);
    }
  }
  if (rows.length > 0) {
    console.log(
      "\nRegistries built to exhaust memory (issue 15: 10,000 layers took 1.09 GB and 4,200 GETs; 1000 x 1 MiB ~1.17 GB)",
    );
    printTable(["registry", "command", "peak MiB", "s", "blob GETs", "exit"], rows);
  }

  // 2. The seeded generators.
  const cases = Deno.env.get("HOSTILE_CASES") ?? "2000";
  const t0 = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "test",
      "--allow-all",
      "tests/hostile/fuzz_test.ts",
      "tests/hostile/tar_test.ts",
      "tests/hostile/manifest_test.ts",
      "--filter",
      "/seeded|mutations/",
    ],
    env: { HOSTILE_CASES: cases },
    stdout: "piped",
    stderr: "piped",
  }).output();
  // deno test colours its output even into a pipe: the colours are taken out first.
  const text = new TextDecoder().decode(out.stdout).replace(
    new RegExp(String.fromCharCode(27) + "\\[[0-9;]*m", "g"),
    "",
  );
  // Each generator prints `hostile cases: N <generator> (<what it saw>)`.
  const counts = text.split("\n").map((l) => /hostile cases: (\d+) (.*)$/.exec(l)).filter((m) => m !== null);
  const total = counts.reduce((sum, m) => sum + Number(m![1]), 0);
  console.log(
    `\nSeeded hostile inputs (HOSTILE_CASES=${cases}, HOSTILE_SEED=${
      Deno.env.get("HOSTILE_SEED") ?? "default"
    }): ` +
      `${total} cases in ${counts.length} generators, ${out.code === 0 ? "all passed" : "FAILURES"} in ${
        ((performance.now() - t0) / 1000).toFixed(1)
      } s`,
  );
  for (const m of counts) console.log(`  ${m![1].padStart(6)}  ${m![2]}`);
  if (out.code !== 0) {
    // Not a figure: a case failed (its seed is in the text), so the task fails too.
    console.log(text.slice(-6000));
    Deno.exitCode = 1;
  }
} finally {
  await Deno.remove(work, { recursive: true });
}
