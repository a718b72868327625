/**
 * Shared parts of the fake key services (fake Vault, fake AWS KMS, fake GCP KMS, fake Azure Key Vault), written
 * for the tests: real signing keys (node:crypto and @noble/curves: the services sign a **prehashed** digest,
 * which WebCrypto cannot), an HTTP(S) server on 127.0.0.1 with a runtime port, and small codecs.
 *
 * @module
 */
import { p256 } from "@noble/curves/nist.js";
import { constants, generateKeyPairSync, type KeyObject, privateEncrypt, sign } from "node:crypto";

/** The key kinds the fakes hold. */
export type FakeKeyKind = "ec-p256" | "rsa-2048" | "ed25519";

/** A real private key held by a fake service. */
export interface FakeSigningKey {
  /** Its kind. */
  readonly kind: FakeKeyKind;
  /** The public key, SPKI PEM. */
  readonly publicPem: string;
  /** The public key, SPKI DER. */
  readonly spki: Uint8Array;
  /** The public key as a JWK (`kty`, `crv`/`x`/`y` or `n`/`e`). */
  readonly jwk: Record<string, string>;
  /** ECDSA: raw `r‖s` over a 32-byte digest; RSA: PKCS#1 v1.5 over a SHA-256 digest. */
  signDigest(digest: Uint8Array): Uint8Array;
  /** Ed25519: pure Ed25519 over the message. */
  signMessage(message: Uint8Array): Uint8Array;
}

/** The DER prefix of a SHA-256 DigestInfo, as RFC 8017 §9.2 (note 1) writes it: the fakes' own copy. */
const SHA256_DIGEST_INFO = "30 31 30 0d 06 09 60 86 48 01 65 03 04 02 01 05 00 04 20".split(" ")
  .map((h) => parseInt(h, 16));

function fromB64url(s: string): Uint8Array {
  const std = s.replaceAll("-", "+").replaceAll("_", "/");
  return Uint8Array.from(atob(std + "=".repeat((4 - std.length % 4) % 4)), (c) => c.charCodeAt(0));
}

/**
 * Makes a new private key of `kind`.
 *
 * @example
 * ```ts
 * const key = makeFakeKey("ec-p256");
 * const sig = key.signDigest(digest);
 * ```
 */
export function makeFakeKey(kind: FakeKeyKind): FakeSigningKey {
  const pair = kind === "ec-p256"
    ? generateKeyPairSync("ec", { namedCurve: "P-256" })
    : kind === "rsa-2048"
    ? generateKeyPairSync("rsa", { modulusLength: 2048 })
    : generateKeyPairSync("ed25519");
  const priv: KeyObject = pair.privateKey;
  const publicPem = pair.publicKey.export({ type: "spki", format: "pem" }).toString();
  const spki = new Uint8Array(pair.publicKey.export({ type: "spki", format: "der" }));
  const jwk = pair.publicKey.export({ format: "jwk" }) as Record<string, string>;
  const ecSecret = kind === "ec-p256"
    ? fromB64url((priv.export({ format: "jwk" }) as Record<string, string>).d)
    : undefined;
  return {
    kind,
    publicPem,
    spki,
    jwk,
    signDigest(digest) {
      if (digest.length !== 32) throw new Error(`digest of ${digest.length} bytes, expected 32`);
      if (kind === "ec-p256") return p256.sign(digest, ecSecret!, { prehash: false });
      if (kind === "rsa-2048") {
        return new Uint8Array(
          privateEncrypt(
            { key: priv, padding: constants.RSA_PKCS1_PADDING },
            new Uint8Array([...SHA256_DIGEST_INFO, ...digest]),
          ),
        );
      }
      throw new Error("Ed25519 keys sign messages, not digests");
    },
    signMessage(message) {
      if (kind !== "ed25519") throw new Error("only Ed25519 keys sign messages here");
      return new Uint8Array(sign(null, message, priv));
    },
  };
}

/**
 * Converts raw `r‖s` to ASN.1 DER (the fakes' own conversion, independent of airlock's).
 *
 * @example
 * ```ts
 * rawToDer(key.signDigest(d));
 * ```
 */
export function rawToDer(raw: Uint8Array): Uint8Array {
  return p256.Signature.fromBytes(raw, "compact").toBytes("der");
}

/** Standard base64 with padding. */
export function b64(bytes: Uint8Array): string {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

/** Decodes standard base64 or base64url (padding optional); throws on malformed input. */
export function unb64(s: string): Uint8Array {
  return fromB64url(s.replace(/=+$/, ""));
}

/** A running fake service. */
export interface FakeServer extends AsyncDisposable {
  /** Base URL, `http(s)://127.0.0.1:PORT`. */
  readonly url: string;
  /** `127.0.0.1:PORT`. */
  readonly host: string;
  /** Stops the server. */
  stop(): Promise<void>;
}

/** TLS material for a fake (a CA-signed leaf, tests/testbed/certs.ts). */
export interface FakeTls {
  /** Certificate chain, PEM. */
  cert: string;
  /** Private key, PEM. */
  key: string;
}

/**
 * Serves `handler` on 127.0.0.1 at a port the OS picks (https when `tls` is given).
 *
 * @example
 * ```ts
 * await using srv = await startFakeServer((req) => new Response("ok"));
 * ```
 */
export async function startFakeServer(
  handler: (req: Request) => Response | Promise<Response>,
  tls?: FakeTls,
): Promise<FakeServer> {
  const { promise, resolve } = Promise.withResolvers<number>();
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: ({ port }) => resolve(port),
    ...(tls ? { cert: tls.cert, key: tls.key } : {}),
  }, async (req) => {
    try {
      return await handler(req);
    } catch (e) {
      return Response.json({ fakeError: String(e) }, { status: 500 });
    }
  });
  const port = await promise;
  const host = `127.0.0.1:${port}`;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await server.shutdown();
  };
  return { url: `${tls ? "https" : "http"}://${host}`, host, stop, [Symbol.asyncDispose]: stop };
}

const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/** CRC32C (Castagnoli) of `bytes`, as Cloud KMS computes it. */
export function fakeCrc32c(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC32C_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
