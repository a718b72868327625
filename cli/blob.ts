/**
 * `airlock sign-blob` and `airlock verify-blob`: cosign's `sign-blob --key` / `verify-blob --key` for files —
 * a base64 signature over the file's bytes, no transparency log. airlock's releases sign their `SHA256SUMS`
 * with it, so a download can be checked with airlock or cosign. Output and error lines follow cosign's.
 *
 * The signing, verification and key modules are loaded inside the actions, so registering these commands costs
 * nothing at start-up.
 *
 * @module
 */
import type { Command } from "commander";
import { AirlockError, errorMessage } from "../core/errors.ts";
import { usageError, writeStdout } from "./common.ts";
import { reportError, stderr } from "./cosign_output.ts";
import { addUploadFlags, checkUploadFlags, type UploadFlags } from "./cosign_flags.ts";
import { ALLOW_UNENCRYPTED_HELP } from "./key_flags.ts";

interface SignBlobFlags extends UploadFlags {
  key?: string;
  outputSignature?: string;
  passphraseFile?: string;
  allowUnencryptedKey?: boolean;
}

interface VerifyBlobFlags {
  key?: string;
  signature?: string;
  insecureIgnoreTlog?: boolean;
}

/** Runs a blob command body; an error becomes cosign's `Error:` lines and exit status 1. */
async function cosignStyle(body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (e) {
    reportError(e);
    Deno.exit(1);
  }
}

/** The bytes of FILE, or of stdin for `-`. */
async function readBlob(path: string): Promise<Uint8Array> {
  try {
    if (path === "-") return new Uint8Array(await new Response(Deno.stdin.readable).arrayBuffer());
    return await Deno.readFile(path);
  } catch (e) {
    throw new AirlockError("IO_ERROR", `reading ${path}: ${errorMessage(e)}`, { cause: e });
  }
}

/** `--signature`: a file holding the signature, or the base64 signature itself (as cosign accepts both). */
async function readSignature(value: string): Promise<Uint8Array> {
  const { decodeBlobSignature } = await import("../core/blob.ts");
  let content: Uint8Array | string = value;
  try {
    const info = await Deno.stat(value);
    if (info.isFile) content = await Deno.readFile(value);
  } catch {
    content = value; // not a file: the signature itself
  }
  return decodeBlobSignature(content);
}

/**
 * Registers `sign-blob` and `verify-blob` on the program.
 */
export function registerBlob(program: Command): void {
  addUploadFlags(program.command("sign-blob"))
    .description(
      "sign a file with a key (cosign sign-blob --key compatible): prints or writes a base64 signature",
    )
    .argument("<file>", "the file to sign ('-' for stdin)")
    .option("--key <ref>", "signing key: key file, pkcs11:…, or KMS reference")
    .option("--output-signature <file>", "write the base64 signature to FILE instead of stdout")
    .option(
      "--passphrase-file <file>",
      "read the key passphrase from the first line of FILE (else COSIGN_PASSWORD)",
    )
    .option("--allow-unencrypted-key", ALLOW_UNENCRYPTED_HELP)
    .action((file: string, flags: SignBlobFlags) =>
      cosignStyle(async () => {
        if (!flags.key) throw usageError("--key is required (keyless signing is not supported)");
        checkUploadFlags(flags);
        const [{ openKey }, { signBlob }] = await Promise.all([
          import("../backends/key_backend.ts"),
          import("../core/blob.ts"),
        ]);
        const blob = await readBlob(file);
        const key = await openKey(flags.key, {
          passphraseFile: flags.passphraseFile,
          allowUnencryptedKey: flags.allowUnencryptedKey,
        });
        let signature: string;
        try {
          signature = await signBlob(key, blob);
        } finally {
          await key.close();
        }
        if (flags.outputSignature === undefined) {
          writeStdout(signature + "\n");
          return;
        }
        await Deno.writeTextFile(flags.outputSignature, signature);
        stderr(`Wrote signature to file ${flags.outputSignature}\n`);
      })
    );

  program.command("verify-blob")
    .description("verify a file's signature with a key (cosign verify-blob --key compatible)")
    .argument("[file]", "the signed file ('-' for stdin)")
    .option("--key <ref>", "public key file (PEM), or any key reference airlock can sign with")
    .option("--signature <sig>", "the signature: a file holding it, or the base64 signature itself")
    .option(
      "--insecure-ignore-tlog",
      "accepted for cosign scripts: blob signatures are never looked up in a transparency log",
    )
    .action((file: string | undefined, flags: VerifyBlobFlags) =>
      cosignStyle(async () => {
        if (file === undefined) throw usageError("missing the file to verify");
        if (!flags.key) throw usageError("--key is required (keyless verification is not supported)");
        if (!flags.signature) throw usageError("--signature is required");
        const [{ verifyBlob }, { loadVerificationKey }] = await Promise.all([
          import("../core/blob.ts"),
          import("./key_flags.ts"),
        ]);
        const publicKey = await loadVerificationKey(flags.key);
        const signature = await readSignature(flags.signature);
        await verifyBlob(publicKey, await readBlob(file), signature);
        stderr("Verified OK\n");
      })
    );
}
