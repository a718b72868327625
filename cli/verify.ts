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
import { AirlockError } from "../core/errors.ts";
import { verifyImage } from "../core/verify.ts";
import { certificateTextLines, cosignJsonOutput } from "./verify_output.ts";
import {
  addCommandTimeoutFlag,
  collect,
  type CommandTimeoutFlags,
  type GlobalFlags,
  usageError,
  writeStdout,
} from "./common.ts";
import { addCosignRegistryFlags, type CosignRegistryFlags } from "./cosign_flags.ts";
import { cosignAction, forEachImage, reportError, stderr } from "./cosign_output.ts";
import { addTrustFlags, type Trust, type TrustFlags, trustFromFlags } from "./key_flags.ts";

interface VerifyFlags extends CosignRegistryFlags, TrustFlags, CommandTimeoutFlags {
  annotations?: string[];
  output: string;
}

/** cosign's exit codes (`cmd/cosign/errors/exit_codes.go`) by error code; everything else exits 1. */
const EXIT_CODES: Readonly<Record<string, number>> = { SIGNATURE_MISSING: 10, NO_MATCHING_SIGNATURES: 12 };

/** The exit code cosign uses for a verification error: 10 no signatures found, 12 no matching signatures, else 1. */
function verifyExitCode(err: unknown): number {
  return err instanceof AirlockError ? EXIT_CODES[err.code] ?? 1 : 1;
}

/**
 * Registers `verify` on the program.
 */
export function registerVerify(program: Command): void {
  addCommandTimeoutFlag(addTrustFlags(addCosignRegistryFlags(
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
  ))).action(cosignAction(runVerify));
}

async function runVerify(images: string[], flags: VerifyFlags, global: GlobalFlags): Promise<number> {
  let trust: Trust;
  let annotations: Record<string, string> | undefined;
  try {
    if (flags.output !== "json" && flags.output !== "text") {
      throw usageError(`unsupported --output "${flags.output}": use json or text`);
    }
    annotations = parseAnnotations(flags.annotations);
    trust = await trustFromFlags(flags);
  } catch (e) {
    reportError(e, global.debug);
    return verifyExitCode(e);
  }

  return await forEachImage(images, flags, global.debug, async (client, image, signal) => {
    const result = await verifyImage(client, image, { ...trust, annotations, signal });
    stderr(verificationHeader(result, annotations !== undefined));
    if (flags.output === "text") {
      for (const s of result.signatures) {
        if (s.signer && s.source === "sig") stderr(certificateTextLines(s.signer).join("\n") + "\n");
        writeStdout(s.payload);
        writeStdout("\n");
      }
    } else {
      writeStdout("\n" + cosignJsonOutput(result.signatures) + "\n");
    }
  }, verifyExitCode);
}

/**
 * cosign's `PrintVerificationHeader`: the reference, then the checks performed (annotations, claims, the
 * transparency log when a proof verified, the key or the certificate).
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
 * cosign's `AnnotationOptions.AnnotationsMap`: each `-a` value is a comma-separated list (pflag StringSlice; CSV
 * quoting is not supported here) of `k=v`, split on `=` into exactly two parts; a later key wins.
 * `undefined` when no `-a` was given.
 */
export function parseAnnotations(values: string[] | undefined): Record<string, string> | undefined {
  if (values === undefined || values.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const value of values) {
    for (const a of value.split(",")) {
      const kv = a.split("=");
      if (kv.length !== 2) throw usageError(`unable to parse annotation: ${a}`);
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
