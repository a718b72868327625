/**
 * Reading the JSON documents a registry serves (manifests, indexes, image configs) into plain objects.
 *
 * @module
 */
import { AirlockError } from "../errors.ts";

/**
 * Parses a manifest, index or config blob as a JSON object. The bytes are not validated beyond that: callers
 * read the fields they need.
 *
 * @param bytes the document as fetched
 * @param what names the document in the error text (`manifest sha256:…`, `index docker.io/library/x:1`)
 * @throws {AirlockError} `REGISTRY_ERROR` `invalid JSON in <what>: <reason>` for bad JSON or a non-object value.
 *
 * @example
 * ```ts
 * const index = parseManifestJson<ImageIndex>(top.bytes, `index ${top.digest}`);
 * ```
 */
export function parseManifestJson<T>(bytes: Uint8Array, what: string): T {
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new AirlockError("REGISTRY_ERROR", `invalid JSON in ${what}: ${(e as Error).message}`);
  }
  if (typeof doc !== "object" || doc === null) {
    throw new AirlockError("REGISTRY_ERROR", `invalid JSON in ${what}: not a JSON object`);
  }
  return doc as T;
}
