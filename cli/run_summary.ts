/**
 * The last words of a list run: one summary line with the count of images in each outcome, what was written and
 * the elapsed time (`Sign summary: 48 signed, 1 unchanged, 1 skipped, 0 failed (of 50 images); 146 signatures
 * written, 3 already present; 12.3s`), and the `--output json` document of `mirror`, `save` and `load`.
 *
 * @module
 */
import type { CopyStats } from "../core/transfer/copy.ts";
import type { LineCopyResult } from "../core/transfer/mirror.ts";
import type { SaveReport } from "../core/transfer/archive.ts";
import { errorJson } from "../core/report.ts";
import { writeStdout } from "./common.ts";
import type { StatusTally } from "./list_output.ts";

const MB = 1e6;

/** A run's lines, or their tally when the run kept no lines (`list_output.ts`). */
type Lines = readonly { readonly status: string }[] | StatusTally;

/** How many lines have each status. */
function countOf(lines: Lines): (status: string) => number {
  if (!Array.isArray(lines)) return (status) => (lines as StatusTally).count(status);
  const counts = new Map<string, number>();
  for (const l of lines as readonly { readonly status: string }[]) {
    counts.set(l.status, (counts.get(l.status) ?? 0) + 1);
  }
  return (status) => counts.get(status) ?? 0;
}

/** `(of N images)`, plus the ignored lines when there are any. */
function ofImages(lines: Lines): string {
  const ignored = countOf(lines)("ignored");
  const images = (Array.isArray(lines) ? lines.length : (lines as StatusTally).lines) - ignored;
  return `(of ${images} image${images === 1 ? "" : "s"}` +
    (ignored > 0 ? `, ${ignored} line${ignored === 1 ? "" : "s"} ignored)` : ")");
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

/** What the summary of `sign` needs of each line. */
export interface SignSummaryLine {
  /** The line's outcome: `signed`, `unchanged`, `skipped`, `failed` or `ignored`. */
  readonly status: string;
  /** The manifests of a reached image, each `signed` (written now) or `present` (found). */
  readonly result?: { readonly targets: readonly { readonly status: string }[] };
  /** Signatures a failed line wrote all the same. */
  readonly written?: readonly unknown[];
}

/**
 * The summary line of `sign`.
 */
export function signSummary(lines: readonly SignSummaryLine[] | SignTally, ms: number): string {
  const n = countOf(lines);
  let written = 0;
  let present = 0;
  if (Array.isArray(lines)) {
    const t = new SignCounter();
    for (const l of lines) t.add(l);
    ({ written, present } = t);
  } else ({ written, present } = lines as SignTally);
  return `Sign summary: ${n("signed")} signed, ${n("unchanged")} unchanged, ${n("skipped")} skipped, ` +
    `${n("failed")} failed ${ofImages(lines)}; ${written} signature${written === 1 ? "" : "s"} written, ` +
    `${present} already present; ${seconds(ms)}`;
}

/** What the summary of `sign` counts beyond statuses: signatures written now, and found already there. */
export interface SignTally extends StatusTally {
  /** Signatures written by the run (failed lines' included). */
  readonly written: number;
  /** Signatures that were there already. */
  readonly present: number;
}

/**
 * Counts signatures written and present line by line (for a run that keeps no lines).
 *
 * @example
 * ```ts
 * const signatures = new SignCounter();
 * await signImages(lines, { …, onLine: (l) => (signatures.add(l), out.onLine(l)) });
 * ```
 */
export class SignCounter {
  /** Signatures written by the run. */
  written = 0;
  /** Signatures that were there already. */
  present = 0;

  /** Counts one line. */
  add(l: SignSummaryLine): void {
    for (const t of l.result?.targets ?? []) {
      if (t.status === "signed") this.written++;
      else if (t.status === "present") this.present++;
    }
    if (l.status === "failed") this.written += l.written?.length ?? 0;
  }
}

/**
 * The summary line of `sign validate`.
 */
export function validateSummary(lines: Lines, ms: number): string {
  const n = countOf(lines);
  return `Validate summary: ${n("passed")} validated, ${n("skipped")} skipped, ${n("failed")} failed ` +
    `${ofImages(lines)}; ${seconds(ms)}`;
}

/**
 * The summary line of `mirror` (`title` `Mirror`, `done` `mirrored`) and `load` (`Load`, `loaded`).
 */
export function copySummary(
  title: string,
  done: string,
  r: { readonly lines: Lines; readonly stats: CopyStats; readonly ms: number },
  ms: number,
): string {
  const n = countOf(r.lines);
  const s = r.stats;
  const secs = Math.max(r.ms / 1000, 1e-3);
  return `${title} summary: ${n("copied")} ${done}, ${n("skipped")} skipped, ${n("failed")} failed ` +
    `${ofImages(r.lines)}; ${s.blobsUploaded} blobs uploaded (${(s.bytesUploaded / MB).toFixed(1)} MB, ` +
    `${
      (s.bytesUploaded / MB / secs).toFixed(1)
    } MB/s), ${s.blobsMounted} mounted, ${s.blobsPresent} already ` +
    `there; ${s.manifestsWritten} manifests written; signature tags: ${s.attachmentsCopied} copied, ` +
    `${s.attachmentsMerged} merged; ${seconds(ms)}`;
}

/**
 * The summary line of `save`.
 */
export function saveSummary(r: SaveReport, archive: string, ms: number): string {
  const n = countOf(r.lines);
  return `Save summary: ${n("copied")} saved, ${n("skipped")} skipped, ${n("failed")} failed ` +
    `${ofImages(r.lines)}; ${r.attachments} signature manifests; archive "${archive}": ${r.blobs} blobs, ` +
    `${(r.bytes / MB).toFixed(1)} MB; ${seconds(ms)}`;
}

/**
 * Writes the `--output json` document of `mirror`, `save` or `load` to stdout: one entry per list line, in
 * list order, then the number of lines in each outcome (`copied` is the status of an image mirrored, saved or
 * loaded).
 */
export function writeCopyJson(lines: readonly LineCopyResult[], extra: Record<string, unknown> = {}): void {
  const n = countOf(lines);
  const doc = {
    images: lines.map(copyEntry),
    ...extra,
    summary: Object.fromEntries(COPY_STATUSES.map((s) => [s, n(s)])),
  };
  writeStdout(JSON.stringify(doc, null, 2) + "\n");
}

/** The statuses a copy run's JSON `summary` counts, in order. */
export const COPY_STATUSES: readonly string[] = ["copied", "skipped", "failed", "ignored"];

/** One line's entry in the `--output json` document of `mirror`, `save` or `load`. */
export function copyEntry(l: LineCopyResult): unknown {
  return {
    id: l.id,
    line: l.line,
    status: l.status,
    source: l.result?.source ?? null,
    destination: l.result?.destination ?? null,
    digest: l.result?.digest ?? null,
    platforms: l.result?.platforms ?? [],
    signatureTags: (l.result?.attachments ?? []).map((a) => ({
      digest: a.digest,
      suffix: a.suffix,
      status: a.status,
    })),
    error: errorJson(l.error),
  };
}
