/**
 * `airlock verify`: `cosign verify --key` on the `.sig` layout, with cosign's output and exit codes
 * (spec/cosign.md §1.5–1.6).
 *
 * - stderr, per verified image: cosign's header (`Verification for <ref.Name()> --` and the checks performed);
 * - stdout: `-o json` (default) `"\n" + json.Marshal([]SimpleContainerImage) + "\n"`; `-o text` each raw payload on
 *   its own line;
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
import { decodePem, parsePublicKeyPem, type PublicKey } from "../core/signature/public_key.ts";
import { cosignJsonOutput, verifyImage, type VerifyResult } from "../core/verify.ts";
import {
  addRegistryFlags,
  clientFor,
  collect,
  type GlobalFlags,
  type RegistryFlags,
  writeStdout,
} from "./common.ts";

interface VerifyFlags extends RegistryFlags {
  key?: string;
  annotations?: string[];
  insecureIgnoreTlog?: boolean;
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
  addRegistryFlags(
    program.command("verify")
      .description(
        "verify the cosign signatures of images with a public key (cosign verify --key compatible)",
      )
      .argument("<image...>", "images to verify (tag or digest references)")
      .option(
        "--key <ref>",
        "public key file (PEM), or any key reference airlock can sign with (its public key is used)",
      )
      .option(
        "-a, --annotations <k=v>",
        "annotation the signature payload must carry in 'optional' (repeatable, comma-separated)",
        collect,
      )
      .option(
        "--insecure-ignore-tlog",
        "accept signatures without a transparency log proof (needed for key-only signatures)",
      )
      .option("-o, --output <format>", "output format: json or text", "json"),
  ).action(async (images: string[], flags: VerifyFlags, c: Command) => {
    const global = c.optsWithGlobals<GlobalFlags>();
    const code = await runVerify(images, flags, global);
    if (code !== 0) Deno.exit(code);
  });
}

const enc = new TextEncoder();

function stderr(text: string): void {
  let data = enc.encode(text);
  while (data.length > 0) data = data.subarray(Deno.stderr.writeSync(data));
}

/** cosign's failure lines (cobra's `Error:` and main.go's `log.Printf`). */
function reportError(err: unknown, debug?: boolean): void {
  const message = errorMessage(err);
  stderr(`Error: ${message}\nerror during command execution: ${message}\n`);
  if (debug && err instanceof Error && err.cause) stderr(`cause: ${errorMessage(err.cause)}\n`);
}

async function runVerify(images: string[], flags: VerifyFlags, global: GlobalFlags): Promise<number> {
  let publicKey: PublicKey;
  let annotations: Record<string, string> | undefined;
  try {
    if (flags.output !== "json" && flags.output !== "text") {
      throw new AirlockError("INVALID_ARGUMENT", `unsupported --output "${flags.output}": use json or text`);
    }
    if (!flags.key) {
      throw new AirlockError(
        "INVALID_ARGUMENT",
        "--key is required: keyless verification (--certificate-identity) is not supported yet",
      );
    }
    annotations = parseAnnotations(flags.annotations);
    publicKey = await loadVerificationKey(flags.key);
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
        result = await verifyImage(client, image, {
          publicKey,
          annotations,
          ignoreTlog: flags.insecureIgnoreTlog === true,
        });
      } catch (e) {
        reportError(e, global.debug);
        if (exitCode === 0) exitCode = verifyExitCode(e);
        continue;
      }
      stderr(header(result, annotations !== undefined));
      if (flags.output === "text") {
        for (const s of result.signatures) writeStdout(concat(s.payload, enc.encode("\n")));
      } else {
        writeStdout("\n" + cosignJsonOutput(result.signatures) + "\n");
      }
    }
  } finally {
    client.close();
  }
  return exitCode;
}

/** cosign's `PrintVerificationHeader` for key mode. */
function header(result: VerifyResult, withAnnotations: boolean): string {
  let s = `\nVerification for ${result.name} --\n` +
    "The following checks were performed on each of these signatures:\n";
  if (withAnnotations) s += "  - The specified annotations were verified.\n";
  s += "  - The cosign claims were validated\n";
  if (result.bundleVerified) {
    s += "  - Existence of the claims in the transparency log was verified offline\n";
  }
  s += "  - The signatures were verified against the specified public key\n";
  return s;
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
 */
function parseAnnotations(values: string[] | undefined): Record<string, string> | undefined {
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
 */
async function loadVerificationKey(ref: string): Promise<PublicKey> {
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
