/**
 * Serialising asynchronous work by key, inside one process: appends to one attachment tag, writes of one
 * destination tag.
 *
 * @module
 */

/**
 * Runs work one at a time per key: a call starts after every earlier call with the same key has settled
 * (fulfilled or rejected). Keys with nothing queued hold no memory.
 *
 * @example
 * ```ts
 * const locks = new KeyedLock();
 * await locks.run(`${repo}@${digest}.sig`, () => appendLayer());
 * ```
 */
export class KeyedLock {
  readonly #tails = new Map<string, Promise<unknown>>();

  /** Runs `fn` once every earlier `run` with the same `key` has settled; returns (or rejects with) its result. */
  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const before = this.#tails.get(key) ?? Promise.resolve();
    const run = before.then(fn, fn);
    const tail = run.catch(() => {});
    this.#tails.set(key, tail);
    try {
      return await run;
    } finally {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    }
  }
}
