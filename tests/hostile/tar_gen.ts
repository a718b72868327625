/**
 * Malformed tar archives, for the hostile-input suite: a header builder that writes any field as given (valid
 * or not), a list of named attacks (each one invalid), and seeded mutations of a valid archive.
 *
 * @module
 */
import { concatBytes as concat } from "../testbed/util.ts";
import type { Rng } from "./rng.ts";

const BLOCK = 512;
const enc = new TextEncoder();

/** The fields of one raw tar header; strings are written as they are, so any of them can be wrong. */
export interface RawHeader {
  /** Name field (100 bytes). */
  name?: string;
  /** Size field (12 bytes), text (octal expected) or raw bytes (base-256). */
  size?: string | Uint8Array;
  /** Type flag. */
  type?: string;
  /** ustar prefix (155 bytes). */
  prefix?: string;
  /** Checksum field as text; computed when absent. */
  checksum?: string;
}

/** One 512-byte header block with the fields as given (a correct checksum unless one is given). */
export function header(h: RawHeader): Uint8Array {
  const b = new Uint8Array(BLOCK);
  b.set(enc.encode(h.name ?? "file").subarray(0, 100), 0);
  b.set(enc.encode("0000644\0"), 100);
  b.set(enc.encode("0000000\0"), 108);
  b.set(enc.encode("0000000\0"), 116);
  const size = h.size ?? "00000000000\0";
  b.set((typeof size === "string" ? enc.encode(size) : size).subarray(0, 12), 124);
  b.set(enc.encode("00000000000\0"), 136);
  b[156] = (h.type ?? "0").charCodeAt(0);
  b.set(enc.encode("ustar\0"), 257);
  b.set(enc.encode("00"), 263);
  b.set(enc.encode(h.prefix ?? "").subarray(0, 155), 345);
  if (h.checksum !== undefined) {
    b.set(enc.encode(h.checksum).subarray(0, 8), 148);
  } else {
    b.fill(0x20, 148, 156);
    let sum = 0;
    for (const x of b) sum += x;
    b.set(enc.encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
  }
  return b;
}

/** Data padded to whole blocks. */
export function padded(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(data.length / BLOCK) * BLOCK);
  out.set(data);
  return out;
}

/** Octal size field text. */
export function octal(n: number): string {
  return n.toString(8).padStart(11, "0") + "\0";
}

/** The end-of-archive marker (two zero blocks). */
export const END: Uint8Array = new Uint8Array(2 * BLOCK);

/** A PAX extended header entry (type `x`, or `g` for a global one) carrying `records` exactly as given, then its data. */
export function paxEntry(records: string, type = "x"): Uint8Array {
  const data = enc.encode(records);
  return concat(header({ name: "PaxHeaders/x", type, size: octal(data.length) }), padded(data));
}

/** A well-formed PAX record `<len> key=value\n`. */
export function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const n = enc.encode(body).length;
  let len = n + String(n).length;
  if (String(len).length !== String(n).length) len = n + String(len).length;
  return `${len}${body}`;
}

/** A regular file entry: header and padded data. */
export function fileEntry(name: string, data: Uint8Array): Uint8Array {
  return concat(header({ name, size: octal(data.length) }), padded(data));
}

/** A named malformed archive: every one of these must be refused. */
export interface TarAttack {
  /** What is wrong with it. */
  readonly name: string;
  /** The archive bytes. */
  readonly bytes: Uint8Array;
}

/** Base-256 size field bytes (`0x80` marker, or `0xff` for a negative number). */
function base256(first: number, rest: number[]): Uint8Array {
  const f = new Uint8Array(12);
  f[0] = first;
  f.set(rest.slice(0, 11), 12 - rest.length);
  return f;
}

/**
 * The named attacks: malformed PAX records and sizes, GNU long names, numeric fields, checksums, entry types and
 * archives cut short. Each is an invalid archive (a reader must refuse it, in bounded time).
 */
