/**
 * `airlock sign-blob` and `airlock verify-blob`: cosign's `sign-blob --key` / `verify-blob --key` for files —
 * a base64 signature over the file's bytes, no transparency log. airlock's releases sign their `SHA256SUMS`
 * with it, so a download can be checked with airlock or cosign. Output and error lines follow cosign's.
 *
 * Every module beyond commander is loaded inside the actions, so registering these commands costs nothing at
 * start-up.
 *
 * @module
 */
import type { Command } from "commander";
import type { PublicKey } from "../core/signature/public_key.ts";

interface SignBlobFlags {
  key?: string;
  outputSignature?: string;
  passphraseFile?: string;
  tlogUpload?: string;
}

interface VerifyBlobFlags {
  key?: string;
  signature?: string;
  insecureIgnoreTlog?: string | true;
}

const enc = new TextEncoder();

function stderr(text: string): void {
  let data = enc.encode(text);
  while (data.length > 0) data = data.subarray(Deno.stderr.writeSync(data));
}

/** Runs a blob command body; an error becomes cosign's `Error:` lines and exit status 1. */
async function cosignStyle(body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (e) {
    const { errorMessage } = await import("../core/errors.ts");
    const message = errorMessage(e);
    stderr(`Error: ${message}\nerror during command execution: ${message}\n`);
    Deno.exit(1);
  }
}

/** The bytes of FILE, or of stdin for `-`. */
async function readBlob(path: string): Promise<Uint8Array> {
  const { AirlockError, errorMessage } = await import("../core/errors.ts");
  try {
    if (path === "-") return new Uint8Array(await new Response(Deno.stdin.readable).arrayBuffer());
    return await Deno.readFile(path);
  } catch (e) {
    throw new AirlockError("IO_ERROR", `reading ${path}: ${errorMessage(e)}`, { cause: e });
  }
}

/**
 * The verification key for `--key REF`: a file holding a `PUBLIC KEY` / `RSA PUBLIC KEY` PEM, else any key
 * reference airlock signs with (key file, `pkcs11:`, KMS), whose public key is used — as cosign's `--key`.
 */
async function loadPublicKey(ref: string): Promise<PublicKey> {
  const { decodePem } = await import("../core/encoding/pem.ts");
  const { parsePublicKeyPem } = await import("../core/signature/public_key.ts");
  let bytes: Uint8Array | undefined;
  try {
    const info = await Deno.stat(ref);
    if (info.isFile && info.size <= 1024 * 1024) bytes = await Deno.readFile(ref);
  } catch {
    bytes = undefined; // not a readable file: a token or KMS reference (openKey reports other problems)
  }
  const block = bytes && decodePem(bytes);
  if (bytes && (block?.type === "PUBLIC KEY" || block?.type === "RSA PUBLIC KEY")) {
    return parsePublicKeyPem(bytes);
  }
  const { openKey } = await import("../backends/key_backend.ts");
  const backend = await openKey(ref);
  try {
    return parsePublicKeyPem(await backend.publicKey());
  } finally {
    await backend.close();
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
 *
 * @example
 * ```ts
 * registerBlob(program);
 * ```
 */
export function registerBlob(program: Command): void {
  program.command("sign-blob")
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
    .option("--tlog-upload <bool>", "accepted for cosign scripts; only false: airlock uploads nowhere")
    .option("-y, --yes", "accepted for cosign scripts (nothing to confirm)")
    .action((file: string, flags: SignBlobFlags) =>
      cosignStyle(async () => {
        const { AirlockError } = await import("../core/errors.ts");
        if (!flags.key) {
          throw new AirlockError("INVALID_ARGUMENT", "--key is required (keyless signing is not supported)");
        }
        if (flags.tlogUpload !== undefined) {
          const { parseGoBool } = await import("./common.ts");
          if (parseGoBool(flags.tlogUpload)) {
            throw new AirlockError(
              "INVALID_ARGUMENT",
              "airlock does not upload to a transparency log: use --tlog-upload=false",
            );
          }
        }
        const [{ openKey }, { signBlob }] = await Promise.all([
          import("../backends/key_backend.ts"),
          import("../core/blob.ts"),
        ]);
        const blob = await readBlob(file);
        const key = await openKey(flags.key, { passphraseFile: flags.passphraseFile });
        let signature: string;
        try {
          signature = await signBlob(key, blob);
        } finally {
          await key.close();
        }
        if (flags.outputSignature === undefined) {
          const { writeStdout } = await import("./common.ts");
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
      "--insecure-ignore-tlog [bool]",
      "accepted for cosign scripts: blob signatures are never looked up in a transparency log",
    )
    .action((file: string | undefined, flags: VerifyBlobFlags) =>
      cosignStyle(async () => {
        const { AirlockError } = await import("../core/errors.ts");
        // `--insecure-ignore-tlog FILE`: the optional value took the file; give it back.
        const tlog = flags.insecureIgnoreTlog;
        if (typeof tlog === "string" && !/^(1|t|T|TRUE|true|True|0|f|F|FALSE|false|False)$/.test(tlog)) {
          if (file !== undefined) throw new AirlockError("INVALID_ARGUMENT", `unexpected argument "${file}"`);
          file = tlog;
        }
        if (file === undefined) throw new AirlockError("INVALID_ARGUMENT", "missing the file to verify");
        if (!flags.key) {
          throw new AirlockError(
            "INVALID_ARGUMENT",
            "--key is required (keyless verification is not supported)",
          );
        }
        if (!flags.signature) throw new AirlockError("INVALID_ARGUMENT", "--signature is required");
        const { verifyBlob } = await import("../core/blob.ts");
        const publicKey = await loadPublicKey(flags.key);
        const signature = await readSignature(flags.signature);
        await verifyBlob(publicKey, await readBlob(file), signature);
        stderr("Verified OK\n");
      })
    );
}
