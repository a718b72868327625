/**
 * A small strict DER reader and writer (definite lengths, minimal length encodings, single-byte tags) and OID
 * conversions: enough for SubjectPublicKeyInfo, PKCS#1/PKCS#8 keys and ECDSA signatures. Malformed input throws
 * a plain `Error`; callers wrap it into an `AirlockError` with their own code.
 *
 * @module
 */

/** One DER element (tag, length, value). */
export interface DerElement {
  /** The identifier octet, e.g. `0x30` for SEQUENCE (multi-byte tags are not supported). */
  readonly tag: number;
  /** The content octets. */
  readonly value: Uint8Array;
  /** The whole encoding: identifier, length and content. */
  readonly raw: Uint8Array;
}

/** DER tags used by key structures. */
export const DER = {
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  SEQUENCE: 0x30,
} as const;

/**
 * Reads the DER elements that exactly fill `bytes` (strict: definite lengths, minimal length encoding, no
 * trailing bytes). Throws a plain `Error` on malformed input; callers wrap it into an {@linkcode AirlockError}.
 *
 * @example
 * ```ts
 * const [seq] = readDer(spkiDer); // one SEQUENCE
 * const [algorithm, bits] = readDer(seq.value);
 * ```
 */
export function readDer(bytes: Uint8Array): DerElement[] {
  const out: DerElement[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    const start = pos;
    const tag = bytes[pos++];
    if ((tag & 0x1f) === 0x1f) throw new Error("DER: multi-byte tags are not supported");
    if (pos >= bytes.length) throw new Error("DER: truncated length");
    let len = bytes[pos++];
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n === 0 || n > 4) throw new Error("DER: unsupported length encoding");
      if (pos + n > bytes.length) throw new Error("DER: truncated length");
      if (bytes[pos] === 0) throw new Error("DER: non-minimal length");
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + bytes[pos++];
      if (len < 0x80) throw new Error("DER: non-minimal length");
    }
    if (pos + len > bytes.length) throw new Error("DER: truncated value");
    out.push({ tag, value: bytes.subarray(pos, pos + len), raw: bytes.subarray(start, pos + len) });
    pos += len;
  }
  return out;
}

/**
 * Reads exactly one DER element of the given tag from `bytes`.
 */
export function readDerOne(bytes: Uint8Array, tag: number): DerElement {
  const els = readDer(bytes);
  if (els.length !== 1) throw new Error(`DER: expected one element, found ${els.length}`);
  if (els[0].tag !== tag) {
    throw new Error(`DER: expected tag 0x${tag.toString(16)}, found 0x${els[0].tag.toString(16)}`);
  }
  return els[0];
}

/**
 * Encodes one DER element.
 */
export function derEncode(tag: number, ...content: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const len = content.reduce((n, c) => n + c.length, 0);
  let header: number[];
  if (len < 0x80) header = [tag, len];
  else {
    const lenBytes: number[] = [];
    for (let l = len; l > 0; l = Math.floor(l / 256)) lenBytes.unshift(l & 0xff);
    header = [tag, 0x80 | lenBytes.length, ...lenBytes];
  }
  const out = new Uint8Array(header.length + len);
  out.set(header);
  let pos = header.length;
  for (const c of content) {
    out.set(c, pos);
    pos += c.length;
  }
  return out;
}

/**
 * Decodes the content of an OBJECT IDENTIFIER into dotted form.
 */
export function oidToString(value: Uint8Array): string {
  if (value.length === 0) throw new Error("DER: empty OID");
  const arcs: number[] = [];
  let n = 0;
  for (let i = 0; i < value.length; i++) {
    n = n * 128 + (value[i] & 0x7f);
    if (!(value[i] & 0x80)) {
      if (arcs.length === 0) arcs.push(n < 80 ? Math.floor(n / 40) : 2, n < 80 ? n % 40 : n - 80);
      else arcs.push(n);
      n = 0;
    } else if (i === value.length - 1) throw new Error("DER: truncated OID");
  }
  return arcs.join(".");
}

/**
 * Encodes a dotted OID as a complete DER OBJECT IDENTIFIER element.
 */
export function derOid(oid: string): Uint8Array {
  const arcs = oid.split(".").map(Number);
  const body: number[] = [arcs[0] * 40 + arcs[1]];
  for (const arc of arcs.slice(2)) {
    const chunk: number[] = [arc & 0x7f];
    for (let a = Math.floor(arc / 128); a > 0; a = Math.floor(a / 128)) chunk.unshift(0x80 | (a & 0x7f));
    body.push(...chunk);
  }
  return derEncode(DER.OID, new Uint8Array(body));
}
