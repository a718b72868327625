/**
 * The ends every list pipeline (sign, validate, mirror) shares: its per-line results in list order, with the lines
 * that never reached the worker pool reported as hangar does, and the failed list.
 *
 * @module
 */
import type { AirlockError } from "./errors.ts";
import type { ImageListLine, ResolvedImageLine } from "./image_list.ts";
import type { Logger } from "./report.ts";

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

/** A line that never reached the pool: an ignored line, or one that did not resolve to a reference. */
export interface UnresolvedLineResult extends ListLineResult {
  /** `ignored` for mirror-format and unknown lines, `failed` for invalid ones. */
  readonly status: "ignored" | "failed";
}

/**
 * Puts a run's results back into list order: each resolved line takes its result from `results` (by line id);
 * an ignored line is logged as a warning and reported `ignored`; an invalid line is reported `failed` after
 * `logInvalid` has logged it in the pipeline's words.
 *
 * @example
 * ```ts
 * const lines = inListOrder(images, byId, log, (l, e) => log.error(`error occurred when sign [${l.line}]: ${e.message}`));
 * ```
 */
export function inListOrder<R extends ListLineResult>(
  images: readonly ResolvedImageLine[],
  results: ReadonlyMap<number, R>,
  log: Logger,
  logInvalid: (line: ImageListLine, error: AirlockError) => void,
): (R | UnresolvedLineResult)[] {
  return images.map((r) => {
    if (r.status === "ok") return results.get(r.line.id)!;
    if (r.status === "ignored") {
      log.warn(r.warning);
      return { id: r.line.id, line: r.line.line, status: "ignored" };
    }
    logInvalid(r.line, r.error);
    return { id: r.line.id, line: r.line.line, status: "failed", error: r.error };
  });
}

/**
 * The failed list of a run: the lines whose status is `failed`, in list order.
 *
 * @example
 * ```ts
 * await writeFailedList(path, failedLines(report.lines));
 * ```
 */
export function failedLines(lines: readonly ListLineResult[]): string[] {
  return lines.filter((l) => l.status === "failed").map((l) => l.line);
}
