/**
 * The part every key held by a key service (`hashivault.ts`, `awskms.ts`, `gcpkms.ts`, `azurekms.ts`) does the
 * same way around the service's own sign call: refuse to sign once closed, check each signature the service
 * returns against the public key read at open, and release the HTTP client once. Each backend supplies only
 * how to ask its service for a signature.
 *
 * @example
 * ```ts
 * return kmsKey({
 *   name: ref,
 *   key,
 *   sign: (message) => askTheServiceToSign(message),
 *   mismatch: "AWS KMS returned a signature that does not verify with the key's public key",
 *   close: () => http.close(),
 * });
 * ```
 *
 * @module
 */
import { createHash } from "node:crypto";
import { AirlockError } from "../core/errors.ts";
import { type PublicKey, publicKeyToPem, verifySignature } from "../core/signature/public_key.ts";
import type { KeyBackend } from "./key_types.ts";
import type { EnvLookup } from "./kms_http.ts";

/** Options of the key service backends' openers (`openVaultKey`, `openAwsKmsKey`, …). */
export interface KmsKeyOptions {
  /** Reads an environment variable; defaults to `Deno.env.get`. */
  env?: EnvLookup;
  /** Time limit of one request in ms; default 30 000. */
  timeoutMs?: number;
}

/** What {@linkcode kmsKey} needs from a backend. */
export interface KmsKeyParts {
  /** The key reference, for messages (`awskms:///alias/release`). */
  readonly name: string;
  /** The public key read when the key was opened; every signature is checked against it. */
  readonly key: PublicKey;
  /** Asks the service to sign `message`; returns the signature in the format cosign stores. */
  sign(message: Uint8Array): Promise<Uint8Array>;
  /** The message (after `NAME: `) of the `KEY_BACKEND` error when a returned signature does not verify. */
  readonly mismatch: string;
  /** Releases what the key holds (the HTTP client); called once, by the first `close()`. */
  close(): void;
}

/**
 * A {@linkcode KeyBackend} over a key service's sign call. `sign` throws `KEY_BACKEND` after `close()` and when
 * the service's signature does not verify with `parts.key`; `close()` releases `parts` once.
 */
export function kmsKey(parts: KmsKeyParts): KeyBackend {
  const pem = publicKeyToPem(parts.key);
  let closed = false;
  return {
    publicKey: () => Promise.resolve(pem),
    async sign(message: Uint8Array): Promise<Uint8Array> {
      if (closed) throw new AirlockError("KEY_BACKEND", `${parts.name} is closed`);
      const sig = await parts.sign(message);
      if (!await verifySignature(parts.key, message, sig)) {
        throw new AirlockError("KEY_BACKEND", `${parts.name}: ${parts.mismatch}`);
      }
      return sig;
    },
    close(): Promise<void> {
      if (!closed) {
        closed = true;
        parts.close();
      }
      return Promise.resolve();
    },
  };
}

/**
 * SHA-256 of `message`: what the key services sign for ECDSA and RSA keys.
 */
export function sha256(message: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(message).digest());
}
