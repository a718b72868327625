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
import { exitCodeFor } from "./cli/common.ts";
import { adoptPflagBooleans, normaliseArgs } from "./cli/flag_syntax.ts";
import { registerSign } from "./cli/sign.ts";
import { registerValidate } from "./cli/validate.ts";
import { registerVerify } from "./cli/verify.ts";
import { registerDownload, registerVerifyAttestation } from "./cli/attestation.ts";
import { registerAttest } from "./cli/attest.ts";
import { registerInspect } from "./cli/inspect.ts";
import { registerMirror } from "./cli/mirror.ts";
import { registerSaveLoad } from "./cli/save_load.ts";
import { registerLogin } from "./cli/login.ts";
import { registerKeys } from "./cli/keys.ts";
import { registerBlob } from "./cli/blob.ts";
import { registerServe } from "./cli/serve.ts";
import { registerVersion } from "./cli/version.ts";

/** Builds the root command with every subcommand registered. */
export function buildProgram(): Command {
  const program = new Command("airlock")
    .description("Sign and verify container images with sigstore signatures, on air-gapped registries.")
    .version(VERSION, "--version", "print the version")
    .option("--debug", "log debug messages")
    .option("--insecure-policy", "accepted for hangar compatibility; airlock never reads policy.json to sign")
    .option("--hide-log-time", "print '-' instead of the time in log lines")
    .showHelpAfterError(false);

  // Registration order is the order of `airlock --help`: signing, verification and attestations first, then
  // inspection, copying, registry logins, keys, blobs, the service, the version.
  registerValidate(registerSign(program));
  registerVerify(program);
  registerVerifyAttestation(program);
  registerAttest(program);
  registerDownload(program);
  registerInspect(program);
  registerMirror(program);
  registerSaveLoad(program);
  registerLogin(program);
  registerKeys(program);
  registerBlob(program);
  registerServe(program);
  registerVersion(program);
  adoptPflagBooleans(program);
  return program;
}

if (import.meta.main) {
  try {
    const program = buildProgram();
    // `deno task airlock -- ARGS` passes the `--` on: it separates the task's arguments, not airlock's.
    const args = Deno.args[0] === "--" ? Deno.args.slice(1) : Deno.args;
    await program.parseAsync(normaliseArgs(program, args), { from: "user" });
  } catch (e) {
    // Errors outside a command body (a bad flag value): one line, no stack trace.
    console.error(`airlock: ${errorMessage(e)}`);
    Deno.exit(exitCodeFor(e));
  }
}