export function tarAttacks(): TarAttack[] {
  const hello = enc.encode("hello");
  const body = fileEntry("a.txt", hello);
  /** A `type` entry (PAX header, GNU long name) of 2 MiB of zeros before the file: over the 1 MiB read for one. */
  const overMiB = (name: string, type: string) =>
    concat(header({ name, type, size: octal(2 * 1024 * 1024) }), new Uint8Array(2 * 1024 * 1024), body, END);
  const withPax = (records: string) => concat(paxEntry(records), body, END);
  const attacks: TarAttack[] = [
    { name: "PAX size=-1536", bytes: withPax(paxRecord("size", "-1536")) },
    { name: "PAX size=abc", bytes: withPax(paxRecord("size", "abc")) },
    { name: "PAX size empty", bytes: withPax(paxRecord("size", "")) },
    { name: "PAX size=1e3", bytes: withPax(paxRecord("size", "1e3")) },
    { name: "PAX size=0x10", bytes: withPax(paxRecord("size", "0x10")) },
    { name: "PAX size=+5", bytes: withPax(paxRecord("size", "+5")) },
    { name: "PAX size beyond 2^53", bytes: withPax(paxRecord("size", "99999999999999999999")) },
    { name: "PAX size past the end of the file", bytes: withPax(paxRecord("size", "1048576")) },
    { name: "PAX record length not a number", bytes: withPax("xx size=5\n") },
    { name: "PAX record length negative", bytes: withPax("-12 size=5\n") },
    { name: "PAX record length zero", bytes: withPax("0 size=5\n") },
    { name: "PAX record length too long", bytes: withPax("400 size=5\n") },
    { name: "PAX record length too short", bytes: withPax("3 size=5\n") },
    { name: "PAX record without newline", bytes: withPax("10 size=55") },
    { name: "PAX record without key", bytes: withPax("8 =value\n") },
    { name: "PAX path with NUL", bytes: withPax(paxRecord("path", "a\0b")) },
    { name: "PAX path empty", bytes: withPax(paxRecord("path", "")) },
    { name: "PAX path over 4096 bytes", bytes: withPax(paxRecord("path", "p".repeat(5000))) },
    { name: "PAX header over 1 MiB", bytes: overMiB("PaxHeaders/x", "x") },
    { name: "PAX header then end of archive", bytes: concat(paxEntry(paxRecord("path", "x")), END) },
    { name: "PAX global header malformed", bytes: concat(paxEntry("zz\n", "g"), body, END) },
    { name: "GNU long name over 1 MiB", bytes: overMiB("././@LongLink", "L") },
    {
      name: "GNU long name empty",
      bytes: concat(header({ name: "././@LongLink", type: "L", size: octal(0) }), body, END),
    },
    {
      name: "GNU long name then end of archive",
      bytes: concat(
        header({ name: "././@LongLink", type: "L", size: octal(4) }),
        padded(enc.encode("abc\0")),
        END,
      ),
    },
    {
      name: "GNU long name past the end of the file",
      bytes: concat(header({ name: "././@LongLink", type: "L", size: octal(100000) }), body),
    },
    { name: "size field not octal", bytes: concat(header({ name: "a", size: "00000000abc\0" }), END) },
    { name: "size field with a sign", bytes: concat(header({ name: "a", size: "-0000000012\0" }), END) },
    {
      name: "size field base-256 negative",
      bytes: concat(header({ name: "a", size: base256(0xff, [0xff, 0xfa, 0x00]) }), END),
    },
    {
      name: "size field base-256 beyond 2^53",
      bytes: concat(
        header({ name: "a", size: base256(0x80, [0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]) }),
        END,
      ),
    },
    {
      name: "size field base-256 past the end",
      bytes: concat(header({ name: "a", size: base256(0x80, [0x10, 0, 0]) }), END),
    },
    {
      name: "checksum wrong",
      bytes: concat(header({ name: "a", size: octal(0), checksum: "0000001\0" }), END),
    },
    {
      name: "checksum not octal",
      bytes: concat(header({ name: "a", size: octal(0), checksum: "zzzzzz\0 " }), END),
    },
    { name: "sparse entry", bytes: concat(header({ name: "a", type: "S", size: octal(0) }), END) },
    { name: "multi-volume entry", bytes: concat(header({ name: "a", type: "M", size: octal(0) }), END) },
    { name: "unknown entry type", bytes: concat(header({ name: "a", type: "Q", size: octal(0) }), END) },
    { name: "empty name", bytes: concat(header({ name: "", size: octal(0) }), END) },
    { name: "truncated header", bytes: concat(body, header({ name: "b" }).subarray(0, 300)) },
    { name: "truncated data", bytes: concat(header({ name: "a", size: octal(5000) }), new Uint8Array(1024)) },
    { name: "no end-of-archive marker", bytes: body },
    { name: "empty file", bytes: new Uint8Array(0) },
    { name: "one byte", bytes: new Uint8Array([0x61]) },
    { name: "file length not a whole block", bytes: concat(body, new Uint8Array(100)) },
  ];
  return attacks;
}

