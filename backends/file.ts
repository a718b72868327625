/**
 * Encrypted cosign/sigstore key files (spec/hangar.md §7.1, spec/cosign.md §4.1).
 *
 * File = PEM (first block) of type `ENCRYPTED SIGSTORE PRIVATE KEY` or `ENCRYPTED COSIGN PRIVATE KEY`; body = JSON
 * envelope `{kdf: {name: "scrypt", params: {N, r, p}, salt}, cipher: {name: "nacl/secretbox", nonce}, ciphertext}`
 * (keys matched case-insensitively as Go's `encoding/json` does); `key = scrypt(passphrase, salt, N, r, p, 32)`
 * with (N, r, p) exactly one of (32768, 8, 1), (65536, 8, 1), (131072, 8, 1); plaintext = XSalsa20-Poly1305
 * `secretbox.open(ciphertext, nonce, key)` = PKCS#8 DER of an ECDSA (P-256/P-384/P-521), RSA or Ed25519 key.
 *
 * Extension over cosign and hangar: unencrypted `PRIVATE KEY` (PKCS#8), `EC PRIVATE KEY` (SEC1) and
 * `RSA PRIVATE KEY` (PKCS#1) PEMs are accepted too, without asking for a passphrase, but only when the caller
 * says so explicitly (`allowUnencryptedKey`, the CLI's `--allow-unencrypted-key`); by default they are refused.
 *
 * The key is decrypted once, at open, and imported into WebCrypto as a non-extractable key; the decrypted
 * bytes are zeroed. Signing: ECDSA with SHA-256 whatever the curve (raw `r‖s` converted to ASN.1 DER),
 * RSA PKCS#1 v1.5 with SHA-256, pure Ed25519. Ed25519 PKCS#8 v2 bodies (with the public key, which WebCrypto
 * rejects) are rewritten to v1 before import.
 *
 * scrypt runs on `node:crypto`'s asynchronous `scrypt` (thread pool: the event loop stays free). Measured in
 * Deno 2.9.6 on 2 cores for N=65536: node:crypto ~240 ms (sync or async), `@noble/hashes` ~250–380 ms.
 *
 * @example
 * ```ts
 * const key = await openKeyFile("cosign.key", { passphraseFile: "pass.txt" });
 * const sig = await key.sign(payload);
 * ```
 *
 * @module
 */
import { scrypt } from "node:crypto";
import { secretbox } from "@noble/ciphers/salsa.js";
import { AirlockError } from "../core/errors.ts";
import { base64Decode, base64Encode } from "../core/encoding/base64.ts";
import {
  bufferSource,
  curveFromOid,
  type EcCurve,
  ecdsaRawToDer,
  type KeyAlgorithm,
  OID,
} from "../core/signature/public_key.ts";
import { decodePem, encodePem } from "../core/encoding/pem.ts";
import {
  DER,
  type DerElement,
  derEncode,
  derOid,
  oidToString,
  readDer,
  readDerOne,
} from "../core/encoding/der.ts";
import type { KeyBackend } from "./key_types.ts";
import { type PassphraseOptions, resolvePassphrase } from "./passphrase.ts";

/** PEM type cosign ≥ v2 writes (`cosign generate-key-pair`). */
export const SIGSTORE_KEY_PEM_TYPE = "ENCRYPTED SIGSTORE PRIVATE KEY";
/** PEM type of the legacy cosign format, still written by skopeo/hangar `generate-sigstore-key`. */
export const COSIGN_KEY_PEM_TYPE = "ENCRYPTED COSIGN PRIVATE KEY";
/** PEM types of private keys stored in the clear (used only when explicitly allowed). */
const UNENCRYPTED_TYPES = new Set(["PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY"]);
/** The PEM types of encrypted key files. */
export type EncryptedKeyPemType = typeof SIGSTORE_KEY_PEM_TYPE | typeof COSIGN_KEY_PEM_TYPE;

