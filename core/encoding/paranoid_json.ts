/**
 * containers/image's "paranoid" JSON object readers (`ParanoidUnmarshalJSONObject` and
 * `ParanoidUnmarshalJSONObjectExactFields`): every key once, every key known, with containers/image's error
 * texts. Used for simple-signing payloads and for `policy.json`.
 *
 * @module
 */
import { AirlockError, type ErrorCode } from "../errors.ts";
import type { JsonNode } from "./go_json.ts";
import { goQuote } from "./go_quote.ts";

/** Receives the value of one object member. */
export type JsonSink = (value: JsonNode) => void;

/** `%#v` of the first token Go's decoder returns for a value, for `JSON object expected, got …`. */
function goFirstToken(node: JsonNode): string {
  switch (node.kind) {
    case "array":
      return "91"; // json.Delim('[') printed with %#v
    case "object":
      return "123";
    case "string":
      return goQuote(node.value);
    case "number":
      return String(Number(node.raw));
    case "bool":
      return String(node.value);
    case "null":
      return "<nil>";
  }
}

/**
 * containers/image `ParanoidUnmarshalJSONObject`: `node` must be an object whose keys appear once each and are
 * all known to `resolve` (which returns the sink for a key, or `undefined` for an unknown key).
 *
 * @throws {AirlockError} with `code`: `JSON object expected, got <token>`, `Duplicate key "<k>"`,
 * `Unknown key "<k>"`.
 */
export function paranoidObject(
  node: JsonNode,
  resolve: (key: string) => JsonSink | undefined,
  code: ErrorCode,
): void {
  if (node.kind !== "object") throw new AirlockError(code, `JSON object expected, got ${goFirstToken(node)}`);
  const seen = new Set<string>();
  for (const { key, value } of node.entries) {
    if (seen.has(key)) throw new AirlockError(code, `Duplicate key ${goQuote(key)}`);
    seen.add(key);
    const sink = resolve(key);
    if (sink === undefined) throw new AirlockError(code, `Unknown key ${goQuote(key)}`);
    sink(value);
  }
}

/**
 * containers/image `ParanoidUnmarshalJSONObjectExactFields`: {@linkcode paranoidObject} where the keys are
 * exactly those of `fields`, each present.
 *
 * @throws {AirlockError} with `code`: as {@linkcode paranoidObject}, and `Key "<k>" missing in a JSON object`.
 */
export function paranoidExactFields(
  node: JsonNode,
  fields: Readonly<Record<string, JsonSink>>,
  code: ErrorCode,
): void {
  const seen = new Set<string>();
  paranoidObject(node, (key) => {
    if (!Object.hasOwn(fields, key)) return undefined;
    seen.add(key);
    return fields[key];
  }, code);
  for (const key of Object.keys(fields)) {
    if (!seen.has(key)) throw new AirlockError(code, `Key ${goQuote(key)} missing in a JSON object`);
  }
}
