/**
 * Public keys and raw signature checks, as sigstore's `cryptoutils` and containers/image read them
 * (spec/hangar.md §6.4c–e, §7.3): PEM `PUBLIC KEY` (PKIX: ECDSA P-256/P-384/P-521, RSA, Ed25519) or
 * `RSA PUBLIC KEY` (PKCS#1), and a SHA-256 verifier: ECDSA over SHA-256 whatever the curve (ASN.1 DER only, as
 * Go's `ecdsa.VerifyASN1`), RSA PKCS#1 v1.5 with SHA-256, pure Ed25519.
 *
 * The ECDSA signature conversions live here too; `backends/` uses them to turn WebCrypto's raw `r‖s` into the
 * DER that cosign stores. The generic DER, PEM and base64 helpers are in `../encoding/`.
 *
 * @example
 * ```ts
 * const key = parsePublicKeyPem(await Deno.readTextFile("cosign.pub"));
 * const ok = await verifySignature(key, payload, signature);
 * ```
 *
 * @module
 */
import { createHash } from "node:crypto";
import { AirlockError } from "../errors.ts";
import {
  DER,
  type DerElement,
  derEncode,
  derOid,
  oidToString,
  readDer,
  readDerOne,
} from "../encoding/der.ts";
import { decodePem, encodePem } from "../encoding/pem.ts";

// ---------------------------------------------------------------------------------------------------------------
// Key types and ECDSA signature forms

/** Object identifiers of the key types airlock reads. */
export const OID = {
  EC_PUBLIC_KEY: "1.2.840.10045.2.1",
  P256: "1.2.840.10045.3.1.7",
  P384: "1.3.132.0.34",
  P521: "1.3.132.0.35",
  RSA_ENCRYPTION: "1.2.840.113549.1.1.1",
  ED25519: "1.3.101.112",
} as const;

/** The ECDSA curves airlock supports. */
export type EcCurve = "P-256" | "P-384" | "P-521";

/**
 * The curve named by an OID, or `undefined`.
 */
export function curveFromOid(oid: string): EcCurve | undefined {
  return oid === OID.P256 ? "P-256" : oid === OID.P384 ? "P-384" : oid === OID.P521 ? "P-521" : undefined;
}

/** Byte length of a scalar (and of `r`, `s`) on each curve. */
const CURVE_BYTES: Record<EcCurve, number> = { "P-256": 32, "P-384": 48, "P-521": 66 };

/**
 * Converts an ECDSA signature from raw `r‖s` (IEEE P1363, what WebCrypto and PKCS#11 return) to ASN.1 DER
 * `SEQUENCE { INTEGER r, INTEGER s }` (what cosign stores), with minimal integer encodings.
 */
export function ecdsaRawToDer(raw: Uint8Array): Uint8Array {
  if (raw.length === 0 || raw.length % 2 !== 0) throw new Error("ECDSA: raw signature has an odd length");
  const half = raw.length / 2;
  const int = (b: Uint8Array): Uint8Array => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    const v = b.subarray(i);
    return derEncode(DER.INTEGER, ...(v[0] & 0x80 ? [new Uint8Array([0]), v] : [v]));
  };
  return derEncode(DER.SEQUENCE, int(raw.subarray(0, half)), int(raw.subarray(half)));
}

/**
 * Converts a strict ASN.1 DER ECDSA signature to raw `r‖s` with `size` bytes per integer. Returns `undefined`
 * when the bytes are not a well-formed DER signature for that size (negative or non-minimal integers,
 * trailing bytes, integers too large).
 */
export function ecdsaDerToRaw(der: Uint8Array, size: number): Uint8Array | undefined {
  try {
    const seq = readDerOne(der, DER.SEQUENCE);
    const ints = readDer(seq.value);
    if (ints.length !== 2 || ints.some((e) => e.tag !== DER.INTEGER)) return undefined;
    const out = new Uint8Array(size * 2);
    for (const [i, { value }] of ints.entries()) {
      if (value.length === 0 || value[0] & 0x80) return undefined; // empty or negative
      if (value.length > 1 && value[0] === 0 && !(value[1] & 0x80)) return undefined; // non-minimal
      const v = value[0] === 0 ? value.subarray(1) : value;
      if (v.length > size) return undefined;
      out.set(v, i * size + size - v.length);
    }
    return out;
  } catch {
    return undefined;
  }
}

/**
 * `bytes` typed as backed by an `ArrayBuffer`, as WebCrypto's `BufferSource` requires: the same view when it
 * already is, else a copy (a `SharedArrayBuffer`-backed view).
 */
export function bufferSource(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer ? bytes as Uint8Array<ArrayBuffer> : new Uint8Array(bytes);
}

// ---------------------------------------------------------------------------------------------------------------
// Public keys

/** The public key algorithms airlock verifies. */
export type KeyAlgorithm = "ecdsa" | "rsa" | "ed25519";

