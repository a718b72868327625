/**
 * The key flags: the signing key of `sign` and `attest` (`--key`, hangar's `--sigstore-key`, the passphrase file),
 * and what a signature is verified with in `verify` and `verify-attestation` (`--key`, or keyless: the
 * certificate identity flags and `--trusted-root`). The sigstore engine is loaded only when keyless flags or a
 * trusted root are given.
 *
 * @module
 */
import type { Command } from "commander";
import { type KeyBackend, keyRefWarning, openKey } from "../backends/key_backend.ts";
import { decodePem } from "../core/encoding/pem.ts";
import type { IdentityPolicy, SigstoreTrustedRoot } from "../core/keyless/mod.ts";
import type { Logger } from "../core/report.ts";
import { parsePublicKeyPem, type PublicKey } from "../core/signature/public_key.ts";
import { usageError } from "./common.ts";

/** The signing key flags of `sign` and `attest`. */
export interface SigningKeyFlags {
  /** `--key REF`: any key backend. */
  key?: string;
  /** `-k, --sigstore-key FILE` (hangar's name; `sign` only). */
  sigstoreKey?: string;
  /** `--sigstore-passphrase-file FILE`. */
  sigstorePassphraseFile?: string;
  /** `--allow-unencrypted-key`. */
  allowUnencryptedKey?: boolean;
}

/** The help of `--allow-unencrypted-key`. */
export const ALLOW_UNENCRYPTED_HELP =
  "use a private key file that is not encrypted (refused without this flag, as cosign refuses one)";

/**
 * Adds the signing key flags: `--sigstore-passphrase-file` and `--key`, and with `hangar` (for `sign`) hangar's
 * `-k, --sigstore-key` before them.
 */
export function addSigningKeyFlags(cmd: Command, options: { hangar?: boolean } = {}): Command {
  if (options.hangar) cmd.option("-k, --sigstore-key <file>", "sigstore private key file");
  return cmd
    .option(
      "--sigstore-passphrase-file <file>",
      "read the passphrase for the key file from the first line of FILE (else COSIGN_PASSWORD)",
    )
    .option(
      "--key <ref>",
      "signing key: a key file, pkcs11:…, hashivault://…, awskms://…, NAME://… (plugin)",
    )
    .option("--allow-unencrypted-key", ALLOW_UNENCRYPTED_HELP);
}

/**
 * The key reference of `sign`: `--key` or `--sigstore-key`, exactly one of them.
 *
 * @throws {AirlockError} `INVALID_ARGUMENT` when both or neither are given.
 */
export function signingKeyRef(flags: SigningKeyFlags): string {
  if (flags.key && flags.sigstoreKey) {
    throw usageError("--key and --sigstore-key are mutually exclusive: give one of them");
  }
  const keyRef = flags.key ?? flags.sigstoreKey;
  if (!keyRef) {
    throw usageError(
      "sigstore private key file not provided, use '--sigstore-key' option to specify the key file",
    );
  }
  return keyRef;
}

/**
 * Opens a signing key, first logging the warning its reference deserves (a PIN written into a `pkcs11:` URI).
 */
export async function openKeyWithWarning(
  ref: string,
  options: { passphraseFile?: string; passphrase?: Uint8Array; allowUnencryptedKey?: boolean },
  log: Logger,
): Promise<KeyBackend> {
  const warning = keyRefWarning(ref);
  if (warning) log.warn(warning);
  return await openKey(ref, options);
}

/** The flags that choose what a signature must be verified with (key, or keyless identity and trusted root). */
export interface TrustFlags {
  key?: string;
  certificateIdentity?: string;
  certificateIdentityRegexp?: string;
  certificateOidcIssuer?: string;
  certificateOidcIssuerRegexp?: string;
  certificateGithubWorkflowTrigger?: string;
  certificateGithubWorkflowSha?: string;
  certificateGithubWorkflowName?: string;
  certificateGithubWorkflowRepository?: string;
  certificateGithubWorkflowRef?: string;
  trustedRoot?: string;
  insecureIgnoreTlog?: boolean;
  insecureIgnoreSct?: boolean;
}

/**
 * Adds the flags of {@linkcode TrustFlags} to a command (`verify`, `verify-attestation`).
 */
export function addTrustFlags(cmd: Command): Command {
  return cmd
    .option(
      "--key <ref>",
      "public key file (PEM), or any key reference airlock can sign with (its public key is used)",
    )
    .option("--certificate-identity <id>", "keyless: the exact identity (SAN) of the signing certificate")
    .option(
      "--certificate-identity-regexp <re>",
      "keyless: a Go RE2 pattern (unanchored) the identity must match",
    )
    .option("--certificate-oidc-issuer <url>", "keyless: the exact OIDC issuer of the signing certificate")
    .option(
      "--certificate-oidc-issuer-regexp <re>",
      "keyless: a Go RE2 pattern (unanchored) the OIDC issuer must match",
    )
    .option("--certificate-github-workflow-trigger <v>", "keyless: the GitHub workflow trigger (exact)")
    .option("--certificate-github-workflow-sha <v>", "keyless: the GitHub workflow commit SHA (exact)")
    .option("--certificate-github-workflow-name <v>", "keyless: the GitHub workflow name (exact)")
    .option("--certificate-github-workflow-repository <v>", "keyless: the GitHub workflow repository (exact)")
    .option("--certificate-github-workflow-ref <v>", "keyless: the GitHub workflow ref (exact)")
    .option(
      "--trusted-root <file>",
      "sigstore trusted_root.json (Fulcio CAs, Rekor/CT log keys, TSAs); default: the embedded public-good root",
    )
    .option(
      "--insecure-ignore-tlog",
      "accept signatures without a transparency log proof (needed for key-only signatures)",
    )
    .option("--insecure-ignore-sct", "keyless: do not require an SCT in the signing certificate");
}

