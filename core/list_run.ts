/**
 * The ends every list pipeline (sign, validate, mirror) shares: its per-line results in list order, with the lines
 * that never reached the worker pool reported as hangar does, and the failed list; and the runner that gives
 * those results out one at a time over a list read as it goes ({@linkcode runListInOrder}).
 *
 * @module
 */
import { AirlockError } from "./errors.ts";
import { type PoolResult, runPoolItem } from "./pool.ts";
import type { ImageListLine, ResolvedImageLine } from "./image_list.ts";

/** What every list pipeline reports for one line. */
export interface ListLineResult {
  /** The line's id (1-based, hangar's `IMG:n`). */
  readonly id: number;
  /** The original (trimmed) line, as the failed list records it. */
  readonly line: string;
  /** The pipeline's outcome; `failed` lines go to the failed list. */
  readonly status: string;
  /** What went wrong. */
  readonly error?: AirlockError;
}

/**
 * One list line's outcome in a pipeline whose statuses are `S` and whose image result is `T` (sign:
 * `ImageSignResult`, validate: `ImageValidateResult`, mirror, save and load: `CopiedImage`). `failed` lines go
 * to the failed list; `ignored` lines are mirror-format or unknown lines.
 */
export interface LineResult<S extends string, T> extends ListLineResult {
  /** The pipeline's outcome for the line. */
  readonly status: S;
  /** The image result, when the image was reached. */
  readonly result?: T;
}

/** A list run's report: every line's result in list order, and the failed list. */
export interface ListReport<L extends ListLineResult> {
  /** One entry per list line, in list order (empty when the lines were given out as the run went). */
  readonly lines: readonly L[];
  /** The lines that failed, in list order (for the failed list). */
  readonly failed: readonly string[];
}

/** A line that never reached the pool: an ignored line, or one that did not resolve to a reference. */
export interface UnresolvedLineResult extends ListLineResult {
  /** `ignored` for mirror-format and unknown lines, `failed` for invalid ones. */
  readonly status: "ignored" | "failed";
}

/**
 * The failed list of a run: the lines whose status is `failed`, in list order.
 */
export function failedLines(lines: readonly ListLineResult[]): string[] {
  return lines.filter((l) => l.status === "failed").map((l) => l.line);
}

/**
 * What {@linkcode runListInOrder} needs of a line: the list line, and whether it names an image to work on
 * (`ok`) or never reaches the pool (`ignored`, `invalid`). An image list's lines ({@linkcode ResolvedImageLine})
 * and a mirror list's (a source and a destination per line) both are.
 */
export interface RunnableLine {
  /** `ok` lines are worked on. */
  readonly status: "ok" | "ignored" | "invalid";
  /** The list line. */
  readonly line: ImageListLine;
}

/** A line of the list that names an image (the pool works on these). */
export type ImageLine<L extends RunnableLine = ResolvedImageLine> = Extract<L, { readonly status: "ok" }>;
/** A line that never reaches the pool: ignored (mirror-format or unknown) or invalid. */
export type UnresolvedLine<L extends RunnableLine = ResolvedImageLine> = Exclude<
  L,
  { readonly status: "ok" }
>;

/** Options of {@linkcode runListInOrder}. */
export interface ListRunOptions {
  /** Images worked on at once. */
  readonly jobs: number;
  /** Deadline per image in ms, all of its work; 0 = none. */
  readonly timeoutMs: number;
  /** Stops starting images; those not started get a `CANCELLED` result. */
  readonly signal?: AbortSignal;
  /**
   * Most lines read ahead of the first line whose result is not given out yet (default 512): the results that
   * wait for an earlier line to finish — and so the memory of a run — stay bounded however long the list is.
   */
  readonly window?: number;
}

/** What a pipeline does with each line of {@linkcode runListInOrder}. */
export interface ListSteps<W, R extends ListLineResult, L extends RunnableLine = ResolvedImageLine> {
  /** The work of one image, under its deadline signal. */
  work(item: ImageLine<L>, signal: AbortSignal): Promise<W>;
  /** Called as soon as an image's work is over (completion order): log lines, progress. */
  settled?(item: ImageLine<L>, result: PoolResult<W>): void;
  /** The line's result from its work's outcome (it may wait, e.g. for a confirmation, without holding a job). */
  finish(item: ImageLine<L>, result: PoolResult<W>): Promise<R> | R;
  /** The result of a line that never reaches the pool; it logs the line in the pipeline's words. */
  unresolved(line: UnresolvedLine<L>): R | UnresolvedLineResult;
  /** Gets every line's result exactly once, in list order, as soon as it and every earlier line are done. */
  emit(result: R | UnresolvedLineResult): void | Promise<void>;
}

