/**
 * Small helpers shared by the test bed: digests, encodings, temporary directories.
 *
 * @module
 */

/**
 * `sha256:<hex>` of `bytes`, the OCI digest form.
 *
 * @example
 * ```ts
 * const d = await sha256Digest(new TextEncoder().encode("{}"));
 * ```
 */
export async function sha256Digest(bytes: Uint8Array): Promise<string> {
  return `sha256:${
    toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>)))
  }`;
}

/**
 * The bytes of `parts`, one after the other, in a new array.
 *
 * @example
 * ```ts
 * concatBytes(new Uint8Array([1]), new Uint8Array([2, 3])); // [1, 2, 3]
 * ```
 */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Lower-case hex of `bytes`.
 *
 * @example
 * ```ts
 * toHex(new Uint8Array([1, 255])); // "01ff"
 * ```
 */
export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Unpadded base64url of `bytes` (or of the UTF-8 of a string), as JWTs use it.
 *
 * @example
 * ```ts
 * base64url('{"alg":"ES256"}');
 * ```
 */
export function base64url(data: Uint8Array | string): string {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/**
 * The DER bytes inside the first PEM block of `pem` (any label).
 *
 * @example
 * ```ts
 * const der = pemToDer(await Deno.readTextFile("key.pem"));
 * ```
 */
export function pemToDer(pem: string): Uint8Array {
  const m = pem.match(/-----BEGIN [^-]+-----([\s\S]*?)-----END [^-]+-----/);
  if (!m) throw new Error("no PEM block found");
  const bin = atob(m[1].replace(/\s+/g, ""));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

/**
 * A new temporary directory with an async disposer that removes it (recursively, ignoring "not found").
 *
 * @example
 * ```ts
 * await using tmp = await tempDir("airlock-test-");
 * await Deno.writeTextFile(`${tmp.path}/x`, "y");
 * ```
 */
export async function tempDir(prefix = "airlock-testbed-"): Promise<TempDir> {
  const path = await Deno.makeTempDir({ prefix });
  return {
    path,
    async [Symbol.asyncDispose]() {
      await removeDir(path);
    },
  };
}

/** A temporary directory removed on `await using` disposal. */
export interface TempDir extends AsyncDisposable {
  /** Absolute path of the directory. */
  readonly path: string;
}

/**
 * Removes a directory tree; a missing directory is not an error.
 *
 * @example
 * ```ts
 * await removeDir("/tmp/airlock-testbed-x");
 * ```
 */
export async function removeDir(path: string): Promise<void> {
  try {
    await Deno.remove(path, { recursive: true });
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

/**
 * Imports an ECDSA P-256 private key (PKCS#8 DER) for signing, with the SPKI DER of its public half (WebCrypto
 * exports no public key from a private one: it goes through the JWK's `x`/`y`).
 *
 * @example
 * ```ts
 * const { privateKey, spki } = await importP256(pemToDer(keyPem));
 * ```
 */
export async function importP256(pkcs8: Uint8Array): Promise<{ privateKey: CryptoKey; spki: Uint8Array }> {
  const ec = { name: "ECDSA", namedCurve: "P-256" };
  const privateKey = await crypto.subtle.importKey("pkcs8", pkcs8 as Uint8Array<ArrayBuffer>, ec, true, [
    "sign",
  ]);
  const jwk = await crypto.subtle.exportKey("jwk", privateKey);
  const publicKey = await crypto.subtle.importKey(
    "jwk",
    { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y },
    ec,
    true,
    ["verify"],
  );
  return { privateKey, spki: new Uint8Array(await crypto.subtle.exportKey("spki", publicKey)) };
}
