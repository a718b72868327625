/**
 * Start-up benchmark (`deno task bench`): wall time of `airlock --help` and `airlock version`, the cost a script
 * pays per call. Prints figures; asserts nothing. `BENCH_STARTUP_RUNS` sets the warm run count (default 20; cold
 * runs are a quarter of it, at least 3).
 *
 * What is measured, honestly:
 * - **warm**: `deno run --cached-only` with the compile task's permissions, from an empty directory, with a
 *   private `DENO_DIR` primed by one earlier run (transpiled modules and V8's code cache present). This is the
 *   target: `--help` under 150 ms.
 * - **cold**: the same, but every run gets a new, empty `DENO_DIR`: no transpiled-module cache, no V8 code cache,
 *   so each run parses and transpiles every module it loads. npm packages still come from the project's
 *   `node_modules` (nothing is downloaded), and the operating system's file cache stays warm (dropping it needs
 *   root and disturbs the machine): "cold" is Deno's caches, not the disk.
 * - **binary**: `dist/airlock-<host target>` when it exists (built with `deno task compile`); not built here when
 *   no `denort` is available.
 * - **baseline**: `deno run` of an empty module, the floor every Deno program pays.
 *
 * @module
 */
import { join } from "node:path";
import { COMPILE_PERMISSIONS, outputPath } from "../scripts/compile.ts";
import { printTable } from "./bench_util.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const CLI = join(ROOT, "cli.ts");
const CONFIG = join(ROOT, "deno.json");
const WARM_RUNS = Math.max(3, Number(Deno.env.get("BENCH_STARTUP_RUNS") ?? 20));
const COLD_RUNS = Math.max(3, Math.round(WARM_RUNS / 4));

/** Wall-time statistics of a set of runs, in milliseconds. */
export interface StartupFigures {
  /** Number of runs. */
  runs: number;
  /** Median. */
  median: number;
  /** Fastest run. */
  min: number;
  /** 90th percentile (nearest rank). */
  p90: number;
}

/**
 * Median, minimum and 90th percentile of `samples` (milliseconds).
 *
 * @example
 * ```ts
 * figures([80, 90, 100]).median; // 90
 * ```
 */
export function figures(samples: number[]): StartupFigures {
  const s = [...samples].sort((a, b) => a - b);
  const median = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return { runs: s.length, median, min: s[0], p90: s[Math.min(s.length - 1, Math.ceil(0.9 * s.length) - 1)] };
}

/** Runs a command once with stdout and stderr discarded; returns its wall time in ms. Throws when it fails. */
async function timeOnce(
  command: string,
  args: string[],
  cwd: string,
  env: Record<string, string>,
): Promise<number> {
  const t0 = performance.now();
  const out = await new Deno.Command(command, {
    args,
    cwd,
    env,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  })
    .output();
  const ms = performance.now() - t0;
  if (out.code !== 0) {
    throw new Error(
      `${command} ${args.join(" ")} exited ${out.code}: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
  return ms;
}

const cwd = await Deno.makeTempDir({ prefix: "airlock-startup-cwd-" });
const warmDenoDir = await Deno.makeTempDir({ prefix: "airlock-startup-denodir-" });
const baseEnv = { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", HOME: cwd, NO_COLOR: "1" };
const runArgs = [
  "run",
  "--config",
  CONFIG,
  "--cached-only",
  "--quiet",
  ...COMPILE_PERMISSIONS.map((p) => p.flag),
  CLI,
];
const empty = join(cwd, "..", `airlock-startup-empty-${crypto.randomUUID()}.ts`);
await Deno.writeTextFile(empty, "");
const binary = join(ROOT, outputPath(Deno.build.target));
/** The compiled binary is measured only when it exists and really is airlock (not a mis-built `deno`). */
async function isAirlockBinary(path: string): Promise<boolean> {
  try {
    const out = await new Deno.Command(path, { args: ["version"], stdout: "piped", stderr: "null" }).output();
    return out.success && new TextDecoder().decode(out.stdout).startsWith("airlock ");
  } catch {
    return false;
  }
}
const haveBinary = await isAirlockBinary(binary);

const rows: string[][] = [];
const add = (what: string, mode: string, f: StartupFigures) =>
  rows.push([what, mode, String(f.runs), f.median.toFixed(0), f.min.toFixed(0), f.p90.toFixed(0)]);
const results = new Map<string, StartupFigures>();

try {
  const warmEnv = { ...baseEnv, DENO_DIR: warmDenoDir };
  // baseline: an empty program
  await timeOnce(Deno.execPath(), ["run", "--no-config", empty], cwd, warmEnv);
  const base: number[] = [];
  for (let i = 0; i < WARM_RUNS; i++) {
    base.push(await timeOnce(Deno.execPath(), ["run", "--no-config", empty], cwd, warmEnv));
  }
  add("(empty program)", "warm", figures(base));

  for (const command of [["--help"], ["version"]]) {
    const name = `airlock ${command.join(" ")}`;
    // warm: one priming run, then the measured ones
    await timeOnce(Deno.execPath(), [...runArgs, ...command], cwd, warmEnv);
    const warm: number[] = [];
    for (let i = 0; i < WARM_RUNS; i++) {
      warm.push(await timeOnce(Deno.execPath(), [...runArgs, ...command], cwd, warmEnv));
    }
    results.set(`${name} warm`, figures(warm));
    add(name, "warm", figures(warm));
    // cold: a new, empty DENO_DIR for every run
    const cold: number[] = [];
    for (let i = 0; i < COLD_RUNS; i++) {
      const dir = await Deno.makeTempDir({ prefix: "airlock-startup-cold-" });
      try {
        cold.push(
          await timeOnce(Deno.execPath(), [...runArgs, ...command], cwd, { ...baseEnv, DENO_DIR: dir }),
        );
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    }
    add(name, "cold", figures(cold));
    if (haveBinary) {
      const bin: number[] = [];
      await timeOnce(binary, command, cwd, baseEnv);
      for (let i = 0; i < WARM_RUNS; i++) bin.push(await timeOnce(binary, command, cwd, baseEnv));
      add(name, "binary", figures(bin));
    }
  }
} finally {
  await Deno.remove(empty).catch(() => {});
  await Deno.remove(cwd, { recursive: true }).catch(() => {});
  await Deno.remove(warmDenoDir, { recursive: true }).catch(() => {});
}

console.log(
  "\n== Start-up: airlock --help and airlock version (deno run --cached-only, compile permissions, empty cwd)",
);
console.log(
  "warm: private DENO_DIR primed by one run; cold: a new empty DENO_DIR per run (transpile + V8 code cache " +
    "empty; node_modules and the OS file cache present)",
);
if (!haveBinary) {
  console.log(
    `binary: ${outputPath(Deno.build.target)} absent or not airlock (no denort here): not measured`,
  );
}
printTable(["command", "mode", "runs", "median ms", "min ms", "p90 ms"], rows);
const help = results.get("airlock --help warm");
if (help) {
  console.log(
    `target: --help warm under 150 ms: ${help.median < 150 ? "met" : "MISSED"} (median ${
      help.median.toFixed(0)
    } ms)`,
  );
}
