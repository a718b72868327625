/**
 * What the cosign-compatible commands (`verify`, `verify-attestation`, `attest`, `download`, `sign-blob`,
 * `verify-blob`) share: they write to stdout and stderr directly, as cosign does, instead of hangar's log lines;
 * a failure prints cosign's two error lines; every image of a command is worked on even when one fails.
 *
 * @module
 */
import type { Command } from "commander";
import { errorMessage } from "../core/errors.ts";
import type { RegistryClient } from "../core/registry/client.ts";
import { clientFor, type GlobalFlags } from "./common.ts";
import { type CosignRegistryFlags, cosignRegistrySettings } from "./cosign_flags.ts";

const enc = new TextEncoder();

/**
 * Writes text to stderr completely.
 *
 * @example
 * ```ts
 * stderr("Verification for …\n");
 * ```
 */
export function stderr(text: string): void {
  let data = enc.encode(text);
  while (data.length > 0) data = data.subarray(Deno.stderr.writeSync(data));
}

/**
 * cosign's failure lines (cobra's `Error:` and main.go's `log.Printf`), on stderr; with `--debug` the cause too.
 *
 * @example
 * ```ts
 * reportError(e, global.debug);
 * ```
 */
export function reportError(err: unknown, debug?: boolean): void {
  const message = errorMessage(err);
  stderr(`Error: ${message}\nerror during command execution: ${message}\n`);
  if (debug && err instanceof Error && err.cause) stderr(`cause: ${errorMessage(err.cause)}\n`);
}

/**
 * A commander action for a cosign-style command: `run` gets the command's argument, its flags and the global
 * flags and returns the exit code; the process exits with it when it is not 0.
 *
 * @example
 * ```ts
 * cmd.action(cosignAction(runVerify));
 * ```
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
 * (`--tls-verify` and cosign's, see `cosign_flags.ts`). An image that fails prints cosign's error lines and the next
 * one still runs. Returns the exit code: the first failure's `exitCodeOf` (1 unless given), else 0; bad registry
 * flags print the error lines and return 1 before any image.
 *
 * @example
 * ```ts
 * return await forEachImage(images, flags, global.debug, async (client, image) => { … });
 * ```
 */
export async function forEachImage(
  images: readonly string[],
  flags: CosignRegistryFlags,
  debug: boolean | undefined,
  one: (client: RegistryClient, image: string) => Promise<void>,
  exitCodeOf: (err: unknown) => number = () => 1,
): Promise<number> {
  let registry: ReturnType<typeof cosignRegistrySettings>;
  try {
    registry = cosignRegistrySettings(flags);
  } catch (e) {
    reportError(e, debug);
    return 1;
  }
  const client = clientFor(registry.settings, registry.credentials);
  let exitCode = 0;
  try {
    for (const image of images) {
      try {
        await one(client, image);
      } catch (e) {
        reportError(e, debug);
        if (exitCode === 0) exitCode = exitCodeOf(e);
      }
    }
  } finally {
    client.close();
  }
  return exitCode;
}
