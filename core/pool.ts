/**
 * A bounded worker pool with a per-item deadline and cooperative cancellation, the engine under `sign`,
 * `validate` and `verify` (hangar's `--jobs` / `--timeout`, spec/hangar.md §4.1–4.2).
 *
 * Semantics:
 * - Items start in input order; at most `jobs` run at once. Results come back in input order.
 * - **Per-item deadline** (`timeoutMs > 0`): it covers all of the item's work (fetches, every platform, every
 *   retry). When it passes, the item's signal is aborted with a `TIMEOUT` error and the item's result is fixed
 *   as that error; a late value or error from the work is discarded. The item's slot is only given to the next
 *   item once the work has actually settled, so the concurrency bound holds even for work that is slow to
 *   notice its signal (work must honour the signal, or the pool waits for it).
 * - **Cancellation** (`signal`): once the outer signal aborts, no new item starts; every item not yet started
 *   gets a `CANCELLED` result. Items already running are **not** aborted: their signal only fires on their
 *   own deadline, so a signature being written completes instead of being cut off halfway. (A caller that
 *   wants to stop them too, e.g. on a second Ctrl-C, exits the process.)
 *
 * @module
 */
import { AirlockError } from "./errors.ts";
import { LinkedAbort } from "./abort.ts";

/**
 * The outcome of one item.
 */
export type PoolResult<R> =
  | { readonly ok: true; readonly value: R }
  | { readonly ok: false; readonly error: unknown };

/** Options of {@linkcode runPool}. */
export interface PoolOptions<R> {
  /** Stops scheduling new items when aborted (running items finish; see the module notes). */
  readonly signal?: AbortSignal;
  /** Deadline per item in milliseconds, covering all of its work; `0` or absent = none. */
  readonly timeoutMs?: number;
  /**
   * Called once per item as soon as its result is known (cancelled items included), in completion order. An
   * exception thrown here does not stop the pool; the first one is rethrown by `runPool` at the end.
   */
  readonly onSettled?: (index: number, result: PoolResult<R>) => void;
}

/**
 * The work for one item: gets the item, a signal that aborts at the item's deadline, and the item's index.
 */
export type PoolWork<T, R> = (item: T, signal: AbortSignal, index: number) => Promise<R>;

/**
 * Formats milliseconds as a Go `time.Duration` string (`10m0s`, `1.5s`, `250ms`), as hangar prints timeouts.
 */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  if (ms < 1000) return `${ms}ms`;
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const sec = (ms % 60_000) / 1000;
  const secText = `${Number.isInteger(sec) ? sec : sec.toFixed(3).replace(/0+$/, "")}s`;
  if (h > 0) return `${h}h${m}m${secText}`;
  if (m > 0) return `${m}m${secText}`;
  return secText;
}

/**
 * Runs `work` over `items` with at most `jobs` in flight; resolves with one result per item, in input order.
 * Work failures become `{ ok: false }` results, never rejections.
 *
 * @param items the work list, started in this order
 * @param jobs the concurrency bound, an integer ≥ 1 (values above `items.length` are fine)
 * @param work the per-item job
 * @param opts outer cancellation, per-item deadline, progress callback
 * @throws {AirlockError} `INVALID_ARGUMENT` for a bad `jobs` or `timeoutMs` (rejects before starting anything).
 *
 * @example
 * ```ts
 * const results = await runPool(images, 4, (img, signal) => sign(img, { signal }), {
 *   signal: ctrl.signal,
 *   timeoutMs: 10 * 60_000,
 *   onSettled: (i, r) => r.ok || log.error(errorMessage(r.error)),
 * });
 * ```
 */
export async function runPool<T, R>(
  items: readonly T[],
  jobs: number,
  work: PoolWork<T, R>,
  opts: PoolOptions<R> = {},
): Promise<PoolResult<R>[]> {
  if (!Number.isInteger(jobs) || jobs < 1) {
    throw new AirlockError(
      "INVALID_ARGUMENT",
      `invalid worker number ${jobs}: must be an integer of at least 1`,
    );
  }
  const timeoutMs = opts.timeoutMs ?? 0;
  if (!Number.isFinite(timeoutMs) || timeoutMs < 0) {
    throw new AirlockError("INVALID_ARGUMENT", `invalid timeout ${timeoutMs}: must be a finite number ≥ 0`);
  }

  const results = new Array<PoolResult<R>>(items.length);
  let hookError: { error: unknown } | undefined;
  const settle = (index: number, result: PoolResult<R>): void => {
    results[index] = result;
    try {
      opts.onSettled?.(index, result);
    } catch (e) {
      hookError ??= { error: e };
    }
  };

  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      if (opts.signal?.aborted) {
        settle(index, {
          ok: false,
          error: new AirlockError(
            "CANCELLED",
            "context canceled: the run was cancelled before this item started",
          ),
        });
        continue;
      }
      await runPoolItem(items[index], index, work, timeoutMs, settle);
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, items.length) }, worker));
  if (hookError) throw hookError.error;
  return results;
}