/** The scrypt cost parameters go-securesystemslib accepts: N with r=8, p=1 (legacy, standard, OWASP). */
export const SCRYPT_N_VALUES: readonly number[] = [32768, 65536, 131072];
/** The scrypt N that cosign and `generate-sigstore-key` write. */
export const SCRYPT_N_DEFAULT = 65536;

/** A parsed (still encrypted) key envelope. */
export interface KeyEnvelope {
  /** scrypt cost parameters. */
  readonly scrypt: { readonly N: number; readonly r: number; readonly p: number };
  /** scrypt salt. */
  readonly salt: Uint8Array;
  /** secretbox nonce (24 bytes). */
  readonly nonce: Uint8Array;
  /** secretbox output: 16-byte Poly1305 tag, then the encrypted PKCS#8. */
  readonly ciphertext: Uint8Array;
}

function invalid(keyName: string, detail: string, cause?: unknown): AirlockError {
  return new AirlockError("KEY_INVALID", `private key "${keyName}": ${detail}`, { cause });
}

function unsupported(keyName: string, detail: string): AirlockError {
  return new AirlockError("KEY_UNSUPPORTED", `private key "${keyName}": ${detail}`);
}

/** Go `encoding/json` field lookup: exact name first, else the last case-insensitive match. */
function field(obj: Record<string, unknown>, name: string): unknown {
  if (Object.hasOwn(obj, name)) return obj[name];
  let found: unknown;
  for (const [k, v] of Object.entries(obj)) if (k.toLowerCase() === name.toLowerCase()) found = v;
  return found;
}

function asObject(v: unknown, what: string): Record<string, unknown> {
  if (v === undefined || v === null) return {};
  if (typeof v !== "object" || Array.isArray(v)) throw new Error(`${what} is not an object`);
  return v as Record<string, unknown>;
}

function asString(v: unknown, what: string): string {
  if (v === undefined || v === null) return "";
  if (typeof v !== "string") throw new Error(`${what} is not a string`);
  return v;
}

function asInt(v: unknown, what: string): number {
  if (v === undefined || v === null) return 0;
  if (typeof v !== "number" || !Number.isSafeInteger(v)) throw new Error(`${what} is not an integer`);
  return v;
}

function asBytes(v: unknown, what: string): Uint8Array {
  const s = asString(v, what);
  const b = base64Decode(s.replace(/[\r\n]/g, ""));
  if (!b) throw new Error(`${what} is not valid base64`);
  return b;
}

/**
 * Parses and checks the JSON envelope of an encrypted key (the PEM body), before any passphrase is needed:
 * kdf `scrypt` with allowed parameters, cipher `nacl/secretbox` with a 24-byte nonce.
 *
 * Errors: `KEY_INVALID` (malformed JSON or fields, `encrypted: incorrect nonce size`), `KEY_UNSUPPORTED`
 * (`encrypted: unknown kdf name "…"`, `encrypted: unknown cipher name "…"`, `unsupported scrypt parameters`).
 *
 * @param keyName names the key in error messages
 *
 * @example
 * ```ts
 * const env = parseKeyEnvelope(decodePem(text)!.bytes, "cosign.key");
 * env.scrypt.N; // 65536
 * ```
 */
