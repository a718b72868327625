/**
 * cosign's registry and upload flags, so that cosign command lines run unchanged on the cosign-style commands
 * (`verify`, `verify-attestation`, `download attestation`, `attest`, `sign-blob`). The registry flags are cosign's
 * `RegistryOptions` (`cmd/cosign/cli/options/registry.go`) mapped onto the settings `--tls-verify` drives:
 *
 * | cosign                         | airlock                                                                     |
 * | ------------------------------ | --------------------------------------------------------------------------- |
 * | `--allow-insecure-registry`    | no certificate checks (https only)                                          |
 * | `--allow-http-registry`        | plain http allowed after https fails (certificates of https still checked)  |
 * | both                           | `--tls-verify=false`                                                        |
 * | `--registry-username/-password`| Basic credentials for every registry, instead of the auth files             |
 *
 * The upload flags are cosign's `--tlog-upload` (airlock uploads nowhere: only `false` is accepted) and `-y/--yes`
 * (there is nothing to confirm).
 *
 * @module
 */
import type { Command } from "commander";
import type { CredentialLookup } from "../core/registry/types.ts";
import type { RegistrySettings } from "../core/registry/settings.ts";
import { addRegistryFlags, type RegistryFlags, usageError } from "./common.ts";

/** `--tls-verify`, `--cert-dir`, `--authfile` and cosign's registry flags. */
export interface CosignRegistryFlags extends RegistryFlags {
  allowInsecureRegistry?: boolean;
  allowHttpRegistry?: boolean;
  registryUsername?: string;
  registryPassword?: string;
}

/**
 * Adds the registry flags (`--tls-verify`, `--cert-dir`, `--authfile`) and cosign's: `--allow-insecure-registry`,
 * `--allow-http-registry`, `--registry-username`, `--registry-password`.
 */
export function addCosignRegistryFlags(cmd: Command): Command {
  return addRegistryFlags(cmd)
    .option(
      "--allow-insecure-registry",
      "cosign's flag: skip TLS certificate checks (https only; with --allow-http-registry: --tls-verify=false)",
    )
    .option(
      "--allow-http-registry",
      "cosign's flag: allow plain HTTP when a registry does not answer HTTPS (certificates still checked)",
    )
    .option(
      "--registry-username <name>",
      "registry basic auth username (for every registry; needs the password)",
    )
    .option("--registry-password <password>", "registry basic auth password");
}

/**
 * The registry settings and credentials of {@linkcode CosignRegistryFlags}: cosign's flags loosen TLS as described in
 * the module documentation; `--registry-username` with `--registry-password` are the credentials for every
 * registry (the auth files are then not read).
 *
 * @throws {AirlockError} `INVALID_ARGUMENT` when `--tls-verify=true` is given with a flag that loosens it, or one
 *   of the username and password without the other.
 *
 * @example
 * ```ts
 * const { settings, credentials } = cosignRegistrySettings(flags);
 * const client = clientFor(settings, credentials);
 * ```
 */
export function cosignRegistrySettings(
  flags: CosignRegistryFlags,
): { settings: RegistrySettings; credentials?: CredentialLookup } {
  const insecure = flags.allowInsecureRegistry === true;
  const http = flags.allowHttpRegistry === true;
  if (flags.tlsVerify === true && (insecure || http)) {
    throw usageError(
      `--tls-verify=true contradicts ${
        insecure ? "--allow-insecure-registry" : "--allow-http-registry"
      }: give one`,
    );
  }
  const settings: RegistrySettings = {
    tlsVerify: flags.tlsVerify,
    insecureSkipVerify: insecure,
    allowHttp: http,
    certDir: flags.certDir,
    authfile: flags.authfile,
  };
  const { registryUsername: username, registryPassword: password } = flags;
  if ((username === undefined) !== (password === undefined)) {
    throw usageError("--registry-username and --registry-password go together: give both");
  }
  if (username === undefined || password === undefined) return { settings };
  const credential = { username, password };
  return { settings, credentials: () => Promise.resolve(credential) };
}

/** cosign's upload flags (`attest`, `sign-blob`). */
export interface UploadFlags {
  tlogUpload?: boolean;
  yes?: boolean;
}

/**
 * Adds cosign's `--tlog-upload` (only `false` is accepted) and `-y, --yes` (accepted, nothing to confirm).
 */
export function addUploadFlags(cmd: Command): Command {
  return cmd
    .option(
      "--tlog-upload",
      "cosign's flag; airlock uploads to no transparency log: only --tlog-upload=false",
    )
    .option("-y, --yes", "cosign's flag, accepted: airlock asks for no confirmation");
}

/**
 * Pre-flight of {@linkcode UploadFlags}: `--tlog-upload` (true) is refused.
 *
 * @throws {AirlockError} `INVALID_ARGUMENT` for `--tlog-upload` / `--tlog-upload=true`.
 */
export function checkUploadFlags(flags: UploadFlags): void {
  if (flags.tlogUpload === true) {
    throw usageError(
      "--tlog-upload=true is not supported: airlock does not upload to a transparency log (it works " +
        "offline); give --tlog-upload=false",
    );
  }
}
