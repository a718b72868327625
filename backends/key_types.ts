/**
 * The contract between the key dispatcher (`key_backend.ts`) and the backends: what a key is, what opening one
 * takes, and what one row of the dispatch table holds. Backends import this module, never the dispatcher, so the
 * dispatcher's lazy `import()` of each backend is the only edge between them.
 *
 * @module
 */
import type { PassphraseOptions } from "./passphrase.ts";

/** A signing key wherever it lives. One instance per key reference, opened once per run. */
export interface KeyBackend {
  /** The public key, SPKI PEM, for checks and for `airlock public-key`. */
  publicKey(): Promise<string>;
  /** Signs `message` (the payload bytes); returns the signature in the format cosign stores
   * (ASN.1 DER for ECDSA, PKCS#1 v1.5 for RSA, raw for Ed25519). Hashing is the backend's job. */
  sign(message: Uint8Array): Promise<Uint8Array>;
  /** Releases sessions, handles, tokens. */
  close(): Promise<void>;
}

/**
 * Options for opening a key. The passphrase fields are used only by backends that need one (key files); see
 * {@linkcode PassphraseOptions} for the order in which they are tried. Backends that need more (a PIN source, a
 * timeout) add their fields here with an intersection.
 */
export type OpenKeyOptions = PassphraseOptions & {
  /**
   * Accept a private key file that is not encrypted (`PRIVATE KEY`, `EC PRIVATE KEY`, `RSA PRIVATE KEY`);
   * refused by default, as cosign refuses one.
   */
  readonly allowUnencryptedKey?: boolean;
};

/** Opens one kind of key reference. */
export type KeyOpener = (ref: string, options: OpenKeyOptions) => Promise<KeyBackend>;

/** One row of the dispatch table: a reference prefix, its opener, and what the backend knows of its references. */
export interface KeyBackendRow {
  /** The reference prefix the row serves (`pkcs11:`, `awskms://`, …); the first matching row wins. */
  readonly prefix: string;
  /** Opens a reference of this kind (the backend module is loaded here, with `import()`). */
  readonly open: KeyOpener;
  /**
   * The reference fit for log lines: secrets it may carry replaced by `***`. Called for every reference (it
   * returns others unchanged), so a secret is hidden whatever the spelling of the prefix.
   */
  readonly display?: (ref: string) => string;
  /** A warning for front doors to print about the reference (a secret in it), else `undefined`. */
  readonly warning?: (ref: string) => string | undefined;
}

/**
 * The plugin name of a `NAME://…` reference, or `undefined` when `ref` has no such scheme: a reference no row
 * serves goes to the KMS plugin `sigstore-kms-NAME`.
 *
 * @example
 * ```ts
 * pluginName("mycorp://keys/k"); // "mycorp"
 * pluginName("./cosign.key");    // undefined
 * ```
 */
export function pluginName(ref: string): string | undefined {
  return /^([A-Za-z][A-Za-z0-9+.\-_]*):\/\//.exec(ref)?.[1];
}
