/**
 * airlock: sign and verify container images with sigstore signatures on air-gapped registries.
 *
 * @example
 * ```ts
 * import { VERSION } from "airlock";
 * console.log(VERSION);
 * ```
 *
 * @module
 */
export { VERSION } from "./core/version.ts";
export { AirlockError, type ErrorCode, errorMessage, isAirlockError } from "./core/errors.ts";
export type { Reference } from "./core/reference.ts";
export * from "./core/registry/types.ts";
