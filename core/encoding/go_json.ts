/**
 * Go `encoding/json` behaviour that airlock must reproduce byte for byte or error text for error text:
 *
 * - output: Go's string escaping ({@linkcode goJsonString}), map-key order ({@linkcode compareGoMapKeys}),
 *   maps ({@linkcode goJsonMap}) and integers ({@linkcode goJsonInt});
 * - input: a JSON parser that keeps duplicate keys and raw number text ({@linkcode parseJsonTree}), Go's
 *   decoding into `any` ({@linkcode jsonNodeToValue}), and a decoder that fills Go-like structs
 *   ({@linkcode decodeGoStruct}: case-insensitive field names, last duplicate wins, `null` leaves the zero value)
 *   with Go's type errors ({@linkcode goTypeError}, {@linkcode goString}, {@linkcode goInt}, …).
 *
 * @module
 */
import { AirlockError, type ErrorCode } from "../errors.ts";
// ---------------------------------------------------------------------------------------------------------------
// Go encoding/json: output
// ---------------------------------------------------------------------------------------------------------------

const HEX = "0123456789abcdef";

/**
 * Encodes a string exactly as Go's `encoding/json` (`json.Marshal`, HTML escaping on, Go ≥ 1.22) does:
 * `"` and `\` escaped, `\n \r \t \b \f` short forms, other control characters as `\u00XX`, `<`, `>`, `&`,
 * U+2028 and U+2029 as `\u003c`, `\u003e`, `\u0026`, `\u2028`, `\u2029`; a lone surrogate (invalid UTF-8 in Go)
 * becomes `\ufffd`. Everything else is written as is.
 */
export function goJsonString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
      if (d >= 0xdc00 && d <= 0xdfff) {
        out += s[i] + s[i + 1];
        i++;
      } else {
        out += "\\ufffd";
      }
      continue;
    }
    if (c >= 0xdc00 && c <= 0xdfff) {
      out += "\\ufffd";
      continue;
    }
    switch (c) {
      case 0x22:
        out += '\\"';
        continue;
      case 0x5c:
        out += "\\\\";
        continue;
      case 0x0a:
        out += "\\n";
        continue;
      case 0x0d:
        out += "\\r";
        continue;
      case 0x09:
        out += "\\t";
        continue;
      case 0x08:
        out += "\\b";
        continue;
      case 0x0c:
        out += "\\f";
        continue;
    }
    if (c < 0x20 || c === 0x3c || c === 0x3e || c === 0x26 || c === 0x2028 || c === 0x2029) {
      out += "\\u" + HEX[(c >> 12) & 15] + HEX[(c >> 8) & 15] + HEX[(c >> 4) & 15] + HEX[c & 15];
      continue;
    }
    out += s[i];
  }
  return out + '"';
}

/**
 * Orders map keys as Go's `encoding/json` does: by their UTF-8 bytes (which is code point order, not the
 * UTF-16 order of `Array.prototype.sort`).
 */
export function compareGoMapKeys(a: string, b: string): number {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next();
    const y = ib.next();
    if (x.done) return y.done ? 0 : -1;
    if (y.done) return 1;
    const cx = x.value.codePointAt(0)!;
    const cy = y.value.codePointAt(0)!;
    if (cx !== cy) return cx < cy ? -1 : 1;
  }
}

/**
 * Encodes a `map[string]V` as Go does: keys in {@linkcode compareGoMapKeys} order, compact.
 */
export function goJsonMap<V>(map: Readonly<Record<string, V>>, encodeValue: (v: V) => string): string {
  const keys = Object.keys(map).sort(compareGoMapKeys);
  return "{" + keys.map((k) => goJsonString(k) + ":" + encodeValue(map[k])).join(",") + "}";
}

/**
 * Encodes an integer as Go encodes an `int64` (plain decimal digits). Only safe integers are accepted.
 */
export function goJsonInt(n: number): string {
  if (!Number.isSafeInteger(n)) throw new AirlockError("INVALID_ARGUMENT", `not an integer: ${n}`);
  return String(n);
}

// ---------------------------------------------------------------------------------------------------------------
// Go encoding/json: input
// ---------------------------------------------------------------------------------------------------------------

/**
 * A parsed JSON value that keeps what `JSON.parse` loses: every object member in order (duplicates included)
 * and the literal text of numbers.
 */
