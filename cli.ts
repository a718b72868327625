/**
 * The `airlock` command line. A thin adapter: it parses flags, calls the library (`mod.ts` and the
 * command modules under `cli/`), renders results and chooses the exit code. Heavy modules are loaded
 * inside each command's action so that `airlock --help` starts fast.
 *
 * @module
 */
import { Command } from "commander";
import { VERSION } from "./core/version.ts";
import { errorMessage } from "./core/errors.ts";
import { exitCodeFor, normaliseArgs } from "./cli/common.ts";
import { registerInspect } from "./cli/inspect.ts";
import { registerKeys } from "./cli/keys.ts";
import { registerLogin } from "./cli/login.ts";
import { registerSign } from "./cli/sign.ts";
import { registerVerify } from "./cli/verify.ts";
import { registerDownload, registerVerifyAttestation } from "./cli/attestation.ts";
import { registerAttest } from "./cli/attest.ts";
import { registerValidate } from "./cli/validate.ts";
import { registerServe } from "./cli/serve.ts";
import { registerVersion } from "./cli/version.ts";
import { registerBlob } from "./cli/blob.ts";
import { registerMirror } from "./cli/mirror.ts";
import { registerSaveLoad } from "./cli/save_load.ts";

/** Builds the root command with every subcommand registered. */
export function buildProgram(): Command {
  const program = new Command("airlock")
    .description("Sign and verify container images with sigstore signatures, on air-gapped registries.")
    .version(VERSION, "--version", "print the version")
    .option("--debug", "log debug messages")
    .option("--insecure-policy", "accepted for hangar compatibility; airlock never reads policy.json to sign")
    .option("--hide-log-time", "print '-' instead of the time in log lines")
    .showHelpAfterError(false);

  registerVersion(program);
  registerValidate(registerSign(program));
  registerInspect(program);
  registerLogin(program);
  registerKeys(program);
  registerVerify(program);
  registerServe(program);
  registerVerifyAttestation(program);
  registerDownload(program);
  registerAttest(program);
  registerBlob(program);
  registerMirror(program);
  registerSaveLoad(program);
  return program;
}

if (import.meta.main) {
  try {
    await buildProgram().parseAsync(normaliseArgs(Deno.args), { from: "user" });
  } catch (e) {
    // Errors outside a command body (a bad flag value): one line, no stack trace.
    console.error(`airlock: ${errorMessage(e)}`);
    Deno.exit(exitCodeFor(e));
  }
}
