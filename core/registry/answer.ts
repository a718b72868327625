/**
 * A registry's final answer to one request (after redirects, retries and authentication), with body readers that
 * never hold more than they are allowed to.
 *
 * @module
 */

import { AirlockError } from "../errors.ts";
import { type NetworkError, networkError, type TransportResponse } from "./transport.ts";

/** What a body read gathered: the bytes (one or more chunks), their count, whether the body ended. */
interface Read {
  chunks: Uint8Array[];
  total: number;
  complete: boolean;
}

/** Error bodies are read up to this many bytes; the rest says nothing more. */
const errorBodyLimit = 64 * 1024;

/**
 * Joins chunks into one array (returns the only chunk as is).
 */
export function concatBytes(chunks: readonly Uint8Array[], total: number): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return out;
}

/**
 * A response whose status is final, with bounded body readers. Read, stream or discard its body exactly once.
 *
 * @example
 * ```ts
 * const answer = new Answer(res, url, (e) => networkError(e, url));
 * const bytes = await answer.bytes(4 * 1024 * 1024, "reading manifest v1 in r/app");
 * ```
 */
export class Answer {
  /** The HTTP status. */
  readonly status: number;
  /** The response headers. */
  readonly headers: Headers;
  /** The URL that produced this answer (after redirects). */
  readonly url: URL;
  readonly #body: ReadableStream<Uint8Array> | null;
  readonly #classify: (e: unknown) => NetworkError;
  readonly #done: () => void;

  /**
   * @param res the transport's response
   * @param url the URL it answers
   * @param classify turns a failure while reading the body into a {@linkcode NetworkError}
   * @param done called once the body has been read, drained or cancelled (not when it is streamed out)
   */
  constructor(
    res: TransportResponse,
    url: URL,
    classify: (e: unknown) => NetworkError,
    done: () => void = () => {},
  ) {
    this.status = res.status;
    this.headers = res.headers;
    this.url = url;
    this.#body = res.body;
    this.#classify = classify;
    this.#done = done;
  }

  /**
   * An answer whose body was already read as `text`, re-wrapped so that the caller can read it again.
   */
  static replay(answer: Answer, text: string): Answer {
    const bytes = new TextEncoder().encode(text);
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(bytes);
        c.close();
      },
    });
    return new Answer(
      { status: answer.status, headers: answer.headers, body },
      answer.url,
      (e) => networkError(e, answer.url),
    );
  }

  /** Reads the whole body, failing with TOO_LARGE as soon as it exceeds `max` bytes. */
  async bytes(max: number, what: string): Promise<Uint8Array> {
    const declared = Number(this.headers.get("content-length") ?? NaN);
    if (Number.isFinite(declared) && declared > max) {
      await this.discard();
      throw new AirlockError("TOO_LARGE", `${what}: ${declared} bytes exceed the limit of ${max} bytes`);
    }
    const { chunks, total, complete } = await this.#read(max);
    if (!complete) throw new AirlockError("TOO_LARGE", `${what}: more than ${max} bytes (the limit)`);
    return concatBytes(chunks, total);
  }

  /** Reads up to `max` bytes as text, never failing (for error bodies). */
  async text(max = errorBodyLimit): Promise<string> {
    const { chunks, total } = await this.#read(max, true);
    return new TextDecoder().decode(concatBytes(chunks, total).subarray(0, Math.min(total, max)));
  }

  /** Drains a small body (keeps the connection reusable) or cancels a large one. */
  async discard(): Promise<void> {
    await this.text();
  }

  /** The body as a stream, for the caller to read or cancel (streamed blob reads). */
  stream(): ReadableStream<Uint8Array> {
    return this.#body ?? new ReadableStream({ start: (c) => c.close() });
  }

  /** Classifies a failure while reading the body (network, timeout, cancellation). */
  classify(e: unknown): NetworkError {
    return this.#classify(e);
  }

  /**
   * Reads the body until its end or until more than `max` bytes arrived (then cancels it: `complete` is false and
   * the chunks hold the first bytes beyond the limit). A read failure is classified and thrown, or with `tolerant`
   * ends the reading (what was read is returned).
   *
   * A byte stream (fetch's bodies) is read into one buffer of the announced size: reading chunk by chunk would
   * leave a buffer per chunk for the garbage collector, hundreds of MiB of them when thousands of small blobs
   * are read a minute.
   */
  async #read(
    max: number,
    tolerant = false,
  ): Promise<{ chunks: Uint8Array[]; total: number; complete: boolean }> {
    if (!this.#body) {
      this.#done();
      return { chunks: [], total: 0, complete: true };
    }
    let byob: ReadableStreamBYOBReader | undefined;
    try {
      byob = this.#body.getReader({ mode: "byob" });
    } catch {
      // not a byte stream: chunk by chunk
    }
    const read: Read = { chunks: [], total: 0, complete: false };
    try {
      await (byob ? this.#readInto(byob, max, read) : this.#readChunks(this.#body.getReader(), max, read));
      return read;
    } catch (e) {
      if (!tolerant) throw this.#classify(e);
      return { ...read, complete: false };
    } finally {
      this.#done();
    }
  }

  /** Reads a byte stream into one growing buffer; `read` holds what was read so far, even on a failure. */
  async #readInto(reader: ReadableStreamBYOBReader, max: number, read: Read): Promise<void> {
    const declared = Number(this.headers.get("content-length") ?? NaN);
    const first = Number.isSafeInteger(declared) && declared >= 0 ? Math.min(declared, max) + 1 : 16 * 1024;
    let buf = new Uint8Array(Math.min(first, max + 1));
    try {
      for (;;) {
        if (read.total === buf.length) {
          if (read.total > max) break;
          const bigger = new Uint8Array(Math.min(buf.length * 2, max + 1));
          bigger.set(buf);
          buf = bigger;
        }
        const { done, value } = await reader.read(buf.subarray(read.total));
        if (value) buf = new Uint8Array(value.buffer, 0, value.buffer.byteLength);
        read.chunks = [buf.subarray(0, read.total + (done ? 0 : value!.byteLength))];
        if (done) {
          read.complete = true;
          return;
        }
        read.total += value!.byteLength;
        if (read.total > max) break;
      }
      await reader.cancel().catch(() => {});
    } finally {
      reader.releaseLock();
    }
  }

  /** Reads any other stream chunk by chunk; `read` holds what was read so far, even on a failure. */
  async #readChunks(reader: ReadableStreamDefaultReader<Uint8Array>, max: number, read: Read): Promise<void> {
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) {
          read.complete = true;
          return;
        }
        read.chunks.push(value);
        read.total += value.byteLength;
        if (read.total > max) {
          await reader.cancel().catch(() => {});
          return;
        }
      }
    } finally {
      reader.releaseLock();
    }
  }
}
