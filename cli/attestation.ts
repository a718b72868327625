/**
 * `airlock verify-attestation` and `airlock download attestation`: cosign's commands of the same names
 * (spec/cosign.md §3.3–3.4), offline.
 *
 * - `verify-attestation IMAGE… --type T` with `--key` or the keyless flags: stderr gets cosign's header and, for
 *   keyless attestations, the certificate lines; stdout gets each matching attestation's DSSE envelope JSON on
 *   its own line. Failures print cosign's two error lines and exit 1 (cosign maps no attestation error to
 *   another code).
 * - `download attestation IMAGE [--predicate-type T] [--platform os/arch[/variant]]`: one JSON document per line,
 *   nothing verified.
 *
 * @module
 */
import type { Command } from "commander";
import {
  downloadAttestations,
  predicateTypeUri,
  verifyImageAttestations,
} from "../core/verify_attestation.ts";
import { certificateTextLines } from "./verify_output.ts";
import {
  addCommandTimeoutFlag,
  collect,
  type CommandTimeoutFlags,
  type GlobalFlags,
  writeStdout,
} from "./common.ts";
import { addCosignRegistryFlags, type CosignRegistryFlags } from "./cosign_flags.ts";
import { cosignAction, forEachImage, reportError, stderr } from "./cosign_output.ts";
import { addTrustFlags, type Trust, type TrustFlags, trustFromFlags } from "./key_flags.ts";
import { parseAnnotations, verificationHeader } from "./verify.ts";

interface VerifyAttestationFlags extends CosignRegistryFlags, TrustFlags, CommandTimeoutFlags {
  type: string;
  annotations?: string[];
}

interface DownloadFlags extends CosignRegistryFlags, CommandTimeoutFlags {
  predicateType?: string;
  platform?: string;
}

/**
 * Registers `verify-attestation` on the program.
 */
export function registerVerifyAttestation(program: Command): void {
  addCommandTimeoutFlag(addTrustFlags(addCosignRegistryFlags(
    program.command("verify-attestation")
      .description(
        "verify the in-toto attestations of images, offline (cosign verify-attestation compatible)",
      )
      .argument("<image...>", "images (tag or digest references)")
      .option(
        "--type <type>",
        "predicate type: custom, slsaprovenance, slsaprovenance02, slsaprovenance1, spdx, spdxjson, cyclonedx, " +
          "link, vuln, openvex, or a URI",
        "custom",
      )
      .option(
        "-a, --annotations <k=v>",
        "annotation the statement's subject must carry (repeatable, comma-separated)",
        collect,
      ),
  ))).action(cosignAction(runVerifyAttestation));
}

async function runVerifyAttestation(
  images: string[],
  flags: VerifyAttestationFlags,
  global: GlobalFlags,
): Promise<number> {
  let trust: Trust;
  let predicateType: string;
  let annotations: Record<string, string> | undefined;
  try {
    predicateType = predicateTypeUri(flags.type);
    annotations = parseAnnotations(flags.annotations);
    trust = await trustFromFlags(flags);
  } catch (e) {
    reportError(e, global.debug);
    return 1;
  }
  return await forEachImage(images, flags, global.debug, async (client, image, signal) => {
    const r = await verifyImageAttestations(client, image, {
      signal,
      ...trust,
      predicateType,
      typeAsGiven: flags.type,
      annotations,
    });
    stderr(verificationHeader(r, annotations !== undefined));
    for (const a of r.attestations) {
      if (a.signer) stderr(certificateTextLines(a.signer).join("\n") + "\n");
      writeStdout(new TextDecoder().decode(a.envelope) + "\n");
    }
  });
}

/**
 * Registers `download` with its `attestation` subcommand on the program.
 */
export function registerDownload(program: Command): void {
  const download = program.command("download")
    .description("download sigstore attachments of an image (cosign download compatible)");
  addCommandTimeoutFlag(addCosignRegistryFlags(
    download.command("attestation")
      .description("print the attestations of an image, one JSON document per line (nothing is verified)")
      .argument("<image>", "image (tag or digest reference)")
      .option("--predicate-type <type>", "only attestations of this predicate type (shorthand or URI)")
      .option(
        "--platform <os/arch[/variant]>",
        "for a multi-arch image: the legacy .att of that platform's image",
      ),
  )).action(
    cosignAction((image: string, flags: DownloadFlags, global) =>
      forEachImage([image], flags, global.debug, async (client, _image, signal) => {
        const lines = await downloadAttestations(client, image, {
          signal,
          predicateType: flags.predicateType === undefined
            ? undefined
            : predicateTypeUri(flags.predicateType),
          platform: flags.platform,
        });
        writeStdout(lines.map((l) => l + "\n").join(""));
      })
    ),
  );
}
