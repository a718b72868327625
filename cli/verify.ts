/**
 * `airlock verify`: `cosign verify` with a key (`--key`) or keyless (`--certificate-identity[-regexp]`,
 * `--certificate-oidc-issuer[-regexp]`, `--certificate-github-workflow-*`, `--trusted-root`), on cosign v3
 * referrer bundles and the legacy `.sig` layout, with cosign's output and exit codes (spec/cosign.md §1.5–1.6,
 * §2). Fully offline: the transparency-log proofs are checked against the trusted root (the embedded public-good
 * snapshot unless `--trusted-root` names a file).
 *
 * - stderr, per verified image: cosign's header (`Verification for <ref.Name()> --` and the checks performed);
 * - stdout: `-o json` (default) `"\n" + json.Marshal([]SimpleContainerImage) + "\n"` (keyless layers with
 *   `Subject`, `Issuer` and the GitHub workflow fields); `-o text` each raw payload on its own line (and the
 *   certificate lines on stderr);
 * - on failure, cosign's two stderr lines `Error: <message>` and `error during command execution: <message>`
 *   (cosign's `log` prefix, date or `main.go:NN:`, is left out); exit code 10 for "no signatures found",
 *   12 for "no matching signatures", 1 for anything else.
 *
 * Unlike cosign, which stops at the first image that fails, every image is verified; the exit code is the first
 * failure's.
 *
 * @module
 */
import type { Command } from "commander";
import { openKey } from "../backends/key_backend.ts";
import { AirlockError, errorMessage } from "../core/errors.ts";
import type { IdentityPolicy, SigstoreTrustedRoot } from "../core/keyless/mod.ts";
import { decodePem } from "../core/encoding/pem.ts";
import { parsePublicKeyPem, type PublicKey } from "../core/signature/public_key.ts";
import { certificateTextLines, cosignJsonOutput, verifyImage, type VerifyResult } from "../core/verify.ts";
import {
  addRegistryFlags,
  clientFor,
  collect,
  type GlobalFlags,
  type RegistryFlags,
  writeStdout,
} from "./common.ts";

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

interface VerifyFlags extends RegistryFlags, TrustFlags {
  annotations?: string[];
  output: string;
}

/** cosign's exit codes (`cmd/cosign/errors/exit_codes.go`) by error code; everything else exits 1. */
const EXIT_CODES: Readonly<Record<string, number>> = { SIGNATURE_MISSING: 10, NO_MATCHING_SIGNATURES: 12 };

/**
 * The exit code cosign uses for a verification error: 10 no signatures found, 12 no matching signatures, else 1.
 *
 * @example
 * ```ts
 * Deno.exit(verifyExitCode(err));
 * ```
 */
export function verifyExitCode(err: unknown): number {
  return err instanceof AirlockError ? EXIT_CODES[err.code] ?? 1 : 1;
}

/**
 * Registers `verify` on the program.
 *
 * @example
 * ```ts
 * registerVerify(program);
 * ```
 */
export function registerVerify(program: Command): void {
  addTrustFlags(addRegistryFlags(
    program.command("verify")
      .description(
        "verify the cosign signatures of images with a public key or keyless, offline (cosign verify compatible)",
      )
      .argument("<image...>", "images to verify (tag or digest references)")
      .option(
        "-a, --annotations <k=v>",
        "annotation the signature payload must carry in 'optional' (repeatable, comma-separated)",
        collect,
      )
      .option("-o, --output <format>", "output format: json or text", "json"),
  )).action(async (images: string[], flags: VerifyFlags, c: Command) => {
    const global = c.optsWithGlobals<GlobalFlags>();
    const code = await runVerify(images, flags, global);
    if (code !== 0) Deno.exit(code);
  });
}

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
 * cosign's failure lines (cobra's `Error:` and main.go's `log.Printf`), on stderr.
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

async function runVerify(images: string[], flags: VerifyFlags, global: GlobalFlags): Promise<number> {
  let trust: Trust;
  let annotations: Record<string, string> | undefined;
  try {
    if (flags.output !== "json" && flags.output !== "text") {
      throw new AirlockError("INVALID_ARGUMENT", `unsupported --output "${flags.output}": use json or text`);
    }
    annotations = parseAnnotations(flags.annotations);
    trust = await trustFromFlags(flags);
  } catch (e) {
    reportError(e, global.debug);
    return verifyExitCode(e);
  }

  const client = clientFor(flags);
  let exitCode = 0;
  try {
    for (const image of images) {
      let result: VerifyResult;
      try {
        result = await verifyImage(client, image, { ...trust, annotations });
      } catch (e) {
        reportError(e, global.debug);
        if (exitCode === 0) exitCode = verifyExitCode(e);
        continue;
      }
      stderr(verificationHeader(result, annotations !== undefined));
      if (flags.output === "text") {
        for (const s of result.signatures) {
          if (s.signer && s.source === "sig") stderr(certificateTextLines(s.signer).join("\n") + "\n");
          writeStdout(concat(s.payload, enc.encode("\n")));
        }
      } else {
        writeStdout("\n" + cosignJsonOutput(result.signatures) + "\n");
      }
    }
  } finally {
    client.close();
  }
  return exitCode;
}

