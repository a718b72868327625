/**
 * Blob uploads: monolithic (`POST` + `PUT`, the pair retried together), streamed (`POST`, one streaming
 * `PATCH`, `PUT`) and cross-repository mounts. Nothing is committed that does not match its digest.
 *
 * @module
 */

import type { Reference } from "../reference.ts";
import { AirlockError } from "../errors.ts";
import { type Answer, concatBytes } from "./answer.ts";
import { ChunkSource } from "./chunk_source.ts";
import { checkDigest, checkStoredDigest, digestOf, StreamDigest } from "./digests.ts";
import { IdleTimer } from "./idle_timer.ts";
import { refName, repositoryPath, validateDigest } from "./names.ts";
import type { Requester } from "./requester.ts";
import type { RegistryError } from "./errors.ts";

const MiB = 1024 * 1024;

/** Options of {@linkcode uploadBlob}. */
export interface BlobUploadOptions {
  /** The digest the bytes must have (may name sha512); default: sha256 of the bytes. */
  digest?: string;
  /** Cancels the upload. */
  signal?: AbortSignal;
}

/** Options of {@linkcode uploadBlobStream}. */
export interface BlobStreamUploadOptions {
  /** The digest the streamed bytes must have. */
  digest: string;
  /** The size they must have, when known. */
  size?: number;
  /** Known sizes up to this (default 4 MiB) go as one monolithic PUT instead of a streaming PATCH. */
  monolithicBytes?: number;
  /** Cancels the upload. */
  signal?: AbortSignal;
}

/** A blob stored in the registry. */
export interface UploadedBlob {
  /** Its digest. */
  digest: string;
  /** Its size in bytes. */
  size: number;
}

const push = "pull,push";
const octets = { "content-type": "application/octet-stream" };
/** Statuses of a started upload session, an accepted PATCH, a committed PUT, a mount answer. */
const started = [202], patched = [202, 204], committed = [200, 201, 204], mounted = [201, 202];

/**
 * `RegistryClient.uploadBlob`: `POST` then `PUT <location>?digest=` with the bytes; a transient failure of the PUT
 * retries the pair (a failed PUT may have consumed the session), and so does a PUT answered `404
 * BLOB_UPLOAD_UNKNOWN` (the session was consumed by an earlier send whose answer was lost).
 */
export async function uploadBlob(
  http: Requester,
  ref: Reference,
  bytes: Uint8Array,
  opts: BlobUploadOptions = {},
): Promise<UploadedBlob> {
  const digest = opts.digest ? checkDigest(bytes, opts.digest, "uploading a blob") : digestOf(bytes);
  const what = `uploading blob ${digest} to ${refName(ref)}`;
  for (let restart = 0;; restart++) {
    const put = await http.retrying(
      opts.signal,
      (location) => commit(http, ref, location, digest, bytes, opts.signal),
      () => start(http, ref, what, opts.signal),
    );
    if (put.status === 404 && restart < maxRestarts) {
      const failure = await http.failure(put, what);
      if (!isUploadUnknown(failure)) throw failure;
      // The session is gone: an earlier send of this PUT (its answer lost with a dropped keep-alive connection,
      // then sent again by the HTTP client) committed it, or the registry expired it. Start again from the POST.
      continue;
    }
    await expectCommitted(http, put, what);
    checkStoredDigest(put.headers, digest, what);
    return { digest, size: bytes.byteLength };
  }
}

/** How many times a monolithic upload starts again from its POST after `404 BLOB_UPLOAD_UNKNOWN`. */
const maxRestarts = 2;

/** Whether the registry said the upload session is unknown (consumed or expired). */
function isUploadUnknown(e: RegistryError): boolean {
  return e.status === 404 && e.errors.some((x) => x.code === "BLOB_UPLOAD_UNKNOWN");
}

/**
 * `RegistryClient.uploadBlobStream`: a small blob of known size is collected and sent as `POST` + `PUT`; a larger
 * one goes as `POST`, one streaming `PATCH`, `PUT`. The bytes are checked as they pass; on a mismatch the session
 * is cancelled (`DELETE`), so nothing is committed.
 */
export async function uploadBlobStream(
  http: Requester,
  ref: Reference,
  stream: ReadableStream<Uint8Array>,
  opts: BlobStreamUploadOptions,
): Promise<UploadedBlob> {
  const { digest, size, signal } = opts;
  validateDigest(digest);
  const what = `uploading blob ${digest} to ${refName(ref)}`;
  const monolithic = size !== undefined && size <= (opts.monolithicBytes ?? 4 * MiB);
  const source = new ChunkSource(stream, what, monolithic ? Math.max(1, size) : 256 * 1024);
  const check = new StreamDigest(digest, size);
  let location: URL | undefined;
  let done = false;
  try {
    location = await start(http, ref, what, signal);
    let last: Uint8Array = new Uint8Array(0);
    if (monolithic) last = await collect(source, check, what);
    else location = await patch(http, ref, location, source, check, what, signal);
    const put = await commit(http, ref, location, digest, last, signal);
    await expectCommitted(http, put, what);
    done = true;
    checkStoredDigest(put.headers, digest, what);
    return { digest, size: check.total };
  } catch (e) {
    await source.cancel(e);
    if (location && !done) await cancel(http, ref, location);
    throw e;
  } finally {
    source.release();
  }
}

