/**
 * Sigstore signatures in a registry, as containers/image and cosign write and read them: the simple-signing
 * payload, public keys, the `.sig`/`.att` attachment layout and its manifest codec, reading attachment layers
 * within bounds, appending to an attachment tag so that no signature is lost, and sigstore bundles stored as OCI
 * referrers.
 *
 * @module
 */
export * from "./attachment_manifest.ts";
export * from "./attachment_store.ts";
export * from "./attachment_writer.ts";
export * from "./attachments.ts";
export * from "./cosign_claims.ts";
export * from "./payload.ts";
export * from "./public_key.ts";
export * from "./referrer_bundles.ts";
export * from "./referrer_verify.ts";
export * from "./signature_layers.ts";
export * from "./tag_census.ts";
export * from "./write_window.ts";
