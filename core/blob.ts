/**
 * Blob signatures as `cosign sign-blob --key` / `cosign verify-blob --key` make and check them: the signature
 * is the key's signature over the file's bytes (SHA-256 for ECDSA and RSA, as every airlock key backend hashes;
 * ECDSA signatures are ASN.1 DER), exchanged as standard base64. No payload envelope, no transparency log.
 *
 * Used for airlock's own release checksums (`SHA256SUMS`), so that a download can be checked with airlock or
 * cosign before it is carried across the air gap.
 *
 * @example
 * ```ts
 * const sig = await signBlob(key, await Deno.readFile("SHA256SUMS"));      // "MEUCIQ…"
 * await verifyBlob(parsePublicKeyPem(pem), bytes, decodeBlobSignature(sig)); // throws when it does not verify
 * ```
 *
 * @module
 */
import type { KeyBackend } from "../backends/key_backend.ts";
import { AirlockError } from "./errors.ts";
import { base64Decode, base64Encode } from "./encoding/base64.ts";
import { type PublicKey, verifySignature } from "./signature/public_key.ts";

/**
 * Signs `blob` with `key` and returns the signature as standard base64, what `cosign sign-blob --key` prints and
 * writes with `--output-signature`.
 */
export async function signBlob(key: KeyBackend, blob: Uint8Array): Promise<string> {
  return base64Encode(await key.sign(blob));
}

/**
 * Decodes a blob signature as cosign reads `--signature`: surrounding white space is ignored; standard base64 is
 * decoded; anything that is not base64 is taken as the raw signature bytes. Throws `SIGNATURE_INVALID` for an
 * empty signature.
 */
export function decodeBlobSignature(signature: string | Uint8Array): Uint8Array {
  const raw = typeof signature === "string" ? new TextEncoder().encode(signature) : signature;
  const text = new TextDecoder("utf-8", { fatal: false }).decode(raw).trim();
  if (text === "") throw new AirlockError("SIGNATURE_INVALID", "the signature is empty");
  return base64Decode(text) ?? raw;
}

/**
 * Checks `signature` over `blob` with `publicKey` (ECDSA DER or raw r‖s with SHA-256, RSA PKCS#1 v1.5 with
 * SHA-256, Ed25519). Throws `SIGNATURE_INVALID` when it does not verify, `KEY_INVALID` when the key cannot be used.
 */
export async function verifyBlob(
  publicKey: PublicKey,
  blob: Uint8Array,
  signature: Uint8Array,
): Promise<void> {
  if (!await verifySignature(publicKey, blob, signature)) {
    throw new AirlockError("SIGNATURE_INVALID", "invalid signature: the blob was not signed by this key");
  }
}
