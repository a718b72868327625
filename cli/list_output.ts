/**
 * The outputs of a list run (`sign`, `sign validate`, `mirror`) written as the run goes, so that a list of any length costs
 * the same memory: each line's result arrives once, in list order ({@linkcode ListRunOutput.onLine}); its status
 * is counted for the summary, a failed line is appended to the failed list file (written 64 KiB at a time; the
 * file is created at the first failure, so a run without one leaves none), and with `--output json` its entry is
 * appended to a temporary file that is printed as the JSON document at the end — byte for byte what
 * `JSON.stringify(document, null, 2)` of the whole run would print. Only the failed lines' texts are kept (to
 * write each once, and for the closing log line that names them).
 *
 * @module
 */
import { AirlockError, errorMessage } from "../core/errors.ts";
import { goQuote } from "../core/encoding/go_quote.ts";
import { errorJson } from "../core/report.ts";
import type { LineOutput } from "../core/list_run.ts";
import { writeStdout } from "./common.ts";

const enc = new TextEncoder();
/** Text gathered before it is written (a write per line would cost a system call per line). */
const FLUSH_AT = 64 * 1024;

/** What the outputs need of every line: its text (for the failed list) and its outcome. */
export interface RunLine {
  readonly line: string;
  readonly status: string;
}

/** One line of a sign or validate run, as their `--output json` entries read it ({@linkcode targetsEntry}). */
export interface OutputLine<T> extends RunLine {
  readonly id: number;
  readonly result?: { readonly reference: string; readonly digest: string; readonly targets: readonly T[] };
  readonly error?: AirlockError;
}

/** The `--output json` entries: how each line is written, and the statuses counted under `summary`, in order. */
export interface JsonEntries<L> {
  /** One line's entry in the `images` array. */
  readonly entry: (line: L) => unknown;
  /** The statuses counted under `summary`, in order. */
  readonly statuses: readonly string[];
}

/**
 * The entry of a sign or validate line: its reference, status and digest, its targets under `targetsKey`
 * (`signed` for sign, `targets` for validate), each written by `target`, and its error.
 */
export function targetsEntry<T>(
  targetsKey: string,
  target: (t: T) => unknown,
): (l: OutputLine<T>) => unknown {
  return (l) => ({
    id: l.id,
    line: l.line,
    reference: l.result?.reference ?? null,
    status: l.status,
    digest: l.result?.digest ?? null,
    [targetsKey]: (l.result?.targets ?? []).map(target),
    error: errorJson(l.error),
  });
}

/** How many lines had each status, and how many there were (what a summary line needs). */
export interface StatusTally {
  /** Lines with `status`. */
  count(status: string): number;
  /** Every line, ignored ones included. */
  readonly lines: number;
}

/**
 * Writes a run's failed list, JSON document and tally as its lines come (see the module doc).
 *
 * @example
 * ```ts
 * const out = await ListRunOutput.open("validate-failed.txt", json ? { entry: targetsEntry("targets", …), … } : undefined);
 * try {
 *   await validateImages(lines, { …, keepLines: false, onLine: out.onLine });
 *   out.printJson();
 * } finally {
 *   await out.close();
 * }
 * ```
 */
export class ListRunOutput<L extends RunLine> implements StatusTally {
  readonly #failedPath: string;
  #failedFile?: Deno.FsFile;
  readonly #failed = new Set<string>();
  readonly #counts = new Map<string, number>();
  readonly #json?: JsonEntries<L> & { readonly path: string; readonly file: Deno.FsFile };
  #entries = 0;
  #lines = 0;
  #failedText = "";
  #jsonText = "";

  private constructor(failedPath: string, json?: JsonEntries<L> & { path: string; file: Deno.FsFile }) {
    this.#failedPath = failedPath;
    this.#json = json;
  }

  /**
   * Prepares the outputs: the failed list at `failedPath` (written only when a line fails), and with `json` a
   * temporary file for the entries.
   */
  static async open<L extends RunLine>(
    failedPath: string,
    json?: JsonEntries<L>,
  ): Promise<ListRunOutput<L>> {
    if (!json) return new ListRunOutput<L>(failedPath);
    const path = await Deno.makeTempFile({ prefix: "airlock-report-", suffix: ".json" });
    const file = await Deno.open(path, { write: true, read: true });
    return new ListRunOutput<L>(failedPath, { ...json, path, file });
  }