/** What verification runs with, from {@linkcode TrustFlags}. */
export interface Trust {
  readonly publicKey?: PublicKey;
  readonly identity?: IdentityPolicy;
  readonly trustedRoot?: SigstoreTrustedRoot;
  readonly ignoreTlog: boolean;
  readonly ignoreSct: boolean;
}

/**
 * Reads {@linkcode TrustFlags}: the key, or the keyless identity policy (checked: one of each pair, valid
 * patterns); the trusted root file when given. The sigstore engine is loaded only for keyless flags or a trusted
 * root file.
 *
 * @throws {AirlockError} `INVALID_ARGUMENT` for missing or conflicting flags and bad patterns;
 * `TRUSTED_ROOT_INVALID` / `IO_ERROR` for the trusted root; key errors
 */
export async function trustFromFlags(flags: TrustFlags): Promise<Trust> {
  const identity: IdentityPolicy = {
    subject: flags.certificateIdentity,
    subjectRegExp: flags.certificateIdentityRegexp,
    issuer: flags.certificateOidcIssuer,
    issuerRegExp: flags.certificateOidcIssuerRegexp,
    githubWorkflowTrigger: flags.certificateGithubWorkflowTrigger,
    githubWorkflowSha: flags.certificateGithubWorkflowSha,
    githubWorkflowName: flags.certificateGithubWorkflowName,
    githubWorkflowRepository: flags.certificateGithubWorkflowRepository,
    githubWorkflowRef: flags.certificateGithubWorkflowRef,
  };
  const keylessGiven = Object.values(identity).some((v) => v !== undefined);
  const base = { ignoreTlog: flags.insecureIgnoreTlog === true, ignoreSct: flags.insecureIgnoreSct === true };
  const trustedRoot = flags.trustedRoot === undefined
    ? undefined
    : await (await import("../core/keyless/mod.ts")).loadTrustedRoot(flags.trustedRoot);
  if (flags.key) {
    if (keylessGiven) {
      throw usageError("--key and the --certificate-* flags are mutually exclusive: give one of them");
    }
    return { ...base, trustedRoot, publicKey: await loadVerificationKey(flags.key) };
  }
  if (identity.subject === undefined && identity.subjectRegExp === undefined) {
    throw usageError(
      "--certificate-identity or --certificate-identity-regexp is required for verification in keyless mode " +
        "(or give --key)",
    );
  }
  if (identity.issuer === undefined && identity.issuerRegExp === undefined) {
    throw usageError(
      "--certificate-oidc-issuer or --certificate-oidc-issuer-regexp is required for verification in keyless mode",
    );
  }
  const k = await import("../core/keyless/mod.ts");
  if (identity.subjectRegExp !== undefined) {
    k.compileGoRegExp(identity.subjectRegExp, "--certificate-identity-regexp");
  }
  if (identity.issuerRegExp !== undefined) {
    k.compileGoRegExp(identity.issuerRegExp, "--certificate-oidc-issuer-regexp");
  }
  return { ...base, trustedRoot: trustedRoot ?? await k.publicGoodTrustedRoot(), identity };
}

/**
 * The PEM of a verification key: a file holding a `PUBLIC KEY` / `RSA PUBLIC KEY` PEM as it is (cosign's
 * `loadPublicKey`); for any other reference the key is opened as a signing key ({@linkcode openKey}: key files,
 * KMS, tokens) and its public key is used.
 */
export async function verificationKeyPem(ref: string): Promise<Uint8Array> {
  let bytes: Uint8Array | undefined;
  try {
    const info = await Deno.stat(ref);
    if (info.isFile && info.size <= 1024 * 1024) bytes = await Deno.readFile(ref);
  } catch {
    bytes = undefined; // not a readable file: a KMS/token reference, or openKey reports the problem
  }
  if (bytes !== undefined) {
    const block = decodePem(bytes);
    if (block?.type === "PUBLIC KEY" || block?.type === "RSA PUBLIC KEY") return bytes;
  }
  const backend = await openKey(ref);
  try {
    return new TextEncoder().encode(await backend.publicKey());
  } finally {
    await backend.close();
  }
}

/**
 * The verification key of `--key REF`, parsed (see {@linkcode verificationKeyPem}).
 */
export async function loadVerificationKey(ref: string): Promise<PublicKey> {
  return parsePublicKeyPem(await verificationKeyPem(ref));
}
