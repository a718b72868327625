/**
 * Long image lists benchmark (issue 15 §3): peak resident memory (`VmHWM`) and wall time of `airlock sign`,
 * `airlock sign validate` and `airlock mirror` at `-j 20` with `--output json` over lists of 10,000 and 100,000 lines, against a real
 * registry (`docker-registry`). The lists are those of `tests/hostile/list_memory_test.ts`: one line in 50 names
 * an image the registry does not hold (one request, `404`), one in 10,000 a real image signed beforehand, the
 * rest invalid references (failed without a request) — a real registry here answers a few hundred requests a
 * second, so lines that each need one would measure the registry. With `BENCH_LIST_ALL_REQUESTS=1`, a last row
 * runs `sign validate` over 100,000 lines that each need a request (minutes). The extra memory per extra line is
 * printed beside each long run (the issue measured 2.8 GB for 100,000 lines, ~28 KB a line). Prints figures;
 * asserts nothing.
 *
 * @module
 */
import { join } from "node:path";
import {
  airlock,
  pushSingle,
  signArgs,
  startRegistry,
  validateArgs,
  writeList,
} from "../tests/testbed/mod.ts";
import { longListLine } from "../tests/hostile/list_gen.ts";
import { prepareSigning, printTable, runMeasured, SIGNING } from "./bench_util.ts";

/** Runs the CLI quietly (every long-list run here fails, by design), measuring wall time and peak memory. */
async function measured(
  args: string[],
  cwd: string,
): Promise<{ peakMiB: number; seconds: number; code: number }> {
  const r = await airlock(args, { cwd, timeoutMs: 0, measureMemory: true, stripLockNotice: true });
  return { peakMiB: r.peakRss / (1024 * 1024), seconds: r.ms / 1000, code: r.code };
}

await using registry = await startRegistry();
const work = await Deno.makeTempDir({ prefix: "airlock-list-bench-" });
try {
  await prepareSigning(work);
  await pushSingle(registry, "long/real", "v1", "list-bench-real");
  const real = `${registry.host}/long/real:v1`;
  const common = { jobs: 20, registriesD: SIGNING.registriesD, insecure: true };
  const sign = (list: string) => signArgs({ list, key: SIGNING, ...common });
  const validate = (list: string) => validateArgs({ list, pub: SIGNING.pub, ...common });
  await writeList(join(work, "one.txt"), [real]);
  const first = await runMeasured(sign("one.txt"), work);
  if (first.code !== 0) throw new Error("signing the real image failed");

  const mixed = (i: number) => longListLine(i, registry.host, real);
  const mirror = (list: string) => [
    "mirror",
    "-f",
    list,
    "-d",
    registry.host,
    "--destination-project",
    "mirrored",
    "-j",
    "20",
    "--registries.d",
    SIGNING.registriesD,
    "--tls-verify=false",
  ];
  const commands: [string, (list: string) => string[]][] = [
    ["sign", sign],
    ["sign validate", validate],
    ["mirror", mirror],
  ];
  const rows: string[][] = [];
  const base = new Map<string, number>();
  const run = async (label: string, n: number, line: (i: number) => string, which = commands) => {
    const list = `list-${n}.txt`;
    await Deno.writeTextFile(
      join(work, list),
      Array.from({ length: n }, (_, i) => line(i)).join("\n") + "\n",
    );
    for (const [name, args] of which) {
      const r = await measured([...args(list), "--output", "json", "-o", "failed.txt"], work);
      const small = base.get(name);
      if (small === undefined) base.set(name, r.peakMiB);
      const perLine = small === undefined ? "" : ((r.peakMiB - small) * 1024 / (n - 10_000)).toFixed(2);
      rows.push([
        label,
        String(n),
        name,
        r.peakMiB.toFixed(0),
        r.seconds.toFixed(1),
        perLine,
        String(r.code),
      ]);
    }
  };
  await run("mixed", 10_000, mixed);
  await run("mixed", 100_000, mixed);
  if (Deno.env.get("BENCH_LIST_ALL_REQUESTS") === "1") {
    await run("each a request", 100_000, (i) => `${registry.host}/long/img${i}:v1`, [commands[1]]);
  }
  console.log(
    `\nLong image lists, -j 20, --output json, registry ${registry.host} (issue 15: 100,000 lines 2.8 GB)`,
  );
  printTable(["list", "lines", "command", "peak MiB", "s", "KiB per extra line", "exit"], rows);
} finally {
  await Deno.remove(work, { recursive: true });
}
