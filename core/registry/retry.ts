/**
 * Retry policy for registry requests: which answers are worth another try, how long to wait (exponential
 * backoff with full jitter, `Retry-After` honoured, both capped), and a cancellable sleep.
 *
 * @module
 */

import { AirlockError } from "../errors.ts";

/** How many times and how patiently to retry. */
export interface RetryPolicy {
  /** Retries after the first attempt (0 = no retry). */
  readonly retries: number;
  /** First backoff step in ms; attempt n waits a random time in [0, base·2ⁿ]. */
  readonly baseDelayMs: number;
  /** Upper bound for any single wait, including one asked for by `Retry-After`. */
  readonly maxDelayMs: number;
}

/** The default policy: 3 retries, 200 ms base, 30 s cap. */
export const defaultRetryPolicy: RetryPolicy = { retries: 3, baseDelayMs: 200, maxDelayMs: 30_000 };

/**
 * Tells whether an HTTP status is transient: 408, 429, 500, 502, 503, 504. 500 is included because the
 * distribution registry answers 500 (errcode UNKNOWN) for storage hiccups, and containers/common retries
 * errcodes other than UNAUTHORIZED/DENIED/NAME_UNKNOWN/MANIFEST_UNKNOWN.
 *
 * @example
 * ```ts
 * isRetryableStatus(503); // true
 * isRetryableStatus(404); // false
 * ```
 */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status === 500 || status === 502 || status === 503 ||
    status === 504;
}

/**
 * Parses a `Retry-After` header (delay in seconds, or an HTTP date) into milliseconds from `now`.
 * Returns `undefined` when absent or unparseable; a date in the past gives 0.
 *
 * @example
 * ```ts
 * parseRetryAfter("2"); // 2000
 * parseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT", Date.parse("Wed, 21 Oct 2015 07:27:58 GMT")); // 2000
 * ```
 */
export function parseRetryAfter(
  value: string | null | undefined,
  now: number = Date.now(),
): number | undefined {
  if (value === null || value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  if (!/[a-z]/i.test(text)) return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/**
 * How long to wait before retry number `attempt` (0-based): the server's `Retry-After` when given, else a
 * random time in [0, base·2^attempt]; always capped by `maxDelayMs`.
 *
 * @example
 * ```ts
 * backoffDelay(0, defaultRetryPolicy);        // 0…200 ms
 * backoffDelay(2, defaultRetryPolicy, 5_000); // 5000 ms
 * ```
 */
export function backoffDelay(attempt: number, policy: RetryPolicy, retryAfterMs?: number): number {
  if (retryAfterMs !== undefined) return Math.min(retryAfterMs, policy.maxDelayMs);
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.min(attempt, 30));
  return Math.round(Math.random() * ceiling);
}

/**
 * Waits `ms` milliseconds, or rejects with a `CANCELLED` {@linkcode AirlockError} as soon as `signal` aborts.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(cancelled(signal));
    const onAbort = () => {
      clearTimeout(timer);
      reject(cancelled(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function cancelled(signal: AbortSignal): AirlockError {
  return new AirlockError("CANCELLED", "operation cancelled while waiting to retry", {
    cause: signal.reason,
  });
}
