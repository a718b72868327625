/**
 * A minimal streaming tar writer and an indexing tar reader, for image archives (`airlock save` / `load`).
 *
 * Writer: POSIX ustar headers; a name longer than ustar's fields or a size of 8 GiB or more gets a PAX extended
 * header (`path=`, `size=`). File data is streamed: an entry's header (which states its size) is written first,
 * then the bytes as they come, so a blob of any size passes through bounded memory. Should the data source fail
 * or come short, the entry is padded with zeros to the stated size, so the archive stays well-formed; the caller
 * must then not reference that entry (a later entry of the same name supersedes it, as tar readers do).
 *
 * Reader: walks the headers of a seekable file without reading file data, and returns where each regular file's
 * data lies (the last entry of a name wins). It understands ustar, PAX `path`/`size` records, GNU long names
 * (`L`) and base-256 sizes, strictly: a malformed header of any kind is an error, never a loop or a guess. An
 * archive whose last entry runs past the end of the file, or that lacks the zero block that ends a tar, is
 * reported as cut short.
 *
 * @module
 */
import { AirlockError } from "../errors.ts";

const BLOCK = 512;
const enc = new TextEncoder();
const dec = new TextDecoder();

/** Where a file's data lies in an archive. */
export interface TarEntryLocation {
  /** Byte offset of the data in the archive file. */
  readonly offset: number;
  /** Size of the data in bytes. */
  readonly size: number;
}

/** Something bytes can be written to completely (a `Deno.FsFile`). */
export interface TarSink {
  /** Writes some of `p`; returns how many bytes were written. */
  write(p: Uint8Array): Promise<number>;
}

/**
 * Writes a tar archive entry by entry.
 *
 * @example
 * ```ts
 * using file = await Deno.open("out.tar", { write: true, create: true, truncate: true });
 * const tar = new TarWriter(file);
 * await tar.addFile("oci-layout", new TextEncoder().encode('{"imageLayoutVersion":"1.0.0"}'));
 * await tar.close();
 * ```
 */
export class TarWriter {
  readonly #sink: TarSink;
  #written = 0;
  #closed = false;

  /**
   * A writer that appends to `sink`.
   *
   * @param sink where the archive goes, written sequentially
   */
  constructor(sink: TarSink) {
    this.#sink = sink;
  }

  /** Bytes written so far. */
  get bytesWritten(): number {
    return this.#written;
  }

  /** Adds a regular file with the given content. */
  async addFile(name: string, content: Uint8Array): Promise<void> {
    await this.#header(name, content.byteLength);
    await this.#write(content);
    await this.#pad(content.byteLength);
  }

  /**
   * Adds a regular file of `size` bytes read from `stream`. When the stream fails or yields a different number
   * of bytes, the entry is completed with zeros (or cut at `size`), and the error is rethrown.
   */
  async addStream(name: string, size: number, stream: ReadableStream<Uint8Array>): Promise<void> {
    await this.#header(name, size);
    let n = 0;
    let failure: unknown;
    const reader = stream.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        const room = size - n;
        if (value.byteLength > room) {
          if (room > 0) await this.#write(value.subarray(0, room));
          n = size;
          throw new AirlockError(
            "ARCHIVE_INVALID",
            `${name}: the data is longer than the ${size} bytes announced`,
          );
        }
        await this.#write(value);
        n += value.byteLength;
      }
      if (n !== size) {
        throw new AirlockError("ARCHIVE_INVALID", `${name}: the data has ${n} bytes, ${size} were announced`);
      }
    } catch (e) {
      failure = e;
      await reader.cancel(e).catch(() => {});
    } finally {
      reader.releaseLock();
    }
    if (n < size) await this.#zeros(size - n);
    await this.#pad(size);
    if (failure !== undefined) throw failure;
  }

  /** Writes the end-of-archive marker (two zero blocks). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#zeros(2 * BLOCK);
  }

  async #header(name: string, size: number): Promise<void> {
    if (this.#closed) throw new AirlockError("INVALID_ARGUMENT", "the tar archive is closed");
    const records: string[] = [];
    const nameBytes = enc.encode(name);
    const split = splitUstarName(nameBytes);
    if (!split) records.push(paxRecord("path", name));
    if (size >= 8 ** 11) records.push(paxRecord("size", String(size)));
    if (records.length > 0) {
      const data = enc.encode(records.join(""));
      await this.#write(ustarHeader(enc.encode("PaxHeaders/entry"), new Uint8Array(0), data.byteLength, "x"));
      await this.#write(data);
      await this.#pad(data.byteLength);
    }
    const [prefix, base] = split ?? [new Uint8Array(0), nameBytes.subarray(0, 100)];
    await this.#write(ustarHeader(base, prefix, size >= 8 ** 11 ? 0 : size, "0"));
  }

  async #write(p: Uint8Array): Promise<void> {
    let rest = p;
    while (rest.byteLength > 0) rest = rest.subarray(await this.#sink.write(rest));
    this.#written += p.byteLength;
  }

  async #zeros(n: number): Promise<void> {
    const zero = new Uint8Array(Math.min(n, 64 * 1024));
    for (let left = n; left > 0; left -= zero.byteLength) {
      await this.#write(left >= zero.byteLength ? zero : zero.subarray(0, left));
    }
  }

  async #pad(size: number): Promise<void> {
    const r = size % BLOCK;
    if (r !== 0) await this.#zeros(BLOCK - r);
  }
}

/** Splits a name into ustar's prefix (≤155) and name (≤100) fields at a `/`; `undefined` when it cannot. */
function splitUstarName(name: Uint8Array): [Uint8Array, Uint8Array] | undefined {
  if (name.byteLength <= 100) return [new Uint8Array(0), name];
  for (let i = name.byteLength - 1; i > 0; i--) {
    if (name[i] !== 0x2f) continue;
    if (i <= 155 && name.byteLength - i - 1 <= 100 && name.byteLength - i - 1 > 0) {
      return [name.subarray(0, i), name.subarray(i + 1)];
    }
  }
  return undefined;
}

