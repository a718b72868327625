/**
 * Reading an upload's source stream chunk by chunk without allocating per chunk.
 *
 * @module
 */

import { AirlockError } from "../errors.ts";

/**
 * Reads a stream chunk by chunk. For a byte stream it reads with a BYOB reader into a ring of reused buffers
 * (a chunk stays valid until `ring - 1` further chunks have been read), so no memory is allocated per chunk;
 * otherwise it hands out the stream's own chunks. Read failures become IO_ERROR.
 *
 * @example
 * ```ts
 * const source = new ChunkSource(blob.stream, "uploading blob …", 256 * 1024);
 * try {
 *   for (let c = await source.next(); c !== null; c = await source.next()) sink.write(c);
 * } finally {
 *   source.release();
 * }
 * ```
 */
export class ChunkSource {
  readonly #what: string;
  readonly #byob?: ReadableStreamBYOBReader;
  readonly #plain?: ReadableStreamDefaultReader<Uint8Array>;
  readonly #ring: ArrayBuffer[] = [];
  readonly #chunkBytes: number;
  #slot = 0;

  /**
   * @param stream the source
   * @param what what is being done, for messages
   * @param chunkBytes the size of each reused buffer
   * @param ring how many buffers are reused in turn
   */
  constructor(stream: ReadableStream<Uint8Array>, what: string, chunkBytes: number, ring = 8) {
    this.#what = what;
    this.#chunkBytes = chunkBytes;
    try {
      this.#byob = stream.getReader({ mode: "byob" });
      for (let i = 0; i < ring; i++) this.#ring.push(new ArrayBuffer(chunkBytes));
    } catch {
      this.#plain = stream.getReader();
    }
  }

  /** The next chunk (never empty), or `null` at the end. */
  async next(): Promise<Uint8Array | null> {
    try {
      if (!this.#byob) {
        for (;;) {
          const r = await this.#plain!.read();
          if (r.done) return null;
          if (r.value.byteLength > 0) return r.value;
        }
      }
      const slot = this.#slot;
      this.#slot = (slot + 1) % this.#ring.length;
      const r = await this.#byob.read(new Uint8Array(this.#ring[slot], 0, this.#chunkBytes));
      if (r.value) this.#ring[slot] = r.value.buffer as ArrayBuffer; // the read transferred the buffer
      if (r.done) return null;
      return r.value!;
    } catch (e) {
      if (e instanceof AirlockError) throw e;
      throw new AirlockError(
        "IO_ERROR",
        `${this.#what}: reading the source failed: ${(e as Error).message}`,
        {
          cause: e,
        },
      );
    }
  }

  /** Cancels the source (after a failure). */
  async cancel(reason: unknown): Promise<void> {
    await (this.#byob ?? this.#plain)?.cancel(reason).catch(() => {});
  }

  /** Releases the reader's lock on the source. */
  release(): void {
    try {
      (this.#byob ?? this.#plain)?.releaseLock();
    } catch {
      // a read is still pending after a failure: the stream is cancelled anyway
    }
  }
}
