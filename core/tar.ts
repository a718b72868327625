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
 * (`L`) and base-256 sizes. An archive whose last entry runs past the end of the file, or that lacks the two
 * zero blocks that end a tar, is reported as cut short.
 *
 * @module
 */
import { AirlockError } from "./errors.ts";

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

  /** @param sink where the archive goes, written sequentially */
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

function parseNumber(field: Uint8Array, what: string): number {
  if (field[0] & 0x80) {
    // GNU base-256: big-endian, the top bit of the first byte is the marker.
    let n = field[0] & 0x7f;
    for (let i = 1; i < field.length; i++) n = n * 256 + field[i];
    return n;
  }
  const s = cstring(field).trim();
  if (s === "") return 0;
  if (!/^[0-7]+$/.test(s)) {
    throw new AirlockError("ARCHIVE_INVALID", `invalid ${what} field "${s}" in a tar header`);
  }
  return parseInt(s, 8);
}

function parsePax(data: Uint8Array): Map<string, string> {
  const out = new Map<string, string>();
  let pos = 0;
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos);
    if (space < 0) break;
    const len = parseInt(dec.decode(data.subarray(pos, space)), 10);
    if (!Number.isFinite(len) || len <= 0 || pos + len > data.length) {
      throw new AirlockError("ARCHIVE_INVALID", "malformed PAX extended header");
    }
    const rec = dec.decode(data.subarray(space + 1, pos + len - 1));
    const eq = rec.indexOf("=");
    if (eq > 0) out.set(rec.slice(0, eq), rec.slice(eq + 1));
    pos += len;
  }
  return out;
}

/**
 * Lists the regular files of a tar archive: name → where its data lies. Reads headers only.
 *
 * @param file the archive, seekable
 * @param fileSize its size in bytes
 * @param what the archive's name, for error texts
 * @throws {AirlockError} `ARCHIVE_INVALID` for a bad header checksum, an entry running past the end of the file
 *   or a missing end-of-archive marker ("cut short").
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
): Promise<Map<string, TarEntryLocation>> {
  const entries = new Map<string, TarEntryLocation>();
  let pos = 0;
  let pending: { path?: string; size?: number } = {};
  const cut = (detail: string) =>
    new AirlockError("ARCHIVE_INVALID", `archive "${what}" is cut short or damaged: ${detail}`);
  for (;;) {
    if (pos + BLOCK > fileSize) throw cut(`it ends at byte ${fileSize} without the end-of-archive marker`);
    const h = await readAt(file, pos, BLOCK);
    if (h.length < BLOCK) throw cut(`short read at byte ${pos}`);
    if (h.every((b) => b === 0)) return entries;
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i];
    if (parseNumber(h.subarray(148, 156), "checksum") !== sum) {
      throw cut(`bad header checksum at byte ${pos}`);
    }
    const type = String.fromCharCode(h[156] || 0x30);
    let size = parseNumber(h.subarray(124, 136), "size");
    if (type === "0" || type === "7") size = pending.size ?? size;
    const dataAt = pos + BLOCK;
    if (dataAt + size > fileSize) {
      throw cut(`entry at byte ${pos} needs ${size} bytes, only ${Math.max(0, fileSize - dataAt)} remain`);
    }
    const next = dataAt + Math.ceil(size / BLOCK) * BLOCK;
    if (type === "x" || type === "L") {
      if (size > 1024 * 1024) throw cut(`extended header of ${size} bytes at byte ${pos}`);
      const data = await readAt(file, dataAt, size);
      if (type === "L") pending.path = cstring(data);
      else {
        const pax = parsePax(data);
        if (pax.has("path")) pending.path = pax.get("path");
        if (pax.has("size")) pending.size = Number(pax.get("size"));
      }
    } else if (type === "0" || type === "7") {
      const prefix = cstring(h.subarray(345, 500));
      const base = cstring(h.subarray(0, 100));
      const name = pending.path ?? (prefix ? `${prefix}/${base}` : base);
      entries.set(name.replace(/^\.\//, ""), { offset: dataAt, size });
      pending = {};
    } else {
      pending = {}; // directories, links, global headers: not needed
    }
    pos = next;
  }
}
