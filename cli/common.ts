/**
 * What every command shares: registry options, the client they build, the logger, and how an error becomes
 * a log line and an exit code. What only some commands share lives beside it: `list_flags.ts` (the image-list
 * commands), `key_flags.ts` (signing and verification keys), `cosign_output.ts` (cosign-style commands).
 *
 * @module
 */
import { type Command, InvalidArgumentError } from "commander";
import { loadRegistriesD, type RegistriesDConfig } from "../core/config/registries_d.ts";
import { AirlockError, errorMessage } from "../core/errors.ts";
import { parseGoBool, parseGoDuration, parseGoInt } from "../core/encoding/go_values.ts";
import { HangarLogger, type Logger } from "../core/report.ts";
import { progressAwareSink } from "./progress.ts";
import type { RegistrySettings } from "../core/registry/settings.ts";

export { clientFor } from "../core/registry/settings.ts";

/** Registry options shared by the commands that talk to a registry: `--tls-verify`, `--cert-dir`, `--authfile`. */
export type RegistryFlags = RegistrySettings;

/** Global flags (given before or after the command name). */
export interface GlobalFlags {
  debug?: boolean;
  insecurePolicy?: boolean;
  hideLogTime?: boolean;
}

/**
 * Commander parser for an optional boolean flag (`--flag` alone is true, `--flag=false` is false); a bad value is
 * a usage error.
 */
export function optionalBool(value: string | undefined): boolean {
  if (value === undefined) return true;
  try {
    return parseGoBool(value);
  } catch (e) {
    throw new InvalidArgumentError(errorMessage(e));
  }
}

/**
 * Parses the value of an integer flag as pflag does (Go `strconv.ParseInt(s, 0, 64)`); the error names the flag.
 *
 * @throws {AirlockError} `INVALID_ARGUMENT`: `--jobs: invalid integer "abc"`.
 */
export function intFlag(flag: string, value: string): number {
  try {
    return parseGoInt(value);
  } catch (e) {
    throw usageError(`${flag}: ${errorMessage(e)}`);
  }
}

/**
 * Parses the value of a duration flag as pflag does (Go `time.ParseDuration`), in milliseconds; the error names the
 * flag.
 *
 * @throws {AirlockError} `INVALID_ARGUMENT`: `--timeout: time: invalid duration "abc"`.
 */
export function durationFlag(flag: string, value: string): number {
  try {
    return parseGoDuration(value);
  } catch (e) {
    throw usageError(`${flag}: ${errorMessage(e)}`);
  }
}

/**
 * Adds `--tls-verify[=bool]`, `--cert-dir` and `--authfile` to a command.
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

/** `--timeout` of a command that works on one image or a few (see {@linkcode addCommandTimeoutFlag}). */
export interface CommandTimeoutFlags {
  timeout: string;
}

/** The default `--timeout` of the cosign-like and single-image commands: cosign's 3 minutes. */
export const DEFAULT_COMMAND_TIMEOUT = "3m0s";

/**
 * Adds `--timeout DURATION` (default 3m0s, as cosign): the deadline of the whole command, every registry request,
 * retry and wait included. `0` means none.
 */
export function addCommandTimeoutFlag(cmd: Command): Command {
  return cmd.option(
    "--timeout <duration>",
    "timeout for the whole command, e.g. 90s, 5m (0: none)",
    DEFAULT_COMMAND_TIMEOUT,
  );
}

/**
 * Parses a `--timeout` value (a Go duration, ≥ 0) into milliseconds.
 *
 * @throws {AirlockError} `INVALID_ARGUMENT` for a malformed or negative duration.
 */
export function parseTimeoutFlag(value: string): number {
  const ms = durationFlag("--timeout", value);
  if (!(ms >= 0) || !Number.isFinite(ms)) throw usageError(`--timeout: "${value}" must be 0 or more`);
  return ms;
}

/**
 * Adds `--registries.d DIR` (where the sigstore attachment settings are read) to a command.
 */
export function addRegistriesDFlag(cmd: Command): Command {
  return cmd.option("--registries.d <dir>", "registries.d directory (default: the containers locations)");
}

/**
 * Loads the registries.d configuration of `--registries.d` (or the containers locations); with `log`, says at
 * debug level when none exists and hangar's default is used.
 */
export async function registriesDFor(dir: string | undefined, log?: Logger): Promise<RegistriesDConfig> {
  const registriesD = await loadRegistriesD({ dir });
  if (registriesD.builtinDefault) {
    log?.debug(
      "No registries.d directory exists: using hangar's default (default-docker: use-sigstore-attachments: true)",
    );
  }
  return registriesD;
}

/**
 * A usage error: a missing, conflicting or malformed flag (`INVALID_ARGUMENT`).
 */
export function usageError(message: string): AirlockError {
  return new AirlockError("INVALID_ARGUMENT", message);
}

/** The logger of a command run: hangar's line layout on stdout/stderr, debug lines with `--debug`. */
function loggerFor(global: GlobalFlags, options: { allToStderr?: boolean } = {}): Logger {
  return new HangarLogger({
    stdout: progressAwareSink(Deno.stdout),
    stderr: progressAwareSink(Deno.stderr),
    level: global.debug ? "debug" : "info",
    hideTime: global.hideLogTime,
    allToStderr: options.allToStderr,
    color: Deno.stderr.isTerminal() && Deno.stdin.isTerminal() && !Deno.noColor,
  });
}

/**
 * The exit code for an error that ends a command: 1 for every failure (usage errors too), as hangar.
 */
export function exitCodeFor(_err: unknown): number {
  return 1;
}

/**
 * Runs a command body: any error is printed once as a `FATA` line and the process exits with its code.
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
 */
export function writeStdout(bytes: Uint8Array | string): void {
  let data = typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes;
  while (data.length > 0) data = data.subarray(Deno.stdout.writeSync(data));
}

/** Collects a repeatable option's values. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/**
 * Handles Ctrl-C (and SIGTERM) as hangar does: the first signal stops scheduling new work and lets in-flight
 * writes finish; a second one exits with 130 at once. Returns the signal to pass to the pipeline and a function
 * that removes the handlers.
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
