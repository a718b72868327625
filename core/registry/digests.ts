/**
 * Digest checks of what passes between airlock and a registry: bytes in memory against the digest asked for and
 * the one the registry announces, streams hashed while they pass, and the digest a registry says it stored.
 *
 * @module
 */

import { createHash, type Hash } from "node:crypto";
import { AirlockError } from "../errors.ts";
import { digestRe, validateDigest } from "./names.ts";

/** The algorithm part of `algorithm:hex`. */
function algorithmOf(digest: string): string {
  return digest.slice(0, digest.indexOf(":"));
}

/**
 * `algorithm:hex` of `bytes` (sha256 unless told otherwise).
 */
export function digestOf(bytes: Uint8Array, algorithm = "sha256"): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest("hex")}`;
}

/**
 * Checks `bytes` against `expected` (DIGEST_MISMATCH otherwise); returns it.
 */
export function checkDigest(bytes: Uint8Array, expected: string, what: string): string {
  validateDigest(expected);
  const actual = digestOf(bytes, algorithmOf(expected));
  if (actual !== expected) {
    throw new AirlockError(
      "DIGEST_MISMATCH",
      `${what}: digest mismatch, expected ${expected}, got ${actual}`,
    );
  }
  return expected;
}

/**
 * Verifies manifest bytes against the requested digest and the registry's `Docker-Content-Digest`; returns the
 * digest (the requested one, else sha256 of the bytes).
 */
export function verifyDigest(
  bytes: Uint8Array,
  requested: string | undefined,
  header: string | null,
  what: string,
): string {
  const digest = requested ? checkDigest(bytes, requested, what) : digestOf(bytes);
  const announced = header?.trim();
  if (announced && announced !== digest && digestRe.test(announced)) {
    // The bytes are hashed once more only when the registry announces another algorithm.
    const algorithm = algorithmOf(announced);
    const actual = algorithm === algorithmOf(digest) ? digest : digestOf(bytes, algorithm);
    if (actual !== announced) {
      throw new AirlockError(
        "DIGEST_MISMATCH",
        `${what}: digest mismatch, the registry announced ${announced} but the content is ${actual}`,
      );
    }
  }
  return digest;
}

/**
 * Checks the `Docker-Content-Digest` a registry echoes after a write: DIGEST_MISMATCH when it names the same
 * algorithm but another digest (a digest of another algorithm cannot be compared and is accepted).
 */
export function checkStoredDigest(headers: Headers, digest: string, what: string): void {
  const echoed = headers.get("docker-content-digest");
  if (echoed && echoed.startsWith(`${algorithmOf(digest)}:`) && echoed !== digest) {
    throw new AirlockError("DIGEST_MISMATCH", `${what}: the registry stored ${echoed}, expected ${digest}`);
  }
}

/**
 * Hashes and counts the bytes of a blob while they stream past, to check them at the end against the digest and
 * size of its descriptor.
 *
 * @example
 * ```ts
 * const check = new StreamDigest(d.digest, d.size);
 * for await (const chunk of stream) check.update(chunk);
 * const bad = check.mismatch("reading blob …");
 * if (bad) throw bad;
 * ```
 */
export class StreamDigest {
  readonly #digest: string;
  readonly #hash: Hash;
  /** The expected size, when known. */
  readonly size?: number;
  #total = 0;

  /**
   * @param digest the expected `algorithm:hex` (validated by the caller)
   * @param size the expected size, when known
   */
  constructor(digest: string, size?: number) {
    this.#digest = digest;
    this.#hash = createHash(algorithmOf(digest));
    this.size = size;
  }

  /** How many bytes passed so far. */
  get total(): number {
    return this.#total;
  }

  /** Whether more bytes passed than the expected size. */
  get overflowed(): boolean {
    return this.size !== undefined && this.#total > this.size;
  }

  /** Adds a chunk to the hash and the count. */
  update(chunk: Uint8Array): void {
    this.#hash.update(chunk);
    this.#total += chunk.byteLength;
  }

  /** At the end: DIGEST_MISMATCH when the count or the hash differs from the expected one, else `undefined`. */
  mismatch(what: string): AirlockError | undefined {
    const actual = `${algorithmOf(this.#digest)}:${this.#hash.digest("hex")}`;
    if (this.size !== undefined && this.#total !== this.size) {
      return new AirlockError("DIGEST_MISMATCH", `${what}: got ${this.#total} bytes, expected ${this.size}`);
    }
    if (actual !== this.#digest) {
      return new AirlockError(
        "DIGEST_MISMATCH",
        `${what}: digest mismatch, expected ${this.#digest}, got ${actual}`,
      );
    }
    return undefined;
  }
}
