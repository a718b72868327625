/**
 * What the hostile-input suite shares: how many seeded cases to run (`HOSTILE_CASES`, `HOSTILE_SEED`), a watchdog
 * that turns a hang into a failure, an in-memory seekable file, and the check that a failure is a clear error.
 *
 * @module
 */
import { AirlockError } from "../../core/errors.ts";
import type { TarSource } from "../../core/transfer/tar.ts";

/**
 * Cases per generator: `HOSTILE_CASES` when set (the `hostile` task sets it high), else `ci` (a few hundred in
 * all for the CI run).
 */
export function caseCount(ci: number): number {
  const n = Number(Deno.env.get("HOSTILE_CASES") ?? "");
  return Number.isInteger(n) && n > 0 ? n : ci;
}

/** The base seed: `HOSTILE_SEED` when set, else a fixed one (CI runs are reproducible). */
export function baseSeed(): number {
  const n = Number(Deno.env.get("HOSTILE_SEED") ?? "");
  return Number.isInteger(n) ? n : 20261122;
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

/**
 * Asserts that `e` is a clear error: an {@linkcode AirlockError} (a stable code, a message), not a JavaScript
 * crash (`TypeError`, `RangeError`, …). Returns it.
 */
export function clearError(e: unknown, what: string): AirlockError {
  if (e instanceof AirlockError && e.message.length > 0) return e;
  const detail = e instanceof Error ? `${e.name}: ${e.message}\n${e.stack}` : String(e);
  throw new Error(`${what}: not a clear error: ${detail}`);
}
