/**
 * PKCS#11 URIs (RFC 7512) as airlock and cosign read them (spec/cosign.md §4.3):
 *
 * ```
 * pkcs11:token=signing;object=release-key?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=/run/pin
 * ```
 *
 * - path attributes (separated by `;`; `&` is accepted too, as cosign does): `token`, `manufacturer`, `model`,
 *   `serial`, `slot-id` select the token (`token` or `slot-id` or `serial` is required); `object` (label) and
 *   `id` (bytes, usually percent-encoded: `id=%01`) select the key (one of them is required); `type` is
 *   accepted (`private`, `public`, `cert`) and ignored — the key pair is what is meant;
 * - query attributes (separated by `&`; `;` accepted too): `module-path` (else `COSIGN_PKCS11_MODULE_PATH`),
 *   `pin-value`, `pin-source` (a file whose first line is the PIN: a path or a `file:` URI);
 *   other query attributes (`module-name`, vendor `x-…`) are ignored, as RFC 7512 allows;
 * - values are percent-decoded to bytes (`+` stays `+`: RFC 7512 is not form encoding; cosign's Go parser
 *   turns `+` into a space). Every attribute given must match: with both `object` and `id`, a key must have
 *   both (cosign looks at `id` only).
 *
 * **The PIN and process listings:** a `pin-value` in a URI given on the command line is visible to every
 * local user in `ps` output and in shell history. Prefer `pin-source=FILE` (mode 0600) or `COSIGN_PKCS11_PIN`;
 * {@linkcode pinValueWarning} gives the warning line for front doors to print, and {@linkcode redactPkcs11Uri}
 * the form of a URI that may be logged.
 *
 * @example
 * ```ts
 * const uri = parsePkcs11Uri("pkcs11:token=t;id=%01?module-path=/usr/lib/softhsm/libsofthsm2.so");
 * uri.id; // Uint8Array [1]
 * ```
 *
 * @module
 */
import { AirlockError } from "../../core/errors.ts";
import { defaultEnv } from "../passphrase.ts";

/** The scheme prefix of PKCS#11 key references. */
export const PKCS11_SCHEME = "pkcs11:";

/** Environment variable with the module path when the URI has no `module-path` (cosign's name). */
export const PKCS11_MODULE_PATH_ENV = "COSIGN_PKCS11_MODULE_PATH";

/** Environment variable with the PIN when the URI has neither `pin-value` nor `pin-source` (cosign's name). */
export const PKCS11_PIN_ENV = "COSIGN_PKCS11_PIN";

/** A parsed PKCS#11 URI. Text attributes are decoded as UTF-8; `id` stays bytes. */
export interface Pkcs11Uri {
  /** `token`: the token label. */
  readonly token?: string;
  /** `manufacturer`: the token's manufacturer id. */
  readonly manufacturer?: string;
  /** `model`: the token's model. */
  readonly model?: string;
  /** `serial`: the token's serial number. */
  readonly serial?: string;
  /** `slot-id`: the slot number (decimal). */
  readonly slotId?: bigint;
  /** `object`: the key's label (`CKA_LABEL`). */
  readonly object?: string;
  /** `id`: the key's id (`CKA_ID`), raw bytes. */
  readonly id?: Uint8Array;
  /** `module-path` query attribute. */
  readonly modulePath?: string;
  /** `pin-value` query attribute. Never log it. */
  readonly pinValue?: string;
  /** `pin-source` query attribute: a file path (a `file:` URI is converted to its path). */
  readonly pinSource?: string;
}

const PATH_ATTRS = new Set(["token", "manufacturer", "model", "serial", "slot-id", "object", "id", "type"]);
const UNSUPPORTED_PATH_ATTRS = new Set([
  "library-manufacturer",
  "library-description",
  "library-version",
  "slot-description",
  "slot-manufacturer",
]);

function invalid(message: string): AirlockError {
  return new AirlockError("INVALID_ARGUMENT", `invalid PKCS#11 URI: ${message}`);
}

/** Percent-decodes `s` to bytes (RFC 3986; `+` is a plain character). */
function percentDecode(s: string, attr: string): Uint8Array {
  const enc = new TextEncoder();
  const out: number[] = [];
  for (let i = 0; i < s.length;) {
    if (s[i] === "%") {
      const hex = s.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) throw invalid(`bad percent-encoding in "${attr}"`);
      out.push(parseInt(hex, 16));
      i += 3;
    } else {
      const cp = s.codePointAt(i)!;
      const ch = String.fromCodePoint(cp);
      out.push(...enc.encode(ch));
      i += ch.length;
    }
  }
  return new Uint8Array(out);
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

function decodeText(s: string, attr: string): string {
  try {
    return utf8.decode(percentDecode(s, attr));
  } catch (e) {
    if (e instanceof AirlockError) throw e;
    throw invalid(`"${attr}" is not valid UTF-8`);
  }
}

/** Splits `a=b;c=d` (or with `&`) into pairs; every component must have a name. */
function splitAttrs(part: string, where: string): [string, string][] {
  if (part === "") return [];
  return part.split(/[;&]/).filter((c) => c !== "").map((c) => {
    const eq = c.indexOf("=");
    if (eq <= 0) throw invalid(`${where} attribute "${eq < 0 ? c.slice(0, 40) : ""}" has no name=value form`);
    return [c.slice(0, eq).toLowerCase(), c.slice(eq + 1)];
  });
}

