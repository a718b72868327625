/**
 * Helpers shared by the benchmarks: running the real CLI while sampling its peak resident memory, hex, and a
 * right-aligned table printer.
 *
 * @module
 */

/** What {@linkcode runMeasured} measured. */
export interface MeasuredRun {
  /** Wall time in seconds, process start included. */
  readonly seconds: number;
  /** Peak resident memory (`VmHWM` of `/proc/<pid>/status`, sampled every 20 ms) in MiB. */
  readonly peakMiB: number;
  /** Exit code. */
  readonly code: number;
  /** Standard error, decoded. */
  readonly stderr: string;
}

/**
 * Runs `deno run --allow-all --quiet <script> <args>` in `cwd` with `HOME=cwd`, discarding stdout, and measures
 * wall time and peak memory. Prints the tail of stderr when the run fails.
 *
 * @example
 * ```ts
 * const run = await runMeasured(cli, ["sign", "-f", "list.txt"], work);
 * ```
 */
export async function runMeasured(script: string, args: string[], cwd: string): Promise<MeasuredRun> {
  const t0 = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", script, ...args],
    cwd,
    env: { HOME: cwd },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let peakKiB = 0;
  const poll = setInterval(() => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${child.pid}/status`));
      if (m) peakKiB = Math.max(peakKiB, Number(m[1]));
    } catch { /* exited */ }
  }, 20);
  const out = await child.output();
  clearInterval(poll);
  const seconds = (performance.now() - t0) / 1000;
  const stderr = new TextDecoder().decode(out.stderr);
  if (out.code !== 0) console.error(stderr.slice(-2000));
  return { seconds, peakMiB: peakKiB / 1024, code: out.code, stderr };
}

/**
 * Lowercase hex of bytes.
 *
 * @example
 * ```ts
 * hex(new Uint8Array([1, 255])); // "01ff"
 * ```
 */
export function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Prints a table with right-aligned columns.
 *
 * @example
 * ```ts
 * printTable(["jobs", "s"], [["1", "2.5"]]);
 * ```
 */
export function printTable(head: string[], rows: string[][]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i])).join("  ");
  console.log(line(head));
  for (const r of rows) console.log(line(r));
}
