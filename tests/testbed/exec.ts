/**
 * Running helper programs (openssl, cp) for the test bed.
 *
 * @module
 */

/** What a finished helper program printed. */
export interface RunResult {
  /** Standard output, decoded as UTF-8. */
  stdout: string;
  /** Standard error, decoded as UTF-8. */
  stderr: string;
}

/**
 * Runs `cmd args…` to completion; throws with the program's stderr when it exits non-zero.
 *
 * @example
 * ```ts
 * await run("openssl", ["version"]);
 * ```
 */
export async function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; stdin?: string } = {},
): Promise<RunResult> {
  const child = new Deno.Command(cmd, {
    args,
    cwd: opts.cwd,
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(opts.stdin));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  const result = { stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")} exited with ${out.code}: ${result.stderr.trim()}`);
  }
  return result;
}
