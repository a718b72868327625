/**
 * The simple-signing payload of a sigstore ("cosign") image signature: building it byte for byte as
 * containers/image (skopeo, hangar v1) and cosign write it, and reading it back the way each of them reads it.
 *
 * - {@linkcode buildSimpleSigningPayload}: containers/image's form, Go `json.Marshal` of nested maps (compact,
 *   keys sorted at every level, `<`, `>`, `&`, U+2028, U+2029 escaped).
 * - {@linkcode buildCosignPayload}: cosign's struct-ordered form with `"optional":null` when there are no annotations.
 * - {@linkcode parseSimpleSigningPayload}: containers/image's strict parse (spec/hangar.md §6.4f), with its error texts.
 * - {@linkcode parseCosignClaims}: cosign's lenient `SimpleClaimVerifier` read (spec/cosign.md §1.5).
 *
 * The module also holds the small pieces of Go `encoding/json` behaviour both this module and
 * `attachments.ts` need: a JSON parser that keeps duplicate keys and raw number text ({@linkcode parseJsonTree}),
 * Go's string escaping ({@linkcode goJsonString}) and map-key order ({@linkcode compareGoMapKeys}), and a decoder
 * that fills Go-like structs (case-insensitive field names, last duplicate wins, `null` leaves the zero value).
 *
 * @module
 */
import { createHash } from "node:crypto";
import { AirlockError, type ErrorCode } from "../errors.ts";
import { VERSION } from "../version.ts";

/** The `critical.type` every simple-signing payload carries. */
export const SIMPLE_SIGNING_TYPE = "cosign container image signature";

/** The default `optional.creator` airlock writes: `airlock <version>`. */
export const DEFAULT_CREATOR = `airlock ${VERSION}`;

/** Keys of the `optional` object that airlock fills itself; `--annotation` may not use them. */
export const RESERVED_OPTIONAL_KEYS: readonly string[] = ["creator", "timestamp"];

// ---------------------------------------------------------------------------------------------------------------
// Go encoding/json: output
// ---------------------------------------------------------------------------------------------------------------

const HEX = "0123456789abcdef";

/**
 * Encodes a string exactly as Go's `encoding/json` (`json.Marshal`, HTML escaping on, Go ≥ 1.22) does:
 * `"` and `\` escaped, `\n \r \t \b \f` short forms, other control characters as `\u00XX`, `<`, `>`, `&`,
 * U+2028 and U+2029 as `\u003c`, `\u003e`, `\u0026`, `\u2028`, `\u2029`; a lone surrogate (invalid UTF-8 in Go)
 * becomes `\ufffd`. Everything else is written as is.
 *
 * @example
 * ```ts
 * goJsonString("a<b"); // => "\"a\\u003cb\""
 * ```
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
 *
 * @example
 * ```ts
 * Object.keys(m).sort(compareGoMapKeys);
 * ```
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
 *
 * @example
 * ```ts
 * goJsonMap({ b: "1", a: "2" }, goJsonString); // => '{"a":"2","b":"1"}'
 * ```
 */
export function goJsonMap<V>(map: Readonly<Record<string, V>>, encodeValue: (v: V) => string): string {
  const keys = Object.keys(map).sort(compareGoMapKeys);
  return "{" + keys.map((k) => goJsonString(k) + ":" + encodeValue(map[k])).join(",") + "}";
}

/**
 * Encodes an integer as Go encodes an `int64` (plain decimal digits). Only safe integers are accepted.
 *
 * @example
 * ```ts
 * goJsonInt(1795292793); // => "1795292793"
 * ```
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
 *
 * @example
 * ```ts
 * const tree = parseJsonTree('{"a":1,"a":2}', "SIGNATURE_INVALID"); // two entries, both kept
 * ```
 */
export function parseJsonTree(input: string | Uint8Array, code: ErrorCode): JsonNode {
  const text = typeof input === "string" ? input : new TextDecoder("utf-8", { fatal: false }).decode(input);
  return new TreeParser(text, code).parseDocument();
}

