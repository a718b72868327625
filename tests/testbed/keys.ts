/**
 * Keys for the tests and benchmarks:
 *
 * - {@linkcode makeKey}: an encrypted cosign key pair on disk, made with airlock's own key generator (the key
 *   files `airlock sign --key` reads);
 * - {@linkcode makeSigner}: an independent signer (node:crypto ECDSA P-256 / SHA-256, DER signatures as cosign
 *   stores them), never airlock's code, for crafted or hostile signatures.
 *
 * Not re-exported by `mod.ts`: {@linkcode makeKey} runs product code, the fakes of the test bed do not.
 *
 * @module
 */
import { createPrivateKey, generateKeyPairSync, type KeyObject, sign } from "node:crypto";
import { join } from "node:path";
import { generateKeyPair } from "../../backends/keygen.ts";

/** A key pair on disk. */
export interface KeyFiles {
  /** Encrypted private key file. */
  key: string;
  /** Public key PEM file. */
  pub: string;
  /** Passphrase file (no trailing newline). */
  pass: string;
  /** The passphrase. */
  passphrase: string;
  /** The public key PEM. */
  publicPem: string;
}

/**
 * Generates an ECDSA P-256 key pair with scrypt N=32768 (the cheapest parameters containers/image accepts)
 * and writes `<name>.key`, `<name>.pub`, `<name>.pass` into `dir`.
 *
 * @example
 * ```ts
 * const k = await makeKey(tmp.path, "k1");
 * ```
 */
export async function makeKey(dir: string, name: string, passphrase?: string): Promise<KeyFiles> {
  const pass = passphrase ?? `airlock-test-secret-${name}-${crypto.randomUUID().slice(0, 8)}`;
  const pair = await generateKeyPair({
    passphrase: pass,
    scryptN: 32768,
    pemType: "ENCRYPTED COSIGN PRIVATE KEY",
  });
  const files = {
    key: join(dir, `${name}.key`),
    pub: join(dir, `${name}.pub`),
    pass: join(dir, `${name}.pass`),
  };
  await Deno.writeTextFile(files.key, pair.privatePem);
  await Deno.writeTextFile(files.pub, pair.publicPem);
  await Deno.writeTextFile(files.pass, pass);
  return { ...files, passphrase: pass, publicPem: pair.publicPem };
}

/** An ECDSA P-256 key made with node:crypto, its public PEM written to `<dir>/<name>.pub`. */
export interface TestSigner {
  /** Path of the public key PEM. */
  readonly pub: string;
  /** The PKIX `PUBLIC KEY` PEM. */
  readonly pem: string;
  /** DER ECDSA-SHA256 signature of `data`. */
  sign(data: Uint8Array): Uint8Array;
  /** Standard base64 of {@linkcode TestSigner.sign}. */
  signB64(data: Uint8Array): string;
}

/**
 * Makes a {@linkcode TestSigner}.
 *
 * @example
 * ```ts
 * const signer = await makeSigner(tmp.path, "k");
 * const annotation = signer.signB64(payload);
 * ```
 */
export async function makeSigner(dir: string, name: string): Promise<TestSigner> {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const pub = join(dir, `${name}.pub`);
  const pem = publicKey.export({ type: "spki", format: "pem" }) as string;
  await Deno.writeTextFile(pub, pem);
  const key: KeyObject = createPrivateKey(privateKey.export({ type: "pkcs8", format: "pem" }) as string);
  const signDer = (data: Uint8Array) => new Uint8Array(sign("sha256", data, key));
  return { pub, pem, sign: signDer, signB64: (data) => btoa(String.fromCharCode(...signDer(data))) };
}
