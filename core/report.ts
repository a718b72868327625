/**
 * hangar-style log lines and the failed image list.
 *
 * Nothing here touches the console: a {@linkcode Logger} writes through the two sinks it is given (the CLI
 * passes sinks for `Deno.stdout`/`Deno.stderr`, tests pass arrays). Secret redaction is the caller's job.
 *
 * @module
 */
import { goQuote } from "./encoding/go_quote.ts";
import { AirlockError, errorMessage } from "./errors.ts";
import type { Target } from "./targets.ts";

/** Log levels, least to most severe. */
export type LogLevel = "debug" | "info" | "warn" | "error" | "fatal";

/** Receives one formatted log record (ending in `\n`; it may contain more newlines). */
export type LogSink = (text: string) => void;

/** Structured fields of a record, printed as `[KEY:value] ` (`IMG` first, then the others sorted). */
export type LogFields = Readonly<Record<string, string | number | undefined>>;

/**
 * Writes log records. Implementations never throw on a record.
 */
export interface Logger {
  /** The least severe level that is written. */
  readonly level: LogLevel;
  /** Tells whether records of `level` are written (to skip building expensive debug messages). */
  enabled(level: LogLevel): boolean;
  /** A `DEBU` record (stdout). */
  debug(message: string, fields?: LogFields): void;
  /** An `INFO` record (stdout). */
  info(message: string, fields?: LogFields): void;
  /** A `WARN` record (stderr). */
  warn(message: string, fields?: LogFields): void;
  /** An `ERRO` record (stderr). */
  error(message: string, fields?: LogFields): void;
  /** A `FATA` record (stderr); exiting is the caller's business. */
  fatal(message: string, fields?: LogFields): void;
}

/** How a {@linkcode HangarLogger} formats and routes records. */
export interface LoggerOptions {
  /** Receives debug and info records (unless `allToStderr`). */
  readonly stdout: LogSink;
  /** Receives warn, error and fatal records (and everything when `allToStderr`). */
  readonly stderr: LogSink;
  /** The least severe level written; default `info` (`debug` with `--debug`). */
  readonly level?: LogLevel;
  /** `--hide-log-time`: the timestamp becomes the literal `-`. */
  readonly hideTime?: boolean;
  /** Route every record to `stderr`, keeping stdout for machine-readable output (`--output json`). */
  readonly allToStderr?: boolean;
  /** ANSI colours around the level tag, as hangar prints on a terminal; default off. */
  readonly color?: boolean;
  /** The clock; default `() => new Date()`. Times are printed in local time. */
  readonly now?: () => Date;
}

const LEVEL_RANK: Readonly<Record<LogLevel, number>> = { debug: 0, info: 1, warn: 2, error: 3, fatal: 4 };
const LEVEL_TAG: Readonly<Record<LogLevel, string>> = {
  debug: "DEBU",
  info: "INFO",
  warn: "WARN",
  error: "ERRO",
  fatal: "FATA",
};
const LEVEL_COLOR: Readonly<Record<LogLevel, number>> = {
  debug: 37,
  info: 36,
  warn: 33,
  error: 31,
  fatal: 31,
};

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/**
 * A logger printing hangar's (nested-logrus-formatter) line layout:
 * `[HH:MM:SS] [INFO] [IMG:1] message` + `\n`; with `hideTime`, `- [INFO] message`. Debug and info go to
 * stdout, warn, error and fatal to stderr.
 *
 * @example
 * ```ts
 * const lines: string[] = [];
 * const log = new HangarLogger({ stdout: (s) => lines.push(s), stderr: (s) => lines.push(s), hideTime: true });
 * log.info("Done"); // lines: ["- [INFO] Done\n"]
 * ```
 */
export class HangarLogger implements Logger {
  /** The least severe level that is written. */
  readonly level: LogLevel;
  readonly #opts: LoggerOptions;

  /**
   * Creates a logger; `level` defaults to `info`.
   *
   * @param options sinks, level and layout options
   */
  constructor(options: LoggerOptions) {
    this.#opts = options;
    this.level = options.level ?? "info";
  }

  /** Tells whether records of `level` are written. */
  enabled(level: LogLevel): boolean {
    return LEVEL_RANK[level] >= LEVEL_RANK[this.level];
  }

  /** A `DEBU` record. */
  debug(message: string, fields?: LogFields): void {
    this.#write("debug", message, fields);
  }

  /** An `INFO` record. */
  info(message: string, fields?: LogFields): void {
    this.#write("info", message, fields);
  }

  /** A `WARN` record. */
  warn(message: string, fields?: LogFields): void {
    this.#write("warn", message, fields);
  }

  /** An `ERRO` record. */
  error(message: string, fields?: LogFields): void {
    this.#write("error", message, fields);
  }

  /** A `FATA` record. */
  fatal(message: string, fields?: LogFields): void {
    this.#write("fatal", message, fields);
  }

