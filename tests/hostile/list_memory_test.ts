/**
 * Long image lists in bounded memory (issue 15 §3): the list is read as the run goes, each line's outcome is
 * written out as soon as it is final (the failed list, `--output json`) and then dropped, and the run reads no
 * further ahead of its slowest line than a window. A 100,000-line list used to take 2.8 GB (~28 KB a line).
 *
 * `sign validate`, `sign` and `mirror` run as programs against a real registry (`docker-registry`) over lists of 10,000 and
 * 100,000 lines. A real registry answers a few hundred requests a second here (100,000 lines that each need one
 * took 4 minutes), so to keep the test cheap most lines take paths without a request: one line in 50 names an
 * image the registry does not hold (it fails at its first request, `404`), one in 10,000 names a real image signed
 * beforehand (`sign validate` passes it; `sign` finds it signed, `unchanged`; `mirror` copies it), and the other lines are invalid
 * references (`long/Img…`: upper case), failed without a request. Every line goes through the same reader,
 * ordering window and outputs. The peak resident memory of each process (`VmHWM`) on the long list exceeds its
 * peak on the short one by far less than the 90,000 extra lines would cost if each were kept (~2.4 GB at the
 * issue's 28 KB a line; the old code kept ~4.5 KB for each failing line); the failed list names every failing
 * line once, in list order, and the JSON document has one entry per line, in order, with the summary's counts.
 *
 * @module
 */
import { join } from "node:path";
import { assert, assertEquals } from "../assert.ts";
import {
  airlock,
  ATTACHMENTS_ON,
  pushSingle,
  show,
  signArgs,
  startRegistry,
  tempDir,
  validateArgs,
  writeList,
  writeRegistriesD,
} from "../testbed/mod.ts";
import { makeKey } from "../testbed/keys.ts";
import { LONG_LIST_REAL_EVERY, longListLine } from "./list_gen.ts";

const MiB = 1024 * 1024;

interface JsonReport {
  images: { id: number; line: string; status: string }[];
  summary: Record<string, number>;
}

Deno.test("a 100,000-line list runs in the memory of a 10,000-line one; failed list and JSON complete, in order", async () => {
  await using tmp = await tempDir("airlock-long-list-");
  await using reg = await startRegistry();
  const key = await makeKey(tmp.path, "k");
  const rd = await writeRegistriesD(tmp.path, ATTACHMENTS_ON);
  await pushSingle(reg, "long/real", "v1", "long-list-real");
  const real = `${reg.host}/long/real:v1`;
  const insecure = "--tls-verify=false";
  const signRun = (list: string) => signArgs({ list, jobs: 20, key, registriesD: rd, insecure: true });
  await writeList(join(tmp.path, "one.txt"), [real]);
  const first = await airlock(signRun("one.txt"), { cwd: tmp.path });
  assertEquals(first.code, 0, show(first));

  const lineAt = (i: number) => longListLine(i, reg.host, real);
  const write = async (name: string, n: number) => {
    await Deno.writeTextFile(
      join(tmp.path, name),
      Array.from({ length: n }, (_, i) => lineAt(i)).join("\n") + "\n",
    );
    return name;
  };
  const runs: Record<string, { args: (list: string) => string[]; good: string }> = {
    "sign validate": {
      args: (list) => validateArgs({ list, jobs: 20, pub: key.pub, registriesD: rd, insecure: true }),
      good: "passed",
    },
    "sign": { args: signRun, good: "unchanged" },
    // Each line copied to another project of the same registry (the real image is copied; the others fail).
    "mirror": {
      args: (list) => [
        "mirror",
        "-f",
        list,
        "-d",
        reg.host,
        "--destination-project",
        "mirrored",
        "-j",
        "20",
        "--registries.d",
        rd,
        insecure,
      ],
      good: "copied",
    },
  };
  const peaks = new Map<string, number[]>();
  for (const n of [10_000, 100_000]) {
    const list = await write(`list-${n}.txt`, n);
    const reals = n / LONG_LIST_REAL_EVERY;
    // The three commands run side by side (each process's own peak is measured).
    await Promise.all(
      Object.entries(runs).map(async ([name, run]) => {
        const failed = join(tmp.path, `${name.replace(" ", "-")}-failed.txt`);
        const r = await airlock([...run.args(list), "--output", "json", "-o", failed], {
          cwd: tmp.path,
          measureMemory: true,
          timeoutMs: 600_000,
        });
        assertEquals(r.code, 1, `${name} ${list}\n${show(r).slice(-3000)}`);
        peaks.set(name, [...(peaks.get(name) ?? []), r.peakRss]);
        const written = (await Deno.readTextFile(failed)).split("\n").filter((l) => l !== "");
        assertEquals(written.length, n - reals, `${name}: the failed list names every failing line`);
        assertEquals([written[0], written[n - reals - 1]], [lineAt(1), lineAt(n - 1)], `${name}: list order`);
        assert(!written.includes(real), `${name}: the real image is not in the failed list`);
        const doc = JSON.parse(r.stdout) as JsonReport;
        assertEquals(doc.images.length, n, `${name}: one JSON entry per line`);
        assertEquals(
          doc.images.map((e) => e.id).every((id, i) => id === i + 1),
          true,
          "entries in list order",
        );
        for (let i = 0; i < n; i += LONG_LIST_REAL_EVERY) {
          assertEquals(
            [doc.images[i].line, doc.images[i].status],
            [real, run.good],
            `${name}: line ${i + 1}`,
          );
        }
        assertEquals([doc.summary[run.good], doc.summary.failed], [reals, n - reals], `${name}: summary`);
        console.log(
          `${name}, ${n} lines: peak ${(r.peakRss / MiB).toFixed(0)} MiB, ${(r.ms / 1000).toFixed(1)} s`,
        );
      }),
    );
  }
  for (const [name, [small, big]] of peaks) {
    // Kept lines would cost ~28 KB each: 90,000 more lines, ~2.4 GB more. Streamed, well under 150 MiB more.
    assert(
      big - small < 150 * MiB,
      `${name}: ${((big - small) / MiB).toFixed(0)} MiB more for 90,000 more lines`,
    );
  }
});
