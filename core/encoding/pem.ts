/**
 * PEM blocks as Go's `encoding/pem` reads and writes them.
 *
 * @module
 */
import { base64Decode, base64Encode } from "./base64.ts";

/** One decoded PEM block. */
export interface PemBlock {
  /** The label: `PUBLIC KEY`, `ENCRYPTED SIGSTORE PRIVATE KEY`, … */
  readonly type: string;
  /** Header lines (`Key: value`) before the base64 body, if any. */
  readonly headers: Readonly<Record<string, string>>;
  /** The base64-decoded body. */
  readonly bytes: Uint8Array;
}

/**
 * Decodes the first PEM block in `text`, skipping any text before it, as Go's `pem.Decode` does. Returns
 * `undefined` when there is no well-formed block.
 *
 * @example
 * ```ts
 * const block = decodePem(await Deno.readTextFile("cosign.pub"));
 * if (block?.type === "PUBLIC KEY") use(block.bytes);
 * ```
 */
export function decodePem(text: string | Uint8Array): PemBlock | undefined {
  const s = typeof text === "string" ? text : new TextDecoder().decode(text);
  const begin = /-----BEGIN ([^\r\n]*?)-----\r?\n/g;
  for (let m = begin.exec(s); m; m = begin.exec(s)) {
    const type = m[1];
    const endMarker = `-----END ${type}-----`;
    const bodyStart = m.index + m[0].length;
    const end = s.indexOf(endMarker, bodyStart);
    if (end < 0) continue;
    const lines = s.slice(bodyStart, end).split(/\r?\n/);
    const headers: Record<string, string> = {};
    let i = 0;
    for (; i < lines.length && lines[i].includes(":"); i++) {
      const c = lines[i].indexOf(":");
      headers[lines[i].slice(0, c).trim()] = lines[i].slice(c + 1).trim();
    }
    const b64 = lines.slice(i).join("").replace(/[ \t]/g, "");
    const bytes = base64Decode(b64);
    if (bytes === undefined) continue;
    return { type, headers, bytes };
  }
  return undefined;
}

/**
 * Encodes a PEM block as Go's `pem.Encode` does: 64-character lines and a trailing newline.
 */
export function encodePem(type: string, bytes: Uint8Array): string {
  const b64 = base64Encode(bytes);
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${type}-----\n${lines.join("\n")}${lines.length ? "\n" : ""}-----END ${type}-----\n`;
}
