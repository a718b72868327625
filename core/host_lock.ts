/**
 * Serialising work by key across the processes of one host: `airlock` runs started by cron, by an operator and by
 * `airlock serve` on one machine must not overwrite each other's appends to one attachment tag. The registry offers
 * no conditional PUT, so each append (read the tag, add a layer, PUT it) holds an advisory `flock` on a lock file.
 *
 * Lock files live in `$AIRLOCK_LOCK_DIR`, else `$XDG_RUNTIME_DIR/airlock`, else `<tmpdir>/airlock-<uid>`: a
 * directory of the user's own (mode 0700, not a symbolic link). Keys are hashed into {@linkcode LOCK_BUCKETS}
 * files, so the directory never grows beyond that however many images are signed. A process that dies releases its
 * locks with it (the kernel drops `flock` locks with the file). Writers on other hosts are not covered: there the
 * confirmation re-read of the attachment writer does the job.
 *
 * @module
 */
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sha256Digest } from "./encoding/digest.ts";

/** Hex digits of a key's SHA-256 that name its lock file. */
const BUCKET_DIGITS = 3;

/** How many lock files keys are spread over. */
export const LOCK_BUCKETS: number = 16 ** BUCKET_DIGITS;

/** Options of {@linkcode HostLock}. */
export interface HostLockOptions {
  /** The lock directory; default as described in the module documentation. */
  readonly dir?: string;
  /** Told once, when the lock directory cannot be used (then work runs without the host lock). */
  readonly onUnavailable?: (reason: string) => void;
}

/**
 * Runs work one at a time per key among all processes of this user on this host that use the same lock
 * directory. Within one process, combine it with a {@linkcode KeyedLock}: two calls of one process for keys of
 * one bucket also wait for each other, which is harmless as long as no call takes a second lock while holding one.
 *
 * @example
 * ```ts
 * const lock = new HostLock();
 * await lock.run(`${registry}/${repository}@${digest}.sig`, () => appendLayer());
 * ```
 */
export class HostLock {
  readonly #o: HostLockOptions;
  #dir?: Promise<string | undefined>;

  /** Creates a host lock; the directory is made (or checked) on first use. */
  constructor(options: HostLockOptions = {}) {
    this.#o = options;
  }

  /** Runs `fn` while holding the lock file of `key`; returns (or rejects with) its result. */
  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const dir = await (this.#dir ??= this.#prepare());
    if (dir === undefined) return await fn();
    const file = await Deno.open(join(dir, `${bucketOf(key)}.lock`), {
      read: true,
      write: true,
      create: true,
      mode: 0o600,
    });
    try {
      await file.lock(true);
      return await fn();
    } finally {
      // Closing the file releases the lock.
      file.close();
    }
  }

  async #prepare(): Promise<string | undefined> {
    const dir = this.#o.dir ?? defaultLockDir();
    try {
      await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
      const info = await Deno.lstat(dir);
      const uid = Deno.uid();
      if (!info.isDirectory) throw new Error("not a directory");
      if (uid !== null && info.uid !== null && info.uid !== uid) throw new Error(`owned by uid ${info.uid}`);
      if (info.mode !== null && (info.mode & 0o022) !== 0) throw new Error("writable by others");
      return dir;
    } catch (e) {
      this.#o.onUnavailable?.(`lock directory ${dir}: ${e instanceof Error ? e.message : String(e)}`);
      return undefined;
    }
  }
}

/** The lock file name (without `.lock`) of a key: the first hex digits of its SHA-256, one of {@linkcode LOCK_BUCKETS}. */
function bucketOf(key: string): string {
  const hex = sha256Digest(new TextEncoder().encode(key)).slice("sha256:".length);
  return hex.slice(0, BUCKET_DIGITS);
}

/** The lock directory used when none is given: `$AIRLOCK_LOCK_DIR`, `$XDG_RUNTIME_DIR/airlock`, or a temp one. */
export function defaultLockDir(): string {
  const own = Deno.env.get("AIRLOCK_LOCK_DIR");
  if (own) return own;
  const runtime = Deno.env.get("XDG_RUNTIME_DIR");
  if (runtime) return join(runtime, "airlock");
  return join(tmpdir(), `airlock-${Deno.uid() ?? "user"}`);
}