export function parseKeyEnvelope(body: Uint8Array, keyName: string): KeyEnvelope {
  let kdfName: string, cipherName: string;
  let N: number, r: number, p: number;
  let salt: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array;
  try {
    const top = asObject(JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body)), "envelope");
    const kdf = asObject(field(top, "kdf"), "kdf");
    const params = asObject(field(kdf, "params"), "kdf.params");
    const cipher = asObject(field(top, "cipher"), "cipher");
    kdfName = asString(field(kdf, "name"), "kdf.name");
    N = asInt(field(params, "N"), "kdf.params.N");
    r = asInt(field(params, "r"), "kdf.params.r");
    p = asInt(field(params, "p"), "kdf.params.p");
    salt = asBytes(field(kdf, "salt"), "kdf.salt");
    cipherName = asString(field(cipher, "name"), "cipher.name");
    nonce = asBytes(field(cipher, "nonce"), "cipher.nonce");
    ciphertext = asBytes(field(top, "ciphertext"), "ciphertext");
  } catch (e) {
    throw invalid(keyName, `decrypt: invalid encrypted key envelope: ${(e as Error).message}`, e);
  }
  if (kdfName !== "scrypt") throw unsupported(keyName, `decrypt: encrypted: unknown kdf name "${kdfName}"`);
  if (cipherName !== "nacl/secretbox") {
    throw unsupported(keyName, `decrypt: encrypted: unknown cipher name "${cipherName}"`);
  }
  if (!SCRYPT_N_VALUES.includes(N) || r !== 8 || p !== 1) {
    throw unsupported(keyName, `decrypt: unsupported scrypt parameters (N=${N}, r=${r}, p=${p})`);
  }
  if (nonce.length !== 24) throw invalid(keyName, "decrypt: encrypted: incorrect nonce size");
  return { scrypt: { N, r, p }, salt, nonce, ciphertext };
}

function scryptKey(passphrase: Uint8Array, env: KeyEnvelope): Promise<Uint8Array> {
  const { N, r, p } = env.scrypt;
  return new Promise((resolve, reject) =>
    scrypt(passphrase, env.salt, 32, { N, r, p, maxmem: 256 * N * r * p }, (err, key) => {
      if (err) reject(err);
      else resolve(new Uint8Array(key.buffer, key.byteOffset, key.byteLength));
    })
  );
}

/**
 * Decrypts an envelope with `passphrase`; returns the PKCS#8 DER (zero it when done). A wrong passphrase (or a
 * corrupted ciphertext: secretbox cannot tell them apart) gives `KEY_PASSPHRASE`
 * `decryption failed: wrong passphrase for key <keyName>?`.
 */
export async function decryptKeyEnvelope(
  env: KeyEnvelope,
  passphrase: Uint8Array,
  keyName: string,
): Promise<Uint8Array> {
  let key: Uint8Array;
  try {
    key = await scryptKey(passphrase, env);
  } catch (e) {
    throw new AirlockError("KEY_BACKEND", `private key "${keyName}": decrypt: scrypt failed`, { cause: e });
  }
  try {
    return secretbox(key, env.nonce).open(env.ciphertext);
  } catch {
    throw new AirlockError("KEY_PASSPHRASE", `decryption failed: wrong passphrase for key ${keyName}?`);
  } finally {
    key.fill(0);
  }
}

/**
 * Encrypts a PKCS#8 DER private key into an encrypted key PEM, exactly as go-securesystemslib and cosign
 * write it: random 32-byte salt, scrypt (N, 8, 1), random 24-byte nonce, secretbox, JSON envelope in Go's
 * field order, PEM lines of 64 characters.
 */
export async function encryptPrivateKey(
  pkcs8: Uint8Array,
  passphrase: Uint8Array,
  options: { pemType: EncryptedKeyPemType; scryptN?: number },
): Promise<string> {
  const N = options.scryptN ?? SCRYPT_N_DEFAULT;
  if (!SCRYPT_N_VALUES.includes(N)) {
    throw new AirlockError("INVALID_ARGUMENT", `unsupported scrypt parameters (N=${N}, r=8, p=1)`);
  }
  const salt = crypto.getRandomValues(new Uint8Array(32));
  const nonce = crypto.getRandomValues(new Uint8Array(24));
  const env: KeyEnvelope = { scrypt: { N, r: 8, p: 1 }, salt, nonce, ciphertext: new Uint8Array() };
  const key = await scryptKey(passphrase, env);
  let ciphertext: Uint8Array;
  try {
    ciphertext = secretbox(key, nonce).seal(pkcs8);
  } finally {
    key.fill(0);
  }
  const json = `{"kdf":{"name":"scrypt","params":{"N":${N},"r":8,"p":1},"salt":"${base64Encode(salt)}"},` +
    `"cipher":{"name":"nacl/secretbox","nonce":"${base64Encode(nonce)}"},` +
    `"ciphertext":"${base64Encode(ciphertext)}"}`;
  return encodePem(options.pemType, new TextEncoder().encode(json));
}

