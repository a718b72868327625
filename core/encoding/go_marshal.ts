/**
 * Go's `encoding/json` `Marshal` of values decoded into `interface{}`, as cosign writes JSON it read (its
 * `-o json` output, an attestation's predicate).
 *
 * @module
 */
import { compareGoMapKeys, goJsonString } from "./go_json.ts";

/** Go `encoding/json` of a float64 (`strconv.FormatFloat` 'f'/'e' shortest, as `floatEncoder` picks). */
function goFloat(n: number): string {
  if (Object.is(n, -0)) return "-0";
  // JavaScript's Number#toString switches to exponent form at the same bounds (1e-6, 1e21) and writes the same
  // shortest digits and the same exponent form after Go's clean-up (e-07 → e-7).
  return String(n);
}

/**
 * Go `json.Marshal` of a value decoded into `interface{}` (maps with sorted keys, float64 numbers, `<>&` escaped).
 */
export function goMarshalAny(v: unknown): string {
  if (v === null || v === undefined) return "null";
  if (typeof v === "string") return goJsonString(v);
  if (typeof v === "number") return goFloat(v);
  if (typeof v === "boolean") return v ? "true" : "false";
  if (Array.isArray(v)) return "[" + v.map(goMarshalAny).join(",") + "]";
  if (v instanceof GoRawJson) return v.json;
  const o = v as Record<string, unknown>;
  return "{" +
    Object.keys(o).sort(compareGoMapKeys).map((k) => goJsonString(k) + ":" + goMarshalAny(o[k])).join(",") +
    "}";
}

/** A value already encoded as Go would encode it (a struct in field order); {@linkcode goMarshalAny} writes it as is. */
export class GoRawJson {
  /** @param json the encoded value */
  constructor(readonly json: string) {}
}
