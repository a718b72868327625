/**
 * Registries, as the OCI distribution specification and containers/image speak to them: the client
 * ({@linkcode RegistryClient}: manifests, blobs, tags, referrers with auth challenges, TLS, retries, digest checks
 * and size limits), strict reading of the documents a registry serves, its errors, the credentials found the way
 * containers/image finds them, and the settings both front doors take.
 *
 * The request, transport and upload layers under the client are its own business and not exported here.
 *
 * @module
 */
export * from "./client.ts";
export * from "./credentials.ts";
export * from "./errors.ts";
export * from "./manifest.ts";
export * from "./names.ts";
export * from "./settings.ts";
export * from "./types.ts";