/** One PAX record: `<len> <key>=<value>\n`, where `<len>` counts the whole record including itself. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const bodyLen = enc.encode(body).byteLength;
  let len = bodyLen + String(bodyLen).length;
  if (String(len).length !== String(bodyLen).length) len = bodyLen + String(len).length;
  return `${len}${body}`;
}

function octal(value: number, width: number): Uint8Array {
  return enc.encode(value.toString(8).padStart(width - 1, "0") + "\0");
}

function ustarHeader(name: Uint8Array, prefix: Uint8Array, size: number, type: string): Uint8Array {
  const h = new Uint8Array(BLOCK);
  h.set(name.subarray(0, 100), 0);
  h.set(octal(0o644, 8), 100);
  h.set(octal(0, 8), 108);
  h.set(octal(0, 8), 116);
  h.set(octal(size, 12), 124);
  h.set(octal(0, 12), 136);
  h.fill(0x20, 148, 156); // checksum field counts as spaces
  h[156] = type.charCodeAt(0);
  h.set(enc.encode("ustar\0"), 257);
  h.set(enc.encode("00"), 263);
  h.set(prefix.subarray(0, 155), 345);
  let sum = 0;
  for (const b of h) sum += b;
  h.set(enc.encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
  return h;
}

/** Something a tar can be read from at any offset (a `Deno.FsFile`). */
export interface TarSource {
  /** Moves the read position. */
  seek(offset: number, whence: Deno.SeekMode): Promise<number>;
  /** Reads into `p`; `null` at the end. */
  read(p: Uint8Array): Promise<number | null>;
}

/** Reads exactly `n` bytes at `offset`; fewer only at the end of the file. */
async function readAt(file: TarSource, offset: number, n: number): Promise<Uint8Array> {
  await file.seek(offset, Deno.SeekMode.Start);
  const out = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const r = await file.read(out.subarray(got));
    if (r === null) break;
    got += r;
  }
  return out.subarray(0, got);
}

function cstring(b: Uint8Array): string {
  const end = b.indexOf(0);
  return dec.decode(end < 0 ? b : b.subarray(0, end));
}

/** Largest size the reader accepts: an exact JavaScript integer. */
const MAX_NUMBER = Number.MAX_SAFE_INTEGER;
/** Largest PAX or GNU long-name data read into memory. */
const MAX_EXTENDED = 1024 * 1024;
/** Longest entry name accepted, in bytes (Linux PATH_MAX). */
const MAX_NAME = 4096;
/** Most entries an archive may hold (each costs a name and a location in memory). */
export const MAX_TAR_ENTRIES = 1_000_000;

/** Type flags of a regular file. */
const REGULAR = new Set(["0", "7"]);
/** Type flags whose data the reader skips (links, devices, directories, FIFOs). */
const SKIPPED = new Set(["1", "2", "3", "4", "5", "6"]);