/** A parsed public key. Immutable; the WebCrypto key is imported on first use and cached. */
export interface PublicKey {
  /** The algorithm family. */
  readonly algorithm: KeyAlgorithm;
  /** The curve, for ECDSA keys. */
  readonly curve?: EcCurve;
  /** The key as PKIX SubjectPublicKeyInfo DER (PKCS#1 RSA keys are converted). */
  readonly spki: Uint8Array;
}

const cryptoKeys = new WeakMap<PublicKey, Promise<CryptoKey>>();

function keyError(index: number, detail: string, code: "KEY_INVALID" | "KEY_UNSUPPORTED" = "KEY_INVALID") {
  return new AirlockError(code, `parsing public key ${index}: ${detail}`);
}

/**
 * Parses a public key PEM as sigstore's `cryptoutils.UnmarshalPEMToPublicKey` does: the first PEM block must be
 * `PUBLIC KEY` (PKIX SubjectPublicKeyInfo: ECDSA P-256/P-384/P-521, RSA, Ed25519) or `RSA PUBLIC KEY` (PKCS#1).
 * Errors (code `KEY_INVALID`, or `KEY_UNSUPPORTED` for other algorithms) carry containers/image's texts:
 * `parsing public key 1: PEM decoding failed` and
 * `parsing public key 1: unknown Public key PEM file type: <T>. Are you passing the correct public key?`.
 *
 * @param pem the file contents
 * @param keyIndex the 1-based number used in messages (containers/image counts the keys of a requirement)
 *
 * @example
 * ```ts
 * const key = parsePublicKeyPem(await Deno.readTextFile("alice.pub"));
 * key.algorithm; // "ecdsa"
 * ```
 */
export function parsePublicKeyPem(pem: string | Uint8Array, keyIndex = 1): PublicKey {
  const block = decodePem(pem);
  if (!block) throw keyError(keyIndex, "PEM decoding failed");
  if (block.type === "PUBLIC KEY") return publicKeyFromSpki(block.bytes, keyIndex);
  if (block.type === "RSA PUBLIC KEY") {
    try {
      const seq = readDerOne(block.bytes, DER.SEQUENCE);
      const ints = readDer(seq.value);
      if (ints.length !== 2 || ints.some((e) => e.tag !== DER.INTEGER)) {
        throw new Error("not an RSAPublicKey");
      }
    } catch (e) {
      throw keyError(keyIndex, `x509: failed to parse public key (PKCS#1): ${(e as Error).message}`);
    }
    checkRsaSize(block.bytes, keyIndex);
    const spki = derEncode(
      DER.SEQUENCE,
      derEncode(DER.SEQUENCE, derOid(OID.RSA_ENCRYPTION), derEncode(DER.NULL)),
      derEncode(DER.BIT_STRING, new Uint8Array([0]), block.bytes),
    );
    return { algorithm: "rsa", spki };
  }
  throw keyError(
    keyIndex,
    `unknown Public key PEM file type: ${block.type}. Are you passing the correct public key?`,
  );
}

/** RSA keys shorter than this are refused, for signing and for verification. */
export const MIN_RSA_BITS = 2048;

/**
 * The size in bits of the modulus of a PKCS#1 `RSAPublicKey` (DER); refuses a key under {@linkcode MIN_RSA_BITS}
 * (`KEY_UNSUPPORTED`) or one that is not an RSAPublicKey (`KEY_INVALID`).
 */
function checkRsaSize(rsaPublicKey: Uint8Array, keyIndex: number): void {
  let modulus: Uint8Array;
  try {
    const [n, e, ...rest] = readDer(readDerOne(rsaPublicKey, DER.SEQUENCE).value);
    if (n?.tag !== DER.INTEGER || e?.tag !== DER.INTEGER || rest.length > 0) {
      throw new Error("not an RSAPublicKey");
    }
    modulus = n.value;
  } catch (e) {
    throw keyError(keyIndex, `x509: failed to parse RSA public key: ${(e as Error).message}`);
  }
  let i = 0;
  while (i < modulus.length && modulus[i] === 0) i++;
  const bits = i === modulus.length ? 0 : (modulus.length - i - 1) * 8 + (32 - Math.clz32(modulus[i]));
  if (bits < MIN_RSA_BITS) {
    throw keyError(
      keyIndex,
      `RSA key of ${bits} bits: keys under ${MIN_RSA_BITS} bits are refused (too weak to sign or to trust)`,
      "KEY_UNSUPPORTED",
    );
  }
}

/**
 * Reads a PKIX SubjectPublicKeyInfo (DER). Throws `KEY_INVALID` on malformed input and `KEY_UNSUPPORTED` for
 * algorithms or curves airlock cannot verify.
 */
