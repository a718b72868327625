/**
 * The OCI distribution API client: manifests, blobs, tags, referrers, with auth challenges, TLS options,
 * retries, digest verification and size limits. Every byte read from a registry is checked against its digest.
 *
 * Layers (one job per module): {@linkcode Transport} sends one HTTP exchange (`transport.ts`); this module adds
 * redirects, per-request timeouts, retries (`retry.ts`) and authentication (`auth.ts`) once for every transport,
 * then the distribution API on top; registry answers become {@linkcode RegistryError}s (`errors.ts`).
 *
 * Request counts (the registry, not the client, limits throughput — spec/testbed.md §6): nothing is sent that the
 * operation does not need. No ping before the first request (with `tlsVerify: false` one `GET /v2/` per registry
 * picks https or http); one 401 per registry teaches the auth scheme; `uploadBlob` is exactly `POST` + `PUT`.
 *
 * TLS: verified unless `tlsVerify: false`; plain http to a registry only then. A token realm is used as the
 * registry announces it (http realms included, as containers/image and docker do). Credentials are sent to the
 * registry's own host only: never across a redirect to another host (storage back ends, CDNs).
 *
 * Retries (default 3): 408/429/500/502/503/504 and broken connections, exponential backoff with full jitter,
 * `Retry-After` honoured, each wait capped. Idempotent requests (GET, HEAD, PUT manifest, DELETE, POST
 * upload-start, which only opens a session) are retried one by one. The blob `PUT <location>?digest=` is never
 * retried alone, because a failed PUT may have consumed the upload session: the `POST` + `PUT` pair is retried
 * together instead.
 *
 * @example
 * ```ts
 * const client = new RegistryClient({ credentials: lookup });
 * const m = await client.getManifest({ registry: "127.0.0.1:5000", repository: "app", tag: "v1" });
 * client.close();
 * ```
 *
 * @module
 */

import { createHash } from "node:crypto";
import { AirlockError } from "../errors.ts";
import type { Reference } from "../reference.ts";
import { VERSION } from "../version.ts";
import { Authenticator, type Authorization, type TokenExchange } from "./auth.ts";
import { isManifestUnknown, RegistryError, registryError } from "./errors.ts";
import {
  backoffDelay,
  defaultRetryPolicy,
  isRetryableStatus,
  parseRetryAfter,
  type RetryPolicy,
  sleep,
} from "./retry.ts";
import { loadTlsMaterial } from "./tls.ts";
import {
  FetchTransport,
  NetworkError,
  networkError,
  NodeTransport,
  type Transport,
  type TransportResponse,
} from "./transport.ts";
import {
  type CredentialLookup,
  type Descriptor,
  type FetchedManifest,
  isSchema1MediaType,
  MediaType,
} from "./types.ts";

export { isManifestUnknown, RegistryError };

/** Options of a {@linkcode RegistryClient}. */
export interface RegistryClientOptions {
  /**
   * Verify TLS certificates (default `true`). `false` skips certificate checks entirely AND allows plain http:
   * the first contact with a registry tries https, then http (as containers/image does). Plain http is never used
   * when `true`, not even for localhost.
   */
  tlsVerify?: boolean;
  /**
   * certs.d roots, searched in order; the first `<root>/<host:port>` directory that exists supplies `*.crt` CAs
   * (added to the system roots) and a `*.cert`/`*.key` client certificate. Default:
   * `["~/.config/containers/certs.d", "/etc/containers/certs.d", "/etc/docker/certs.d"]`.
   */
  certDirs?: string[];
  /**
   * `--cert-dir`: one directory with `*.crt`/`*.cert`/`*.key` used for every registry. As in containers/image it
   * REPLACES the certs.d lookup (no `<host:port>` subdirectory, `certDirs` ignored).
   */
  certDir?: string;
  /** Finds credentials per registry (`host[:port]`, `docker.io` for Docker Hub). Default: anonymous. */
  credentials?: CredentialLookup;
  /** `User-Agent` header; default `airlock/<VERSION>`. */
  userAgent?: string;
  /** Per request (until the body is read), default 60 000 ms. */
  requestTimeoutMs?: number;
  /** Retries after the first attempt for transient failures, default 3. */
  retries?: number;
  /** First backoff step, default 200 ms (attempt n waits a random time up to base·2ⁿ). */
  retryBaseDelayMs?: number;
  /** Cap on any single wait, including `Retry-After`; default 30 000 ms. */
  retryMaxDelayMs?: number;
  /** Largest manifest (and referrers index) accepted, default 4 MiB. */
  maxManifestBytes?: number;
  /** Use this transport for every request instead of the built-in ones (tests, instrumentation). */
  transport?: Transport;
}

/** Options every operation takes. */
export interface RequestOptions {
  /** Cancels the operation (all its requests, retries and waits). */
  signal?: AbortSignal;
}

/** A blob opened by {@linkcode RegistryClient.openBlob}: its size and a digest-checking stream of its bytes. */
export interface BlobStream {
  /** The size the registry announced (or the expected size when it announced none). */
  readonly size?: number;
  /** The bytes; errors at the end when they do not match the digest. Read it to the end or cancel it. */
  readonly stream: ReadableStream<Uint8Array>;
}

const MiB = 1024 * 1024;
const defaultAccept = [
  MediaType.ociManifest,
  MediaType.ociIndex,
  MediaType.dockerManifest,
  MediaType.dockerManifestList,
];
const redirectStatuses = new Set([301, 302, 303, 307, 308]);
const maxRedirects = 10;
const errorBodyLimit = 64 * 1024;
const tagListLimit = 32 * MiB;

/** A response whose status is final (after redirects, retries and auth), with bounded body readers. */
class Answer {
  readonly status: number;
  readonly headers: Headers;
  /** The URL that produced this answer (after redirects). */
  readonly url: URL;
  readonly #body: ReadableStream<Uint8Array> | null;
  readonly #classify: (e: unknown) => NetworkError;

  constructor(res: TransportResponse, url: URL, classify: (e: unknown) => NetworkError) {
    this.status = res.status;
    this.headers = res.headers;
    this.url = url;
    this.#body = res.body;
    this.#classify = classify;
  }