/** The reader's state while walking one archive: its name for messages, the current header's offset. */
class TarWalk {
  constructor(readonly archive: string, public at = 0) {}

  /** An `ARCHIVE_INVALID` error naming the archive and the header being read. */
  bad(detail: string): AirlockError {
    return new AirlockError(
      "ARCHIVE_INVALID",
      `archive "${this.archive}" is damaged: ${detail} (tar header at byte ${this.at})`,
    );
  }

  /** An `ARCHIVE_INVALID` error for an archive that ends too early. */
  cut(detail: string): AirlockError {
    return new AirlockError(
      "ARCHIVE_INVALID",
      `archive "${this.archive}" is cut short or damaged: ${detail}`,
    );
  }

  /**
   * A numeric header field: octal digits between optional spaces, ended by NUL, space or the field's end; or
   * GNU base-256 (top bit of the first byte set). A negative base-256 number (first byte 0xff), any other
   * character, or a value beyond {@linkcode MAX_NUMBER} is an error.
   */
  number(field: Uint8Array, what: string): number {
    if (field[0] & 0x80) {
      if (field[0] === 0xff) throw this.bad(`the ${what} field is a negative base-256 number`);
      let n = field[0] & 0x7f;
      for (let i = 1; i < field.length; i++) {
        n = n * 256 + field[i];
        if (n > MAX_NUMBER) throw this.bad(`the ${what} field is a base-256 number too large`);
      }
      return n;
    }
    const s = cstring(field).replace(/^ +| +$/g, "");
    if (!/^[0-7]*$/.test(s)) throw this.bad(`the ${what} field ${JSON.stringify(s)} is not an octal number`);
    if (s === "") return 0;
    const n = parseInt(s, 8);
    if (n > MAX_NUMBER) throw this.bad(`the ${what} field ${s} is too large`);
    return n;
  }

  /**
   * PAX extended header records, `<length> <key>=<value>\n` each, where `<length>` (decimal digits, no sign)
   * counts the whole record. A record that does not fit this exactly is an error; `size` must be decimal digits
   * and `path` a name without NUL.
   */
  pax(data: Uint8Array): Map<string, string> {
    const out = new Map<string, string>();
    let pos = 0;
    while (pos < data.length) {
      if (data[pos] === 0 && data.subarray(pos).every((b) => b === 0)) break; // NUL padding
      const space = data.indexOf(0x20, pos);
      const digits = space < 0 ? "" : dec.decode(data.subarray(pos, space));
      if (!/^[1-9][0-9]{0,7}$/.test(digits)) throw this.bad("a PAX record has no valid length");
      const len = Number(digits);
      if (pos + len > data.length || len < digits.length + 4 || data[pos + len - 1] !== 0x0a) {
        throw this.bad(`a PAX record of length ${len} does not fit the extended header`);
      }
      const rec = dec.decode(data.subarray(space + 1, pos + len - 1));
      const eq = rec.indexOf("=");
      if (eq <= 0) throw this.bad("a PAX record has no key");
      const key = rec.slice(0, eq);
      const value = rec.slice(eq + 1);
      if (key === "size") {
        if (!/^[0-9]{1,16}$/.test(value) || Number(value) > MAX_NUMBER) {
          throw this.bad(`the PAX size ${JSON.stringify(value.slice(0, 40))} is not a valid size`);
        }
      } else if (key === "path") {
        this.name(value, "PAX path");
      }
      out.set(key, value);
      pos += len;
    }
    return out;
  }

  /** Checks an entry name: not empty, no NUL, at most {@linkcode MAX_NAME} bytes. */
  name(name: string, what: string): string {
    if (name === "" || name.includes("\0") || enc.encode(name).byteLength > MAX_NAME) {
      throw this.bad(`the ${what} is empty, contains NUL, or is longer than ${MAX_NAME} bytes`);
    }
    return name;
  }
}

