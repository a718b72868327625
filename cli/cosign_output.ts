/**
 * What the cosign-compatible commands (`verify`, `verify-attestation`, `attest`, `download`, `sign-blob`,
 * `verify-blob`) share: they write to stdout and stderr directly, as cosign does, instead of hangar's log lines;
 * a failure prints cosign's two error lines; every image of a command is worked on even when one fails.
 *
 * @module
 */
import type { Command } from "commander";
import { errorMessage } from "../core/errors.ts";
import { deadlineError, withDeadline } from "../core/pool.ts";
import type { RegistryClient } from "../core/registry/client.ts";
import { clientFor, type CommandTimeoutFlags, type GlobalFlags, parseTimeoutFlag } from "./common.ts";
import { type CosignRegistryFlags, cosignRegistrySettings } from "./cosign_flags.ts";

const enc = new TextEncoder();

/**
 * Writes text to stderr completely.
 */
export function stderr(text: string): void {
  let data = enc.encode(text);
  while (data.length > 0) data = data.subarray(Deno.stderr.writeSync(data));
}

/**
 * cosign's failure lines (cobra's `Error:` and main.go's `log.Printf`), on stderr; with `--debug` the cause too.
 */
export function reportError(err: unknown, debug?: boolean): void {
  const message = errorMessage(err);
  stderr(`Error: ${message}\nerror during command execution: ${message}\n`);
  if (debug && err instanceof Error && err.cause) stderr(`cause: ${errorMessage(err.cause)}\n`);
}

/**
 * A commander action for a cosign-style command: `run` gets the command's argument, its flags and the global
 * flags and returns the exit code; the process exits with it when it is not 0.
 */
export function cosignAction<A, F>(
  run: (arg: A, flags: F, global: GlobalFlags) => Promise<number>,
): (arg: A, flags: F, c: Command) => Promise<void> {
  return async (arg, flags, c) => {
    const code = await run(arg, flags, c.optsWithGlobals<GlobalFlags>());
    if (code !== 0) Deno.exit(code);
  };
}

/**
 * Runs `one` for every image with one registry client (closed at the end), made from the registry flags
 * (`--tls-verify` and cosign's, see `cosign_flags.ts`), under the command's deadline (`--timeout`, cosign's 3
 * minutes by default): its signal aborts when the deadline passes, and an image still running then fails with
 * `context deadline exceeded` at once, as do the images not started. An image that fails prints cosign's error
 * lines and the next one still runs. Returns the exit code: the first failure's `exitCodeOf` (1 unless given),
 * else 0; bad registry or timeout flags print the error lines and return 1 before any image.
 */
export async function forEachImage(
  images: readonly string[],
  flags: CosignRegistryFlags & CommandTimeoutFlags,
  debug: boolean | undefined,
  one: (client: RegistryClient, image: string, signal: AbortSignal) => Promise<void>,
  exitCodeOf: (err: unknown) => number = () => 1,
): Promise<number> {
  let registry: ReturnType<typeof cosignRegistrySettings>;
  let timeoutMs: number;
  try {
    registry = cosignRegistrySettings(flags);
    timeoutMs = parseTimeoutFlag(flags.timeout);
  } catch (e) {
    reportError(e, debug);
    return 1;
  }
  const deadline = new AbortController();
  const timer = timeoutMs > 0
    ? setTimeout(() => deadline.abort(deadlineError(timeoutMs)), timeoutMs)
    : undefined;
  const client = clientFor(registry.settings, registry.credentials);
  let exitCode = 0;
  try {
    for (const image of images) {
      try {
        deadline.signal.throwIfAborted();
        await withDeadline(0, (signal) => one(client, image, signal), deadline.signal);
      } catch (e) {
        const error = deadline.signal.aborted ? deadline.signal.reason : e;
        reportError(error, debug);
        if (exitCode === 0) exitCode = exitCodeOf(error);
      }
    }
  } finally {
    clearTimeout(timer);
    client.close();
  }
  return exitCode;
}
