/**
 * Content digests: computing `sha256:<hex>` and validating digest strings as opencontainers/go-digest does.
 *
 * @module
 */
import { createHash } from "node:crypto";
// ---------------------------------------------------------------------------------------------------------------
// Digests
// ---------------------------------------------------------------------------------------------------------------

/**
 * `sha256:<hex>` of some bytes.
 */
export function sha256Digest(bytes: Uint8Array): string {
  return "sha256:" + createHash("sha256").update(bytes).digest("hex");
}

const DIGEST_HEX_LENGTH: Readonly<Record<string, number>> = { sha256: 64, sha384: 96, sha512: 128 };

/**
 * Validates a digest string as opencontainers/go-digest's `Parse` does (sha256, sha384 and sha512 available).
 * Returns `undefined` when valid, else go-digest's error text: `invalid checksum digest format`,
 * `invalid checksum digest length` or `unsupported digest algorithm`.
 */
export function digestError(d: string): string | undefined {
  const i = d.indexOf(":");
  if (i <= 0 || i + 1 === d.length) return "invalid checksum digest format";
  const alg = d.slice(0, i);
  const encoded = d.slice(i + 1);
  const len = DIGEST_HEX_LENGTH[alg];
  if (len === undefined) {
    if (!/^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/.test(d)) return "invalid checksum digest format";
    return "unsupported digest algorithm";
  }
  if (encoded.length !== len) return "invalid checksum digest length";
  if (!/^[a-f0-9]+$/.test(encoded)) return "invalid checksum digest format";
  return undefined;
}
