/**
 * Running the real `airlock` CLI (`deno run -A --config deno.json cli.ts …`) as a child process, for every test
 * suite and the benchmarks: in a temporary working directory, with a clean environment whose HOME (and
 * XDG_RUNTIME_DIR) point into that directory, so the machine's own auth files, certs.d and keys are never read.
 * Only PATH and Deno's cache directory are taken from the outside.
 *
 * - {@linkcode airlock}: one run to completion (optionally sampling its peak memory);
 * - {@linkcode spawnAirlock}: a long-running process (`airlock serve`) whose stderr can be waited on.
 *
 * Nothing here imports airlock's code: the CLI is only ever run as a program.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { join } from "node:path";

/** Absolute path of `cli.ts`. */
export const CLI: string = fileURLToPath(new URL("../../cli.ts", import.meta.url));
/** Absolute path of the project's `deno.json`. */
export const CONFIG: string = fileURLToPath(new URL("../../deno.json", import.meta.url));

const dec = new TextDecoder();

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
  /** Wall time of the child process in milliseconds (spawn to exit). */
  ms: number;
  /** Peak resident set size (VmHWM) in bytes, when `measureMemory` was set; else 0. */
  peakRss: number;
}

/** Where a run happens: HOME and working directory (each defaults to the other). */
export type CliPlace = { home: string; cwd?: string } | { cwd: string; home?: string };

/** Options of {@linkcode airlock}. */
export type CliOptions = CliPlace & {
  /** Extra environment variables (on top of PATH, HOME, XDG_RUNTIME_DIR, DENO_DIR, NO_COLOR). */
  env?: Record<string, string>;
  /** Directories put in front of PATH. */
  pathPrepend?: string[];
  /** Bytes written to stdin (stdin is a pipe); without it stdin is /dev/null. Never a terminal. */
  stdin?: string | Uint8Array;
  /** Kill the run after this many ms (default 120 000; 0: never): a hang (a prompt) fails the test instead. */
  timeoutMs?: number;
  /** Remove Deno's own "Blocking waiting for file lock" notices (several runs starting at once) from stderr. */
  stripLockNotice?: boolean;
  /** Sample the child's peak resident memory every 20 ms (see {@linkcode CliResult.peakRss}). */
  measureMemory?: boolean;
  /** Called with the child once it is started (e.g. to kill it mid-way). */
  onStart?: (child: Deno.ChildProcess) => void;
};

let denoDirPromise: Promise<string> | undefined;

/**
 * The DENO_DIR of this process (`deno info --json`, asked once): the children get a temporary HOME, and Deno's
 * cache would otherwise move there (every child would download its npm packages again).
 *
 * @example
 * ```ts
 * const dir = await denoDir();
 * ```
 */
export function denoDir(): Promise<string> {
  denoDirPromise ??= (async () => {
    const fromEnv = Deno.env.get("DENO_DIR");
    if (fromEnv) return fromEnv;
    const out = await new Deno.Command(Deno.execPath(), { args: ["info", "--json"], stdout: "piped" })
      .output();
    return (JSON.parse(dec.decode(out.stdout)) as { denoDir: string }).denoDir;
  })();
  return denoDirPromise;
}

function placeOf(p: CliPlace): { home: string; cwd: string } {
  const home = p.home ?? p.cwd!;
  return { home, cwd: p.cwd ?? home };
}

/**
 * The clean environment of a CLI child: PATH (with `pathPrepend`), HOME, XDG_RUNTIME_DIR (`<home>/.run`, created),
 * DENO_DIR, `NO_COLOR`, and `env`.
 */
async function cliEnv(
  home: string,
  env: Record<string, string> = {},
  pathPrepend: string[] = [],
): Promise<Record<string, string>> {
  const runtimeDir = join(home, ".run");
  await Deno.mkdir(runtimeDir, { recursive: true, mode: 0o700 });
  return {
    PATH: [...pathPrepend, Deno.env.get("PATH") ?? "/usr/bin:/bin"].join(":"),
    HOME: home,
    XDG_RUNTIME_DIR: runtimeDir,
    DENO_DIR: await denoDir(),
    NO_COLOR: "1",
    ...env,
  };
}

/**
 * Samples `VmHWM` of process `pid` every 20 ms until `stop()`; `stop()` resolves to the peak in bytes.
 *
 * @example
 * ```ts
 * const rss = watchPeakRss(child.pid);
 * await child.status;
 * const peak = await rss.stop();
 * ```
 */