/**
 * cosign's `PrintVerificationHeader`: the reference, then the checks performed (annotations, claims, the
 * transparency log when a proof verified, the key or the certificate).
 *
 * @example
 * ```ts
 * stderr(verificationHeader(result, false));
 * ```
 */
export function verificationHeader(
  result: { name: string; bundleVerified: boolean; keyless: boolean },
  withAnnotations: boolean,
): string {
  let s = `\nVerification for ${result.name} --\n` +
    "The following checks were performed on each of these signatures:\n";
  if (withAnnotations) s += "  - The specified annotations were verified.\n";
  s += "  - The cosign claims were validated\n";
  if (result.bundleVerified) {
    s += "  - Existence of the claims in the transparency log was verified offline\n";
  }
  if (!result.keyless) s += "  - The signatures were verified against the specified public key\n";
  else {
    s += "  - The code-signing certificate was verified using trusted certificate authority certificates\n";
  }
  return s;
}

/**
 * Adds the flags of {@linkcode TrustFlags} to a command (`verify`, `verify-attestation`).
 *
 * @example
 * ```ts
 * addTrustFlags(program.command("verify"));
 * ```
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
 *
 * @example
 * ```ts
 * const trust = await trustFromFlags(flags);
 * ```
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
      throw new AirlockError(
        "INVALID_ARGUMENT",
        "--key and the --certificate-* flags are mutually exclusive: give one of them",
      );
    }
    return { ...base, trustedRoot, publicKey: await loadVerificationKey(flags.key) };
  }
  if (identity.subject === undefined && identity.subjectRegExp === undefined) {
    throw new AirlockError(
      "INVALID_ARGUMENT",
      "--certificate-identity or --certificate-identity-regexp is required for verification in keyless mode " +
        "(or give --key)",
    );
  }
  if (identity.issuer === undefined && identity.issuerRegExp === undefined) {
    throw new AirlockError(
      "INVALID_ARGUMENT",
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

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/**
 * cosign's `AnnotationOptions.AnnotationsMap`: each `-a` value is a comma-separated list (pflag StringSlice; CSV
 * quoting is not supported here) of `k=v`, split on `=` into exactly two parts; a later key wins.
 * `undefined` when no `-a` was given.
 *
 * @example
 * ```ts
 * parseAnnotations(["a=1,b=2"]); // { a: "1", b: "2" }
 * ```
 */
export function parseAnnotations(values: string[] | undefined): Record<string, string> | undefined {
  if (values === undefined || values.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const value of values) {
    for (const a of value.split(",")) {
      const kv = a.split("=");
      if (kv.length !== 2) throw new AirlockError("INVALID_ARGUMENT", `unable to parse annotation: ${a}`);
      Object.defineProperty(out, kv[0], {
        value: kv[1],
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
  }
  return out;
}

/**
 * The verification key: a file holding a `PUBLIC KEY` / `RSA PUBLIC KEY` PEM is used directly (cosign's
 * `loadPublicKey`); any other reference is opened as a signing key ({@linkcode openKey}: key files, KMS, tokens)
 * and its public key is used.
 *
 * @example
 * ```ts
 * const key = await loadVerificationKey("cosign.pub");
 * ```
 */
export async function loadVerificationKey(ref: string): Promise<PublicKey> {
  let bytes: Uint8Array | undefined;
  try {
    const info = await Deno.stat(ref);
    if (info.isFile && info.size <= 1024 * 1024) bytes = await Deno.readFile(ref);
  } catch {
    bytes = undefined; // not a readable file: a KMS/token reference, or openKey reports the problem
  }
  if (bytes !== undefined) {
    const block = decodePem(bytes);
    if (block?.type === "PUBLIC KEY" || block?.type === "RSA PUBLIC KEY") return parsePublicKeyPem(bytes);
  }
  const backend = await openKey(ref);
  try {
    return parsePublicKeyPem(await backend.publicKey());
  } finally {
    await backend.close();
  }
}