/**
 * Runs one item of a pool: `work` with a signal that aborts at the item's deadline (`timeoutMs`, 0: none).
 * `settle` gets the result as soon as it is known — the work's, or `TIMEOUT` at the deadline; the returned
 * promise resolves only when the work has really stopped (the pool's slot is held until then).
 */
export async function runPoolItem<T, R>(
  item: T,
  index: number,
  work: PoolWork<T, R>,
  timeoutMs: number,
  settle: (index: number, result: PoolResult<R>) => void,
): Promise<void> {
  const ctrl = new AbortController();
  const done: Promise<PoolResult<R>> = (async () => await work(item, ctrl.signal, index))().then(
    (value): PoolResult<R> => ({ ok: true, value }),
    (error): PoolResult<R> => ({ ok: false, error }),
  );
  if (timeoutMs <= 0) {
    settle(index, await done);
    return;
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<"deadline">((resolve) => {
    timer = setTimeout(() => resolve("deadline"), timeoutMs);
  });
  const first = await Promise.race([done, deadline]);
  if (first !== "deadline") {
    clearTimeout(timer);
    settle(index, first);
    return;
  }
  const error = deadlineError(timeoutMs);
  ctrl.abort(error);
  settle(index, { ok: false, error });
  await done; // hold the slot until the work has really stopped
}

/**
 * The error an item or command gets when its deadline passes (hangar's and cosign's "context deadline exceeded").
 */
export function deadlineError(timeoutMs: number): AirlockError {
  return new AirlockError(
    "TIMEOUT",
    `context deadline exceeded: not finished within the ${formatDuration(timeoutMs)} timeout`,
  );
}

/**
 * Runs `work` under a deadline: its signal aborts with a `TIMEOUT` error when `timeoutMs` passes (or with the
 * reason of `outer` when that aborts first), and the returned promise rejects at that moment, without waiting
 * for the work to notice. Meant for a whole command (cosign's `--timeout`): the process ends after the rejection,
 * so nothing the work still has in flight can keep it running. `timeoutMs` 0 = no deadline.
 */
export async function withDeadline<T>(
  timeoutMs: number,
  work: (signal: AbortSignal) => Promise<T>,
  outer?: AbortSignal,
): Promise<T> {
  const ctrl = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stop = () => {};
  const expired = new Promise<never>((_, reject) => {
    const fire = (reason: unknown) => {
      ctrl.abort(reason);
      reject(reason);
    };
    if (timeoutMs > 0) timer = setTimeout(() => fire(deadlineError(timeoutMs)), timeoutMs);
    const onOuter = () => fire(outer!.reason);
    outer?.addEventListener("abort", onOuter, { once: true });
    stop = () => outer?.removeEventListener("abort", onOuter);
    if (outer?.aborted) onOuter();
  });
  try {
    return await Promise.race([work(ctrl.signal), expired]);
  } finally {
    clearTimeout(timer);
    stop();
  }
}

/**
 * Maps `items` with `fn`, at most `limit` at once, yielding the results in input order as soon as each is the next
 * one due: a consumer that handles each result and drops it holds at most `limit` results. A failure of `fn` is
 * thrown when its turn comes; leaving the loop early aborts the calls still running (their signal).
 */
export async function* mapInOrder<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, signal: AbortSignal) => Promise<R>,
  signal?: AbortSignal,
): AsyncGenerator<R> {
  const link = new LinkedAbort(signal);
  const inner = link.signal;
  const running: Promise<R>[] = [];
  let next = 0;
  try {
    while (next < items.length || running.length > 0) {
      while (next < items.length && running.length < limit) {
        const p = fn(items[next++], inner);
        p.catch(() => {}); // awaited in its turn; a failure after an early exit is not unhandled
        running.push(p);
      }
      yield await running.shift()!;
    }
  } finally {
    link.abort(new AirlockError("CANCELLED", "no longer needed"));
    link.dispose();
  }
}