// ---------------------------------------------------------------------------------------------------------------
// PKCS#8

/** A private key ready for WebCrypto import. */
interface Pkcs8Key {
  algorithm: KeyAlgorithm;
  curve?: EcCurve;
  /** Canonical PKCS#8 v1 DER (attributes and public key dropped), accepted by WebCrypto. */
  pkcs8: Uint8Array;
}

/** Reads PKCS#8 (v1 or v2 / OneAsymmetricKey) enough to know the algorithm, and rewrites it as plain v1. */
function parsePkcs8(der: Uint8Array): Pkcs8Key {
  const seq = readDerOne(der, DER.SEQUENCE);
  const [version, alg, priv, ...rest] = readDer(seq.value);
  if (version?.tag !== DER.INTEGER || version.value.length !== 1 || version.value[0] > 1) {
    throw new Error("unknown PKCS#8 version");
  }
  if (alg?.tag !== DER.SEQUENCE || priv?.tag !== DER.OCTET_STRING) throw new Error("malformed PKCS#8");
  for (const r of rest) {
    if (r.tag !== 0xa0 && r.tag !== 0x81 && r.tag !== 0xa1) throw new Error("malformed PKCS#8 trailer");
  }
  const [oidEl, params] = readDer(alg.value);
  if (oidEl?.tag !== DER.OID) throw new Error("malformed PKCS#8 algorithm");
  const oid = oidToString(oidEl.value);
  const v1 = (algorithm: Uint8Array, privateKey: Uint8Array) =>
    derEncode(DER.SEQUENCE, derEncode(DER.INTEGER, new Uint8Array([0])), algorithm, privateKey);

  if (oid === OID.EC_PUBLIC_KEY) {
    const curve = ecCurveOf(params, priv.value);
    return {
      algorithm: "ecdsa",
      curve,
      pkcs8: v1(derEncode(DER.SEQUENCE, oidEl.raw, derOid(curveOid(curve))), priv.raw),
    };
  }
  if (oid === OID.RSA_ENCRYPTION) {
    return { algorithm: "rsa", pkcs8: v1(derEncode(DER.SEQUENCE, oidEl.raw, derEncode(DER.NULL)), priv.raw) };
  }
  if (oid === OID.ED25519) {
    const seed = readDerOne(priv.value, DER.OCTET_STRING).value;
    if (seed.length !== 32) throw new Error("Ed25519 private key is not 32 bytes");
    return { algorithm: "ed25519", pkcs8: v1(derEncode(DER.SEQUENCE, oidEl.raw), priv.raw) };
  }
  throw new UnsupportedKey(`unsupported key type (algorithm ${oid})`);
}

class UnsupportedKey extends Error {}

function curveOid(curve: EcCurve): string {
  return curve === "P-256" ? OID.P256 : curve === "P-384" ? OID.P384 : OID.P521;
}

/** The curve from the PKCS#8 algorithm parameters, else from the SEC1 ECPrivateKey's own `[0]` parameters. */
function ecCurveOf(params: DerElement | undefined, sec1: Uint8Array): EcCurve {
  let oid: string | undefined;
  if (params?.tag === DER.OID) oid = oidToString(params.value);
  else {
    const inner = readDer(readDerOne(sec1, DER.SEQUENCE).value).find((e) => e.tag === 0xa0);
    if (inner) oid = oidToString(readDerOne(inner.value, DER.OID).value);
  }
  if (!oid) throw new Error("EC key without curve parameters");
  const curve = curveFromOid(oid);
  if (!curve) throw new UnsupportedKey(`unsupported elliptic curve ${oid}`);
  return curve;
}

