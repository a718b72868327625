/**
 * Verdicts remembered: {@linkcode VerdictCache} answers "may this image run?" from memory when it can, and
 * otherwise asks the trust rules once, however many reviews ask at the same time.
 *
 * - A tag is first resolved to the digest it names now (the manifest is read and hashed; a header is never
 *   trusted). That resolution is remembered for at most `ttlMs`, so a moved tag is seen within the TTL.
 * - Verdicts are remembered per (reference as judged, digest) — the digest and the name the policy sees, since
 *   identity rules depend on the tag — for `ttlMs` when accepted, for at most 30 s when the signatures refuse the
 *   image (so that an image signed a moment later is admitted soon), and never when no verdict could be reached
 *   (registry errors, missing images, timeouts).
 * - Concurrent checks of one image share one evaluation. Evaluations run at most `concurrency` at a time; each is
 *   bounded by `backgroundLimitMs` and goes on after the review that started it has given up (its admission
 *   timeout), so that the retry the API server or the controller makes finds the verdict ready.
 * - At most `maxEntries` verdicts and resolutions are kept (the oldest are dropped first).
 *
 * No Deno API and no clock of its own: the clock and the two registry steps come in as functions.
 *
 * @module
 */
import { type ErrorCode, errorMessage, isAirlockError } from "../errors.ts";
import { formatReference, type Reference } from "../reference.ts";
import type { Verdict } from "./evaluate.ts";

/** A verdict as the cache hands it out. */
export interface CheckedVerdict extends Verdict {
  /** Whether it came from memory. */
  readonly cached: boolean;
}

/** Options of {@linkcode VerdictCache}. */
export interface VerdictCacheOptions {
  /** Reads the digest a tag names now (digest-checked). */
  readonly resolve: (ref: Reference, signal: AbortSignal) => Promise<string>;
  /** The verdict when the rules give it without the registry (a scope that rejects everything), else undefined. */
  readonly early?: (ref: Reference) => Verdict | undefined;
  /** Judges `ref` (a tag, or a digest alone); for a tag, `digest` is what it was just resolved to. */
  readonly evaluate: (ref: Reference, digest: string | undefined, signal: AbortSignal) => Promise<Verdict>;
  /** How long verdicts and resolutions are kept, in ms (0: not at all). */
  readonly ttlMs: number;
  /** How long a refusal is kept (default min(ttlMs, 30 s)). */
  readonly denialTtlMs?: number;
  /** The longest one evaluation may run, in ms (default 60 s). */
  readonly backgroundLimitMs?: number;
  /** Evaluations at once (default 16); more wait. */
  readonly concurrency?: number;
  /** Evaluations waiting before new ones are refused (default 1000). */
  readonly maxWaiting?: number;
  /** Verdicts and resolutions kept at most (default 10000 each). */
  readonly maxEntries?: number;
  /** The clock in ms (default `Date.now`). */
  readonly now?: () => number;
}

interface Entry<T> {
  readonly value: T;
  readonly expires: number;
}

/** A size-bounded map whose entries expire. */
class ExpiringMap<T> {
  readonly #map = new Map<string, Entry<T>>();
  constructor(readonly max: number, readonly now: () => number) {}

  get(key: string): T | undefined {
    const e = this.#map.get(key);
    if (e === undefined) return undefined;
    if (e.expires <= this.now()) {
      this.#map.delete(key);
      return undefined;
    }
    return e.value;
  }

  set(key: string, value: T, ttlMs: number): void {
    if (ttlMs <= 0) return;
    this.#map.delete(key);
    while (this.#map.size >= this.max) this.#map.delete(this.#map.keys().next().value!);
    this.#map.set(key, { value, expires: this.now() + ttlMs });
  }

  get size(): number {
    return this.#map.size;
  }

  clear(): void {
    this.#map.clear();
  }
}

/** Hit and miss counts. */
export interface CacheStats {
  /** Verdicts answered from memory. */
  readonly hits: number;
  /** Verdicts that needed an evaluation. */
  readonly misses: number;
  /** Tag resolutions answered from memory. */
  readonly resolutionHits: number;
  /** Evaluations running now. */
  readonly running: number;
  /** Evaluations waiting for a slot. */
  readonly waiting: number;
}

/**
 * The verdict cache (see the module doc).
 *
 * @example
 * ```ts
 * const cache = new VerdictCache({ resolve, evaluate, ttlMs: 300_000 });
 * const v = await cache.check(parseReference("reg.io/app:1"));
 * ```
 */
export class VerdictCache {
  readonly #o: VerdictCacheOptions;
  readonly #now: () => number;
  readonly #verdicts: ExpiringMap<Verdict>;
  readonly #digests: ExpiringMap<string>;
  readonly #inflight = new Map<string, Promise<Verdict>>();
  readonly #queue: (() => void)[] = [];
  readonly #stop = new AbortController();
  #running = 0;
  #hits = 0;
  #misses = 0;
  #resolutionHits = 0;