/**
 * Runs a list pipeline over lines that may come one at a time (a file being read): at most `jobs` images at
 * once, each under its deadline, their results handed to `steps.emit` in list order. Nothing about a line is
 * kept once it has been given out, and no more than `window` lines are read ahead of the first one still
 * running, so memory does not grow with the length of the list.
 *
 * @throws the first error of `steps.emit` or `steps.finish` (the run stops starting images then), or of reading
 *   `lines`.
 *
 * @example
 * ```ts
 * await runListInOrder(resolveImageLines(streamImageList(file)), { jobs: 4, timeoutMs: 600_000 }, {
 *   work: (item, signal) => validateImage(item.reference, options, signal),
 *   finish: (item, r) => lineResult(item, r),
 *   unresolved: (line) => ({ id: line.line.id, line: line.line.line, status: "ignored" }),
 *   emit: (r) => report.add(r),
 * });
 * ```
 */
export async function runListInOrder<W, R extends ListLineResult, L extends RunnableLine = ResolvedImageLine>(
  lines: Iterable<L> | AsyncIterable<L>,
  o: ListRunOptions,
  steps: ListSteps<W, R, L>,
): Promise<void> {
  const window = Math.max(1, o.window ?? 512);
  const done = new Map<number, R | UnresolvedLineResult>();
  const running = new Set<Promise<void>>();
  let nextOut = 0;
  let failure: { error: unknown } | undefined;
  let wake: () => void = () => {};
  let changed = new Promise<void>((r) => (wake = r));
  const signalChange = () => {
    wake();
    changed = new Promise<void>((r) => (wake = r));
  };
  // One pump gives results out in order; completions only record them and wake it.
  const complete = (
    position: number,
    result: Promise<R | UnresolvedLineResult> | R | UnresolvedLineResult,
  ) => {
    Promise.resolve(result).then((r) => {
      done.set(position, r);
      signalChange();
    }, (e) => {
      failure ??= { error: e };
      signalChange();
    });
  };
  let reading = true;
  let position = 0;
  const pump = (async () => {
    while (failure === undefined && (reading || nextOut < position)) {
      const r = done.get(nextOut);
      if (r === undefined) {
        await changed;
        continue;
      }
      done.delete(nextOut);
      try {
        await steps.emit(r);
      } catch (e) {
        failure ??= { error: e };
      }
      nextOut++;
      signalChange();
    }
  })();
  try {
    for await (const line of lines) {
      const at = position++;
      // Every line waits for the window (the results waiting for their turn stay bounded), an image for a job.
      const ok = line.status === "ok";
      while (failure === undefined && ((ok && running.size >= o.jobs) || at - nextOut >= window)) {
        await changed;
      }
      if (failure !== undefined) break;
      if (!ok) {
        complete(at, steps.unresolved(line as UnresolvedLine<L>));
        continue;
      }
      const item = line as ImageLine<L>;
      if (o.signal?.aborted) {
        const error = new AirlockError(
          "CANCELLED",
          "context canceled: the run was cancelled before this item started",
        );
        complete(at, Promise.resolve().then(() => steps.finish(item, { ok: false, error })));
        continue;
      }
      const slot = runPoolItem(item, at, (it, signal) => steps.work(it, signal), o.timeoutMs, (_, result) => {
        steps.settled?.(item, result);
        complete(at, Promise.resolve().then(() => steps.finish(item, result)));
      }).finally(() => {
        running.delete(slot);
        signalChange();
      });
      running.add(slot);
    }
  } finally {
    // Whatever stopped the reading, the images already started finish before the run returns.
    reading = false;
    signalChange();
    await Promise.all(running);
    await pump;
  }
  if (failure !== undefined) throw failure.error;
}

/** How a list pipeline gives out its line results (see {@linkcode runListInOrder}). */
export interface LineOutput<R> {
  /**
   * Gets each line's result in list order, as soon as it is final: a failed list or a report can be written as
   * the run goes.
   */
  readonly onLine?: (line: R) => void | Promise<void>;
  /**
   * Keep every line's result in the returned report (default true). `false` keeps a run's memory the same however
   * long its list is: the report's `lines` and `failed` are then empty, and `onLine` is where results go.
   */
  readonly keepLines?: boolean;
  /** The number of images in the list, for `onProgress` when the lines come one at a time. */
  readonly total?: number;
}

/**
 * Gathers a run's line results for its report (unless `keepLines` is false) and hands each to `onLine`.
 *
 * @example
 * ```ts
 * const out = lineCollector(o);
 * await runListInOrder(images, o, { …, emit: out.add });
 * return out.report();
 * ```
 */
export function lineCollector<R extends ListLineResult>(
  o: LineOutput<R>,
): { add: (line: R) => Promise<void>; report: () => { lines: R[]; failed: string[] } } {
  const lines: R[] = [];
  const keep = o.keepLines !== false;
  return {
    add: async (line) => {
      if (keep) lines.push(line);
      await o.onLine?.(line);
    },
    report: () => ({ lines, failed: failedLines(lines) }),
  };
}

/** The number of image lines, for progress: `total` when given, else counted when `images` is an array. */
export function imageCount(
  images: Iterable<RunnableLine> | AsyncIterable<RunnableLine>,
  total?: number,
): number {
  if (total !== undefined) return total;
  return Array.isArray(images) ? images.filter((r) => r.status === "ok").length : 0;
}
