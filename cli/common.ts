/**
 * What every command shares: registry options, the client they build, the logger, and how an error becomes
 * a log line and an exit code.
 *
 * @module
 */
import { type Command, InvalidArgumentError } from "commander";
import { AirlockError, type ErrorCode, errorMessage } from "../core/errors.ts";
import { HangarLogger, type Logger, syncSink } from "../core/report.ts";
import { RegistryClient } from "../core/registry/client.ts";
import { createCredentialLookup } from "../core/registry/credentials.ts";
import type { CredentialLookup } from "../core/registry/types.ts";
import { VERSION } from "../core/version.ts";

/** Registry options shared by the commands that talk to a registry. */
export interface RegistryFlags {
  /** `--tls-verify[=bool]`: `undefined` when absent (airlock then verifies, see DESIGN.md). */
  tlsVerify?: boolean;
  /** `--cert-dir DIR`. */
  certDir?: string;
  /** `--authfile FILE`. */
  authfile?: string;
}

/** Global flags (given before or after the command name). */
export interface GlobalFlags {
  debug?: boolean;
  insecurePolicy?: boolean;
  hideLogTime?: boolean;
}

/**
 * Parses a Go `strconv.ParseBool` value, as pflag and hangar accept it (`1 t T TRUE true True 0 f F FALSE …`).
 *
 * @example
 * ```ts
 * parseGoBool("False"); // false
 * ```
 */
export function parseGoBool(value: string): boolean {
  if (["1", "t", "T", "TRUE", "true", "True"].includes(value)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(value)) return false;
  throw new AirlockError("INVALID_ARGUMENT", `invalid boolean value "${value}"`);
}

/**
 * Commander parser for an optional boolean flag (`--flag` alone is true, `--flag=false` is false); a bad value is
 * a usage error.
 *
 * @example
 * ```ts
 * cmd.option("--sign-index [bool]", "…", optionalBool, true);
 * ```
 */
export function optionalBool(value: string | undefined): boolean {
  if (value === undefined) return true;
  try {
    return parseGoBool(value);
  } catch (e) {
    throw new InvalidArgumentError(errorMessage(e));
  }
}

/** Flags that are optional booleans in pflag: they take a value only as `--flag=value`. */
const OPTIONAL_BOOL_FLAGS = new Set([
  "--tls-verify",
  "--sign-index",
  "--src-tls-verify",
  "--dest-tls-verify",
]);

/**
 * Rewrites a bare optional-boolean flag to `--flag=true` so that, as in pflag (hangar) and unlike commander's
 * optional values, the next argument is never taken as its value: `--tls-verify IMAGE` means "verify" and IMAGE.
 *
 * @example
 * ```ts
 * normaliseArgs(["inspect", "--tls-verify", "img"]); // ["inspect", "--tls-verify=true", "img"]
 * ```
 */
export function normaliseArgs(args: readonly string[]): string[] {
  const out: string[] = [];
  for (const a of args) {
    if (a === "--") {
      out.push(...args.slice(out.length));
      break;
    }
    out.push(OPTIONAL_BOOL_FLAGS.has(a) ? `${a}=true` : a);
  }
  return out;
}

/**
 * Adds `--tls-verify[=bool]`, `--cert-dir` and `--authfile` to a command.
 *
 * @example
 * ```ts
 * addRegistryFlags(program.command("inspect"));
 * ```
 */
export function addRegistryFlags(cmd: Command): Command {
  return cmd
    .option(
      "--tls-verify [bool]",
      "require HTTPS and verify certificates (default true; false also allows plain HTTP)",
      optionalBool,
    )
    .option("--cert-dir <dir>", "use certificates (*.crt, *.cert, *.key) in DIR to connect to every registry")
    .option(
      "--authfile <file>",
      "registry credentials file (default: containers auth.json, docker config.json)",
    );
}

/**
 * Builds the registry client for a command's flags: credentials from the usual files, TLS verified unless
 * `--tls-verify=false`.
 *
 * @example
 * ```ts
 * using client = clientFor(opts);
 * ```
 */
export function clientFor(flags: RegistryFlags, credentials?: CredentialLookup): RegistryClient {
  return new RegistryClient({
    tlsVerify: flags.tlsVerify ?? true,
    certDir: flags.certDir,
    credentials: credentials ?? createCredentialLookup({ authFile: flags.authfile }),
    userAgent: `airlock/${VERSION}`,
  });
}

/**
 * The logger of a command run: hangar's line layout on stdout/stderr, debug lines with `--debug`.
 *
 * @example
 * ```ts
 * const log = loggerFor(program.opts(), { allToStderr: opts.output === "json" });
 * ```
 */
export function loggerFor(global: GlobalFlags, options: { allToStderr?: boolean } = {}): Logger {
  return new HangarLogger({
    stdout: syncSink(Deno.stdout),
    stderr: syncSink(Deno.stderr),
    level: global.debug ? "debug" : "info",
    hideTime: global.hideLogTime,
    allToStderr: options.allToStderr,
    color: Deno.stderr.isTerminal() && Deno.stdin.isTerminal() && !Deno.noColor,
  });
}