export type JsonNode =
  | {
    readonly kind: "object";
    readonly entries: readonly { readonly key: string; readonly value: JsonNode }[];
  }
  | { readonly kind: "array"; readonly items: readonly JsonNode[] }
  | { readonly kind: "string"; readonly value: string }
  | { readonly kind: "number"; readonly raw: string }
  | { readonly kind: "bool"; readonly value: boolean }
  | { readonly kind: "null" };

/**
 * Parses JSON text (or UTF-8 bytes; invalid UTF-8 becomes U+FFFD as in Go) into a {@linkcode JsonNode} tree.
 * The grammar is RFC 8259, as strict as Go's scanner; syntax errors use Go's wording
 * (`invalid character 'x' looking for beginning of value`, `unexpected end of JSON input`) and are thrown as
 * {@linkcode AirlockError} with `code`.
 */
export function parseJsonTree(input: string | Uint8Array, code: ErrorCode): JsonNode {
  // ignoreBOM: a UTF-8 byte order mark is kept, so it fails as Go's decoder fails on it (Go never strips one).
  const text = typeof input === "string"
    ? input
    : new TextDecoder("utf-8", { fatal: false, ignoreBOM: true }).decode(input);
  return new TreeParser(text, code).parseDocument();
}

function quoteChar(c: string): string {
  if (c === "'") return "'\\''";
  if (c === '"') return "'\"'";
  const q = JSON.stringify(c);
  return "'" + q.slice(1, -1) + "'";
}

/** The one-character escapes of JSON strings and what they stand for. */
const SIMPLE_ESCAPES: Readonly<Record<string, string>> = {
  '"': '"',
  "\\": "\\",
  "/": "/",
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
};

class TreeParser {
  private pos = 0;
  constructor(private readonly s: string, private readonly code: ErrorCode) {}

  parseDocument(): JsonNode {
    this.ws();
    const v = this.value("looking for beginning of value");
    this.ws();
    if (this.pos < this.s.length) this.fail("after top-level value");
    return v;
  }

  private fail(context: string): never {
    if (this.pos >= this.s.length) throw new AirlockError(this.code, "unexpected end of JSON input");
    let cp = String.fromCodePoint(this.s.codePointAt(this.pos)!);
    // Go's scanner reports the first byte of a multi-byte character, printed as the rune of that byte value
    // (a byte order mark gives 'ï').
    if (cp.codePointAt(0)! > 0x7f) cp = String.fromCharCode(new TextEncoder().encode(cp)[0]);
    throw new AirlockError(this.code, `invalid character ${quoteChar(cp)} ${context}`);
  }

