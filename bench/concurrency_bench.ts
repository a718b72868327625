/**
 * Signers on different hosts, at length (issue 15 §1; `deno task bench-concurrency`, not part of `deno task bench`
 * nor of CI): for each configuration, `BENCH_RUNS` runs (default 5) without CPU load and as many while two busy
 * loops load both cores; each run starts the signer processes together, each with its own key and its own
 * `AIRLOCK_LOCK_DIR`, on `BENCH_IMAGES` fresh images (default 8, each a trial: all processes sign it at once).
 * Prints per configuration the runs, trials, signatures reported, signatures lost (must be 0), image results
 * failed (allowed: never reported signed), layers found removed and written again (the races were real), and
 * the time. The race and its checks are `tests/testbed/hosts_race.ts`, which `tests/sign/sign_hosts_test.ts`
 * runs briefly in CI. `BENCH_RACES` (default `3:multi,8:single`) names the configurations: processes and layout
 * (`multi`: multi-arch images, one repository each, 3 tags per image; `single`: single-arch images, all tags of
 * one repository). Prints figures; exits 1 when a signature was lost.
 *
 * @module
 */
import { type RaceFigures, raceHosts } from "../tests/testbed/hosts_race.ts";
import { printTable } from "./bench_util.ts";

const RUNS = Number(Deno.env.get("BENCH_RUNS") ?? 5);
const IMAGES = Number(Deno.env.get("BENCH_IMAGES") ?? 8);
const RACES = (Deno.env.get("BENCH_RACES") ?? "3:multi,8:single").split(",").map((s) => {
  const [p, layout] = s.split(":");
  if (layout !== "multi" && layout !== "single") throw new Error(`BENCH_RACES: ${s}: layout multi or single`);
  return { processes: Number(p), layout: layout as "multi" | "single" };
});

const loadavg = async () => (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ");
console.log(
  `signers on separate hosts (separate AIRLOCK_LOCK_DIRs), ${RUNS} runs of ${IMAGES} images per configuration, ` +
    `without and with 2 CPU hogs; ${navigator.hardwareConcurrency} cores; load ${await loadavg()}`,
);
const rows: string[][] = [];
let lostTotal = 0;
for (const { processes, layout } of RACES) {
  for (const hogs of [false, true]) {
    const t0 = performance.now();
    const f: RaceFigures = await raceHosts({
      processes,
      layout,
      runs: RUNS,
      images: IMAGES,
      hogs: () => hogs,
      onRun: (run, soFar) => {
        if ((run + 1) % 10 === 0) {
          console.log(`  ${processes} ${layout}${hogs ? " hogs" : ""}: ${run + 1} runs, ${soFar.lost} lost`);
        }
      },
    });
    lostTotal += f.lost;
    const tags = layout === "multi" ? 3 : 1;
    rows.push([
      String(processes),
      layout,
      hogs ? "2" : "0",
      String(f.runs),
      String(f.trials),
      String(f.trials * tags * processes - f.failedImages * tags),
      String(f.lost),
      String(f.failedImages),
      String(f.repaired),
      ((performance.now() - t0) / 1000).toFixed(0),
    ]);
    for (const p of f.problems.slice(0, 5)) console.log(`  problem: ${p}`);
    for (const l of f.failures) console.log(`  failure (allowed, never reported signed): ${l}`);
  }
}
printTable(
  [
    "processes",
    "layout",
    "hogs",
    "runs",
    "trials",
    "sigs reported",
    "lost",
    "failed results",
    "repaired",
    "s",
  ],
  rows,
);
console.log(`load afterwards ${await loadavg()}`);
if (lostTotal > 0) Deno.exit(1);
