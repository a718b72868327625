/**
 * `airlock attest`: `cosign attest --key` (v2 layout, no transparency log): an in-toto v0.1 statement about the
 * image, signed in a DSSE envelope by any key backend, appended to the image's `sha256-<hex>.att` tag
 * (spec/cosign.md §3.1). Like cosign, registries.d is not consulted.
 *
 * stderr gets `Using payload from: FILE` (as cosign prints it) and one line per image written; failures print
 * cosign's two error lines and exit 1.
 *
 * @module
 */
import type { Command } from "commander";
import { type KeyBackend, openKey } from "../backends/key_backend.ts";
import { attestImage } from "../core/attest.ts";
import { predicateTypeUri } from "../core/verify_attestation.ts";
import { AirlockError, errorMessage } from "../core/errors.ts";
import { addCommandTimeoutFlag, type CommandTimeoutFlags, type GlobalFlags, usageError } from "./common.ts";
import {
  addCosignRegistryFlags,
  addUploadFlags,
  checkUploadFlags,
  type CosignRegistryFlags,
  type UploadFlags,
} from "./cosign_flags.ts";
import { cosignAction, forEachImage, reportError, stderr } from "./cosign_output.ts";
import { addSigningKeyFlags, type SigningKeyFlags } from "./key_flags.ts";

interface AttestFlags extends CosignRegistryFlags, SigningKeyFlags, UploadFlags, CommandTimeoutFlags {
  predicate?: string;
  type: string;
}

/**
 * Registers `attest` on the program.
 */
export function registerAttest(program: Command): void {
  addCommandTimeoutFlag(addUploadFlags(addCosignRegistryFlags(addSigningKeyFlags(
    program.command("attest")
      .description("attach a signed in-toto attestation to images (cosign attest --key compatible, offline)")
      .argument("<image...>", "images (tag or digest references)")
      .option("--predicate <file>", "the predicate file (an SBOM, provenance, scan result, …)")
      .option(
        "--type <type>",
        "predicate type: custom, slsaprovenance, slsaprovenance02, slsaprovenance1, spdx, spdxjson, cyclonedx, " +
          "link, vuln, openvex, or a URI",
        "custom",
      ),
  )))).action(cosignAction(runAttest));
}

async function runAttest(images: string[], flags: AttestFlags, global: GlobalFlags): Promise<number> {
  let predicate: Uint8Array;
  try {
    checkUploadFlags(flags);
    if (!flags.predicate) throw usageError("--predicate is required");
    if (!flags.key) throw usageError("--key is required: airlock attests with a key, never keyless");
    predicateTypeUri(flags.type);
    try {
      predicate = await Deno.readFile(flags.predicate);
    } catch (e) {
      throw new AirlockError("IO_ERROR", `reading ${flags.predicate}: ${errorMessage(e)}`, { cause: e });
    }
  } catch (e) {
    reportError(e, global.debug);
    return 1;
  }
  stderr(`Using payload from: ${flags.predicate}\n`);
  let key: KeyBackend;
  try {
    key = await openKey(flags.key, {
      passphraseFile: flags.sigstorePassphraseFile,
      allowUnencryptedKey: flags.allowUnencryptedKey,
    });
  } catch (e) {
    reportError(e, global.debug);
    return 1;
  }
  try {
    return await forEachImage(images, flags, global.debug, async (client, image, signal) => {
      const r = await attestImage(image, { client, key, predicate, type: flags.type, signal });
      stderr(`Attestation (${r.predicateType}) written to ${r.tag}\n`);
    });
  } finally {
    await key.close();
  }
}
