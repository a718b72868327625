/**
 * Go's `%q` (`strconv.Quote`) for messages and error texts that must read as hangar's, cosign's and
 * containers/image's do (`Duplicate key "k"`, `invalid image line "…"`).
 *
 * @module
 */

/**
 * Quotes a string as Go's `%q` / `strconv.Quote` does (hangar's messages use it for lines and file names):
 * double quotes, `\"` and `\\` escaped, control characters as `\n`, `\t`, `\x01`…, other non-printable
 * characters as `\uXXXX` / `\UXXXXXXXX`; printable Unicode is kept.
 */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0) ?? 0;
    if (ch === '"' || ch === "\\") out += `\\${ch}`;
    else if (cp === 0x20 || PRINTABLE_RE.test(ch)) out += ch;
    else if (cp in GO_ESCAPES) out += GO_ESCAPES[cp];
    else if (cp < 0x20 || cp === 0x7f) out += `\\x${cp.toString(16).padStart(2, "0")}`;
    else if (cp >= 0xd800 && cp <= 0xdfff) out += "\ufffd"; // Go never sees lone surrogates: it has U+FFFD.
    else if (cp < 0x10000) out += `\\u${cp.toString(16).padStart(4, "0")}`;
    else out += `\\U${cp.toString(16).padStart(8, "0")}`;
  }
  return out + '"';
}

const PRINTABLE_RE = /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u;
const GO_ESCAPES: Readonly<Record<number, string>> = {
  0x07: "\\a",
  0x08: "\\b",
  0x0c: "\\f",
  0x0a: "\\n",
  0x0d: "\\r",
  0x09: "\\t",
  0x0b: "\\v",
};