/** Options of {@linkcode parsePkcs11Uri}. */
export interface ParsePkcs11UriOptions {
  /** Reads an environment variable (for `COSIGN_PKCS11_MODULE_PATH`); defaults to `Deno.env.get`. */
  env?: (name: string) => string | undefined;
}

/**
 * Parses a `pkcs11:` key reference (see the module doc). The module path falls back to
 * `COSIGN_PKCS11_MODULE_PATH`. Errors: `INVALID_ARGUMENT` (`invalid PKCS#11 URI: …`); messages never
 * contain the PIN.
 */
export function parsePkcs11Uri(ref: string, options: ParsePkcs11UriOptions = {}): Pkcs11Uri {
  if (!ref.toLowerCase().startsWith(PKCS11_SCHEME)) throw invalid("the scheme must be pkcs11:");
  const rest = ref.slice(PKCS11_SCHEME.length);
  if (rest.includes("#")) throw invalid("a fragment (#) is not allowed");
  const q = rest.indexOf("?");
  const pathPart = q < 0 ? rest : rest.slice(0, q);
  const queryPart = q < 0 ? "" : rest.slice(q + 1);

  const seen = new Set<string>();
  const once = (name: string, where: string) => {
    if (seen.has(name)) throw invalid(`${where} attribute "${name}" is given twice`);
    seen.add(name);
  };
  const uri: {
    -readonly [K in keyof Pkcs11Uri]: Pkcs11Uri[K];
  } = {};
  for (const [name, raw] of splitAttrs(pathPart, "path")) {
    if (UNSUPPORTED_PATH_ATTRS.has(name)) throw invalid(`path attribute "${name}" is not supported`);
    if (!PATH_ATTRS.has(name) && !name.startsWith("x-")) throw invalid(`unknown path attribute "${name}"`);
    once(name, "path");
    switch (name) {
      case "token":
      case "manufacturer":
      case "model":
      case "serial":
      case "object":
        uri[name] = decodeText(raw, name);
        break;
      case "id":
        uri.id = percentDecode(raw, name);
        break;
      case "slot-id": {
        const v = decodeText(raw, name);
        if (!/^[0-9]{1,20}$/.test(v)) throw invalid(`slot-id "${v.slice(0, 24)}" is not a number`);
        uri.slotId = BigInt(v);
        break;
      }
      case "type": {
        const v = decodeText(raw, name);
        if (!["private", "public", "cert"].includes(v)) {
          throw invalid(`type "${v.slice(0, 24)}" must be private, public or cert`);
        }
        break;
      }
    }
  }
  for (const [name, raw] of splitAttrs(queryPart, "query")) {
    if (!["module-path", "pin-value", "pin-source"].includes(name)) continue; // RFC 7512: ignore the others
    once(name, "query");
    if (name === "module-path") uri.modulePath = decodeText(raw, name);
    else if (name === "pin-value") uri.pinValue = decodeText(raw, name);
    else {
      let src = decodeText(raw, name);
      if (src.startsWith("file:")) {
        try {
          src = decodeURIComponent(new URL(src).pathname);
        } catch {
          throw invalid("pin-source is not a valid file: URI");
        }
      }
      if (src === "") throw invalid("pin-source is empty");
      uri.pinSource = src;
    }
  }
  if (uri.pinValue !== undefined && uri.pinSource !== undefined) {
    throw invalid("give pin-value or pin-source, not both");
  }
  if (uri.token === undefined && uri.slotId === undefined && uri.serial === undefined) {
    throw invalid("one of token, slot-id or serial must be set");
  }
  if (uri.object === undefined && uri.id === undefined) throw invalid("one of object and id must be set");
  if ((uri.object === "" && uri.id === undefined) || (uri.id?.length === 0 && uri.object === undefined)) {
    throw invalid("object and id must not be empty");
  }
  if (uri.modulePath === undefined || uri.modulePath === "") {
    const fromEnv = (options.env ?? defaultEnv)(PKCS11_MODULE_PATH_ENV);
    if (!fromEnv) {
      throw invalid(`module-path or ${PKCS11_MODULE_PATH_ENV} must be set to the path of the PKCS#11 module`);
    }
    uri.modulePath = fromEnv;
  }
  return uri;
}

/**
 * The reference with any `pin-value` replaced by `***`, safe for log lines and error messages. Other
 * references are returned unchanged.
 */
export function redactPkcs11Uri(ref: string): string {
  if (!ref.toLowerCase().startsWith(PKCS11_SCHEME)) return ref;
  return ref.replace(/([?&;]pin-value=)[^&;#]*/gi, "$1***");
}

/**
 * A warning for front doors to print when `ref` carries a `pin-value` (visible in process listings and shell
 * history), else `undefined`.
 *
 * @example
 * ```ts
 * const w = pinValueWarning(flags.key);
 * if (w) log.warn(w);
 * ```
 */
export function pinValueWarning(ref: string): string | undefined {
  if (!ref.toLowerCase().startsWith(PKCS11_SCHEME) || !/[?&;]pin-value=/i.test(ref)) return undefined;
  return "the PKCS#11 URI carries pin-value: the PIN is visible in process listings and shell history; " +
    `use pin-source=FILE (mode 0600) or ${PKCS11_PIN_ENV} instead`;
}