/** A small valid archive with a PAX header, a GNU long name, a directory and a few files. */
export function validTar(rng: Rng): Uint8Array {
  const parts: Uint8Array[] = [];
  const n = 1 + rng.int(4);
  for (let i = 0; i < n; i++) {
    const data = rng.bytes(rng.int(1500));
    const kind = rng.int(4);
    if (kind === 0) parts.push(paxEntry(paxRecord("path", `long/${rng.text(150)}`)));
    if (kind === 1) {
      const name = enc.encode(`gnu/${rng.text(120)}\0`);
      parts.push(header({ name: "././@LongLink", type: "L", size: octal(name.length) }), padded(name));
    }
    if (kind === 2) parts.push(header({ name: `dir${i}/`, type: "5" }));
    parts.push(fileEntry(`f${i}`, data));
  }
  parts.push(END);
  return concat(...parts);
}

/**
 * A seeded mutation of a valid archive: random bytes overwritten in a header (checksum recomputed or not), a
 * numeric field replaced by junk, a PAX record rewritten, or the file cut at a random point. The result may be
 * valid or not; a reader must either list entries that lie inside the file or refuse it, in bounded time.
 */
export function mutateTar(rng: Rng): Uint8Array {
  const bytes = validTar(rng).slice();
  const blocks = bytes.length / BLOCK;
  const kind = rng.int(5);
  if (kind === 0) return bytes.subarray(0, rng.int(bytes.length));
  const at = rng.int(blocks) * BLOCK;
  if (kind === 1) {
    for (let i = 0, n = 1 + rng.int(8); i < n; i++) bytes[at + rng.int(BLOCK)] = rng.int(256);
  } else if (kind === 2) {
    const field = rng.pick([[124, 12], [148, 8], [100, 8], [0, 100]]);
    const junk = rng.pick(["-1536", "abc", "77777777777777", "\x80\xff", " 1 2 ", "\xff\xff", "0x1f"]);
    bytes.set(enc.encode(junk).subarray(0, field[1]), at + field[0]);
  } else if (kind === 3) {
    bytes[at + 156] = rng.pick([0x78, 0x4c, 0x67, 0x4b, 0x53, 0x00, 0x35, rng.int(256)]);
  } else {
    const text = rng.pick(["-1536 size=1\n", "5 size=\n", "99999999999 path=x\n", "12 size=-1\n", "abc"]);
    bytes.set(enc.encode(text), at + rng.int(BLOCK - text.length));
  }
  if (rng.chance(0.7)) {
    // recompute the checksum of the mutated block, so that the mutation reaches the field parsers
    bytes.fill(0x20, at + 148, at + 156);
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += bytes[at + i];
    bytes.set(enc.encode(sum.toString(8).padStart(6, "0") + "\0 "), at + 148);
  }
  return bytes;
}