/**
 * `RegistryClient.mountBlob`: `POST blobs/uploads/?mount=<digest>&from=<from>`; `true` when mounted (201),
 * `false` when declined (202, the session opened instead is left to expire).
 */
export async function mountBlob(
  http: Requester,
  ref: Reference,
  digest: string,
  from: string,
  signal?: AbortSignal,
): Promise<boolean> {
  validateDigest(digest);
  repositoryPath(from);
  const what = `mounting blob ${digest} from ${from} into ${refName(ref)}`;
  const query = `mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`;
  const call = {
    method: "POST",
    actions: push,
    extraScopes: [`repository:${from}:pull`],
    target: `blobs/uploads/?${query}`,
    signal,
  };
  return (await http.exchange(ref, call, mounted, what)).status === 201;
}

/** `POST blobs/uploads/`: opens an upload session; returns its location. */
async function start(http: Requester, ref: Reference, what: string, signal?: AbortSignal): Promise<URL> {
  const call = { method: "POST", actions: push, target: "blobs/uploads/", signal };
  return uploadLocation(await http.exchange(ref, call, started, what), what);
}

/** Reads a small source whole (one buffer of its announced size) and checks it. */
async function collect(source: ChunkSource, check: StreamDigest, what: string): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for (let chunk = await source.next(); chunk !== null; chunk = await source.next()) {
    check.update(chunk);
    if (check.overflowed) break;
    parts.push(chunk.slice());
  }
  const bad = check.mismatch(what);
  if (bad) throw bad;
  return concatBytes(parts, check.total);
}

/** One `PATCH` whose body pulls from the source; an idle watchdog replaces the total timeout. */
async function patch(
  http: Requester,
  ref: Reference,
  location: URL,
  source: ChunkSource,
  check: StreamDigest,
  what: string,
  signal?: AbortSignal,
): Promise<URL> {
  const idle = new IdleTimer(
    http.timeoutMs,
    `${what}: the registry took no data for ${http.timeoutMs / 1000} s`,
  );
  let failure: unknown;
  const body = new ReadableStream<Uint8Array>({
    pull: async (c) => {
      idle.arm();
      try {
        const chunk = await source.next();
        if (chunk === null) {
          failure = check.mismatch(what);
          if (failure) c.error(failure);
          else c.close();
          return;
        }
        check.update(chunk);
        if (check.overflowed) {
          throw new AirlockError("DIGEST_MISMATCH", `${what}: the source has more than ${check.size} bytes`);
        }
        c.enqueue(chunk);
      } catch (e) {
        failure = e;
        c.error(e);
      }
    },
  }, { highWaterMark: 0 });
  idle.arm();
  let answer: Answer;
  try {
    answer = await http.send(ref, {
      method: "PATCH",
      actions: push,
      target: location,
      headers: octets,
      body,
      signal: idle.signal(signal),
      retry: false,
      timeoutMs: 0,
    });
  } catch (e) {
    throw failure ?? idle.explain(e);
  } finally {
    idle.stop();
  }
  if (failure) {
    await answer.discard();
    throw failure;
  }
  if (!patched.includes(answer.status)) throw await http.failure(answer, what);
  await answer.discard();
  return uploadLocation(answer, what, location);
}

/** `PUT <location>?digest=` with the last bytes; the raw answer (never retried alone). */
function commit(
  http: Requester,
  ref: Reference,
  location: URL,
  digest: string,
  bytes: Uint8Array,
  signal?: AbortSignal,
): Promise<Answer> {
  const url = new URL(location);
  url.search = (url.search ? url.search + "&" : "?") + "digest=" + encodeURIComponent(digest);
  const call = {
    method: "PUT",
    actions: push,
    target: url,
    headers: octets,
    body: bytes,
    signal,
    retry: false,
  };
  return http.send(ref, call);
}

/** Fails unless the PUT committed the blob; discards its body. */
async function expectCommitted(http: Requester, put: Answer, what: string): Promise<void> {
  if (!committed.includes(put.status)) throw await http.failure(put, what);
  await put.discard();
}

/** Best effort: `DELETE` an unfinished upload session so that nothing of it is committed. */
async function cancel(http: Requester, ref: Reference, location: URL): Promise<void> {
  try {
    await (await http.send(ref, { method: "DELETE", actions: push, target: location, retry: false }))
      .discard();
  } catch {
    // the session expires by itself
  }
}

/** The session URL of an upload answer (`Location`), resolved against the request URL. */
function uploadLocation(answer: Answer, what: string, previous?: URL): URL {
  const location = answer.headers.get("location");
  if (!location) {
    if (previous) return previous;
    throw new AirlockError("REGISTRY_ERROR", `${what}: the registry sent no upload location`);
  }
  try {
    return new URL(location, answer.url);
  } catch {
    throw new AirlockError("REGISTRY_ERROR", `${what}: invalid upload location "${location}"`);
  }
}