  /** Reads the whole body, failing with TOO_LARGE as soon as it exceeds `max` bytes. */
  async bytes(max: number, what: string): Promise<Uint8Array> {
    const declared = Number(this.headers.get("content-length") ?? NaN);
    if (Number.isFinite(declared) && declared > max) {
      await this.discard();
      throw new AirlockError("TOO_LARGE", `${what}: ${declared} bytes exceed the limit of ${max} bytes`);
    }
    if (!this.#body) return new Uint8Array(0);
    const reader = this.#body.getReader();
    const chunks: Uint8Array[] = [];
    let total = 0;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        total += value.byteLength;
        if (total > max) {
          await reader.cancel().catch(() => {});
          throw new AirlockError("TOO_LARGE", `${what}: more than ${max} bytes (the limit)`);
        }
        chunks.push(value);
      }
    } catch (e) {
      if (e instanceof AirlockError) throw e;
      throw this.#classify(e);
    } finally {
      reader.releaseLock();
    }
    if (chunks.length === 1) return chunks[0];
    const out = new Uint8Array(total);
    let off = 0;
    for (const c of chunks) {
      out.set(c, off);
      off += c.byteLength;
    }
    return out;
  }

  /** Reads up to `max` bytes as text, never failing (for error bodies). */
  async text(max = errorBodyLimit): Promise<string> {
    if (!this.#body) return "";
    const reader = this.#body.getReader();
    const chunks: Uint8Array[] = [];
    let total = 0;
    try {
      while (total <= max) {
        const { done, value } = await reader.read();
        if (done) break;
        chunks.push(value);
        total += value.byteLength;
      }
      if (total > max) await reader.cancel().catch(() => {});
    } catch {
      // an error body that cannot be read says nothing more
    } finally {
      reader.releaseLock();
    }
    const all = new Uint8Array(total);
    let off = 0;
    for (const c of chunks) {
      all.set(c, off);
      off += c.byteLength;
    }
    return new TextDecoder().decode(all.subarray(0, Math.min(total, max)));
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
}

/** One request as the API methods describe it. */
interface Call {
  /** `ref.registry` (credentials and auth state key). */
  readonly registry: string;
  /** Repository for the token scope; none for `/v2/`. */
  readonly repository?: string;
  /** Token actions: `pull`, `pull,push`, `*`. */
  readonly actions?: string;
  readonly method: string;
  /** Path and query under the registry's API base, or an absolute URL (upload locations, Link pages). */
  readonly target: string | URL;
  readonly headers?: Record<string, string>;
  /** The body: bytes in memory, or a stream (never retried, never redirected). */
  readonly body?: Uint8Array | ReadableStream<Uint8Array>;
  readonly signal?: AbortSignal;
  /** Retry transient failures of this single request (default true). */
  readonly retry?: boolean;
  /** More token scopes (a cross-repository mount needs `pull` on the source repository). */
  readonly extraScopes?: readonly string[];
  /** Per-exchange timeout instead of `requestTimeoutMs`; `0` = none (streamed bodies watch idleness instead). */
  readonly timeoutMs?: number;
}

/**
 * A client for the OCI distribution API of any number of registries. Create one per run and share it: it keeps
 * connections, auth challenges and tokens. Call {@linkcode RegistryClient.close} at the end.
 *
 * @example
 * ```ts
 * const client = new RegistryClient({ tlsVerify: true, credentials: lookup });
 * const ref = { registry: "127.0.0.1:5000", repository: "app", tag: "v1" };
 * const manifest = await client.getManifest(ref);
 * const { digest } = await client.uploadBlob(ref, new TextEncoder().encode("{}"));
 * client.close();
 * ```
 */
export class RegistryClient {
  readonly #tlsVerify: boolean;
  readonly #certDirs?: string[];
  readonly #certDir?: string;
  readonly #userAgent: string;
  readonly #timeoutMs: number;
  readonly #policy: RetryPolicy;
  readonly #maxManifestBytes: number;
  readonly #injected?: Transport;
  readonly #transports = new Map<string, Promise<Transport>>();
  readonly #bases = new Map<string, Promise<URL>>();
  readonly #auth: Authenticator;
  #closed = false;

  /** @param options TLS, credentials, timeouts, retries, limits; all optional */
  constructor(options: RegistryClientOptions = {}) {
    this.#tlsVerify = options.tlsVerify ?? true;
    this.#certDirs = options.certDirs;
    this.#certDir = options.certDir;
    this.#userAgent = options.userAgent ?? `airlock/${VERSION}`;
    this.#timeoutMs = options.requestTimeoutMs ?? 60_000;
    this.#policy = {
      retries: Math.max(0, options.retries ?? defaultRetryPolicy.retries),
      baseDelayMs: options.retryBaseDelayMs ?? defaultRetryPolicy.baseDelayMs,
      maxDelayMs: options.retryMaxDelayMs ?? defaultRetryPolicy.maxDelayMs,
    };
    this.#maxManifestBytes = options.maxManifestBytes ?? 4 * MiB;
    this.#injected = options.transport;
    const exchange: TokenExchange = async (req) => {
      // The realm is whatever the (verified) registry announced; like containers/image, http realms are allowed.
      const answer = await this.#roundTrip(
        req.method,
        req.url,
        req.headers,
        req.body,
        req.signal,
        true,
        undefined,
        true,
      );
      const body = answer.status === 200
        ? await answer.bytes(MiB, `reading the token from ${req.url.host}`)
        : new TextEncoder().encode(await answer.text());
      return { status: answer.status, headers: answer.headers, body };
    };
    this.#auth = new Authenticator({ credentials: options.credentials, exchange });
  }

  /** How many tokens this client fetched from token servers (cache misses). */
  get tokensFetched(): number {
    return this.#auth.tokensFetched;
  }

  /**
   * Checks that `registry` answers the distribution API (`GET /v2/`) and, when it asks for authentication, that
   * the credentials are accepted.
   *
   * @example
   * ```ts
   * await client.ping("127.0.0.1:5000");
   * ```
   */
  async ping(registry: string, opts: RequestOptions = {}): Promise<void> {
    const answer = await this.#send({ registry, method: "GET", target: "/v2/", signal: opts.signal });
    if (answer.status === 200) return await answer.discard();
    throw await this.#error(answer, `checking registry ${registry}`);
  }

  /**
   * Fetches a manifest by `ref.digest ?? ref.tag`. The bytes are checked against `ref.digest` (when given) and
   * against `Docker-Content-Digest` (when sent), and limited to `maxManifestBytes`. Docker schema 1 is refused
   * (UNSUPPORTED_MEDIA_TYPE). Absent: NOT_FOUND ({@linkcode isManifestUnknown} tells a missing manifest from a
   * missing repository).
   *
   * @example
   * ```ts
   * const { mediaType, digest, bytes } = await client.getManifest(ref);
   * ```
   */
  async getManifest(
    ref: Reference,
    opts: { accept?: string[]; signal?: AbortSignal } = {},
  ): Promise<FetchedManifest> {
    const reference = manifestReference(ref);
    const what = `reading manifest ${reference} in ${refName(ref)}`;
    const answer = await this.#send({
      registry: ref.registry,
      repository: ref.repository,
      actions: "pull",
      method: "GET",
      target: `/v2/${repositoryPath(ref)}/manifests/${reference}`,
      headers: { accept: (opts.accept ?? defaultAccept).join(", ") },
      signal: opts.signal,
    });
    if (answer.status !== 200) throw await this.#error(answer, what);
    const bytes = await answer.bytes(this.#maxManifestBytes, what);
    const contentType = mediaTypeOf(answer.headers);
    const digest = verifyDigest(bytes, ref.digest, answer.headers.get("docker-content-digest"), what);
    let bodyType: string | undefined;
    let schemaVersion: unknown;
    try {
      const doc = JSON.parse(new TextDecoder().decode(bytes));
      if (typeof doc === "object" && doc !== null) {
        if (typeof doc.mediaType === "string") bodyType = doc.mediaType;
        schemaVersion = doc.schemaVersion;
      }
    } catch {
      // not JSON: the caller's parser will say so; the media type comes from the header
    }
    const mediaType = bodyType ?? contentType;
    if (schemaVersion === 1 || isSchema1MediaType(mediaType) || isSchema1MediaType(contentType)) {
      throw new AirlockError(
        "UNSUPPORTED_MEDIA_TYPE",
        `${what}: it is a Docker schema 1 manifest (${
          mediaType || "schemaVersion 1"
        }), which airlock does not ` +
          `support; push the image again as Docker schema 2 or OCI`,
      );
    }
    return { mediaType, digest, bytes };
  }

  /**
   * `HEAD` of a manifest: its descriptor (media type, digest, size), or `undefined` when the registry answers 404.
   * Falls back to a GET when the registry omits `Docker-Content-Digest` or `Content-Length`.
   *
   * @example
   * ```ts
   * const d = await client.headManifest({ ...ref, tag: "sha256-abc.sig" });
   * if (d === undefined) console.log("no signature yet");
   * ```
   */
  async headManifest(
    ref: Reference,
    opts: { accept?: string[]; signal?: AbortSignal } = {},
  ): Promise<Descriptor | undefined> {
    const reference = manifestReference(ref);
    const what = `checking manifest ${reference} in ${refName(ref)}`;
    const answer = await this.#send({
      registry: ref.registry,
      repository: ref.repository,
      actions: "pull",
      method: "HEAD",
      target: `/v2/${repositoryPath(ref)}/manifests/${reference}`,
      headers: { accept: (opts.accept ?? defaultAccept).join(", ") },
      signal: opts.signal,
    });
    if (answer.status === 404) {
      await answer.discard();
      return undefined;
    }
    if (answer.status !== 200) throw await this.#error(answer, what);
    await answer.discard();
    const headerDigest = answer.headers.get("docker-content-digest") ?? undefined;
    const size = Number(answer.headers.get("content-length") ?? NaN);
    const mediaType = mediaTypeOf(answer.headers);
    if (ref.digest && headerDigest && headerDigest !== ref.digest) {
      throw new AirlockError(
        "DIGEST_MISMATCH",
        `${what}: the registry names digest ${headerDigest}, expected ${ref.digest}`,
      );
    }
    const digest = headerDigest ?? ref.digest;
    if (digest === undefined || !Number.isFinite(size) || !mediaType) {
      const m = await this.getManifest(ref, opts);
      return { mediaType: m.mediaType, digest: m.digest, size: m.bytes.byteLength };
    }
    if (size > this.#maxManifestBytes) {
      throw new AirlockError(
        "TOO_LARGE",
        `${what}: ${size} bytes exceed the limit of ${this.#maxManifestBytes}`,
      );
    }
    return { mediaType, digest, size };
  }

  /**
   * Uploads a manifest with the given media type. Pushes to `ref.tag` when the reference has one (checking the
   * bytes against `ref.digest` too, when given), else by `ref.digest`. Returns the digest of the bytes.
   *
   * @example
   * ```ts
   * const digest = await client.putManifest({ ...ref, tag: "v1" }, bytes, MediaType.ociManifest);
   * ```
   */
  async putManifest(
    ref: Reference,
    bytes: Uint8Array,
    mediaType: string,
    opts: RequestOptions = {},
  ): Promise<string> {
    const reference = ref.tag ?? ref.digest;
    if (reference === undefined) {
      throw new AirlockError(
        "INVALID_REFERENCE",
        `${refName(ref)}: a tag or digest is needed to push a manifest`,
      );
    }
    if (ref.tag !== undefined) manifestReference({ ...ref, digest: undefined });
    if (ref.digest !== undefined) validateDigest(ref.digest);
    const what = `writing manifest ${reference} in ${refName(ref)}`;
    if (bytes.byteLength > this.#maxManifestBytes) {
      throw new AirlockError(
        "TOO_LARGE",
        `${what}: ${bytes.byteLength} bytes exceed the limit of ${this.#maxManifestBytes} bytes`,
      );
    }
    const digest = ref.digest ? checkDigest(bytes, ref.digest, what) : digestOf(bytes);
    const answer = await this.#send({
      registry: ref.registry,
      repository: ref.repository,
      actions: "pull,push",
      method: "PUT",
      target: `/v2/${repositoryPath(ref)}/manifests/${reference}`,
      headers: { "content-type": mediaType },
      body: bytes,
      signal: opts.signal,
    });
    if (answer.status !== 201 && answer.status !== 200 && answer.status !== 202) {
      throw await this.#error(answer, what);
    }
    await answer.discard();
    const echoed = answer.headers.get("docker-content-digest");
    if (echoed && echoed.startsWith(digest.slice(0, digest.indexOf(":") + 1)) && echoed !== digest) {
      throw new AirlockError("DIGEST_MISMATCH", `${what}: the registry stored ${echoed}, expected ${digest}`);
    }
    return digest;
  }

  /**
   * Downloads a blob, verified against `digest`, at most `maxBytes` (default 4 MiB; reading stops as soon as the
   * limit is passed). Redirects (to storage back ends) are followed without forwarding credentials off-host.
   *
   * @example
   * ```ts
   * const config = await client.getBlob(ref, manifest.config.digest);
   * ```
   */
  async getBlob(
    ref: Reference,
    digest: string,
    opts: { maxBytes?: number; signal?: AbortSignal } = {},
  ): Promise<Uint8Array> {
    validateDigest(digest);
    const what = `reading blob ${digest} in ${refName(ref)}`;
    const answer = await this.#send({
      registry: ref.registry,
      repository: ref.repository,
      actions: "pull",
      method: "GET",
      target: `/v2/${repositoryPath(ref)}/blobs/${digest}`,
      signal: opts.signal,
    });
    if (answer.status !== 200) throw await this.#error(answer, what);
    const bytes = await answer.bytes(opts.maxBytes ?? 4 * MiB, what);
    checkDigest(bytes, digest, what);
    return bytes;
  }

  /**
   * Tells whether a blob exists in the repository (`HEAD`).
   *
   * @example
   * ```ts
   * if (!(await client.hasBlob(ref, d))) await client.uploadBlob(ref, bytes);
   * ```
   */
  async hasBlob(ref: Reference, digest: string, opts: RequestOptions = {}): Promise<boolean> {
    validateDigest(digest);
    const answer = await this.#send({
      registry: ref.registry,
      repository: ref.repository,
      actions: "pull",
      method: "HEAD",
      target: `/v2/${repositoryPath(ref)}/blobs/${digest}`,
      signal: opts.signal,
    });
    await answer.discard();
    if (answer.status === 200) return true;
    if (answer.status === 404) return false;
    throw await this.#error(answer, `checking blob ${digest} in ${refName(ref)}`);
  }

  /**
   * Uploads a blob monolithically: `POST /v2/<repo>/blobs/uploads/` then `PUT <location>?digest=<d>` with the
   * bytes — two requests, no HEAD, no PATCH. A transient failure retries the pair. `opts.digest`, when given, is
   * checked against the bytes (and may name sha512).
   *
   * @example
   * ```ts
   * const { digest, size } = await client.uploadBlob(ref, new TextEncoder().encode("payload"));
   * ```
   */
  async uploadBlob(
    ref: Reference,
    bytes: Uint8Array,
    opts: { digest?: string; signal?: AbortSignal } = {},
  ): Promise<{ digest: string; size: number }> {
    const digest = opts.digest ? checkDigest(bytes, opts.digest, "uploading a blob") : digestOf(bytes);
    const what = `uploading blob ${digest} to ${refName(ref)}`;
    for (let attempt = 0;; attempt++) {
      const start = await this.#send({
        registry: ref.registry,
        repository: ref.repository,
        actions: "pull,push",
        method: "POST",
        target: `/v2/${repositoryPath(ref)}/blobs/uploads/`,
        signal: opts.signal,
      });
      if (start.status !== 202) throw await this.#error(start, what);
      await start.discard();
      const location = start.headers.get("location");
      if (!location) {
        throw new AirlockError("REGISTRY_ERROR", `${what}: the registry sent no upload location`);
      }
      let url: URL;
      try {
        url = new URL(location, start.url);
      } catch {
        throw new AirlockError("REGISTRY_ERROR", `${what}: invalid upload location "${location}"`);
      }
      url.search = (url.search ? url.search + "&" : "?") + "digest=" + encodeURIComponent(digest);
      let put: Answer;
      try {
        put = await this.#send({
          registry: ref.registry,
          repository: ref.repository,
          actions: "pull,push",
          method: "PUT",
          target: url,
          headers: { "content-type": "application/octet-stream" },
          body: bytes,
          signal: opts.signal,
          retry: false,
        });
      } catch (e) {
        if (e instanceof NetworkError && e.retryable && attempt < this.#policy.retries) {
          await sleep(backoffDelay(attempt, this.#policy), opts.signal);
          continue;
        }
        throw e;
      }
      if (put.status === 201 || put.status === 204 || put.status === 200) {
        await put.discard();
        const echoed = put.headers.get("docker-content-digest");
        if (echoed && echoed.startsWith(digest.slice(0, digest.indexOf(":") + 1)) && echoed !== digest) {
          throw new AirlockError("DIGEST_MISMATCH", `${what}: the registry stored ${echoed}`);
        }
        return { digest, size: bytes.byteLength };
      }
      if (isRetryableStatus(put.status) && attempt < this.#policy.retries) {
        const retryAfter = parseRetryAfter(put.headers.get("retry-after"));
        await put.discard();
        await sleep(backoffDelay(attempt, this.#policy, retryAfter), opts.signal);
        continue;
      }
      throw await this.#error(put, what);
    }
  }

  /**
   * Opens a blob for streaming (layers of any size): the registry's answer is not buffered. The stream checks
   * the bytes while they pass: it errors with DIGEST_MISMATCH at its end when they do not hash to `digest` (or
   * their count differs from `opts.size`), and with TOO_LARGE as soon as more than `opts.size` bytes arrive, so
   * a consumer that saw the stream end normally has exactly the blob. There is no total time limit; the stream
   * fails with TIMEOUT when no data arrives for `requestTimeoutMs`. Cancel the stream to stop early.
   *
   * @example
   * ```ts
   * const blob = await client.openBlob(ref, layer.digest, { size: layer.size });
   * for await (const chunk of blob.stream) sink.write(chunk);
   * ```
   */
  async openBlob(
    ref: Reference,
    digest: string,
    opts: { size?: number; signal?: AbortSignal } = {},
  ): Promise<BlobStream> {
    validateDigest(digest);
    const what = `reading blob ${digest} in ${refName(ref)}`;
    const idleMs = this.#timeoutMs;
    const idle = new AbortController();
    let idleFired = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        idleFired = true;
        idle.abort(new AirlockError("TIMEOUT", `${what}: no data for ${idleMs / 1000} s`));
      }, idleMs);
    };
    const idleError = () => new AirlockError("TIMEOUT", `${what}: no data for ${idleMs / 1000} s`);
    arm();
    let answer: Answer;
    try {
      answer = await this.#send({
        registry: ref.registry,
        repository: ref.repository,
        actions: "pull",
        method: "GET",
        target: `/v2/${repositoryPath(ref)}/blobs/${digest}`,
        signal: opts.signal ? AbortSignal.any([opts.signal, idle.signal]) : idle.signal,
        timeoutMs: 0,
      });
    } catch (e) {
      clearTimeout(timer);
      throw idleFired ? idleError() : e;
    }
    if (answer.status !== 200) {
      clearTimeout(timer);
      throw await this.#error(answer, what);
    }
    const declared = Number(answer.headers.get("content-length") ?? NaN);
    if (opts.size !== undefined && Number.isFinite(declared) && declared !== opts.size) {
      clearTimeout(timer);
      await answer.stream().cancel().catch(() => {});
      throw new AirlockError(
        "DIGEST_MISMATCH",
        `${what}: the registry sends ${declared} bytes, the descriptor says ${opts.size}`,
      );
    }
    const algorithm = digest.slice(0, digest.indexOf(":"));
    const hash = createHash(algorithm);
    // A byte stream: a consumer with a BYOB reader gets the bytes read straight into its own buffer (no chunk
    // allocated per read, so streaming a large layer leaves little garbage behind); others get 256 KiB chunks.
    const body = answer.stream();
    let byob: ReadableStreamBYOBReader | undefined;
    let plain: ReadableStreamDefaultReader<Uint8Array> | undefined;
    try {
      byob = body.getReader({ mode: "byob" });
    } catch {
      plain = body.getReader();
    }
    let total = 0;
    const fail = (c: ReadableByteStreamController, e: unknown) => {
      clearTimeout(timer);
      c.error(e);
    };
    const stream = new ReadableStream({
      type: "bytes",
      autoAllocateChunkSize: 256 * 1024,
      pull: async (c) => {
        arm();
        const req = c.byobRequest;
        let chunk: Uint8Array | undefined;
        let done: boolean;
        try {
          if (byob && req?.view) {
            const v = req.view;
            const r = await byob.read(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
            done = r.done;
            chunk = r.value;
          } else {
            const r = await (plain ?? byob!).read(new Uint8Array(256 * 1024));
            done = r.done;
            chunk = r.value;
          }
        } catch (e) {
          fail(c, idleFired ? idleError() : answer.classify(e));
          return;
        }
        if (done) {
          clearTimeout(timer);
          const actual = `${algorithm}:${hash.digest("hex")}`;
          if (opts.size !== undefined && total !== opts.size) {
            c.error(
              new AirlockError("DIGEST_MISMATCH", `${what}: got ${total} bytes, expected ${opts.size}`),
            );
          } else if (actual !== digest) {
            c.error(
              new AirlockError(
                "DIGEST_MISMATCH",
                `${what}: digest mismatch, expected ${digest}, got ${actual}`,
              ),
            );
          } else {
            c.close();
            if (req && chunk) req.respondWithNewView(chunk);
            else req?.respond(0);
          }
          return;
        }
        total += chunk!.byteLength;
        if (opts.size !== undefined && total > opts.size) {
          await (byob ?? plain)!.cancel().catch(() => {});
          fail(c, new AirlockError("TOO_LARGE", `${what}: more than the ${opts.size} bytes expected`));
          return;
        }
        hash.update(chunk!);
        if (byob && req?.view) req.respondWithNewView(chunk!);
        else c.enqueue(chunk!);
      },
      cancel: async (reason) => {
        clearTimeout(timer);
        await (byob ?? plain)?.cancel(reason).catch(() => {});
      },
    }, { highWaterMark: 0 });
    return { size: Number.isFinite(declared) ? declared : opts.size, stream };
  }

  /**
   * Cross-repository blob mount: `POST /v2/<repo>/blobs/uploads/?mount=<digest>&from=<from>` on the same
   * registry. `true` when the registry mounted it (201: the blob is now in `ref`'s repository, nothing was
   * transferred); `false` when it declined (202: it opened an upload session instead, which is left to expire).
   * The token asked for grants `pull` on `from` too.
   *
   * @example
   * ```ts
   * if (!(await client.mountBlob(dst, layer.digest, "library/app"))) await client.uploadBlobStream(dst, …);
   * ```
   */
  async mountBlob(ref: Reference, digest: string, from: string, opts: RequestOptions = {}): Promise<boolean> {
    validateDigest(digest);
    repositoryPath({ ...ref, repository: from });
    const what = `mounting blob ${digest} from ${from} into ${refName(ref)}`;
    const answer = await this.#send({
      registry: ref.registry,
      repository: ref.repository,
      actions: "pull,push",
      extraScopes: [`repository:${from}:pull`],
      method: "POST",
      target: `/v2/${repositoryPath(ref)}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${
        encodeURIComponent(from)
      }`,
      signal: opts.signal,
    });
    if (answer.status === 201) {
      await answer.discard();
      return true;
    }
    if (answer.status === 202) {
      await answer.discard();
      return false;
    }
    throw await this.#error(answer, what);
  }

  /**
   * Uploads a blob from a stream without holding it in memory. A blob of known size up to `monolithicBytes`
   * (default 4 MiB) is collected and sent as POST + one monolithic PUT, like {@linkcode uploadBlob}. A larger
   * one (or one of unknown size) goes as docker's own push does: POST, one `PATCH` whose body streams the data
   * (chunked transfer encoding), then `PUT <location>?digest=`. The stream is read with a BYOB reader into a
   * small ring of reused buffers when it is a byte stream ({@linkcode openBlob}'s is), so a layer of any size
   * passes through a few MiB. The bytes are hashed as they pass; when they do not match `digest` (or `size`),
   * the PATCH is aborted and the session cancelled: nothing is committed (DIGEST_MISMATCH). The PATCH has no
   * total time limit; it fails with TIMEOUT when the registry takes no data for `requestTimeoutMs`. Not retried:
   * a stream cannot be read twice.
   *
   * @example
   * ```ts
   * const blob = await src.openBlob(srcRef, d.digest, { size: d.size });
   * await dst.uploadBlobStream(dstRef, blob.stream, { digest: d.digest, size: d.size });
   * ```
   */
  async uploadBlobStream(
    ref: Reference,
    stream: ReadableStream<Uint8Array>,
    opts: { digest: string; size?: number; monolithicBytes?: number; signal?: AbortSignal },
  ): Promise<{ digest: string; size: number }> {
    const digest = opts.digest;
    validateDigest(digest);
    const what = `uploading blob ${digest} to ${refName(ref)}`;
    const algorithm = digest.slice(0, digest.indexOf(":"));
    const monolithic = opts.size !== undefined && opts.size <= (opts.monolithicBytes ?? 4 * MiB);
    const source = new ChunkSource(stream, what, monolithic ? Math.max(1, opts.size!) : 256 * 1024);
    let location: URL | undefined;
    let committed = false;
    try {
      const start = await this.#send({
        registry: ref.registry,
        repository: ref.repository,
        actions: "pull,push",
        method: "POST",
        target: `/v2/${repositoryPath(ref)}/blobs/uploads/`,
        signal: opts.signal,
      });
      if (start.status !== 202) throw await this.#error(start, what);
      await start.discard();
      location = uploadLocation(start, what);
      const hash = createHash(algorithm);
      let total = 0;
      /** Checks what was read against the size and digest announced. */
      const check = (): AirlockError | undefined => {
        const actual = `${algorithm}:${hash.digest("hex")}`;
        if (opts.size !== undefined && total !== opts.size) {
          return new AirlockError(
            "DIGEST_MISMATCH",
            `${what}: the source has ${total} bytes, expected ${opts.size}`,
          );
        }
        if (actual !== digest) {
          return new AirlockError(
            "DIGEST_MISMATCH",
            `${what}: digest mismatch, the source's bytes hash to ${actual}`,
          );
        }
        return undefined;
      };
      let last: Uint8Array = new Uint8Array(0);
      if (monolithic) {
        // Small: collect (one buffer of exactly `size`), check, and send in the final PUT.
        const parts: Uint8Array[] = [];
        for (;;) {
          const chunk = await source.next();
          if (chunk === null) break;
          hash.update(chunk);
          total += chunk.byteLength;
          if (total > opts.size!) break;
          parts.push(chunk.slice());
        }
        const bad = check();
        if (bad) throw bad;
        last = concatBytes(parts, total);
      } else {
        // Large: one PATCH whose body pulls from the source; an idle watchdog replaces the total timeout.
        const idleMs = this.#timeoutMs;
        const idle = new AbortController();
        let timer: ReturnType<typeof setTimeout> | undefined;
        let idleFired = false;
        let failure: unknown;
        const arm = () => {
          clearTimeout(timer);
          timer = setTimeout(() => {
            idleFired = true;
            idle.abort(
              new AirlockError("TIMEOUT", `${what}: the registry took no data for ${idleMs / 1000} s`),
            );
          }, idleMs);
        };
        const body = new ReadableStream<Uint8Array>({
          pull: async (c) => {
            arm();
            try {
              const chunk = await source.next();
              if (chunk === null) {
                failure = check();
                if (failure) c.error(failure);
                else c.close();
                return;
              }
              hash.update(chunk);
              total += chunk.byteLength;
              if (opts.size !== undefined && total > opts.size) {
                throw new AirlockError(
                  "DIGEST_MISMATCH",
                  `${what}: the source has more than ${opts.size} bytes`,
                );
              }
              c.enqueue(chunk);
            } catch (e) {
              failure = e;
              c.error(e);
            }
          },
        }, { highWaterMark: 0 });
        arm();
        let answer: Answer;
        try {
          answer = await this.#send({
            registry: ref.registry,
            repository: ref.repository,
            actions: "pull,push",
            method: "PATCH",
            target: location,
            headers: { "content-type": "application/octet-stream" },
            body,
            signal: opts.signal ? AbortSignal.any([opts.signal, idle.signal]) : idle.signal,
            retry: false,
            timeoutMs: 0,
          });
        } catch (e) {
          throw failure ?? (idleFired ? idle.signal.reason : e);
        } finally {
          clearTimeout(timer);
        }
        if (failure) {
          await answer.discard();
          throw failure;
        }
        if (answer.status !== 202 && answer.status !== 204) throw await this.#error(answer, what);
        await answer.discard();
        location = uploadLocation(answer, what, location);
      }
      const url = new URL(location);
      url.search = (url.search ? url.search + "&" : "?") + "digest=" + encodeURIComponent(digest);
      const put = await this.#send({
        registry: ref.registry,
        repository: ref.repository,
        actions: "pull,push",
        method: "PUT",
        target: url,
        headers: { "content-type": "application/octet-stream" },
        body: last,
        signal: opts.signal,
        retry: false,
      });
      if (put.status !== 201 && put.status !== 204 && put.status !== 200) throw await this.#error(put, what);
      await put.discard();
      committed = true;
      const echoed = put.headers.get("docker-content-digest");
      if (echoed && echoed.startsWith(`${algorithm}:`) && echoed !== digest) {
        throw new AirlockError("DIGEST_MISMATCH", `${what}: the registry stored ${echoed}`);
      }
      return { digest, size: total };
    } catch (e) {
      await source.cancel(e);
      if (location && !committed) await this.#cancelUpload(ref, location);
      throw e;
    } finally {
      source.release();
    }
  }

  /** Best effort: `DELETE` an unfinished upload session so that nothing of it is committed. */
  async #cancelUpload(ref: Reference, location: URL): Promise<void> {
    try {
      const answer = await this.#send({
        registry: ref.registry,
        repository: ref.repository,
        actions: "pull,push",
        method: "DELETE",
        target: location,
        retry: false,
      });
      await answer.discard();
    } catch {
      // the session expires by itself
    }
  }

  /**
   * Lists a repository's tags, following `Link: <…>; rel="next"` pagination. `pageSize` asks for `?n=` per page
   * (the registry may cap it).
   *
   * @example
   * ```ts
   * const tags = await client.listTags(ref, { pageSize: 100 });
   * ```
   */
  async listTags(ref: Reference, opts: { pageSize?: number; signal?: AbortSignal } = {}): Promise<string[]> {
    const what = `listing tags of ${refName(ref)}`;
    let target: string | URL = `/v2/${repositoryPath(ref)}/tags/list` +
      (opts.pageSize !== undefined ? `?n=${Math.max(1, Math.floor(opts.pageSize))}` : "");
    const tags: string[] = [];
    const seen = new Set<string>();
    for (let page = 0;; page++) {
      const answer = await this.#send({
        registry: ref.registry,
        repository: ref.repository,
        actions: "pull",
        method: "GET",
        target,
        headers: { accept: "application/json" },
        signal: opts.signal,
      });
      if (answer.status !== 200) throw await this.#error(answer, what);
      const doc = parseJson(await answer.bytes(tagListLimit, what), what) as { tags?: unknown };
      if (doc.tags !== null && doc.tags !== undefined) {
        if (!Array.isArray(doc.tags) || doc.tags.some((t) => typeof t !== "string")) {
          throw new AirlockError("REGISTRY_ERROR", `${what}: the answer's "tags" is not a list of strings`);
        }
        tags.push(...(doc.tags as string[]));
      }
      const next = nextLink(answer.headers.get("link"), answer.url);
      if (!next) return tags;
      if (seen.has(next.href) || page > 100_000) {
        throw new AirlockError(
          "REGISTRY_ERROR",
          `${what}: the registry's pagination loops (${next.pathname})`,
        );
      }
      seen.add(next.href);
      target = next;
    }
  }

  /**
   * The OCI referrers of `digest` (`GET /v2/<repo>/referrers/<digest>`), following pagination; filtered by
   * `artifactType` (by the registry when it says so in `OCI-Filters-Applied`, else here). `undefined` when the
   * registry does not offer the API (it answers 404).
   *
   * @example
   * ```ts
   * const list = await client.referrers(ref, digest);
   * if (list === undefined) {} // use the tag scheme (sha256-<hex>.sig)
   * ```
   */
  async referrers(
    ref: Reference,
    digest: string,
    opts: { artifactType?: string; signal?: AbortSignal } = {},
  ): Promise<Descriptor[] | undefined> {
    validateDigest(digest);
    const what = `listing referrers of ${digest} in ${refName(ref)}`;
    let target: string | URL = `/v2/${repositoryPath(ref)}/referrers/${digest}` +
      (opts.artifactType ? `?artifactType=${encodeURIComponent(opts.artifactType)}` : "");
    const out: Descriptor[] = [];
    const seen = new Set<string>();
    for (;;) {
      const answer = await this.#send({
        registry: ref.registry,
        repository: ref.repository,
        actions: "pull",
        method: "GET",
        target,
        headers: { accept: MediaType.ociIndex },
        signal: opts.signal,
      });
      if (answer.status === 404) {
        await answer.discard();
        return undefined;
      }
      if (answer.status !== 200) throw await this.#error(answer, what);
      const doc = parseJson(await answer.bytes(this.#maxManifestBytes, what), what) as {
        manifests?: unknown;
      };
      if (!Array.isArray(doc.manifests)) {
        throw new AirlockError("REGISTRY_ERROR", `${what}: the answer is not an image index`);
      }
      const filtered = (answer.headers.get("oci-filters-applied") ?? "").split(",").map((s) => s.trim())
        .includes("artifactType");
      for (const d of doc.manifests as Descriptor[]) {
        if (typeof d !== "object" || d === null || typeof d.digest !== "string") continue;
        if (opts.artifactType && !filtered && d.artifactType !== opts.artifactType) continue;
        out.push(d);
      }
      const next = nextLink(answer.headers.get("link"), answer.url);
      if (!next) return out;
      if (seen.has(next.href)) {
        throw new AirlockError("REGISTRY_ERROR", `${what}: the registry's pagination loops`);
      }
      seen.add(next.href);
      target = next;
    }
  }

  /**
   * Deletes a manifest by digest (the registry must allow deletion).
   *
   * @example
   * ```ts
   * await client.deleteManifest(ref, "sha256:…");
   * ```
   */
  async deleteManifest(ref: Reference, digest: string, opts: RequestOptions = {}): Promise<void> {
    validateDigest(digest);
    const what = `deleting manifest ${digest} in ${refName(ref)}`;
    const answer = await this.#send({
      registry: ref.registry,
      repository: ref.repository,
      actions: "*",
      method: "DELETE",
      target: `/v2/${repositoryPath(ref)}/manifests/${digest}`,
      signal: opts.signal,
    });
    if (answer.status === 202 || answer.status === 200 || answer.status === 204) {
      return await answer.discard();
    }
    throw await this.#error(answer, what);
  }

  /**
   * Releases HTTP clients, agents and their pooled connections. The client cannot be used afterwards.
   *
   * @example
   * ```ts
   * try { await client.ping("r.example"); } finally { client.close(); }
   * ```
   */
  close(): void {
    this.#closed = true;
    for (const p of this.#transports.values()) p.then((t) => t.close(), () => {});
    this.#transports.clear();
    this.#injected?.close();
  }

  // ——— request machinery ———

  /** Sends an API request with authentication: one fresh try after a 401 when it can help. */
  async #send(call: Call): Promise<Answer> {
    const base = await this.#base(call.registry, call.signal);
    const url = typeof call.target === "string" ? new URL(call.target, base) : call.target;
    const headers = new Headers(call.headers);
    let scopes = call.repository && call.actions ? [`repository:${call.repository}:${call.actions}`] : [];
    if (call.extraScopes) scopes = [...scopes, ...call.extraScopes];
    let auth: Authorization = await this.#auth.authorize(call.registry, scopes, call.signal);
    // Credentials go to the registry's own host only (not to an upload location or page elsewhere).
    const sameHost = url.host === base.host;
    for (let authTry = 0;; authTry++) {
      if (auth.header && sameHost) headers.set("authorization", auth.header);
      else headers.delete("authorization");
      let answer: Answer;
      try {
        answer = await this.#roundTrip(
          call.method,
          url,
          headers,
          call.body,
          call.signal,
          call.retry ?? true,
          base,
          false,
          call.timeoutMs,
        );
      } catch (e) {
        this.#auth.observe(call.registry, 0);
        throw e;
      }
      if (answer.status !== 401) {
        this.#auth.observe(call.registry, answer.status);
        return answer;
      }
      const challenge = answer.headers.get("www-authenticate");
      if (authTry > 0) {
        this.#auth.observe(call.registry, answer.status);
        return answer;
      }
      const text = await answer.text();
      const decision = await this.#auth.challenged(call.registry, challenge, scopes, auth);
      if (!decision.retry) return replay(answer, text);
      scopes = decision.scopes;
      auth = await this.#auth.authorize(call.registry, scopes, call.signal);
      if (!auth.header) return replay(answer, text);
    }
  }

  /** One request through the transport, with redirects, timeout and retries (no auth logic). */
  async #roundTrip(
    method: string,
    url: URL,
    headers: Headers,
    body: Uint8Array | ReadableStream<Uint8Array> | undefined,
    signal: AbortSignal | undefined,
    retry: boolean,
    authBase?: URL,
    allowHttp = false,
    timeoutMs?: number,
  ): Promise<Answer> {
    if (this.#closed) throw new AirlockError("INVALID_ARGUMENT", "the registry client is closed");
    headers.set("user-agent", this.#userAgent);
    for (let attempt = 0;; attempt++) {
      let answer: Answer;
      try {
        answer = await this.#once(method, url, headers, body, signal, authBase, allowHttp, timeoutMs);
      } catch (e) {
        if (e instanceof NetworkError && e.retryable && retry && attempt < this.#policy.retries) {
          await sleep(backoffDelay(attempt, this.#policy), signal);
          continue;
        }
        throw e;
      }
      if (retry && isRetryableStatus(answer.status) && attempt < this.#policy.retries) {
        const retryAfter = parseRetryAfter(answer.headers.get("retry-after"));
        await answer.discard();
        await sleep(backoffDelay(attempt, this.#policy, retryAfter), signal);
        continue;
      }
      return answer;
    }
  }

  /** One exchange plus redirects (GET/HEAD only); credentials are not sent to other hosts. */
  async #once(
    method: string,
    url: URL,
    headers: Headers,
    body: Uint8Array | ReadableStream<Uint8Array> | undefined,
    signal: AbortSignal | undefined,
    authBase?: URL,
    allowHttp = false,
    timeoutMs?: number,
  ): Promise<Answer> {
    const limitMs = timeoutMs ?? this.#timeoutMs;
    let current = url;
    let hopHeaders = headers;
    for (let hop = 0;; hop++) {
      if (signal?.aborted) throw networkError(signal.reason, current, { cancelled: true });
      const timeout = limitMs > 0 ? AbortSignal.timeout(limitMs) : undefined;
      const signals = [signal, timeout].filter((s): s is AbortSignal => s !== undefined);
      const combined = signals.length === 1 ? signals[0] : AbortSignal.any(signals);
      const classify = (e: unknown) =>
        networkError(e, current, {
          cancelled: signal?.aborted === true,
          timedOut: timeout?.aborted === true,
          timeoutMs: limitMs,
        });
      const transport = await this.#transportFor(current, allowHttp);
      let res: TransportResponse;
      try {
        res = await transport.send({
          method,
          url: current,
          headers: hopHeaders,
          ...(body instanceof ReadableStream ? { stream: body } : { body }),
          signal: combined,
        });
      } catch (e) {
        throw classify(e);
      }
      const answer = new Answer(res, current, classify);
      const location = res.headers.get("location");
      if (!redirectStatuses.has(res.status) || !location || (method !== "GET" && method !== "HEAD")) {
        return answer;
      }
      await answer.discard();
      if (hop >= maxRedirects) {
        throw new AirlockError("REGISTRY_ERROR", `too many redirects from ${url.host}${url.pathname}`);
      }
      const next = new URL(location, current);
      if (next.protocol !== "https:" && next.protocol !== "http:") {
        throw new AirlockError("REGISTRY_ERROR", `${url.host} redirected to an unsupported URL scheme`);
      }
      if (next.protocol === "http:" && this.#tlsVerify && !allowHttp) {
        throw new AirlockError(
          "TLS_ERROR",
          `${url.host} redirected to plain http (${next.host}); that needs --tls-verify=false`,
        );
      }
      if (hopHeaders.has("authorization") && (authBase === undefined || next.host !== authBase.host)) {
        hopHeaders = new Headers(hopHeaders);
        hopHeaders.delete("authorization");
      }
      current = next;
    }
  }

  /** The API base URL of a registry: `https://host` (or `http://host`, found by probing, with tlsVerify false). */
  #base(registry: string, signal?: AbortSignal): Promise<URL> {
    let p = this.#bases.get(registry);
    if (!p) {
      p = this.#probe(registry, signal);
      this.#bases.set(registry, p);
      p.catch(() => this.#bases.delete(registry));
    }
    return p;
  }

  async #probe(registry: string, signal?: AbortSignal): Promise<URL> {
    const host = apiHost(registry);
    const https = new URL(`https://${host}/`);
    if (this.#tlsVerify) return https;
    // Insecure mode: one GET /v2/ over https, else over http. Its answer also teaches the auth scheme.
    const tryBase = async (base: URL) => {
      const answer = await this.#roundTrip(
        "GET",
        new URL("/v2/", base),
        new Headers(),
        undefined,
        signal,
        true,
      );
      await answer.discard();
      if (answer.status === 401) {
        await this.#auth.challenged(registry, answer.headers.get("www-authenticate"), [], {}).catch(() => {});
      } else {
        this.#auth.observe(registry, answer.status);
      }
      return base;
    };
    try {
      return await tryBase(https);
    } catch (first) {
      if (first instanceof NetworkError && (first.code === "CANCELLED" || first.code === "TIMEOUT")) {
        throw first;
      }
      try {
        return await tryBase(new URL(`http://${host}/`));
      } catch {
        throw first;
      }
    }
  }

  #transportFor(url: URL, allowHttp = false): Promise<Transport> {
    if (this.#injected) return Promise.resolve(this.#injected);
    if (url.protocol === "http:" && this.#tlsVerify && !allowHttp) {
      return Promise.reject(
        new AirlockError("TLS_ERROR", `refusing plain http to ${url.host}; that needs --tls-verify=false`),
      );
    }
    const key = `${url.protocol}//${url.host}`;
    let p = this.#transports.get(key);
    if (!p) {
      p = (async () => {
        const material = await loadTlsMaterial(certsName(url.host), {
          certDirs: this.#certDirs,
          certDir: this.#certDir,
        });
        // Only https without certificate checks needs node:https; plain http and verified https use fetch,
        // which costs less CPU per request (measured: signing 600 signatures, 2.75 s of client CPU → see bench).
        const skipChecks = !this.#tlsVerify && url.protocol === "https:";
        return skipChecks ? new NodeTransport(material) : new FetchTransport(material);
      })();
      this.#transports.set(key, p);
      p.catch(() => this.#transports.delete(key));
    }
    return p;
  }

  async #error(answer: Answer, what: string): Promise<RegistryError> {
    const text = await answer.text();
    const err = registryError(what, answer.status, text);
    const challenge = answer.headers.get("www-authenticate") ?? "";
    if (answer.status === 401 && /insufficient_scope/i.test(challenge)) {
      // A token was sent but does not grant what the request needs: a permission problem, not a login problem.
      return new RegistryError(
        "DENIED",
        `${err.message} (access denied: the token does not grant this operation)`,
        err.status,
        err.errors,
      );
    }
    return err;
  }
}

// ——— small helpers ———

/**
 * Reads a stream chunk by chunk. For a byte stream it reads with a BYOB reader into a ring of reused buffers
 * (a chunk stays valid until `ring - 1` further chunks have been read), so no memory is allocated per chunk;
 * otherwise it hands out the stream's own chunks.
 */
class ChunkSource {
  readonly #what: string;
  readonly #byob?: ReadableStreamBYOBReader;
  readonly #plain?: ReadableStreamDefaultReader<Uint8Array>;
  readonly #ring: ArrayBuffer[] = [];
  readonly #chunkBytes: number;
  #slot = 0;

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

  async cancel(reason: unknown): Promise<void> {
    await (this.#byob ?? this.#plain)?.cancel(reason).catch(() => {});
  }

  release(): void {
    try {
      (this.#byob ?? this.#plain)?.releaseLock();
    } catch {
      // a read is still pending after a failure: the stream is cancelled anyway
    }
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

/** Joins chunks into one array (returns the only chunk as is). */
function concatBytes(chunks: readonly Uint8Array[], total: number): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return out;
}

/** Re-wraps an answer whose body was already read as text, so the caller can read it again. */
function replay(answer: Answer, text: string): Answer {
  const bytes = new TextEncoder().encode(text);
  const res: TransportResponse = {
    status: answer.status,
    headers: answer.headers,
    body: new ReadableStream({
      start(c) {
        c.enqueue(bytes);
        c.close();
      },
    }),
  };
  return new Answer(res, answer.url, (e) => networkError(e, answer.url));
}

/** The API host of a registry: Docker Hub's is `registry-1.docker.io`. */
function apiHost(registry: string): string {
  if (!/^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::\d{1,5})?$/.test(registry)) {
    throw new AirlockError("INVALID_REFERENCE", `invalid registry host "${registry}"`);
  }
  return registry === "docker.io" || registry === "index.docker.io" ? "registry-1.docker.io" : registry;
}

/** The certs.d directory name for an API host (containers/image uses `docker.io` for Docker Hub). */
function certsName(host: string): string {
  return host === "registry-1.docker.io" ? "docker.io" : host;
}

const repositoryRe = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const tagRe = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const digestRe = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

function repositoryPath(ref: Reference): string {
  if (!repositoryRe.test(ref.repository)) {
    throw new AirlockError("INVALID_REFERENCE", `invalid repository name "${ref.repository}"`);
  }
  return ref.repository;
}

function refName(ref: Reference): string {
  return `${ref.registry}/${ref.repository}`;
}

function validateDigest(digest: string): void {
  if (!digestRe.test(digest)) {
    throw new AirlockError("INVALID_ARGUMENT", `unsupported or malformed digest "${digest}"`);
  }
}

/** `ref.digest ?? ref.tag`, validated. */
function manifestReference(ref: Reference): string {
  if (ref.digest !== undefined) {
    validateDigest(ref.digest);
    return ref.digest;
  }
  if (ref.tag !== undefined) {
    if (!tagRe.test(ref.tag)) throw new AirlockError("INVALID_REFERENCE", `invalid tag "${ref.tag}"`);
    return ref.tag;
  }
  throw new AirlockError(
    "INVALID_REFERENCE",
    `${refName(ref)}: the reference names neither a tag nor a digest`,
  );
}

function mediaTypeOf(headers: Headers): string {
  return (headers.get("content-type") ?? "").split(";")[0].trim();
}

/** `algorithm:hex` of `bytes` (sha256 unless told otherwise). */
function digestOf(bytes: Uint8Array, algorithm = "sha256"): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest("hex")}`;
}

/** Checks `bytes` against `expected`; returns it. */
function checkDigest(bytes: Uint8Array, expected: string, what: string): string {
  validateDigest(expected);
  const actual = digestOf(bytes, expected.slice(0, expected.indexOf(":")));
  if (actual !== expected) {
    throw new AirlockError(
      "DIGEST_MISMATCH",
      `${what}: digest mismatch, expected ${expected}, got ${actual}`,
    );
  }
  return expected;
}

/** Verifies manifest bytes against the requested digest and the registry's `Docker-Content-Digest`. */
function verifyDigest(
  bytes: Uint8Array,
  requested: string | undefined,
  header: string | null,
  what: string,
): string {
  if (requested) checkDigest(bytes, requested, what);
  if (header && digestRe.test(header.trim())) {
    const h = header.trim();
    const actual = digestOf(bytes, h.slice(0, h.indexOf(":")));
    if (actual !== h) {
      throw new AirlockError(
        "DIGEST_MISMATCH",
        `${what}: digest mismatch, the registry announced ${h} but the content is ${actual}`,
      );
    }
  }
  return requested ?? digestOf(bytes);
}

function parseJson(bytes: Uint8Array, what: string): Record<string, unknown> {
  try {
    const doc = JSON.parse(new TextDecoder().decode(bytes));
    if (typeof doc === "object" && doc !== null && !Array.isArray(doc)) return doc;
  } catch {
    // fall through
  }
  throw new AirlockError("REGISTRY_ERROR", `${what}: the answer is not a JSON object`);
}

/** The `rel="next"` target of a `Link` header, resolved against the current URL. */
function nextLink(link: string | null, base: URL): URL | undefined {
  if (!link) return undefined;
  for (const part of link.split(/,(?=\s*<)/)) {
    const m = /^\s*<([^>]*)>(.*)$/.exec(part);
    if (!m) continue;
    if (/;\s*rel\s*=\s*"?(?:[^";]*\s)?next(?:\s[^";]*)?"?/i.test(m[2])) {
      try {
        return new URL(m[1], base);
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}