/** Exit codes by error kind: 1 for every failure, as hangar; 2 for usage errors, as most CLIs. */
const EXIT_CODES: Partial<Record<ErrorCode, number>> = {};

/**
 * The exit code for an error that ends a command.
 *
 * @example
 * ```ts
 * Deno.exit(exitCodeFor(err));
 * ```
 */
export function exitCodeFor(err: unknown): number {
  return err instanceof AirlockError ? EXIT_CODES[err.code] ?? 1 : 1;
}

/**
 * Runs a command body: any error is printed once as a `FATA` line and the process exits with its code.
 *
 * @example
 * ```ts
 * cmd.action((opts) => runCommand(program, async (log) => { … }));
 * ```
 */
export async function runCommand(
  global: GlobalFlags,
  body: (log: Logger) => Promise<number | void>,
  options: { allToStderr?: boolean } = {},
): Promise<void> {
  const log = loggerFor(global, options);
  let code = 0;
  try {
    code = (await body(log)) ?? 0;
  } catch (e) {
    log.fatal(errorMessage(e));
    if (global.debug && e instanceof Error && e.cause) log.debug(`cause: ${errorMessage(e.cause)}`);
    code = exitCodeFor(e);
  }
  if (code !== 0) Deno.exit(code);
}

/**
 * Writes bytes to stdout completely (for raw manifests and JSON documents).
 *
 * @example
 * ```ts
 * writeStdout(new TextEncoder().encode("{}\n"));
 * ```
 */
export function writeStdout(bytes: Uint8Array | string): void {
  let data = typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes;
  while (data.length > 0) data = data.subarray(Deno.stdout.writeSync(data));
}

const DURATION_UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  "μs": 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/**
 * Parses a Go `time.ParseDuration` string (`10m`, `90s`, `1h30m`, `1.5s`, `0`) into milliseconds.
 *
 * @example
 * ```ts
 * parseGoDuration("1h30m"); // 5_400_000
 * ```
 */
export function parseGoDuration(s: string): number {
  if (s === "0") return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;
  let rest = s;
  let sign = 1;
  if (rest.startsWith("-") || rest.startsWith("+")) {
    sign = rest.startsWith("-") ? -1 : 1;
    rest = rest.slice(1);
  }
  let total = 0;
  let pos = 0;
  while (pos < rest.length) {
    re.lastIndex = pos;
    const m = re.exec(rest);
    if (!m) throw new AirlockError("INVALID_ARGUMENT", `time: invalid duration "${s}"`);
    total += parseFloat(m[1]) * DURATION_UNITS[m[2]];
    pos = re.lastIndex;
  }
  if (rest.length === 0) throw new AirlockError("INVALID_ARGUMENT", `time: invalid duration "${s}"`);
  return sign * total;
}

/**
 * Parses an integer as Go's `strconv.ParseInt(s, 0, 64)` does (`10`, `0x10`, `0o17`, `0b11`, `017`).
 *
 * @example
 * ```ts
 * parseGoInt("0x10"); // 16
 * ```
 */
export function parseGoInt(s: string): number {
  const m = /^([+-]?)(0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|0[0-7_]*|[1-9][0-9_]*)$/.exec(s);
  if (!m) throw new AirlockError("INVALID_ARGUMENT", `invalid integer "${s}"`);
  const body = m[2].replaceAll("_", "");
  let n: number;
  if (/^0[xX]/.test(body)) n = parseInt(body.slice(2), 16);
  else if (/^0[oO]/.test(body)) n = parseInt(body.slice(2), 8);
  else if (/^0[bB]/.test(body)) n = parseInt(body.slice(2), 2);
  else if (body.length > 1 && body.startsWith("0")) n = parseInt(body.slice(1), 8);
  else n = parseInt(body, 10);
  return m[1] === "-" ? -n : n;
}

/** Collects a repeatable option's values. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/**
 * Handles Ctrl-C (and SIGTERM) as hangar does: the first signal stops scheduling new work and lets in-flight
 * writes finish; a second one exits with 130 at once. Returns the signal to pass to the pipeline and a function
 * that removes the handlers.
 *
 * @example
 * ```ts
 * const { signal, dispose } = interruptSignal(log);
 * ```
 */
export function interruptSignal(log: Logger): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const handler = () => {
    if (controller.signal.aborted) {
      log.warn("airlock was forced to stop.");
      Deno.exit(130);
    }
    log.warn("Abort: [interrupt] received, waiting for in-flight images to finish");
    log.warn("Use 'Ctrl-C' again to force exit (not recommended)");
    controller.abort(new AirlockError("CANCELLED", "context canceled: interrupted"));
  };
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  for (const s of signals) Deno.addSignalListener(s, handler);
  return {
    signal: controller.signal,
    dispose: () => {
      for (const s of signals) Deno.removeSignalListener(s, handler);
    },
  };
}