export function watchPeakRss(pid: number): { stop(): Promise<number> } {
  let peak = 0;
  let running = true;
  const sampler = (async () => {
    while (running) {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(await Deno.readTextFile(`/proc/${pid}/status`));
        if (m) peak = Math.max(peak, Number(m[1]) * 1024);
      } catch {
        // the process is gone
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return {
    async stop() {
      running = false;
      await sampler;
      return peak;
    },
  };
}

/** Removes Deno's notices about waiting for the node_modules lock (when several runs start at once). */
export function stripLockNotice(stderr: string): string {
  return stderr.replace(/^Blocking waiting for file lock on [^\n]*\n/gm, "");
}

/**
 * Runs `airlock ARGS…` and returns its exit code and output.
 *
 * @example
 * ```ts
 * const r = await airlock(["version"], { home: tmp.path });
 * ```
 */
export async function airlock(args: string[], opts: CliOptions): Promise<CliResult> {
  const { home, cwd } = placeOf(opts);
  const env = await cliEnv(home, opts.env, opts.pathPrepend);
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const t0 = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", CONFIG, CLI, ...args],
    cwd,
    env,
    clearEnv: true,
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    signal: timeoutMs > 0 ? AbortSignal.timeout(timeoutMs) : undefined,
  }).spawn();
  const rss = opts.measureMemory ? watchPeakRss(child.pid) : undefined;
  opts.onStart?.(child);
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(typeof opts.stdin === "string" ? new TextEncoder().encode(opts.stdin) : opts.stdin);
    await w.close();
  }
  const out = await child.output();
  const ms = performance.now() - t0;
  const stderr = dec.decode(out.stderr);
  return {
    code: out.code,
    stdoutBytes: out.stdout,
    stdout: dec.decode(out.stdout),
    stderr: opts.stripLockNotice ? stripLockNotice(stderr) : stderr,
    ms,
    peakRss: rss ? await rss.stop() : 0,
  };
}

/** A one-line summary of a run, for assertion messages. */
export function show(r: Pick<CliResult, "code" | "stdout" | "stderr">): string {
  return `exit ${r.code}\n--- stdout ---\n${r.stdout.slice(0, 2000)}\n--- stderr ---\n${
    r.stderr.slice(0, 2000)
  }`;
}

/** Whether any of `secrets` (non-empty) appears in a run's output; returns the first that does. */
export function leaksSecret(r: Pick<CliResult, "stdout" | "stderr">, secrets: string[]): string | undefined {
  return secrets.find((s) => s !== "" && (r.stdout.includes(s) || r.stderr.includes(s)));
}

/** A long-running `airlock` child process (e.g. `airlock serve`). */
export interface AirlockProcess extends AsyncDisposable {
  /** The child. */
  readonly child: Deno.ChildProcess;
  /** Everything it wrote to stderr so far. */
  stderr(): string;
  /** Waits until stderr matches `re` (or the process ends); returns the match. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Waits for the exit status. */
  status: Promise<Deno.CommandStatus>;
  /** Whether the process has ended (and its output was read). */
  ended(): boolean;
}

/**
 * Starts `airlock ARGS…` in `cwd` (HOME = `cwd`, clean environment as {@linkcode airlock}), collecting stderr and
 * discarding stdout. Disposal kills it when it still runs.
 *
 * @example
 * ```ts
 * await using p = await spawnAirlock(["serve", "--key", "k"], tmp.path);
 * ```
 */
export async function spawnAirlock(args: string[], cwd: string): Promise<AirlockProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", CONFIG, CLI, ...args],
    cwd,
    clearEnv: true,
    env: await cliEnv(cwd),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const changed = new Set<() => void>();
  const stdoutDone = child.stdout.pipeTo(new WritableStream());
  const reading = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      text += chunk;
      for (const f of changed) f();
    }
    for (const f of changed) f();
  })();
  let ended = false;
  const status = child.status.then(async (s) => {
    await reading;
    await stdoutDone;
    ended = true;
    for (const f of changed) f();
    return s;
  });
  return {
    child,
    stderr: () => text,
    status,
    ended: () => ended,
    async waitFor(re, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (true) {
        const m = text.match(re);
        if (m) return m;
        if (ended || Date.now() > deadline) throw new Error(`no ${re} in the output:\n${text}`);
        await new Promise<void>((resolve) => {
          const f = () => {
            changed.delete(f);
            clearTimeout(timer);
            resolve();
          };
          const timer = setTimeout(f, Math.max(0, deadline - Date.now()));
          changed.add(f);
        });
      }
    },
    async [Symbol.asyncDispose]() {
      if (!ended) {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }
      await status;
    },
  };
}
