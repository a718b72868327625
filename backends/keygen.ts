/**
 * Key pair generation for `airlock generate-sigstore-key` (hangar/skopeo) and `generate-key-pair` (cosign):
 * an ECDSA P-256 key in PKCS#8, encrypted with scrypt N=65536, r=8, p=1, a random 32-byte salt and 24-byte
 * nonce, NaCl secretbox (see {@link ./file.ts}), and its PKIX `PUBLIC KEY` PEM.
 *
 * PEM type of the private key (both are read by cosign, skopeo, hangar and airlock):
 * - `ENCRYPTED SIGSTORE PRIVATE KEY`: what `cosign generate-key-pair` writes today (spec/cosign.md §4.1–4.2).
 *   The default here.
 * - `ENCRYPTED COSIGN PRIVATE KEY`: what skopeo and hangar `generate-sigstore-key` write (spec/hangar.md §7.2,
 *   spec/testbed.md §5); use it for the hangar drop-in command.
 *
 * Lives in `backends/` beside `file.ts`, which owns the encrypted key format it shares.
 *
 * @example
 * ```ts
 * const pair = await generateKeyPair({ passphrase: "secret" });
 * await writeKeyPair(pair, keyPairPaths("cosign"), { overwrite: false });
 * ```
 *
 * @module
 */
import { AirlockError } from "../core/errors.ts";
import { encodePem } from "../core/encoding/pem.ts";
import {
  type EncryptedKeyPemType,
  encryptPrivateKey,
  SCRYPT_N_DEFAULT,
  SIGSTORE_KEY_PEM_TYPE,
} from "./file.ts";

/** Options for {@linkcode generateKeyPair}. */
export interface GenerateKeyPairOptions {
  /** The passphrase; a string is encoded as UTF-8. An empty passphrase is allowed (cosign and skopeo allow it). */
  passphrase: Uint8Array | string;
  /** PEM type of the private key; default `ENCRYPTED SIGSTORE PRIVATE KEY` (cosign's current format). */
  pemType?: EncryptedKeyPemType;
  /** scrypt N (32768, 65536 or 131072); default 65536, what cosign and skopeo write. */
  scryptN?: number;
}

/** A generated key pair, as file contents. */
export interface GeneratedKeyPair {
  /** The encrypted private key PEM. */
  privatePem: string;
  /** The public key, PEM `PUBLIC KEY` (PKIX). */
  publicPem: string;
}

/**
 * Generates an ECDSA P-256 key pair and encrypts the private key (see the module doc).
 */
export async function generateKeyPair(options: GenerateKeyPairOptions): Promise<GeneratedKeyPair> {
  const pair = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
    "sign",
    "verify",
  ]);
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", pair.publicKey));
  const passphrase = typeof options.passphrase === "string"
    ? new TextEncoder().encode(options.passphrase)
    : options.passphrase.slice();
  try {
    const privatePem = await encryptPrivateKey(pkcs8, passphrase, {
      pemType: options.pemType ?? SIGSTORE_KEY_PEM_TYPE,
      scryptN: options.scryptN ?? SCRYPT_N_DEFAULT,
    });
    return { privatePem, publicPem: encodePem("PUBLIC KEY", spki) };
  } finally {
    pkcs8.fill(0);
    passphrase.fill(0);
  }
}

/** Where a key pair is written. */
export interface KeyPairPaths {
  /** The private key file (written with mode 0600). */
  keyFile: string;
  /** The public key file (mode 0644, less the umask). */
  pubFile: string;
}

/**
 * The file names tools use for a prefix: `<prefix>.key` and `<prefix>.pub` (cosign, hangar), or with
 * `"skopeo"` `<prefix>.private` and `<prefix>.pub` (skopeo `generate-sigstore-key`).
 */
export function keyPairPaths(prefix: string, style: "cosign" | "skopeo" = "cosign"): KeyPairPaths {
  return { keyFile: `${prefix}${style === "skopeo" ? ".private" : ".key"}`, pubFile: `${prefix}.pub` };
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw new AirlockError("IO_ERROR", `cannot check "${path}": ${(e as Error).message}`, { cause: e });
  }
}

/**
 * Writes a key pair: the private key with mode 0600, the public key with 0644. Unless `overwrite` is set, an
 * existing file is never replaced: `FILE_EXISTS` `file "<f>" already exists` (the CLI may then ask
 * `Overwrite? [y/N]` and call again with `overwrite: true`), and nothing is written. With `overwrite`, each
 * file is written to a temporary sibling and renamed into place, so the private key is never readable by
 * others, not even briefly. Other failures: `IO_ERROR`.
 */
export async function writeKeyPair(
  pair: GeneratedKeyPair,
  paths: KeyPairPaths,
  options: { overwrite?: boolean } = {},
): Promise<void> {
  const overwrite = options.overwrite ?? false;
  if (!overwrite) {
    for (const f of [paths.keyFile, paths.pubFile]) {
      if (await exists(f)) throw new AirlockError("FILE_EXISTS", `file "${f}" already exists`);
    }
  }
  const enc = new TextEncoder();
  const written: string[] = [];
  try {
    await writeOne(paths.keyFile, enc.encode(pair.privatePem), 0o600, overwrite);
    written.push(paths.keyFile);
    await writeOne(paths.pubFile, enc.encode(pair.publicPem), 0o644, overwrite);
  } catch (e) {
    if (!overwrite) { for (const f of written) await Deno.remove(f).catch(() => {}); }
    if (e instanceof AirlockError) throw e;
    throw new AirlockError("IO_ERROR", `writing key pair: ${(e as Error).message}`, { cause: e });
  }
}

async function writeOne(path: string, data: Uint8Array, mode: number, overwrite: boolean): Promise<void> {
  if (!overwrite) {
    try {
      await Deno.writeFile(path, data, { mode, createNew: true });
    } catch (e) {
      if (e instanceof Deno.errors.AlreadyExists) {
        throw new AirlockError("FILE_EXISTS", `file "${path}" already exists`);
      }
      throw e;
    }
    return;
  }
  const tmp = `${path}.tmp-${crypto.randomUUID()}`;
  try {
    await Deno.writeFile(tmp, data, { mode, createNew: true });
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}