  /**
   * Creates an empty cache.
   *
   * @param options the registry steps, the TTL, the limits
   */
  constructor(options: VerdictCacheOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    const max = options.maxEntries ?? 10_000;
    this.#verdicts = new ExpiringMap(max, this.#now);
    this.#digests = new ExpiringMap(max, this.#now);
  }

  /** Counters for `/metrics`. */
  get stats(): CacheStats {
    return {
      hits: this.#hits,
      misses: this.#misses,
      resolutionHits: this.#resolutionHits,
      running: this.#running,
      waiting: this.#queue.length,
    };
  }

  /** Forgets every verdict and resolution (evaluations in flight still finish). */
  clear(): void {
    this.#verdicts.clear();
    this.#digests.clear();
  }

  /** Cancels every evaluation (shutdown); later checks answer `error`. */
  close(): void {
    this.#stop.abort();
    for (const wake of this.#queue.splice(0)) wake();
  }

  /**
   * The verdict for `ref` (normalised, with a tag or a digest; a digest reference is judged by its digest alone).
   * Never rejects.
   */
  async check(ref: Reference): Promise<CheckedVerdict> {
    const early = this.#o.early?.(ref.digest !== undefined ? { ...ref, tag: undefined } : ref);
    if (early) return { ...early, cached: false };
    if (ref.digest !== undefined) {
      const pinned: Reference = { registry: ref.registry, repository: ref.repository, digest: ref.digest };
      return await this.#verdictFor(pinned, ref.digest);
    }
    const tagKey = formatReference(ref);
    let digest = this.#digests.get(tagKey);
    if (digest !== undefined) this.#resolutionHits++;
    else {
      // A failed resolution throws inside the slot and comes back as an `error` verdict.
      const resolved = await this.#shared(`resolve ${tagKey}`, async (signal) => {
        const d = await this.#o.resolve(ref, signal);
        this.#digests.set(tagKey, d, this.#o.ttlMs);
        return { allowed: true, digest: d, reason: "resolved", kind: "verified" };
      });
      if (resolved.kind !== "verified" || resolved.digest === undefined) {
        return { ...resolved, cached: false };
      }
      digest = resolved.digest;
    }
    return await this.#verdictFor(ref, digest);
  }

  async #verdictFor(ref: Reference, digest: string): Promise<CheckedVerdict> {
    const key = `${formatReference(ref)}|${digest}`;
    const known = this.#verdicts.get(key);
    if (known !== undefined) {
      this.#hits++;
      return { ...known, cached: true };
    }
    this.#misses++;
    const v = await this.#shared(`verdict ${key}`, async (signal) => {
      const verdict = await this.#o.evaluate(ref, ref.digest === undefined ? digest : undefined, signal);
      const judged = verdict.digest ?? digest;
      if (verdict.kind === "verified" || verdict.kind === "rejected") {
        const ttl = verdict.kind === "verified"
          ? this.#o.ttlMs
          : this.#o.denialTtlMs ?? Math.min(this.#o.ttlMs, 30_000);
        this.#verdicts.set(`${formatReference(ref)}|${judged}`, verdict, ttl);
        // A tag that moved between the resolution and the evaluation: remember where it points now.
        if (ref.digest === undefined && judged !== digest) {
          this.#digests.set(formatReference(ref), judged, this.#o.ttlMs);
        }
      }
      return verdict;
    });
    return { ...v, cached: false };
  }

  /** Runs `work` once per key at a time, in a concurrency slot, bounded by the background limit. */
  #shared(key: string, work: (signal: AbortSignal) => Promise<Verdict>): Promise<Verdict> {
    const running = this.#inflight.get(key);
    if (running) return running;
    const p = this.#slot(work).finally(() => this.#inflight.delete(key));
    this.#inflight.set(key, p);
    return p;
  }

  async #slot(work: (signal: AbortSignal) => Promise<Verdict>): Promise<Verdict> {
    if (this.#running < (this.#o.concurrency ?? 16)) this.#running++;
    else if (this.#queue.length >= (this.#o.maxWaiting ?? 1000)) {
      return refusal("too many image checks are waiting; try again", "UNAVAILABLE");
    } else await new Promise<void>((resolve) => this.#queue.push(resolve)); // the slot is handed over
    try {
      if (this.#stop.signal.aborted) return refusal("the service is shutting down", "UNAVAILABLE");
      const limit = AbortSignal.timeout(this.#o.backgroundLimitMs ?? 60_000);
      return await work(AbortSignal.any([this.#stop.signal, limit]));
    } catch (e) {
      return refusal(errorMessage(e), isAirlockError(e) ? e.code : "REGISTRY_ERROR");
    } finally {
      const next = this.#queue.shift();
      if (next) next();
      else this.#running--;
    }
  }
}

function refusal(reason: string, code: ErrorCode): Verdict {
  return { allowed: false, reason, kind: "error", code };
}
