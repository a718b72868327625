/**
 * Streamed blob reads (layers of any size): the registry's answer is not buffered but checked while it passes.
 *
 * @module
 */

import type { Reference } from "../reference.ts";
import { AirlockError } from "../errors.ts";
import type { Answer } from "./answer.ts";
import { StreamDigest } from "./digests.ts";
import { IdleTimer } from "./idle_timer.ts";
import { refName, validateDigest } from "./names.ts";
import type { ApiCall, Requester } from "./requester.ts";

/** Chunks handed to a consumer without a BYOB reader. */
const chunkBytes = 256 * 1024;

/** A blob opened by {@linkcode openBlob}: its size and a digest-checking stream of its bytes. */
export interface BlobStream {
  /** The size the registry announced (or the expected size when it announced none). */
  readonly size?: number;
  /** The bytes; errors at the end when they do not match the digest. Read it to the end or cancel it. */
  readonly stream: ReadableStream<Uint8Array>;
}

/** Options of {@linkcode openBlob}. */
export interface OpenBlobOptions {
  /** The size the blob must have (from its descriptor), when known. */
  size?: number;
  /** Cancels the request and the stream. */
  signal?: AbortSignal;
}

/**
 * Opens a blob for streaming (`RegistryClient.openBlob`). The stream errors with DIGEST_MISMATCH at its end when the bytes do not hash to
 * `digest` (or their count differs from `opts.size`), and with TOO_LARGE as soon as more than `opts.size` bytes
 * arrive, so a consumer that saw the stream end normally has exactly the blob. There is no total time limit; the
 * stream fails with TIMEOUT when no data arrives for the request timeout. Cancel the stream to stop early.
 *
 * @example
 * ```ts
 * const blob = await openBlob(http, ref, layer.digest, { size: layer.size });
 * for await (const chunk of blob.stream) sink.write(chunk);
 * ```
 */
export async function openBlob(
  http: Requester,
  ref: Reference,
  digest: string,
  opts: OpenBlobOptions = {},
): Promise<BlobStream> {
  validateDigest(digest);
  const what = `reading blob ${digest} in ${refName(ref)}`;
  const idle = new IdleTimer(http.timeoutMs, `${what}: no data for ${http.timeoutMs / 1000} s`);
  idle.arm();
  let answer: Answer;
  try {
    const call = { ...blobCall("GET", digest, idle.signal(opts.signal)), timeoutMs: 0 };
    answer = await http.expect(ref, call, [200], what);
  } catch (e) {
    idle.stop();
    throw idle.explain(e);
  }
  const declared = Number(answer.headers.get("content-length") ?? NaN);
  if (opts.size !== undefined && Number.isFinite(declared) && declared !== opts.size) {
    idle.stop();
    await answer.stream().cancel().catch(() => {});
    throw new AirlockError(
      "DIGEST_MISMATCH",
      `${what}: the registry sends ${declared} bytes, the descriptor says ${opts.size}`,
    );
  }
  const stream = verifiedStream(answer, new StreamDigest(digest, opts.size), idle, what);
  return { size: Number.isFinite(declared) ? declared : opts.size, stream };
}

/**
 * A `GET` or `HEAD` of a blob (`blobs/<digest>`, `pull`).
 */
export function blobCall(method: string, digest: string, signal?: AbortSignal): ApiCall {
  return { method, actions: "pull", target: `blobs/${digest}`, signal };
}

/**
 * The answer's body as a byte stream checked by `check`: a consumer with a BYOB reader gets the bytes read
 * straight into its own buffer (no chunk allocated per read, so streaming a large layer leaves little garbage
 * behind); others get 256 KiB chunks. Every pull re-arms `idle`.
 */
function verifiedStream(answer: Answer, check: StreamDigest, idle: IdleTimer, what: string): ReadableStream {
  const body = answer.stream();
  let byob: ReadableStreamBYOBReader | undefined;
  let plain: ReadableStreamDefaultReader<Uint8Array> | undefined;
  try {
    byob = body.getReader({ mode: "byob" });
  } catch {
    plain = body.getReader();
  }
  const fail = (c: ReadableByteStreamController, e: unknown) => {
    idle.stop();
    c.error(e);
  };
  return new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: chunkBytes,
    pull: async (c) => {
      idle.arm();
      const req = c.byobRequest;
      let r: ReadableStreamReadResult<Uint8Array>;
      try {
        const view = byob && req?.view;
        r = view
          ? await byob!.read(new Uint8Array(view.buffer, view.byteOffset, view.byteLength))
          : await (plain ?? byob!).read(new Uint8Array(chunkBytes));
      } catch (e) {
        fail(c, idle.explain(answer.classify(e)));
        return;
      }
      if (r.done) {
        idle.stop();
        const bad = check.mismatch(what);
        if (bad) return c.error(bad);
        c.close();
        if (req && r.value) req.respondWithNewView(r.value);
        else req?.respond(0);
        return;
      }
      check.update(r.value);
      if (check.overflowed) {
        await (byob ?? plain)!.cancel().catch(() => {});
        fail(c, new AirlockError("TOO_LARGE", `${what}: more than the ${check.size} bytes expected`));
        return;
      }
      if (byob && req?.view) req.respondWithNewView(r.value);
      else c.enqueue(r.value);
    },
    cancel: async (reason) => {
      idle.stop();
      await (byob ?? plain)?.cancel(reason).catch(() => {});
    },
  }, { highWaterMark: 0 });
}
