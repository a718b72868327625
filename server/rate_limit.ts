/**
 * Per-token rate limits for `airlock serve`: a token bucket per token name, holding up to one minute's worth of
 * requests and refilled continuously. Runtime-agnostic.
 *
 * @example
 * ```ts
 * const limiter = new RateLimiter({ perMinute: parseRateLimit("120/min") });
 * const r = limiter.take("ci-builder-1");
 * if (!r.ok) return tooManyRequests(r.retryAfterSeconds);
 * ```
 *
 * @module
 */
import { AirlockError } from "../core/errors.ts";

const UNITS: Readonly<Record<string, number>> = { s: 60, sec: 60, m: 1, min: 1, h: 1 / 60, hour: 1 / 60 };

/**
 * Parses `--rate-limit`: `N/min` (also `N/s`, `N/h`, or a bare `N` per minute) into requests per minute.
 *
 * @throws {AirlockError} `INVALID_ARGUMENT` for anything else, or a rate that is not positive.
 */
export function parseRateLimit(s: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:\/\s*([a-z]+))?\s*$/.exec(s);
  const factor = m ? UNITS[m[2] ?? "min"] : undefined;
  const perMinute = m && factor !== undefined ? Number(m[1]) * factor : NaN;
  if (!(perMinute > 0) || !Number.isFinite(perMinute)) {
    throw new AirlockError(
      "INVALID_ARGUMENT",
      `invalid rate limit "${s}": expected N/min, N/s or N/h, N > 0`,
    );
  }
  return perMinute;
}

/** Options of {@linkcode RateLimiter}. */
export interface RateLimiterOptions {
  /** Requests per minute per key (also the burst size). */
  readonly perMinute: number;
  /** The clock, in ms (default `Date.now`). */
  readonly now?: () => number;
}

/** The answer of {@linkcode RateLimiter.take}. */
export type RateDecision = { readonly ok: true } | { readonly ok: false; readonly retryAfterSeconds: number };

/**
 * Token buckets by key.
 */
export class RateLimiter {
  readonly #capacity: number;
  readonly #perMs: number;
  readonly #now: () => number;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  /** @param o the rate and clock */
  constructor(o: RateLimiterOptions) {
    this.#capacity = Math.max(1, o.perMinute);
    this.#perMs = o.perMinute / 60_000;
    this.#now = o.now ?? Date.now;
  }

  /** Takes one request from `key`'s bucket, or says how long to wait. */
  take(key: string): RateDecision {
    const now = this.#now();
    const b = this.#buckets.get(key) ?? { tokens: this.#capacity, at: now };
    b.tokens = Math.min(this.#capacity, b.tokens + (now - b.at) * this.#perMs);
    b.at = now;
    this.#buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - b.tokens) / this.#perMs / 1000)) };
  }
}