  /** Formats one record without writing it (exposed for tests and for callers that buffer). */
  format(level: LogLevel, message: string, fields?: LogFields): string {
    const o = this.#opts;
    let time = "-";
    if (!o.hideTime) {
      const d = (o.now ?? (() => new Date()))();
      time = `[${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}]`;
    }
    let out = time;
    if (o.color) out += `\x1b[${LEVEL_COLOR[level]}m`;
    out += ` [${LEVEL_TAG[level]}] `;
    out += formatFields(fields);
    if (o.color) out += "\x1b[0m";
    return `${out}${escapeControls(message)}\n`;
  }

  #write(level: LogLevel, message: string, fields?: LogFields): void {
    if (!this.enabled(level)) return;
    const toStderr = this.#opts.allToStderr || LEVEL_RANK[level] >= LEVEL_RANK.warn;
    (toStderr ? this.#opts.stderr : this.#opts.stdout)(this.format(level, message, fields));
  }
}

function formatFields(fields?: LogFields): string {
  if (!fields) return "";
  const keys = Object.keys(fields).filter((k) => fields[k] !== undefined);
  keys.sort((a, b) => (a === "IMG" ? -1 : b === "IMG" ? 1 : a < b ? -1 : a > b ? 1 : 0));
  return keys.map((k) => `[${k}:${escapeControls(String(fields[k]))}] `).join("");
}

/**
 * Control characters, and the Unicode format characters that reorder text, which a message may carry from an
 * image list, a registry's answer or a request: C0 except tab and newline (a record may span lines), DEL, C1,
 * the bidirectional marks, embeddings, overrides and isolates.
 */
// deno-lint-ignore no-control-regex -- control characters are what this looks for
const CONTROLS = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/**
 * Escapes what could rewrite a terminal or a log file's view (`\x1b[2J`, a `\r` that hides the start of a line,
 * a right-to-left override) as `\xNN` or `\uNNNN`, so that a log line shows what the input held.
 */
export function escapeControls(text: string): string {
  return text.replace(CONTROLS, (c) => {
    const code = c.charCodeAt(0);
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16)}`;
  });
}

/**
 * A logger that drops everything, for library callers that want no output.
 */
export function silentLogger(): Logger {
  const noop = (): void => {};
  return {
    level: "fatal",
    enabled: () => false,
    debug: noop,
    info: noop,
    warn: noop,
    error: noop,
    fatal: noop,
  };
}

/**
 * Adapts a synchronous byte writer (`Deno.stdout`, `Deno.stderr`, a `Deno.FsFile`) to a {@linkcode LogSink},
 * writing the whole record even when the writer takes it in pieces.
 */
export function syncSink(writer: { writeSync(p: Uint8Array): number }): LogSink {
  const encoder = new TextEncoder();
  return (text: string) => {
    let bytes = encoder.encode(text);
    while (bytes.length > 0) {
      const n = writer.writeSync(bytes);
      bytes = bytes.subarray(n);
    }
  };
}

/**
 * Writes the failed image list: each distinct line once, in the order given (first occurrence wins), each
 * followed by `\n`. The file is created or truncated. Unlike hangar (Go map order), the order is the input
 * order, so the file is deterministic. Returns the lines written.
 *
 * @throws {AirlockError} `IO_ERROR` when the file cannot be written.
 */
export async function writeFailedList(path: string, lines: readonly string[]): Promise<string[]> {
  const unique = [...new Set(lines)];
  try {
    await Deno.writeTextFile(path, unique.map((l) => `${l}\n`).join(""));
  } catch (e) {
    throw new AirlockError(
      "IO_ERROR",
      `failed to write the failed image list ${goQuote(path)}: ${errorMessage(e)}`,
      { cause: e },
    );
  }
  return unique;
}

/**
 * Removes a failed list left over from an earlier run, for a run in which nothing failed (hangar leaves it,
 * which misleads scripts that test for the file). A missing file is fine. Returns whether a file was removed.
 *
 * @throws {AirlockError} `IO_ERROR` when the file exists but cannot be removed.
 */
export async function removeStaleFailedList(path: string): Promise<boolean> {
  try {
    const info = await Deno.lstat(path);
    if (info.isDirectory) throw new Error("it is a directory");
    await Deno.remove(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw new AirlockError(
      "IO_ERROR",
      `failed to remove the stale failed image list ${goQuote(path)}: ${errorMessage(e)}`,
      { cause: e },
    );
  }
}

/** The JSON form of one manifest's outcome, as `--output json` and the service report it. */
export interface TargetJson {
  readonly digest: string;
  readonly identity: string;
  readonly kind: string;
  readonly platform: string | null;
  readonly status: string;
}

/**
 * The fields every JSON report of a signed or validated manifest starts with (callers add their own after them).
 */
export function targetJson(t: Target & { readonly status: string }): TargetJson {
  return {
    digest: t.digest,
    identity: t.identity,
    kind: t.kind,
    platform: t.platform ?? null,
    status: t.status,
  };
}

/**
 * The JSON form of an image's error: its code and message, or `null`.
 */
export function errorJson(e: AirlockError | undefined): { code: string; message: string } | null {
  return e ? { code: e.code, message: e.message } : null;
}