  private ws(): void {
    while (this.pos < this.s.length) {
      const c = this.s.charCodeAt(this.pos);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) this.pos++;
      else break;
    }
  }

  private value(context: string): JsonNode {
    const c = this.s[this.pos];
    switch (c) {
      case "{":
        return this.object();
      case "[":
        return this.array();
      case '"':
        return { kind: "string", value: this.string() };
      case "t":
        this.literal("true");
        return { kind: "bool", value: true };
      case "f":
        this.literal("false");
        return { kind: "bool", value: false };
      case "n":
        this.literal("null");
        return { kind: "null" };
      default:
        if (c === "-" || (c !== undefined && c >= "0" && c <= "9")) return this.number();
        return this.fail(context);
    }
  }

  private literal(word: string): void {
    for (let i = 0; i < word.length; i++, this.pos++) {
      if (this.s[this.pos] !== word[i]) this.fail(`in literal ${word} (expecting ${quoteChar(word[i])})`);
    }
  }

  private object(): JsonNode {
    const entries: { key: string; value: JsonNode }[] = [];
    if (this.open("}")) {
      do {
        if (this.s[this.pos] !== '"') this.fail("looking for beginning of object key string");
        const key = this.string();
        this.ws();
        if (this.s[this.pos] !== ":") this.fail("after object key");
        this.pos++;
        this.ws();
        entries.push({ key, value: this.value("looking for beginning of value") });
      } while (this.more("}", "after object key:value pair"));
    }
    return { kind: "object", entries };
  }

  private array(): JsonNode {
    const items: JsonNode[] = [];
    if (this.open("]")) {
      do {
        items.push(this.value("looking for beginning of value"));
      } while (this.more("]", "after array element"));
    }
    return { kind: "array", items };
  }

  /** Past the opening bracket: `false` (and past `close`) when the object or array is empty. */
  private open(close: string): boolean {
    this.pos++;
    this.ws();
    if (this.s[this.pos] !== close) return true;
    this.pos++;
    return false;
  }

  /** After a member or element: `true` past a `,`, `false` past `close`; anything else fails with `context`. */
  private more(close: string, context: string): boolean {
    this.ws();
    const c = this.s[this.pos];
    if (c === ",") {
      this.pos++;
      this.ws();
      return true;
    }
    if (c !== close) this.fail(context);
    this.pos++;
    return false;
  }

  private string(): string {
    this.pos++;
    let out = "";
    for (;;) {
      // Runs without escapes are taken whole: adding them a character at a time would make each string a chain of
      // one-character pieces (~32 bytes per character, kept as long as the string lives).
      const start = this.pos;
      while (this.pos < this.s.length) {
        const r = this.s.charCodeAt(this.pos);
        if (r === 0x22 || r === 0x5c || r < 0x20) break;
        this.pos++;
      }
      if (this.pos > start) out += this.s.slice(start, this.pos);
      if (this.pos >= this.s.length) this.fail("");
      const c = this.s.charCodeAt(this.pos);
      if (c === 0x22) {
        this.pos++;
        return out;
      }
      if (c < 0x20) this.fail("in string literal");
      this.pos++;
      const e = this.s[this.pos];
      if (e !== undefined && Object.hasOwn(SIMPLE_ESCAPES, e)) {
        out += SIMPLE_ESCAPES[e];
        this.pos++;
        continue;
      }
      if (e !== "u") this.fail("in string escape code");
      this.pos++;
      const u = this.hex4();
      if (u >= 0xd800 && u <= 0xdbff && this.s[this.pos] === "\\" && this.s[this.pos + 1] === "u") {
        const save = this.pos;
        this.pos += 2;
        const l = this.hex4();
        if (l >= 0xdc00 && l <= 0xdfff) {
          out += String.fromCharCode(u, l);
          continue;
        }
        this.pos = save;
      }
      out += u >= 0xd800 && u <= 0xdfff ? "\ufffd" : String.fromCharCode(u);
    }
  }

  private hex4(): number {
    let v = 0;
    for (let i = 0; i < 4; i++, this.pos++) {
      const h = this.s[this.pos];
      const d = h === undefined ? -1 : "0123456789abcdef".indexOf(h.toLowerCase());
      if (d < 0) this.fail("in \\u hexadecimal character escape");
      v = v * 16 + d;
    }
    return v;
  }

  private number(): JsonNode {
    const start = this.pos;
    const digit = () => this.pos < this.s.length && this.s[this.pos] >= "0" && this.s[this.pos] <= "9";
    if (this.s[this.pos] === "-") {
      this.pos++;
      if (!digit()) this.fail("in numeric literal");
    }
    if (this.s[this.pos] === "0") this.pos++;
    else while (digit()) this.pos++;
    if (this.s[this.pos] === ".") {
      this.pos++;
      if (!digit()) this.fail("after decimal point in numeric literal");
      while (digit()) this.pos++;
    }
    if (this.s[this.pos] === "e" || this.s[this.pos] === "E") {
      this.pos++;
      if (this.s[this.pos] === "+" || this.s[this.pos] === "-") this.pos++;
      if (!digit()) this.fail("in exponent of numeric literal");
      while (digit()) this.pos++;
    }
    return { kind: "number", raw: this.s.slice(start, this.pos) };
  }
}

/**
 * Converts a {@linkcode JsonNode} to a plain value as Go decodes into `any`: objects keep the last of duplicated
 * keys, numbers become `number` (float64).
 */
export function jsonNodeToValue(node: JsonNode): unknown {
  switch (node.kind) {
    case "object": {
      const o: Record<string, unknown> = {};
      for (const e of node.entries) setOwn(o, e.key, jsonNodeToValue(e.value));
      return o;
    }
    case "array":
      return node.items.map(jsonNodeToValue);
    case "string":
    case "bool":
      return node.value;
    case "number":
      return Number(node.raw);
    case "null":
      return null;
  }
}

/**
 * The error Go's decoder reports for a JSON value of the wrong kind:
 * `json: cannot unmarshal <kind> into Go value of type <T>` or `… into Go struct field <S.path> of type <T>`.
 */