  /**
   * The output options of a run whose lines all go here: `total` images for the progress line, no line kept in
   * the run's report, each line given to {@linkcode ListRunOutput.onLine} (after `tap`, when given).
   */
  receiver(total: number, tap?: (l: L) => void): LineOutput<L> {
    return {
      total,
      keepLines: false,
      onLine: tap ? (l) => (tap(l), this.onLine(l)) : this.onLine,
    };
  }

  /** Takes one line's result (in list order). */
  readonly onLine = async (l: L): Promise<void> => {
    this.#lines++;
    this.#counts.set(l.status, (this.#counts.get(l.status) ?? 0) + 1);
    if (l.status === "failed" && !this.#failed.has(l.line)) {
      this.#failed.add(l.line);
      await this.#appendFailed(l.line);
    }
    if (this.#json) {
      const entry = this.#json.entry(l);
      this.#jsonText += (this.#entries++ === 0 ? "" : ",\n") + "    " +
        JSON.stringify(entry, null, 2).replaceAll("\n", "\n    ");
      if (this.#jsonText.length >= FLUSH_AT) await this.#flushJson();
    }
  };

  /**
   * Writes out what is gathered: the failed list is complete on disk once this resolves (the run calls it when
   * its lines are done, before the summary).
   */
  async flush(): Promise<void> {
    await this.#flushFailed();
    await this.#flushJson();
  }

  async #flushJson(): Promise<void> {
    if (!this.#json || this.#jsonText === "") return;
    const text = this.#jsonText;
    this.#jsonText = "";
    await writeAll(this.#json.file, enc.encode(text));
  }

  /** Lines with `status`. */
  count(status: string): number {
    return this.#counts.get(status) ?? 0;
  }

  /** Every line seen. */
  get lines(): number {
    return this.#lines;
  }

  /** The failed lines, each once, in list order (already in the failed list file). */
  get failed(): string[] {
    return [...this.#failed];
  }

  /** Prints the `--output json` document (the entries read back from the temporary file, a chunk at a time). */
  async printJson(): Promise<void> {
    const j = this.#json;
    if (!j) return;
    await this.#flushJson();
    writeStdout(this.#entries === 0 ? '{\n  "images": [],\n' : '{\n  "images": [\n');
    await j.file.seek(0, Deno.SeekMode.Start);
    const buf = new Uint8Array(64 * 1024);
    for (;;) {
      const n = await j.file.read(buf);
      if (n === null) break;
      writeStdout(buf.subarray(0, n));
    }
    const summary = Object.fromEntries(j.statuses.map((s) => [s, this.count(s)]));
    writeStdout(
      (this.#entries === 0 ? "" : "\n  ],\n") + '  "summary": ' +
        JSON.stringify(summary, null, 2).replaceAll("\n", "\n  ") + "\n}\n",
    );
  }

  /**
   * Runs a command's list work with this output (each line goes out through {@linkcode ListRunOutput.onLine} as
   * the run gives it out), then writes the rest of the failed list and prints the JSON document; the output is
   * closed however the work ends.
   */
  async around<T>(run: () => Promise<T>): Promise<T> {
    try {
      const result = await run();
      await this.flush();
      await this.printJson();
      return result;
    } finally {
      await this.close();
    }
  }

  /**
   * Closes the failed list (what it gathered written out first, so that a run stopped by an error still leaves the
   * lines that failed before it) and removes the temporary file.
   */
  async close(): Promise<void> {
    // A run that ended normally has flushed already; after an error, that error is the one reported.
    await this.#flushFailed().catch(() => {});
    try {
      this.#failedFile?.close();
    } catch { /* closed */ }
    if (this.#json) {
      try {
        this.#json.file.close();
      } catch { /* closed */ }
      await Deno.remove(this.#json.path).catch(() => {});
    }
  }

  async #appendFailed(line: string): Promise<void> {
    this.#failedText += `${line}\n`;
    if (this.#failedText.length >= FLUSH_AT) await this.#flushFailed();
  }

  async #flushFailed(): Promise<void> {
    if (this.#failedText === "") return;
    const text = this.#failedText;
    this.#failedText = "";
    try {
      this.#failedFile ??= await Deno.open(this.#failedPath, { write: true, create: true, truncate: true });
      await writeAll(this.#failedFile, enc.encode(text));
    } catch (e) {
      throw new AirlockError(
        "IO_ERROR",
        `failed to write the failed image list ${goQuote(this.#failedPath)}: ${errorMessage(e)}`,
        { cause: e },
      );
    }
  }
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let rest = bytes;
  while (rest.length > 0) rest = rest.subarray(await file.write(rest));
}