/** Wraps a SEC1 `EC PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY` into PKCS#8. */
function wrapLegacy(type: "EC PRIVATE KEY" | "RSA PRIVATE KEY", der: Uint8Array): Uint8Array {
  const alg = type === "EC PRIVATE KEY"
    ? derEncode(DER.SEQUENCE, derOid(OID.EC_PUBLIC_KEY), derOid(curveOid(ecCurveOf(undefined, der))))
    : derEncode(DER.SEQUENCE, derOid(OID.RSA_ENCRYPTION), derEncode(DER.NULL));
  return derEncode(
    DER.SEQUENCE,
    derEncode(DER.INTEGER, new Uint8Array([0])),
    alg,
    derEncode(DER.OCTET_STRING, der),
  );
}

// ---------------------------------------------------------------------------------------------------------------
// The backend

function webCryptoAlgorithm(
  k: { algorithm: KeyAlgorithm; curve?: EcCurve },
): EcKeyImportParams | RsaHashedImportParams | Algorithm {
  if (k.algorithm === "ecdsa") return { name: "ECDSA", namedCurve: k.curve! };
  if (k.algorithm === "rsa") return { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
  return { name: "Ed25519" };
}

/** The public half of a JWK private key. */
function publicJwk(jwk: JsonWebKey): JsonWebKey {
  const { kty, crv, x, y, n, e } = jwk;
  return Object.fromEntries(Object.entries({ kty, crv, x, y, n, e }).filter(([, v]) => v !== undefined));
}

/** A decrypted private key held as a non-extractable WebCrypto key. */
class FileKey implements KeyBackend {
  #key: CryptoKey | undefined;
  readonly #algorithm: KeyAlgorithm;
  readonly #publicPem: string;
  readonly #name: string;

  constructor(key: CryptoKey, algorithm: KeyAlgorithm, publicPem: string, name: string) {
    this.#key = key;
    this.#algorithm = algorithm;
    this.#publicPem = publicPem;
    this.#name = name;
  }

  publicKey(): Promise<string> {
    return Promise.resolve(this.#publicPem);
  }

  async sign(message: Uint8Array): Promise<Uint8Array> {
    const key = this.#key;
    if (!key) throw new AirlockError("KEY_BACKEND", `private key "${this.#name}" is closed`);
    if (this.#algorithm === "ecdsa") {
      const raw = new Uint8Array(
        await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, key, bufferSource(message)),
      );
      return ecdsaRawToDer(raw);
    }
    const name = this.#algorithm === "rsa" ? "RSASSA-PKCS1-v1_5" : "Ed25519";
    return new Uint8Array(await crypto.subtle.sign({ name }, key, bufferSource(message)));
  }

  close(): Promise<void> {
    this.#key = undefined;
    return Promise.resolve();
  }
}

/**
 * Turns a PKCS#8 DER private key into a {@linkcode KeyBackend}. The caller keeps ownership of `pkcs8` (zero it
 * afterwards). Errors: `KEY_INVALID` (`parsing private key: …`), `KEY_UNSUPPORTED` (other algorithms or curves).
 *
 * @param keyName names the key in error messages
 */
export async function keyFromPkcs8(pkcs8: Uint8Array, keyName: string): Promise<KeyBackend> {
  let parsed: Pkcs8Key;
  try {
    parsed = parsePkcs8(pkcs8);
  } catch (e) {
    if (e instanceof UnsupportedKey) throw unsupported(keyName, `parsing private key: ${e.message}`);
    throw invalid(keyName, `parsing private key: ${(e as Error).message}`, e);
  }
  const alg = webCryptoAlgorithm(parsed);
  try {
    const exportable = await crypto.subtle.importKey("pkcs8", bufferSource(parsed.pkcs8), alg, true, [
      "sign",
    ]);
    const jwk = await crypto.subtle.exportKey("jwk", exportable);
    const pub = await crypto.subtle.importKey("jwk", publicJwk(jwk), alg, true, ["verify"]);
    const spki = new Uint8Array(await crypto.subtle.exportKey("spki", pub));
    const signer = await crypto.subtle.importKey("pkcs8", bufferSource(parsed.pkcs8), alg, false, ["sign"]);
    return new FileKey(signer, parsed.algorithm, encodePem("PUBLIC KEY", spki), keyName);
  } catch (e) {
    throw invalid(keyName, `parsing private key: ${(e as Error).message}`, e);
  } finally {
    parsed.pkcs8.fill(0);
  }
}

/**
 * Opens a private key from PEM text: an encrypted cosign/sigstore key (the passphrase is resolved only then,
 * after the file's format has been checked), or an unencrypted `PRIVATE KEY` / `EC PRIVATE KEY` /
 * `RSA PRIVATE KEY`. Errors: `KEY_INVALID` (`invalid pem block`, malformed envelope or key), `KEY_UNSUPPORTED`
 * (`unsupported pem type: <T>`, scrypt parameters, algorithms), `KEY_PASSPHRASE`, `IO_ERROR`.
 *
 * @param keyName names the key in the prompt and in error messages
 */
export async function loadPrivateKeyPem(
  pem: string | Uint8Array,
  keyName: string,
  options: PassphraseOptions & { allowUnencryptedKey?: boolean } = {},
): Promise<KeyBackend> {
  const block = decodePem(pem);
  if (!block) throw invalid(keyName, "invalid pem block");
  if (UNENCRYPTED_TYPES.has(block.type) && !options.allowUnencryptedKey) {
    block.bytes.fill(0);
    throw unsupported(
      keyName,
      `the private key is not encrypted (PEM "${block.type}"): an unencrypted key file is used only with ` +
        `--allow-unencrypted-key (cosign refuses one too); encrypt it with "cosign import-key-pair"`,
    );
  }
  switch (block.type) {
    case SIGSTORE_KEY_PEM_TYPE:
    case COSIGN_KEY_PEM_TYPE: {
      const env = parseKeyEnvelope(block.bytes, keyName);
      const { passphrase } = await resolvePassphrase(keyName, options);
      let pkcs8: Uint8Array;
      try {
        pkcs8 = await decryptKeyEnvelope(env, passphrase, keyName);
      } finally {
        passphrase.fill(0);
      }
      try {
        return await keyFromPkcs8(pkcs8, keyName);
      } finally {
        pkcs8.fill(0);
      }
    }
    case "PRIVATE KEY":
      try {
        return await keyFromPkcs8(block.bytes, keyName);
      } finally {
        block.bytes.fill(0);
      }
    case "EC PRIVATE KEY":
    case "RSA PRIVATE KEY": {
      let pkcs8: Uint8Array;
      try {
        pkcs8 = wrapLegacy(block.type, block.bytes);
      } catch (e) {
        if (e instanceof UnsupportedKey) throw unsupported(keyName, `parsing private key: ${e.message}`);
        throw invalid(keyName, `parsing private key: ${(e as Error).message}`, e);
      } finally {
        block.bytes.fill(0);
      }
      try {
        return await keyFromPkcs8(pkcs8, keyName);
      } finally {
        pkcs8.fill(0);
      }
    }
    default:
      throw unsupported(keyName, `unsupported pem type: ${block.type}`);
  }
}

/**
 * Opens a key file (see {@linkcode loadPrivateKeyPem}). Throws `IO_ERROR` `failed to read "<path>": …` when the
 * file cannot be read.
 */
export async function openKeyFile(
  path: string,
  options: PassphraseOptions & { allowUnencryptedKey?: boolean } = {},
): Promise<KeyBackend> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new AirlockError("IO_ERROR", `failed to read "${path}": ${(e as Error).message}`, { cause: e });
  }
  try {
    return await loadPrivateKeyPem(bytes, path, options);
  } finally {
    bytes.fill(0);
  }
}