function quoteChar(c: string): string {
  if (c === "'") return "'\\''";
  if (c === '"') return "'\"'";
  const q = JSON.stringify(c);
  return "'" + q.slice(1, -1) + "'";
}

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
    const cp = String.fromCodePoint(this.s.codePointAt(this.pos)!);
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
    this.pos++;
    const entries: { key: string; value: JsonNode }[] = [];
    this.ws();
    if (this.s[this.pos] === "}") {
      this.pos++;
      return { kind: "object", entries };
    }
    for (;;) {
      if (this.s[this.pos] !== '"') this.fail("looking for beginning of object key string");
      const key = this.string();
      this.ws();
      if (this.s[this.pos] !== ":") this.fail("after object key");
      this.pos++;
      this.ws();
      entries.push({ key, value: this.value("looking for beginning of value") });
      this.ws();
      const c = this.s[this.pos];
      if (c === ",") {
        this.pos++;
        this.ws();
        continue;
      }
      if (c === "}") {
        this.pos++;
        return { kind: "object", entries };
      }
      this.fail("after object key:value pair");
    }
  }

  private array(): JsonNode {
    this.pos++;
    const items: JsonNode[] = [];
    this.ws();
    if (this.s[this.pos] === "]") {
      this.pos++;
      return { kind: "array", items };
    }
    for (;;) {
      items.push(this.value("looking for beginning of value"));
      this.ws();
      const c = this.s[this.pos];
      if (c === ",") {
        this.pos++;
        this.ws();
        continue;
      }
      if (c === "]") {
        this.pos++;
        return { kind: "array", items };
      }
      this.fail("after array element");
    }
  }

  private string(): string {
    this.pos++;
    let out = "";
    for (;;) {
      if (this.pos >= this.s.length) this.fail("");
      const c = this.s.charCodeAt(this.pos);
      if (c === 0x22) {
        this.pos++;
        return out;
      }
      if (c < 0x20) this.fail("in string literal");
      if (c !== 0x5c) {
        out += this.s[this.pos++];
        continue;
      }
      this.pos++;
      const e = this.s[this.pos];
      const simple: Record<string, string> = {
        '"': '"',
        "\\": "\\",
        "/": "/",
        b: "\b",
        f: "\f",
        n: "\n",
        r: "\r",
        t: "\t",
      };
      if (e !== undefined && e in simple) {
        out += simple[e];
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

/** Go's name for the JSON kind of a node, as used in `json: cannot unmarshal <kind> into …`. */
function goKind(node: JsonNode): string {
  return node.kind === "bool" ? "bool" : node.kind;
}

/**
 * Go's `%q` of a string, for error texts (`Duplicate key "k"`). Printable characters stay as they are.
 *
 * @example
 * ```ts
 * goQuote('a"b'); // => "\"a\\\"b\""
 * ```
 */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"' || ch === "\\") out += "\\" + ch;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (ch === "\x07") out += "\\a";
    else if (ch === "\b") out += "\\b";
    else if (ch === "\f") out += "\\f";
    else if (ch === "\v") out += "\\v";
    else if (c < 0x20 || c === 0x7f) out += "\\x" + HEX[c >> 4] + HEX[c & 15];
    else if (c >= 0xd800 && c <= 0xdfff) out += "\\ufffd";
    else out += ch;
  }
  return out + '"';
}

/**
 * Converts a {@linkcode JsonNode} to a plain value as Go decodes into `any`: objects keep the last of duplicated
 * keys, numbers become `number` (float64).
 *
 * @example
 * ```ts
 * jsonNodeToValue(parseJsonTree('{"a":1}', "SIGNATURE_INVALID")); // => { a: 1 }
 * ```
 */
export function jsonNodeToValue(node: JsonNode): unknown {
  switch (node.kind) {
    case "object": {
      const o: Record<string, unknown> = {};
      for (const e of node.entries) {
        Object.defineProperty(o, e.key, {
          value: jsonNodeToValue(e.value),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
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
 *
 * @example
 * ```ts
 * throw goTypeError(node, "string", undefined, "SIGNATURE_INVALID");
 * ```
 */
export function goTypeError(
  node: JsonNode | string,
  goType: string,
  field: string | undefined,
  code: ErrorCode,
): AirlockError {
  const kind = typeof node === "string" ? node : goKind(node);
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
 *
 * @example
 * ```ts
 * decodeGoStruct(node, "RootFS", "Image.rootfs", { type: (v, p) => (t = goString(v, p, code)) }, code);
 * ```
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
 *
 * @example
 * ```ts
 * const t = goString(node, "Image.os", "", "ATTACHMENT_INVALID");
 * ```
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
 *
 * @example
 * ```ts
 * const size = goInt(node, "Descriptor.size", 0, "ATTACHMENT_INVALID");
 * ```
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
 *
 * @example
 * ```ts
 * const b = goBool(node, "ImageConfig.ArgsEscaped", false, "ATTACHMENT_INVALID");
 * ```
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
 *
 * @example
 * ```ts
 * const env = goSlice(node, "Image.config.Env", "[]string", (n, p) => goString(n, p, "", code), code);
 * ```
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
 *
 * @example
 * ```ts
 * const labels = goMap(node, "Image.config.Labels", "map[string]string", (n, p) => goString(n, p, "", code), code);
 * ```
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
  for (const e of node.entries) {
    Object.defineProperty(out, e.key, {
      value: item(e.value, path),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Digests
// ---------------------------------------------------------------------------------------------------------------

/**
 * `sha256:<hex>` of some bytes.
 *
 * @example
 * ```ts
 * sha256Digest(new TextEncoder().encode("")); // => "sha256:e3b0c442…"
 * ```
 */
export function sha256Digest(bytes: Uint8Array): string {
  return "sha256:" + createHash("sha256").update(bytes).digest("hex");
}

const DIGEST_HEX_LENGTH: Readonly<Record<string, number>> = { sha256: 64, sha384: 96, sha512: 128 };

/**
 * Validates a digest string as opencontainers/go-digest's `Parse` does (sha256, sha384 and sha512 available).
 * Returns `undefined` when valid, else go-digest's error text: `invalid checksum digest format`,
 * `invalid checksum digest length` or `unsupported digest algorithm`.
 *
 * @example
 * ```ts
 * digestError("sha256:abc"); // => "invalid checksum digest length"
 * ```
 */
export function digestError(d: string): string | undefined {
  const i = d.indexOf(":");
  if (i <= 0 || i + 1 === d.length) return "invalid checksum digest format";
  const alg = d.slice(0, i);
  const encoded = d.slice(i + 1);
  const len = DIGEST_HEX_LENGTH[alg];
  if (len === undefined) {
    if (!/^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/.test(d)) return "invalid checksum digest format";
    return "unsupported digest algorithm";
  }
  if (encoded.length !== len) return "invalid checksum digest length";
  if (!/^[a-f0-9]+$/.test(encoded)) return "invalid checksum digest format";
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Building payloads
// ---------------------------------------------------------------------------------------------------------------

/** What goes into a containers/image-style payload. */
export interface SimpleSigningPayloadInput {
  /** `critical.identity.docker-reference`: the fully normalised reference (`host/repo:tag` or `host/repo@digest`). */
  readonly dockerReference: string;
  /** `critical.image.docker-manifest-digest`: `sha256:<hex>` of the signed manifest bytes. */
  readonly manifestDigest: string;
  /** `optional.creator`; `undefined` = {@linkcode DEFAULT_CREATOR}, `null` = left out. */
  readonly creator?: string | null;
  /** `optional.timestamp`, integer unix seconds; `undefined` = now, `null` = left out. */
  readonly timestamp?: number | null;
  /**
   * User annotations (`--annotation k=v`), written as string members of `optional`. The keys `creator` and
   * `timestamp` are reserved ({@linkcode RESERVED_OPTIONAL_KEYS}) and rejected with `INVALID_ARGUMENT`:
   * containers/image verifiers require `creator` to be a string and `timestamp` an integer, and airlock always
   * writes its own creator and timestamp, so a user value could only shadow or break them.
   */
  readonly annotations?: Readonly<Record<string, string>>;
}

const encoder = new TextEncoder();

function checkDigestArgument(d: string): void {
  const err = digestError(d);
  if (err !== undefined) {
    throw new AirlockError("INVALID_ARGUMENT", `invalid manifest digest ${goQuote(d)}: ${err}`);
  }
}

/**
 * Builds the simple-signing payload exactly as containers/image writes it (hangar v1, skopeo): Go `json.Marshal`
 * of nested maps, so keys are sorted at every level and the output is compact, with no trailing newline.
 * `optional` is always an object (`{}` when empty).
 *
 * @throws {AirlockError} `INVALID_ARGUMENT` for an empty reference (`Unexpected empty signature content`), a bad
 * digest, a non-integer timestamp or a reserved annotation key.
 *
 * @example
 * ```ts
 * const payload = buildSimpleSigningPayload({
 *   dockerReference: "docker.io/library/nginx:1.25",
 *   manifestDigest: "sha256:25fd…",
 *   timestamp: 1700000000,
 * });
 * ```
 */
export function buildSimpleSigningPayload(input: SimpleSigningPayloadInput): Uint8Array {
  const { dockerReference, manifestDigest } = input;
  if (dockerReference === "" || manifestDigest === "") {
    throw new AirlockError("INVALID_ARGUMENT", "Unexpected empty signature content");
  }
  checkDigestArgument(manifestDigest);
  const optional: Record<string, string> = {};
  for (const [k, v] of Object.entries(input.annotations ?? {})) {
    if (RESERVED_OPTIONAL_KEYS.includes(k)) {
      throw new AirlockError("INVALID_ARGUMENT", `annotation key ${goQuote(k)} is reserved for the signer`);
    }
    if (typeof v !== "string") {
      throw new AirlockError("INVALID_ARGUMENT", `annotation ${goQuote(k)} must be a string`);
    }
    optional[k] = goJsonString(v);
  }
  const creator = input.creator === undefined ? DEFAULT_CREATOR : input.creator;
  if (creator !== null) optional.creator = goJsonString(creator);
  const timestamp = input.timestamp === undefined ? Math.floor(Date.now() / 1000) : input.timestamp;
  if (timestamp !== null) {
    if (!Number.isSafeInteger(timestamp)) {
      throw new AirlockError(
        "INVALID_ARGUMENT",
        `timestamp must be an integer number of seconds, got ${timestamp}`,
      );
    }
    optional.timestamp = goJsonInt(timestamp);
  }
  // Keys at each level sorted: critical{identity,image,type}, optional{…sorted…}.
  const json = '{"critical":{"identity":{"docker-reference":' + goJsonString(dockerReference) + "}," +
    '"image":{"docker-manifest-digest":' + goJsonString(manifestDigest) + "}," +
    '"type":' + goJsonString(SIMPLE_SIGNING_TYPE) + "}," +
    '"optional":' + goJsonMap(optional, (raw) => raw) + "}";
  return encoder.encode(json);
}

/**
 * Builds the payload as cosign writes it (sigstore `payload.Cosign` marshalled by `encoding/json`): struct field
 * order, `"optional":null` when there are no annotations (cosign's CLI gives `null` for none, never `{}`),
 * otherwise the annotations as a sorted map.
 *
 * @example
 * ```ts
 * buildCosignPayload("192.168.64.2:5000/cosign-signed/key-1", "sha256:0489…");
 * // {"critical":{…},"optional":null}
 * ```
 */
export function buildCosignPayload(
  dockerReference: string,
  digest: string,
  annotations?: Readonly<Record<string, string>>,
): Uint8Array {
  checkDigestArgument(digest);
  const optional = annotations === undefined || Object.keys(annotations).length === 0
    ? "null"
    : goJsonMap(annotations, (v) => goJsonString(v));
  const json = '{"critical":{"identity":{"docker-reference":' + goJsonString(dockerReference) + "}," +
    '"image":{"docker-manifest-digest":' + goJsonString(digest) + "}," +
    '"type":' + goJsonString(SIMPLE_SIGNING_TYPE) + "}," +
    '"optional":' + optional + "}";
  return encoder.encode(json);
}

// ---------------------------------------------------------------------------------------------------------------
// Strict parse (containers/image)
// ---------------------------------------------------------------------------------------------------------------

/** A payload read by {@linkcode parseSimpleSigningPayload}. Untrusted until its signature has been verified. */
export interface SimpleSigningPayload {
  /** `critical.image.docker-manifest-digest` (a valid digest). */
  readonly dockerManifestDigest: string;
  /** `critical.identity.docker-reference` (not parsed; may be `""` when the payload said `null`). */
  readonly dockerReference: string;
  /** `optional.creator` when present. */
  readonly creator?: string;
  /** `optional.timestamp` when present (integer seconds). */
  readonly timestamp?: number;
  /** The whole `optional` object as decoded into Go `any` (`null` for cosign's `"optional":null`). */
  readonly optional: Readonly<Record<string, unknown>> | null;
}

const CODE: ErrorCode = "SIGNATURE_INVALID";

function invalid(message: string): AirlockError {
  return new AirlockError(CODE, message);
}

/** `%#v` of the first token Go's decoder sees, for `JSON object expected, got …`. */
function goFirstToken(node: JsonNode): string {
  switch (node.kind) {
    case "array":
      return "91"; // json.Delim('[') printed with %#v
    case "string":
      return goQuote(node.value);
    case "number":
      return String(Number(node.raw));
    case "bool":
      return String(node.value);
    case "null":
      return "<nil>";
    case "object":
      return "123";
  }
}

type Sink = (value: JsonNode) => void;

/** containers/image `ParanoidUnmarshalJSONObject`. */
function paranoidObject(node: JsonNode, resolve: (key: string) => Sink | undefined): void {
  if (node.kind !== "object") throw invalid(`JSON object expected, got ${goFirstToken(node)}`);
  const seen = new Set<string>();
  for (const { key, value } of node.entries) {
    if (seen.has(key)) throw invalid(`Duplicate key ${goQuote(key)}`);
    seen.add(key);
    const sink = resolve(key);
    if (sink === undefined) throw invalid(`Unknown key ${goQuote(key)}`);
    sink(value);
  }
}

/** containers/image `ParanoidUnmarshalJSONObjectExactFields`. */
function paranoidExact(node: JsonNode, fields: Readonly<Record<string, Sink>>): void {
  const seen = new Set<string>();
  paranoidObject(node, (key) => {
    if (!Object.hasOwn(fields, key)) return undefined;
    seen.add(key);
    return fields[key];
  });
  for (const key of Object.keys(fields)) {
    if (!seen.has(key)) throw invalid(`Key ${goQuote(key)} missing in a JSON object`);
  }
}

function goFloat64(node: JsonNode): number {
  if (node.kind === "null") return 0;
  if (node.kind !== "number") throw goTypeError(node, "float64", undefined, CODE);
  const v = Number(node.raw);
  if (!Number.isFinite(v)) throw goTypeError(`number ${node.raw}`, "float64", undefined, CODE);
  return v;
}

const TWO_POW_63 = 9223372036854775808;

/**
 * Parses a simple-signing payload as strictly as containers/image does (spec/hangar.md §6.4f): the top level has
 * exactly `critical` and `optional`; `critical` exactly `type`, `image`, `identity`; `type` is
 * `cosign container image signature`; `image` exactly a parseable `docker-manifest-digest`; `identity` exactly
 * `docker-reference`; `optional` is `null` or an object whose `creator` (if present) is a string and whose
 * `timestamp` (if present) is a number with an integer value; duplicate keys are rejected at every level checked.
 * Checks run in containers/image's order, so the first error reported is the one it would report.
 * Call it only on payloads whose signature has been verified.
 *
 * @throws {AirlockError} `SIGNATURE_INVALID` with containers/image's text: `Unknown key "<k>"`,
 * `Key "<k>" missing in a JSON object`, `Duplicate key "<k>"`, `Unrecognized signature type <t>`,
 * `Field optional.timestamp is not an integer`, `invalid docker-manifest-digest value "<v>": <reason>`,
 * `JSON object expected, got <token>`, `json: cannot unmarshal …`, or a JSON syntax error.
 *
 * @example
 * ```ts
 * const p = parseSimpleSigningPayload(payloadBytes);
 * if (p.dockerManifestDigest !== manifestDigest) throw …;
 * ```
 */
export function parseSimpleSigningPayload(bytes: Uint8Array | string): SimpleSigningPayload {
  const root = parseJsonTree(bytes, CODE);
  let critical: JsonNode = { kind: "null" };
  let optional: JsonNode = { kind: "null" };
  paranoidExact(root, { critical: (v) => (critical = v), optional: (v) => (optional = v) });

  let creator: string | undefined;
  let timestampFloat: number | undefined;
  let optionalValue: Record<string, unknown> | null = null;
  if (optional.kind !== "null") {
    const ignored: Sink = () => {};
    paranoidObject(optional, (key) => {
      if (key === "creator") return (v) => (creator = goString(v, undefined, "", CODE));
      if (key === "timestamp") return (v) => (timestampFloat = goFloat64(v));
      return ignored;
    });
    optionalValue = jsonNodeToValue(optional) as Record<string, unknown>;
  }
  let timestamp: number | undefined;
  if (timestampFloat !== undefined) {
    // Go: int64(timestamp) must convert back to the same float64.
    if (!Number.isInteger(timestampFloat) || timestampFloat < -TWO_POW_63 || timestampFloat >= TWO_POW_63) {
      throw invalid("Field optional.timestamp is not an integer");
    }
    timestamp = timestampFloat + 0; // -0 reads as 0, as int64 does
  }

  let type = "";
  let image: JsonNode = { kind: "null" };
  let identity: JsonNode = { kind: "null" };
  paranoidExact(critical, {
    type: (v) => (type = goString(v, undefined, "", CODE)),
    image: (v) => (image = v),
    identity: (v) => (identity = v),
  });
  if (type !== SIMPLE_SIGNING_TYPE) throw invalid(`Unrecognized signature type ${type}`);

  let digest = "";
  paranoidExact(image, { "docker-manifest-digest": (v) => (digest = goString(v, undefined, "", CODE)) });
  const digestErr = digestError(digest);
  if (digestErr !== undefined) {
    throw invalid(`invalid docker-manifest-digest value ${goQuote(digest)}: ${digestErr}`);
  }

  let dockerReference = "";
  paranoidExact(identity, {
    "docker-reference": (v) => (dockerReference = goString(v, undefined, "", CODE)),
  });

  return {
    dockerManifestDigest: digest,
    dockerReference,
    ...(creator !== undefined ? { creator } : {}),
    ...(timestamp !== undefined ? { timestamp } : {}),
    optional: optionalValue,
  };
}

/**
 * The user annotations of a parsed payload: the `optional` members other than `creator` and `timestamp`.
 * Values are as decoded (cosign-made payloads may carry non-strings).
 *
 * @example
 * ```ts
 * payloadAnnotations(parseSimpleSigningPayload(bytes)); // => { env: "prod" }
 * ```
 */
export function payloadAnnotations(
  payload: { readonly optional: Readonly<Record<string, unknown>> | null },
): Record<
  string,
  unknown
> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(payload.optional ?? {})) {
    if (!RESERVED_OPTIONAL_KEYS.includes(k)) out[k] = v;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Lenient parse (cosign SimpleClaimVerifier)
// ---------------------------------------------------------------------------------------------------------------

/** A payload as cosign's `SimpleClaimVerifier` reads it (sigstore `payload.SimpleContainerImage`). */
export interface CosignClaims {
  /** `critical.image.docker-manifest-digest` (not validated; compared as a string). */
  readonly dockerManifestDigest: string;
  /** `critical.identity.docker-reference` (cosign ignores it). */
  readonly dockerReference: string;
  /** `critical.type` (cosign ignores it). */
  readonly type: string;
  /** `optional`, `null` when absent or `null`. */
  readonly optional: Readonly<Record<string, unknown>> | null;
}

/**
 * Reads a payload the lenient way cosign does (`json.Unmarshal` into `SimpleContainerImage`): unknown members are
 * ignored, field names match case-insensitively, a later duplicate wins, `null` leaves a field empty. Only a JSON
 * syntax error or a member of the wrong kind fails.
 *
 * @throws {AirlockError} `SIGNATURE_INVALID`
 *
 * @example
 * ```ts
 * const c = parseCosignClaims(payload);
 * cosignClaimsMatch(c, "sha256:…", { env: "prod" });
 * ```
 */
export function parseCosignClaims(bytes: Uint8Array | string): CosignClaims {
  const root = parseJsonTree(bytes, CODE);
  let dockerManifestDigest = "";
  let dockerReference = "";
  let type = "";
  let optional: Record<string, unknown> | null = null;
  const S = "SimpleContainerImage";
  decodeGoStruct(root, S, S, {
    critical: (v, p) =>
      decodeGoStruct(v, "payload.Critical", p, {
        identity: (v2, p2) =>
          decodeGoStruct(v2, "payload.Identity", p2, {
            "docker-reference": (v3, p3) => (dockerReference = goString(v3, p3, dockerReference, CODE)),
          }, CODE),
        image: (v2, p2) =>
          decodeGoStruct(v2, "payload.Image", p2, {
            "docker-manifest-digest": (
              v3,
              p3,
            ) => (dockerManifestDigest = goString(v3, p3, dockerManifestDigest, CODE)),
          }, CODE),
        type: (v2, p2) => (type = goString(v2, p2, type, CODE)),
      }, CODE),
    optional: (v, p) => {
      if (v.kind === "null") optional = null;
      else if (v.kind !== "object") throw goTypeError(v, "map[string]interface {}", p, CODE);
      else optional = { ...(optional ?? {}), ...(jsonNodeToValue(v) as Record<string, unknown>) };
    },
  }, CODE);
  return { dockerManifestDigest, dockerReference, type, optional };
}

/**
 * cosign's claim check (`SimpleClaimVerifier` + `correctAnnotations`): the digest must equal the image digest
 * exactly, and every wanted annotation must be present in `optional` with an equal string value.
 *
 * @example
 * ```ts
 * if (!cosignClaimsMatch(parseCosignClaims(payload), digest)) reject();
 * ```
 */
export function cosignClaimsMatch(
  claims: CosignClaims,
  digest: string,
  annotations?: Readonly<Record<string, string>>,
): boolean {
  if (claims.dockerManifestDigest !== digest) return false;
  for (const [k, v] of Object.entries(annotations ?? {})) {
    if (claims.optional === null || !Object.hasOwn(claims.optional, k) || claims.optional[k] !== v) {
      return false;
    }
  }
  return true;
}
