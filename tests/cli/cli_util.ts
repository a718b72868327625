/**
 * Runs the real `airlock` CLI (`deno run -A cli.ts …`) for the CLI tests: in a temporary working directory,
 * with a clean environment whose HOME (and XDG_RUNTIME_DIR) point into that directory, so the machine's own
 * auth files, certs.d and keys are never read. Only PATH and Deno's cache directory are taken from the outside.
 *
 * @module
 */
import { join } from "node:path";

const CLI = new URL("../../cli.ts", import.meta.url).pathname;
const CONFIG = new URL("../../deno.json", import.meta.url).pathname;

/** What one CLI run produced. */
export interface CliResult {
  /** Exit code. */
  code: number;
  /** Standard output, exact bytes. */
  stdoutBytes: Uint8Array;
  /** Standard output, decoded. */
  stdout: string;
  /** Standard error, decoded. */
  stderr: string;
}

/** Options of {@linkcode airlock}. */
export interface CliOptions {
  /** HOME of the run (and its working directory unless `cwd` is given). */
  home: string;
  /** Working directory (default `home`). */
  cwd?: string;
  /** Extra environment variables (on top of PATH, HOME, XDG_RUNTIME_DIR, DENO_DIR). */
  env?: Record<string, string>;
  /** Directories put in front of PATH. */
  pathPrepend?: string[];
  /** Bytes written to stdin (stdin is a pipe); without it stdin is /dev/null. Never a terminal. */
  stdin?: string | Uint8Array;
  /** Kill the run after this many ms (default 30 000): a hang (a prompt) fails the test instead. */
  timeoutMs?: number;
}

// Deno's module cache: the child must not download anything into the temporary HOME.
const DENO_DIR = Deno.env.get("DENO_DIR") ?? join(Deno.env.get("HOME") ?? "/root", ".cache/deno");

/**
 * Runs `airlock ARGS…` and returns its exit code and output.
 *
 * @example
 * ```ts
 * const r = await airlock(["version"], { home: tmp.path });
 * ```
 */
export async function airlock(args: string[], opts: CliOptions): Promise<CliResult> {
  const runtimeDir = join(opts.home, ".run");
  await Deno.mkdir(runtimeDir, { recursive: true, mode: 0o700 });
  const env: Record<string, string> = {
    PATH: [...(opts.pathPrepend ?? []), Deno.env.get("PATH") ?? "/usr/bin:/bin"].join(":"),
    HOME: opts.home,
    XDG_RUNTIME_DIR: runtimeDir,
    DENO_DIR,
    NO_COLOR: "1",
    ...opts.env,
  };
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", CONFIG, CLI, ...args],
    cwd: opts.cwd ?? opts.home,
    env,
    clearEnv: true,
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(opts.timeoutMs ?? 30_000),
  }).spawn();
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(typeof opts.stdin === "string" ? new TextEncoder().encode(opts.stdin) : opts.stdin);
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return {
    code: out.code,
    stdoutBytes: out.stdout,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
  };
}

/** A one-line summary of a run, for assertion messages. */
export function show(r: CliResult): string {
  return `exit ${r.code}\n--- stdout ---\n${r.stdout.slice(0, 2000)}\n--- stderr ---\n${
    r.stderr.slice(0, 2000)
  }`;
}
