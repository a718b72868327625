/**
 * What the hostile-input suite shares: how many seeded cases to run (`HOSTILE_CASES`, `HOSTILE_SEED`), a watchdog
 * that turns a hang into a failure (in process, or a CLI run killed), an in-memory seekable file, and the check
 * that a failure is a clear error.
 *
 * @module
 */
import { AirlockError } from "../../core/errors.ts";
import type { TarSource } from "../../core/transfer/tar.ts";
import { airlock, type CliOptions, type CliResult } from "../testbed/mod.ts";

/**
 * Cases per generator: `HOSTILE_CASES` × `share` when `HOSTILE_CASES` is set (the `hostile` task sets it high; a
 * generator whose cases cost a process or a key derivation takes a share of it), else `ci` (a few hundred in all
 * for the CI run).
 */
export function caseCount(ci: number, share = 1): number {
  const text = Deno.env.get("HOSTILE_CASES");
  const n = text ? Number(text) : NaN;
  return Number.isInteger(n) && n > 0 ? Math.max(1, Math.round(n * share)) : ci;
}

/** Prints how many cases a generator ran (`hostile cases: N <generator>`; the bench and the task add them up). */
export function reportCases(n: number, generator: string, detail = ""): void {
  console.log(`hostile cases: ${n} ${generator}${detail ? ` (${detail})` : ""}`);
}

/** The base seed: `HOSTILE_SEED` when set, else a fixed one (CI runs are reproducible). */
export function baseSeed(): number {
  const text = Deno.env.get("HOSTILE_SEED");
  const n = text ? Number(text) : NaN;
  return Number.isInteger(n) ? n : 20261122;
}

/**
 * Runs `airlock ARGS…` (the test bed's runner, `opts` as there, no `timeoutMs`) with a watchdog that kills it
 * (SIGKILL, which no signal handler can delay) once it has run `killAfterMs`; `killed` says whether it had to: a
 * run that should have ended by itself and did not.
 *
 * @example
 * ```ts
 * const r = await airlockWatched(["load", "-i", "x.tar", "-d", host], 60_000, { cwd: tmp.path });
 * assert(!r.killed, "airlock load hung");
 * ```
 */
export async function airlockWatched(
  args: string[],
  killAfterMs: number,
  opts: CliOptions,
): Promise<CliResult & { killed: boolean }> {
  let killed = false;
  const r = await airlock(args, {
    ...opts,
    timeoutMs: 0,
    onStart: (p) => {
      const t = setTimeout(() => {
        killed = true;
        try {
          p.kill("SIGKILL");
        } catch { /* gone */ }
      }, killAfterMs);
      p.status.finally(() => clearTimeout(t));
    },
  });
  return { ...r, killed };
}

/** Resolves as `p` does, or rejects when it takes longer than `ms` (a hang becomes a failure naming `what`). */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`HANG: ${what} did not finish within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, guard]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A seekable in-memory file. Every 64th read waits for a timer turn, as a real file read does, so that a reader
 * stuck in a loop lets {@linkcode within}'s watchdog fire.
 */
export function memorySource(bytes: Uint8Array): TarSource {
  let pos = 0;
  let reads = 0;
  return {
    seek(offset: number, whence: Deno.SeekMode) {
      pos = whence === Deno.SeekMode.Start
        ? offset
        : whence === Deno.SeekMode.Current
        ? pos + offset
        : bytes.length + offset;
      if (!Number.isSafeInteger(pos) || pos < 0) return Promise.reject(new TypeError(`bad seek to ${pos}`));
      return Promise.resolve(pos);
    },
    async read(p: Uint8Array) {
      if (++reads % 64 === 0) await new Promise((r) => setTimeout(r, 0));
      if (pos >= bytes.length) return null;
      const n = Math.min(p.length, bytes.length - pos);
      p.set(bytes.subarray(pos, pos + n));
      pos += n;
      return n;
    },
  };
}

/** Text of a JavaScript failure leaking into a message: an engine error's name, or a value printed by mistake. */
const JS_ERROR_TEXT =
  /\b(TypeError|RangeError|SyntaxError|ReferenceError|InternalError|undefined|NaN)\b|\[object /;

/**
 * Asserts that `e` is a clear error: an {@linkcode AirlockError} (a stable code, a message), not a JavaScript
 * crash (`TypeError`, `RangeError`, …), and that its message carries no JavaScript failure text either (an
 * engine error's name, `undefined`, `NaN`, `[object Object]`). Returns it.
 */
export function clearError(e: unknown, what: string): AirlockError {
  if (e instanceof AirlockError && e.message.length > 0) {
    const leak = JS_ERROR_TEXT.exec(e.message);
    if (leak) throw new Error(`${what}: JavaScript failure text "${leak[0]}" in the message: ${e.message}`);
    return e;
  }
  const detail = e instanceof Error ? `${e.name}: ${e.message}\n${e.stack}` : String(e);
  throw new Error(`${what}: not a clear error: ${detail}`);
}