export function publicKeyFromSpki(spki: Uint8Array, keyIndex = 1): PublicKey {
  let algOid: string;
  let params: DerElement | undefined;
  let keyBits: Uint8Array;
  try {
    const seq = readDerOne(spki, DER.SEQUENCE);
    const [alg, bits, ...rest] = readDer(seq.value);
    if (!alg || alg.tag !== DER.SEQUENCE || !bits || bits.tag !== DER.BIT_STRING || rest.length) {
      throw new Error("not a SubjectPublicKeyInfo");
    }
    const algEls = readDer(alg.value);
    if (algEls[0]?.tag !== DER.OID) throw new Error("no algorithm OID");
    algOid = oidToString(algEls[0].value);
    params = algEls[1];
    if (bits.value[0] !== 0) throw new Error("unused bits in public key");
    keyBits = bits.value.subarray(1);
  } catch (e) {
    throw keyError(keyIndex, `x509: failed to parse public key: ${(e as Error).message}`);
  }
  const copy = spki.slice();
  if (algOid === OID.EC_PUBLIC_KEY) {
    const curve = params?.tag === DER.OID ? curveFromOid(oidToString(params.value)) : undefined;
    if (!curve) throw keyError(keyIndex, "x509: unsupported elliptic curve", "KEY_UNSUPPORTED");
    if (keyBits.length !== 1 + 2 * CURVE_BYTES[curve] || keyBits[0] !== 4) {
      throw keyError(keyIndex, "x509: failed to unmarshal elliptic curve point");
    }
    return { algorithm: "ecdsa", curve, spki: copy };
  }
  if (algOid === OID.RSA_ENCRYPTION) {
    checkRsaSize(keyBits, keyIndex);
    return { algorithm: "rsa", spki: copy };
  }
  if (algOid === OID.ED25519) {
    if (keyBits.length !== 32) throw keyError(keyIndex, "x509: wrong Ed25519 public key size");
    return { algorithm: "ed25519", spki: copy };
  }
  throw keyError(keyIndex, `x509: unsupported public key algorithm ${algOid}`, "KEY_UNSUPPORTED");
}

/**
 * The key as PEM `PUBLIC KEY` (PKIX), as sigstore's `MarshalPublicKeyToPEM` writes it.
 */
export function publicKeyToPem(key: PublicKey): string {
  return encodePem("PUBLIC KEY", key.spki);
}

/**
 * Lowercase hex SHA-256 of the key's SubjectPublicKeyInfo DER (a stable key fingerprint).
 */
export function spkiSha256Hex(key: PublicKey): string {
  return createHash("sha256").update(key.spki).digest("hex");
}

function importAlgorithm(key: PublicKey): RsaHashedImportParams | EcKeyImportParams | Algorithm {
  if (key.algorithm === "ecdsa") return { name: "ECDSA", namedCurve: key.curve! };
  if (key.algorithm === "rsa") return { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
  return { name: "Ed25519" };
}

function cryptoKeyOf(key: PublicKey): Promise<CryptoKey> {
  let p = cryptoKeys.get(key);
  if (!p) {
    p = crypto.subtle.importKey("spki", bufferSource(key.spki), importAlgorithm(key), false, ["verify"]);
    cryptoKeys.set(key, p);
  }
  return p;
}

/**
 * Verifies `signature` over `message` the way sigstore's SHA-256 verifiers do:
 * - ECDSA (any curve): SHA-256; the signature must be ASN.1 DER (what cosign stores; raw `r‖s` is refused, as
 *   containers/image 5.29 and cosign refuse it);
 * - RSA: PKCS#1 v1.5 with SHA-256;
 * - Ed25519: pure Ed25519 over the message.
 *
 * Returns `false` for a wrong or malformed signature; throws only when the key cannot be used at all.
 */
export async function verifySignature(
  key: PublicKey,
  message: Uint8Array,
  signature: Uint8Array,
): Promise<boolean> {
  let cryptoKey: CryptoKey;
  try {
    cryptoKey = await cryptoKeyOf(key);
  } catch (e) {
    throw new AirlockError("KEY_INVALID", `public key cannot be used: ${(e as Error).message}`, { cause: e });
  }
  try {
    if (key.algorithm === "ecdsa") {
      const size = CURVE_BYTES[key.curve!];
      // ASN.1 DER only: Go's ecdsa.VerifyASN1, what sigstore (as vendored by containers/image 5.29 and cosign)
      // calls. A raw r‖s signature is refused, whatever its bytes.
      const raw = ecdsaDerToRaw(signature, size);
      if (!raw) return false;
      return await crypto.subtle.verify(
        { name: "ECDSA", hash: "SHA-256" },
        cryptoKey,
        bufferSource(raw),
        bufferSource(message),
      );
    }
    if (key.algorithm === "rsa") {
      return await crypto.subtle.verify(
        { name: "RSASSA-PKCS1-v1_5" },
        cryptoKey,
        bufferSource(signature),
        bufferSource(message),
      );
    }
    if (signature.length !== 64) return false;
    return await crypto.subtle.verify(
      { name: "Ed25519" },
      cryptoKey,
      bufferSource(signature),
      bufferSource(message),
    );
  } catch {
    return false;
  }
}
