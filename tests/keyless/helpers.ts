/**
 * Fixture access for the keyless tests (data under tests/fixtures, never edited).
 *
 * @module
 */
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { FIXTURES_DIR } from "../testbed/fixtures.ts";
import type { CosignLayer } from "../../core/keyless/bundle.ts";

/** tests/fixtures/vectors (or `$AIRLOCK_FIXTURES/vectors`). */
export const VECTORS: URL = pathToFileURL(join(FIXTURES_DIR, "vectors") + "/");

/** A path under {@linkcode VECTORS}. */
export function vector(path: string): string {
  return new URL(path, VECTORS).pathname;
}

/**
 * Reads a containers/image `*-signature-N` file (`"\x00sigstore-json\n"` + `{mimeType, payload, annotations}`)
 * as the layer a registry would hold.
 */
export async function readContainersImageSignature(path: string): Promise<CosignLayer> {
  const bytes = await Deno.readFile(path);
  const prefix = new TextEncoder().encode("\x00sigstore-json\n");
  if (!prefix.every((b, i) => bytes[i] === b)) throw new Error(`${path}: not a sigstore-json signature`);
  const j = JSON.parse(new TextDecoder().decode(bytes.subarray(prefix.length)));
  const payload = Uint8Array.from(atob(j.payload), (c) => c.charCodeAt(0));
  return { mediaType: j.mimeType, payload, annotations: j.annotations };
}

/** Hex SHA-256. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
