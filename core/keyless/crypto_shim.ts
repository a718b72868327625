/**
 * The one fix airlock applies to Deno's `node:crypto` before sigstore-js runs (spec/cosign.md §5.7).
 *
 * Deno 2.9.6 throws `no default digest` from `crypto.verify(undefined, data, <EC or RSA key>, sig)`, where Node
 * (OpenSSL) uses SHA-256. `@sigstore/core` calls exactly that for every SET, DSSE and checkpoint signature and
 * swallows the exception, so every such check would fail. This module wraps `verify` once: a missing algorithm
 * becomes `"sha256"` for EC and RSA keys; every other call (an explicit digest, Ed25519 keys) is passed through
 * untouched. Importing it has that effect; importing it again does nothing more.
 *
 * Import it before any `@sigstore/*` module is evaluated (`sigstore.ts` does).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import nodeCrypto from "node:crypto";

const MARK = Symbol.for("airlock.cryptoVerifyShim");

type VerifyFn = (...args: unknown[]) => unknown;
type KeyLike = { asymmetricKeyType?: string };

/** The wrapper carries the function it wraps, which also tells a second installation that it is there. */
interface MarkedVerify extends VerifyFn {
  [MARK]?: VerifyFn;
}

function cryptoTarget(): { verify: MarkedVerify } {
  return nodeCrypto as unknown as { verify: MarkedVerify };
}

function asKeyObject(key: unknown): KeyLike | undefined {
  if (key && typeof key === "object" && "asymmetricKeyType" in key) return key as KeyLike;
  try {
    return nodeCrypto.createPublicKey(key as Parameters<typeof nodeCrypto.createPublicKey>[0]);
  } catch {
    return undefined;
  }
}

/**
 * Installs the default-digest fix on `node:crypto.verify`. Idempotent; returns `true` when this call installed it.
 * Called when this module is first evaluated; exported for tests and for callers that want to be explicit.
 *
 * @example
 * ```ts
 * import { installCryptoVerifyShim } from "./crypto_shim.ts";
 * installCryptoVerifyShim(); // false: already installed by the import
 * ```
 */
export function installCryptoVerifyShim(): boolean {
  const target = cryptoTarget();
  if (target.verify[MARK]) return false;
  const original = target.verify;
  const wrapped: MarkedVerify = function (this: unknown, ...args: unknown[]) {
    const [algorithm, data, key, signature, callback] = args;
    if (algorithm === undefined || algorithm === null) {
      const k = asKeyObject(key);
      if (k?.asymmetricKeyType === "ec" || k?.asymmetricKeyType === "rsa") {
        const rest = callback === undefined ? [] : [callback];
        return original.call(this, "sha256", data, k, signature, ...rest);
      }
    }
    return original.apply(this, args);
  };
  wrapped[MARK] = original;
  target.verify = wrapped;
  return true;
}

/**
 * Tells whether the runtime's own `node:crypto.verify` (without the shim) picks a default digest for EC keys:
 * `true` on Node and on a Deno that fixed the bug, `false` on Deno 2.9.6. Runs one P-256 verification.
 */
export function nativeDefaultDigestWorks(): boolean {
  const current = cryptoTarget().verify;
  const native = current[MARK] ?? current;
  const { privateKey, publicKey } = nodeCrypto.generateKeyPairSync("ec", { namedCurve: "P-256" });
  const data = Buffer.from("airlock");
  const sig = nodeCrypto.sign("sha256", data, privateKey);
  try {
    return native(undefined, data, publicKey, sig) === true;
  } catch {
    return false;
  }
}

installCryptoVerifyShim();