export function goTypeError(
  node: JsonNode | string,
  goType: string,
  field: string | undefined,
  code: ErrorCode,
): AirlockError {
  // The node kinds are Go's names for JSON kinds (`json: cannot unmarshal <kind> into …`).
  const kind = typeof node === "string" ? node : node.kind;
  const where = field === undefined ? "Go value" : `Go struct field ${field}`;
  return new AirlockError(code, `json: cannot unmarshal ${kind} into ${where} of type ${goType}`);
}

/**
 * Decodes a JSON object into a Go-like struct: each member goes to the field of the same name (exact match first,
 * else ASCII case-insensitive, as Go does), unknown members are dropped, a later duplicate overwrites an earlier one,
 * and `null` leaves the field untouched. A non-object that is not `null` is a type error.
 *
 * @param node the JSON value
 * @param structName the Go type name for error texts (`Image`, `Manifest`)
 * @param path the JSON path for error texts (`Image.rootfs`)
 * @param fields setters by JSON field name; each receives the member value and its path
 * @param code the error code to throw with
 * @returns `false` when the node was `null` (nothing decoded)
 */
export function decodeGoStruct(
  node: JsonNode,
  structName: string,
  path: string,
  fields: Readonly<Record<string, (value: JsonNode, path: string) => void>>,
  code: ErrorCode,
): boolean {
  if (node.kind === "null") return false;
  if (node.kind !== "object") {
    throw goTypeError(node, structName, path.includes(".") ? path : undefined, code);
  }
  const names = Object.keys(fields);
  for (const { key, value } of node.entries) {
    let name = Object.hasOwn(fields, key) ? key : undefined;
    if (name === undefined) {
      const folded = asciiFold(key);
      name = names.find((n) => asciiFold(n) === folded);
    }
    if (name === undefined) continue;
    fields[name](value, `${path}.${name}`);
  }
  return true;
}

function asciiFold(s: string): string {
  return s.replace(/[A-Z]/g, (c) => c.toLowerCase());
}

/**
 * Decodes a JSON value into a Go `string` (`null` gives `fallback`, other kinds are type errors).
 */
export function goString(
  node: JsonNode,
  path: string | undefined,
  fallback: string,
  code: ErrorCode,
): string {
  if (node.kind === "null") return fallback;
  if (node.kind !== "string") throw goTypeError(node, "string", path, code);
  return node.value;
}

/**
 * Decodes a JSON number into a Go `int64`/`int`: only plain integer literals in range (`1.0` and `1e3` are
 * rejected as Go rejects them); `null` gives `fallback`.
 */
export function goInt(node: JsonNode, path: string | undefined, fallback: number, code: ErrorCode): number {
  if (node.kind === "null") return fallback;
  if (node.kind !== "number") throw goTypeError(node, "int64", path, code);
  if (!/^-?\d+$/.test(node.raw) || !Number.isSafeInteger(Number(node.raw))) {
    throw goTypeError(`number ${node.raw}`, "int64", path, code);
  }
  return Number(node.raw);
}

/**
 * Decodes a JSON value into a Go `bool` (`null` gives `fallback`).
 */
export function goBool(
  node: JsonNode,
  path: string | undefined,
  fallback: boolean,
  code: ErrorCode,
): boolean {
  if (node.kind === "null") return fallback;
  if (node.kind !== "bool") throw goTypeError(node, "bool", path, code);
  return node.value;
}

/**
 * Decodes a JSON value into a Go slice; `null` gives `undefined` (a nil slice).
 */
export function goSlice<T>(
  node: JsonNode,
  path: string | undefined,
  goType: string,
  item: (node: JsonNode, path: string | undefined) => T,
  code: ErrorCode,
): T[] | undefined {
  if (node.kind === "null") return undefined;
  if (node.kind !== "array") throw goTypeError(node, goType, path, code);
  return node.items.map((n) => item(n, path));
}

/**
 * Decodes a JSON value into a Go `map[string]V`; `null` gives `undefined` (a nil map). Later duplicates win.
 */
export function goMap<V>(
  node: JsonNode,
  path: string | undefined,
  goType: string,
  item: (node: JsonNode, path: string | undefined) => V,
  code: ErrorCode,
): Record<string, V> | undefined {
  if (node.kind === "null") return undefined;
  if (node.kind !== "object") throw goTypeError(node, goType, path, code);
  const out: Record<string, V> = {};
  for (const e of node.entries) setOwn(out, e.key, item(e.value, path));
  return out;
}

/** Sets an own, enumerable member, even one named `__proto__` (plain assignment would set the prototype). */
function setOwn<V>(o: Record<string, V>, key: string, value: V): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}