/**
 * Lists the regular files of a tar archive: name → where its data lies. Reads headers only.
 *
 * Strict: a header with a bad checksum, a numeric field that is not octal or positive base-256, a PAX record that
 * is malformed or has a size that is not a decimal number, a GNU long name or extended header over 1 MiB, a name
 * over 4096 bytes, an unknown entry type (sparse files, multi-volume parts), an extended header not followed by
 * an entry, more than {@linkcode MAX_TAR_ENTRIES} entries, or an entry running past the end of the file is an
 * `ARCHIVE_INVALID` error; so is a missing end-of-archive block. Every header moves the walk forward by at least
 * one block, so the walk ends.
 *
 * @param file the archive, seekable
 * @param fileSize its size in bytes
 * @param what the archive's name, for error texts
 * @param signal stops the walk (its reason is thrown)
 * @throws {AirlockError} `ARCHIVE_INVALID` for anything above; "cut short" when the file ends too early.
 *
 * @example
 * ```ts
 * using f = await Deno.open("images.tar");
 * const entries = await indexTar(f, (await f.stat()).size, "images.tar");
 * ```
 */
export async function indexTar(
  file: TarSource,
  fileSize: number,
  what: string,
  signal?: AbortSignal,
): Promise<Map<string, TarEntryLocation>> {
  const entries = new Map<string, TarEntryLocation>();
  const walk = new TarWalk(what);
  let pending: { path?: string; size?: number; at?: number } = {};
  let headers = 0;
  for (let pos = 0;;) {
    signal?.throwIfAborted();
    walk.at = pos;
    if (pos + BLOCK > fileSize) {
      throw walk.cut(`it ends at byte ${fileSize} without the end-of-archive marker`);
    }
    const h = await readAt(file, pos, BLOCK);
    if (h.length < BLOCK) throw walk.cut(`short read at byte ${pos}`);
    if (h.every((b) => b === 0)) {
      if (pending.at !== undefined) {
        throw walk.bad(`the extended header at byte ${pending.at} is not followed by an entry`);
      }
      return entries;
    }
    if (++headers > 2 * MAX_TAR_ENTRIES + 1) {
      throw walk.bad(`the archive holds more than ${MAX_TAR_ENTRIES} entries`);
    }
    let unsigned = 0;
    let signed = 0;
    for (let i = 0; i < BLOCK; i++) {
      const b = i >= 148 && i < 156 ? 0x20 : h[i];
      unsigned += b;
      signed += b > 127 ? b - 256 : b;
    }
    const checksum = walk.number(h.subarray(148, 156), "checksum");
    if (checksum !== unsigned && checksum !== signed) throw walk.cut(`bad header checksum at byte ${pos}`);
    const type = String.fromCharCode(h[156] || 0x30);
    let size = walk.number(h.subarray(124, 136), "size");
    if (REGULAR.has(type) && pending.size !== undefined) size = pending.size;
    const dataAt = pos + BLOCK;
    if (size > fileSize - dataAt) {
      throw walk.cut(
        `entry at byte ${pos} needs ${size} bytes, only ${Math.max(0, fileSize - dataAt)} remain`,
      );
    }
    const next = dataAt + Math.ceil(size / BLOCK) * BLOCK;
    if (type === "x" || type === "g" || type === "L" || type === "K") {
      if (size > MAX_EXTENDED) throw walk.bad(`an extended header of ${size} bytes (over ${MAX_EXTENDED})`);
      const data = await readAt(file, dataAt, size);
      if (data.length < size) throw walk.cut(`short read at byte ${dataAt}`);
      if (type === "L") {
        pending.path = walk.name(cstring(data), "GNU long name");
        pending.at ??= pos;
      } else if (type === "K") {
        pending.at ??= pos; // a long link name: links are skipped, but it must precede an entry
      } else {
        const pax = walk.pax(data); // "g": checked, its values are not needed
        if (type === "x") {
          if (pax.has("path")) pending.path = pax.get("path");
          if (pax.has("size")) pending.size = Number(pax.get("size"));
          pending.at ??= pos;
        }
      }
    } else if (REGULAR.has(type)) {
      const prefix = cstring(h.subarray(345, 500));
      const base = cstring(h.subarray(0, 100));
      const name = walk.name(pending.path ?? (prefix ? `${prefix}/${base}` : base), "entry name");
      entries.set(name.replace(/^\.\//, ""), { offset: dataAt, size });
      if (entries.size > MAX_TAR_ENTRIES) {
        throw walk.bad(`the archive holds more than ${MAX_TAR_ENTRIES} entries`);
      }
      pending = {};
    } else if (SKIPPED.has(type)) {
      pending = {};
    } else {
      throw walk.bad(`entry type ${JSON.stringify(type)} is not supported (sparse, multi-volume or unknown)`);
    }
    pos = next;
  }
}
