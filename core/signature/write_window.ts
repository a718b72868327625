/**
 * The timing rule every airlock writer of an attachment tag (`sha256-<hex>.sig`/`.att`) obeys, and how long a
 * writer must wait before the registry's answer about its own write can be trusted.
 *
 * The registry has no conditional PUT: a writer on another host that read the tag before our PUT and writes after
 * it replaces our layer. So every writer bounds the age of what it writes:
 *
 * - **Bounded staleness (S):** a merged manifest is PUT only while the read it was built from (a `GET` or `HEAD`
 *   of the tag, or the repository's tag listing when the tag was absent) was *sent* less than
 *   {@linkcode WriteWindow.readMaxAgeMs} ago; older, the tag is checked again first.
 * - **Bounded apply time (T):** assumed of the registry: a manifest PUT takes effect within T of being sent, or
 *   never. T is at least {@linkcode WriteWindow.applyMinMs}, and {@linkcode APPLY_LATENCY_FACTOR} times the slowest
 *   registry request this writer saw in the last minute when that is longer (a loaded registry is slow for every
 *   writer at once).
 *
 * Hence every writer that read the tag before our PUT took effect has had its PUT take effect within S + T after
 * ours. A tag seen holding the same manifest twice, at least S + T apart, can no longer lose a layer of that
 * manifest to a writer that read it earlier: every later write is built from a read that saw it.
 *
 * @module
 */

/** The two bounds of the writing rule (see the module documentation). */
export interface WriteWindow {
  /** S: the oldest a read may be (from its sending) when the manifest built from it is PUT, in ms. */
  readonly readMaxAgeMs: number;
  /** The least T assumed: how long a registry may take to apply a manifest PUT, in ms. */
  readonly applyMinMs: number;
}

/** The rule airlock writers follow. All writers to one registry must use the same (or a smaller) S. */
export const WRITE_WINDOW: WriteWindow = { readMaxAgeMs: 500, applyMinMs: 500 };

/** T grows to this many times the slowest request of the last minute. */
export const APPLY_LATENCY_FACTOR = 2;

/** How long latencies count towards T, in ms. */
const LATENCY_MEMORY_MS = 60_000;
/** Slots of the latency memory (the slowest request per slot is kept). */
const SLOTS = 12;
/** Added to S + T before a confirming read: clock granularity and timer lateness. */
const MARGIN_MS = 20;

/**
 * Remembers how slow the registry has been (the slowest request per few seconds, for the last minute) and derives
 * the wait S + T + margin from it.
 *
 * @example
 * ```ts
 * const gauge = new LatencyGauge(WRITE_WINDOW);
 * gauge.record(42);
 * gauge.settleMs(); // 500 + max(500, 2 × 42) + margin
 * ```
 */
export class LatencyGauge {
  readonly #window: WriteWindow;
  readonly #now: () => number;
  readonly #slots: { at: number; max: number }[] = [];

  /**
   * Creates a gauge that has seen no request yet (T is the least apply time until it has).
   *
   * @param window the bounds (S and the least T)
   * @param now the clock, in ms (default `performance.now`)
   */
  constructor(window: WriteWindow, now: () => number = () => performance.now()) {
    this.#window = window;
    this.#now = now;
  }

  /** The bounds in use. */
  get window(): WriteWindow {
    return this.#window;
  }

  /** Records how long one registry request (or one operation of a few) took, in ms. */
  record(ms: number): void {
    const now = this.#now();
    const slotMs = LATENCY_MEMORY_MS / SLOTS;
    const last = this.#slots.at(-1);
    if (last && now - last.at < slotMs) {
      last.max = Math.max(last.max, ms);
      return;
    }
    this.#slots.push({ at: now, max: ms });
    while (this.#slots.length > SLOTS) this.#slots.shift();
  }

  /** T: the apply time assumed now, in ms. */
  applyMs(): number {
    const since = this.#now() - LATENCY_MEMORY_MS;
    const slowest = Math.max(0, ...this.#slots.filter((s) => s.at >= since).map((s) => s.max));
    return Math.max(this.#window.applyMinMs, APPLY_LATENCY_FACTOR * slowest);
  }

  /** S + T + margin: how long a tag must be seen unchanged before what it holds is safe, in ms. */
  settleMs(): number {
    return this.#window.readMaxAgeMs + this.applyMs() + MARGIN_MS;
  }
}
