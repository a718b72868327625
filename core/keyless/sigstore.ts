/**
 * The single door to sigstore-js. Every airlock module that runs sigstore-js code gets the packages from
 * {@linkcode loadSigstore}, which guarantees the order that matters on Deno: `crypto_shim.ts` is a static import
 * of this module, so it is evaluated before this module's body, and the `@sigstore/*` packages are only evaluated
 * afterwards, by dynamic imports of bare specifiers (compile-safe: `deno compile` sees static strings).
 *
 * Importing this module is cheap; the packages are loaded on the first call and cached.
 *
 * @module
 */
import "./crypto_shim.ts";

/** The sigstore-js packages airlock uses, as loaded modules. */
export interface SigstoreModules {
  /** `@sigstore/verify`: `Verifier`, `toSignedEntity`, `toTrustMaterial`, error classes. */
  readonly verify: typeof import("@sigstore/verify");
  /** `@sigstore/bundle`: `bundleFromJSON`, `envelopeFromJSON`, media types. */
  readonly bundle: typeof import("@sigstore/bundle");
  /** `@sigstore/core`: `X509Certificate`, `json.canonicalize`, `crypto`, `dsse`. */
  readonly core: typeof import("@sigstore/core");
  /** `@sigstore/protobuf-specs`: `TrustedRoot.fromJSON` and the other message codecs. */
  readonly specs: typeof import("@sigstore/protobuf-specs");
}

let loading: Promise<SigstoreModules> | undefined;

/**
 * Loads the sigstore-js packages once (after the crypto shim) and returns them.
 *
 * @example
 * ```ts
 * const { verify, bundle } = await loadSigstore();
 * const b = bundle.bundleFromJSON(json);
 * ```
 */
export function loadSigstore(): Promise<SigstoreModules> {
  loading ??= (async () => {
    const [verify, bundle, core, specs] = await Promise.all([
      import("@sigstore/verify"),
      import("@sigstore/bundle"),
      import("@sigstore/core"),
      import("@sigstore/protobuf-specs"),
    ]);
    return { verify, bundle, core, specs };
  })();
  return loading;
}
