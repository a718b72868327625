/**
 * cosign's `payload.SimpleContainerImage` claims as `verify` reads and writes them.
 *
 * **Reading.** cosign reads payloads with Go's lenient `json.Unmarshal`. airlock reads them the same way
 * (unknown members ignored, `null` leaves a field empty, wrong kinds fail) with three refusals a legitimate signer
 * never triggers and that would otherwise let two JSON readers disagree about a signed payload: a duplicate key in
 * any object, a struct member that only case-folds to a field name (`"Critical"`, `"doc\u212Aer-reference"`),
 * and a number Go cannot hold in a float64. A payload is read only after its signature verified.
 *
 * **Writing.** {@linkcode claimsJson} is Go's `json.Marshal` of the struct (`critical` in struct order
 * `identity, image, type`; `optional` a map with sorted keys).
 *
 * @module
 */
import { AirlockError } from "../errors.ts";
import { goQuote } from "../encoding/go_quote.ts";
import { goJsonString, type JsonNode, parseJsonTree } from "../encoding/go_json.ts";
import { goMarshalAny } from "../encoding/go_marshal.ts";
import { type CosignClaims, parseCosignClaims } from "./payload.ts";

/** Go's struct field matching folds case with Unicode simple folding; these are the non-ASCII folds to ASCII. */
function goFold(s: string): string {
  return s.replace(/\u017f/g, "s").replace(/\u212a/g, "k").replace(/[A-Z]/g, (c) => c.toLowerCase());
}

const STRUCT_FIELDS: Readonly<Record<string, Readonly<Record<string, readonly string[] | null>>>> = {
  // level → field → sub-level fields (null: a leaf or the free-form `optional`)
  root: { critical: ["critical"], optional: null },
  critical: { identity: ["identity"], image: ["image"], type: null },
  identity: { "docker-reference": null },
  image: { "docker-manifest-digest": null },
};

function refuse(message: string): never {
  throw new AirlockError("SIGNATURE_INVALID", message);
}

/**
 * Rejects duplicate keys anywhere and numbers a float64 cannot hold: two JSON readers could disagree about such
 * a document.
 *
 * @param what names the document in the error (`payload`, `bundle`)
 * @throws {AirlockError} `SIGNATURE_INVALID`
 */
export function checkTree(node: JsonNode, what: string): void {
  if (node.kind === "number") {
    if (!Number.isFinite(Number(node.raw))) {
      refuse(`json: cannot unmarshal number ${node.raw} into Go value of type float64`);
    }
  } else if (node.kind === "array") {
    for (const n of node.items) checkTree(n, what);
  } else if (node.kind === "object") {
    const seen = new Set<string>();
    for (const { key, value } of node.entries) {
      if (seen.has(key)) refuse(`${what}: duplicate key ${goQuote(key)}`);
      seen.add(key);
      checkTree(value, what);
    }
  }
}

/** Rejects struct members that only case-fold to a field name, and two members that fold to the same field. */
function checkStruct(node: JsonNode, level: string, path: string): void {
  if (node.kind !== "object") return; // null or a type error, reported by the decoder
  const fields = STRUCT_FIELDS[level];
  const folded = new Map(Object.keys(fields).map((f) => [goFold(f), f]));
  const seen = new Set<string>();
  for (const { key, value } of node.entries) {
    const field = folded.get(goFold(key));
    if (field === undefined) continue; // unknown members are ignored, as cosign does
    if (key !== field) refuse(`${path}: key ${goQuote(key)} is not spelled ${goQuote(field)}`);
    if (seen.has(field)) refuse(`${path}: duplicate key ${goQuote(field)}`);
    seen.add(field);
    const sub = fields[field];
    if (sub !== null) checkStruct(value, sub[0], `${path}.${field}`);
  }
}

/**
 * A verified payload read as cosign's `SimpleClaimVerifier` reads it (Go's lenient `json.Unmarshal`), with the
 * refusals of the module doc.
 *
 * @throws {AirlockError} `SIGNATURE_INVALID`
 */
export function readClaims(payload: Uint8Array): CosignClaims {
  const tree = parseJsonTree(payload, "SIGNATURE_INVALID");
  checkTree(tree, "payload");
  checkStruct(tree, "root", "payload");
  return parseCosignClaims(payload);
}

/** `json.Marshal` of a `payload.SimpleContainerImage` with the given `optional`. */
export function claimsJson(c: CosignClaims, optional: Readonly<Record<string, unknown>> | null): string {
  return `{"critical":{"identity":{"docker-reference":${goJsonString(c.dockerReference)}},` +
    `"image":{"docker-manifest-digest":${goJsonString(c.dockerManifestDigest)}},` +
    `"type":${goJsonString(c.type)}},"optional":${goMarshalAny(optional)}}`;
}
