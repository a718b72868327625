/**
 * The progress line of a list run (`sign`, `sign validate`, `mirror`, `save`, `load`): on a terminal only, one
 * line on stderr that is rewritten in place — images done of the total, the rate, the time left — shown once a
 * run has lasted a moment (1 s; `AIRLOCK_PROGRESS_AFTER_MS` changes it). Log records written to the same
 * terminal erase it first and draw it again after, so a record never shares a line with it; logs that go to a
 * file or a pipe never see it.
 *
 * @module
 */
import { type LogSink, syncSink } from "../core/report.ts";

/** Where a progress line is drawn (`Deno.stderr`, or a test double). */
export interface TerminalWriter {
  /** Writes bytes, returning how many were taken. */
  writeSync(p: Uint8Array): number;
  /** Whether the writer is a terminal. */
  isTerminal(): boolean;
}

/** Options of {@linkcode ProgressLine}. */
export interface ProgressOptions {
  /** What the run does, first on the line: `signing`, `validating`, `mirroring`, … */
  readonly label: string;
  /** Nothing is drawn before the run has lasted this long (ms); default 1000. */
  readonly afterMs?: number;
  /** The clock in ms; default `performance.now`. */
  readonly now?: () => number;
  /** Columns of the terminal (the line is cut to fit, so that it never wraps); default (and for 0) 80. */
  readonly columns?: () => number;
}

const ERASE = "\r\x1b[K";
const REDRAW_MS = 100;

/**
 * A time span as the progress line shows it: `45s`, `3m05s`, `1h02m`.
 */
export function shortDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

/**
 * One progress line on a terminal.
 *
 * @example
 * ```ts
 * const p = new ProgressLine(Deno.stderr, { label: "signing" });
 * p.update(3, 50); // after 1 s: "signing 3/50 (6%)  2.9/s  ETA 16s"
 * p.end();
 * ```
 */
export class ProgressLine {
  readonly #out: TerminalWriter;
  readonly #o: ProgressOptions;
  readonly #now: () => number;
  readonly #start: number;
  readonly #enc = new TextEncoder();
  #done = 0;
  #total = 0;
  #shown = false;
  #lastDraw = -Infinity;

  /**
   * @param out the terminal (stderr)
   * @param options label, delay, clock, width
   */
  constructor(out: TerminalWriter, options: ProgressOptions) {
    this.#out = out;
    this.#o = options;
    this.#now = options.now ?? (() => performance.now());
    this.#start = this.#now();
  }

  /** Whether the line is on the terminal now. */
  get shown(): boolean {
    return this.#shown;
  }

  /** The text of the line for the current counts (without the erase sequence). */
  text(): string {
    const elapsed = this.#now() - this.#start;
    const rate = elapsed > 0 ? this.#done / (elapsed / 1000) : 0;
    const pct = this.#total > 0 ? Math.floor((this.#done / this.#total) * 100) : 0;
    const left = this.#total - this.#done;
    const eta = this.#done > 0 && rate > 0 ? shortDuration((left / rate) * 1000) : "…";
    const line = `${this.#o.label} ${this.#done}/${this.#total} (${pct}%)  ${rate.toFixed(1)}/s  ETA ${eta}`;
    // One column short of the terminal's width (a full line would wrap on some terminals); 80 when unknown (0).
    const columns = this.#o.columns?.() || 80;
    const width = Math.max(20, columns - 1);
    return line.length > width ? line.slice(0, width) : line;
  }

  /** Records progress; draws the line when the run has lasted long enough (at most every 100 ms). */
  update(done: number, total: number): void {
    this.#done = done;
    this.#total = total;
    const now = this.#now();
    if (now - this.#start < (this.#o.afterMs ?? 1000)) return;
    if (now - this.#lastDraw < REDRAW_MS && done < total) return;
    this.#draw();
  }

  /** Runs `write` (a log record for the same terminal) with the line erased, then draws it again. */
  around(write: () => void): void {
    if (!this.#shown) {
      write();
      return;
    }
    this.#write(ERASE);
    this.#shown = false;
    write();
    this.#draw();
  }

  /** Erases the line for good (the run is over). */
  end(): void {
    if (this.#shown) this.#write(ERASE);
    this.#shown = false;
  }

  #draw(): void {
    this.#lastDraw = this.#now();
    this.#write(`${ERASE}${this.text()}`);
    this.#shown = true;
  }

  #write(s: string): void {
    let bytes = this.#enc.encode(s);
    while (bytes.length > 0) bytes = bytes.subarray(this.#out.writeSync(bytes));
  }
}

/** The progress line of the running command, if one is on the terminal. */
let active: ProgressLine | undefined;

/**
 * A log sink for `writer` that keeps out of the progress line's way: when `writer` is a terminal and a progress
 * line is shown, the record is written with the line erased and drawn again after it.
 */
export function progressAwareSink(writer: TerminalWriter): LogSink {
  const sink = syncSink(writer);
  if (!writer.isTerminal()) return sink;
  return (text) => (active ? active.around(() => sink(text)) : sink(text));
}

/**
 * Starts the progress line of a run on stderr, or returns `undefined` when stderr is not a terminal (then
 * nothing is ever drawn). Call `end` when the run is over.
 *
 * @example
 * ```ts
 * const progress = startProgress("signing");
 * await signImages(images, { …, onProgress: progress?.update });
 * progress?.end();
 * ```
 */
export function startProgress(
  label: string,
): { update: (done: number, total: number) => void; end: () => void } | undefined {
  if (!Deno.stderr.isTerminal()) return undefined;
  const after = Number(Deno.env.get("AIRLOCK_PROGRESS_AFTER_MS") ?? "1000");
  const line = new ProgressLine(Deno.stderr, {
    label,
    afterMs: Number.isFinite(after) && after >= 0 ? after : 1000,
    columns: () => {
      try {
        return Deno.consoleSize().columns;
      } catch {
        return 80;
      }
    },
  });
  active = line;
  return {
    update: (done, total) => line.update(done, total),
    end: () => {
      line.end();
      if (active === line) active = undefined;
    },
  };
}

/**
 * Runs the work of a list command under its progress line (`label`: `signing`, `mirroring`, …), which ends
 * however the work ends; `run` gets the `onProgress` callback to hand to the pipeline.
 */
export async function withProgress<T>(
  label: string,
  run: (onProgress?: (done: number, total: number) => void) => Promise<T>,
): Promise<T> {
  const progress = startProgress(label);
  try {
    return await run(progress?.update);
  } finally {
    progress?.end();
  }
}
