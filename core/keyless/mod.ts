/**
 * The keyless verification engine: sigstore bundles and cosign layers verified offline against a trusted root
 * (Fulcio certificates, Rekor SETs and inclusion proofs, CT SCTs, RFC 3161 timestamps), with cosign's identity
 * semantics; key-signed layers' Rekor bundles; DSSE attestations.
 *
 * Importing this module does not load sigstore-js: the packages are loaded (after the Deno crypto shim) on the
 * first verification.
 *
 * @example
 * ```ts
 * import { loadTrustedRoot, verifyKeyless } from "./core/keyless/mod.ts";
 *
 * const result = await verifyKeyless(layer, {
 *   trustedRoot: await loadTrustedRoot("trusted_root.json"),
 *   identity: { subject: "mitr@redhat.com", issuer: "https://github.com/login/oauth" },
 * });
 * ```
 *
 * @module
 */
export {
  type BundleEntity,
  type IdentityPolicy,
  type SignedEntityInput,
  type VerificationResult,
  type VerifiedContent,
  verifyKeyless,
  type VerifyKeylessOptions,
  verifyRekorBundleForKey,
  verifyWithKey,
  type VerifyWithKeyOptions,
} from "./verify.ts";
export {
  checkTrustedRoot,
  loadTrustedRoot,
  parseTrustedRoot,
  publicGoodTrustedRoot,
  type SigstoreTrustedRoot,
  TRUSTED_ROOT_MEDIA_TYPES,
} from "./trusted_root.ts";
export {
  BUNDLE_V01_MEDIA_TYPE,
  type CosignLayer,
  cosignLayerToBundle,
  cosignLayerToBundleJson,
  type DsseEnvelopeJson,
  isDsseLayer,
  parseDsseEnvelope,
  parseSigstoreBundle,
} from "./bundle.ts";
export {
  type CertificateIdentity,
  cosignSubject,
  FULCIO_OID,
  parseCertificateIdentity,
  type SubjectAlternativeName,
} from "./certificate.ts";
export {
  checkInTotoSubject,
  type InTotoStatement,
  inTotoSubjectMatches,
  parseInTotoStatement,
} from "./dsse.ts";
export {
  checkRekorBody,
  parseRekorBundleAnnotation,
  type RekorBundleAnnotation,
  type RekorEntryInfo,
  verifyRekorBundle,
  verifyRekorSet,
} from "./rekor.ts";
export { compileGoRegExp, goRegExpMatches } from "./regexp.ts";
export { PUBLIC_GOOD_ROOT_INFO } from "./public_good_root.ts";
