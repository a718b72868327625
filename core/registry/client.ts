/**
 * The OCI distribution API client: manifests, blobs, tags, referrers, with auth challenges, TLS options,
 * retries, digest verification and size limits. Every byte read from a registry is checked against its digest.
 *
 * Layers (one job per module): {@linkcode Transport} sends one HTTP exchange (`transport.ts`); the
 * {@linkcode Requester} adds API bases, redirects, per-request timeouts, retries (`retry.ts`) and authentication
 * (`auth.ts`) once for every transport, and turns unexpected answers into {@linkcode RegistryError}s
 * (`errors.ts`). This module is the distribution API on top: manifests and small blobs here, blob transfers in
 * `blob_upload.ts` and `blob_stream.ts`, paginated lists (tags, referrers) in `listing.ts`.
 *
 * Request counts (the registry, not the client, limits throughput — spec/testbed.md §6): nothing is sent that the
 * operation does not need. No ping before the first request (when http is allowed one `GET /v2/` per registry
 * picks https or http); one 401 per registry teaches the auth scheme; `uploadBlob` is exactly `POST` + `PUT`.
 *
 * TLS: verified unless `tlsVerify: false`; plain http to a registry only then, or with `allowHttp`. A token realm is used as the
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

import { AirlockError } from "../errors.ts";
import type { Reference } from "../reference.ts";
import { VERSION } from "../version.ts";
import { blobCall, type BlobStream, openBlob, type OpenBlobOptions } from "./blob_stream.ts";
import {
  type BlobStreamUploadOptions,
  type BlobUploadOptions,
  mountBlob,
  uploadBlob,
  uploadBlobStream,
  type UploadedBlob,
} from "./blob_upload.ts";
import { checkDigest, checkStoredDigest, digestOf, verifyDigest } from "./digests.ts";
import { isManifestUnknown, RegistryError } from "./errors.ts";
import { listReferrers, listTags, type ListTagsOptions, type ReferrersOptions } from "./listing.ts";
import { manifestReference, pushReference, refName, validateDigest } from "./names.ts";
import { type ApiCall, Requester } from "./requester.ts";
import { defaultRetryPolicy } from "./retry.ts";
import type { Transport } from "./transport.ts";
import {
  type CredentialLookup,
  type Descriptor,
  type FetchedManifest,
  isSchema1MediaType,
  MediaType,
} from "./types.ts";

export { isManifestUnknown, RegistryError };
export type {
  BlobStream,
  BlobStreamUploadOptions,
  BlobUploadOptions,
  ListTagsOptions,
  OpenBlobOptions,
  ReferrersOptions,
  UploadedBlob,
};

/** Options of a {@linkcode RegistryClient}. */
export interface RegistryClientOptions {
  /**
   * Verify TLS certificates (default `true`). `false` skips certificate checks entirely and, unless `allowHttp`
   * says otherwise, also allows plain http (containers/image's `--tls-verify=false`).
   */
  tlsVerify?: boolean;
  /**
   * Allow plain http (default: `!tlsVerify`): the first contact with a registry tries https, then http (as
   * containers/image and go-containerregistry do). Plain http is never used otherwise, not even for localhost.
   */
  allowHttp?: boolean;
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

/** Options of the manifest reads. */
export interface ManifestReadOptions {
  /** The manifest media types accepted; default: OCI and Docker schema 2 manifests and indexes. */
  accept?: string[];
  /** Cancels the operation (all its requests, retries and waits). */
  signal?: AbortSignal;
}

/** Options every operation takes. */
export interface RequestOptions {
  /** Cancels the operation (all its requests, retries and waits). */
  signal?: AbortSignal;
}

/** Options of {@linkcode RegistryClient.putManifest}. */
export interface ManifestWriteOptions extends RequestOptions {
  /**
   * Retry transient failures (default `true`). `false` for writes whose caller decides itself what to do after a
   * lost answer (attachment tags: read the tag again rather than send an old manifest once more).
   */
  retry?: boolean;
}

const MiB = 1024 * 1024;
/** Statuses of success, of success or absence, of a stored manifest, of a deletion. */
const ok = [200], found = [200, 404], stored = [200, 201, 202], deleted = [200, 202, 204];
const defaultAccept = [
  MediaType.ociManifest,
  MediaType.ociIndex,
  MediaType.dockerManifest,
  MediaType.dockerManifestList,
];

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
  readonly #http: Requester;
  readonly #maxManifestBytes: number;

  /**
   * Creates a client. Defaults: TLS verified, 60 s request timeout, 4 MiB manifest limit.
   *
   * @param options TLS, credentials, timeouts, retries, limits; all optional
   */
  constructor(options: RegistryClientOptions = {}) {
    this.#http = new Requester({
      tlsVerify: options.tlsVerify ?? true,
      allowHttp: options.allowHttp ?? options.tlsVerify === false,
      certDirs: options.certDirs,
      certDir: options.certDir,
      credentials: options.credentials,
      userAgent: options.userAgent ?? `airlock/${VERSION}`,
      timeoutMs: options.requestTimeoutMs ?? 60_000,
      policy: {
        retries: Math.max(0, options.retries ?? defaultRetryPolicy.retries),
        baseDelayMs: options.retryBaseDelayMs ?? defaultRetryPolicy.baseDelayMs,
        maxDelayMs: options.retryMaxDelayMs ?? defaultRetryPolicy.maxDelayMs,
      },
      transport: options.transport,
    });
    this.#maxManifestBytes = options.maxManifestBytes ?? 4 * MiB;
  }

  /** How many tokens this client fetched from token servers (cache misses). */
  get tokensFetched(): number {
    return this.#http.tokensFetched;
  }

  /**
   * Checks that `registry` answers the distribution API (`GET /v2/`) and, when it asks for authentication, that
   * the credentials are accepted.
   */
  async ping(registry: string, opts: RequestOptions = {}): Promise<void> {
    const call = { method: "GET", target: "", signal: opts.signal };
    await this.#http.exchange({ registry }, call, ok, `checking registry ${registry}`);
  }

  /**
   * Fetches a manifest by `ref.digest ?? ref.tag`. The bytes are checked against `ref.digest` (when given) and
   * against `Docker-Content-Digest` (when sent), and limited to `maxManifestBytes`. Docker schema 1 is refused
   * (UNSUPPORTED_MEDIA_TYPE). Absent: NOT_FOUND ({@linkcode isManifestUnknown} tells a missing manifest from a
   * missing repository).
   */
  async getManifest(
    ref: Reference,
    opts: ManifestReadOptions = {},
  ): Promise<FetchedManifest> {
    const reference = manifestReference(ref);
    const what = `reading manifest ${reference} in ${refName(ref)}`;
    const answer = await this.#http.expect(ref, manifestCall("GET", reference, opts), ok, what);
    const bytes = await answer.bytes(this.#maxManifestBytes, what);
    const digest = verifyDigest(bytes, ref.digest, answer.headers.get("docker-content-digest"), what);
    return { mediaType: manifestMediaType(bytes, answer.headers, what), digest, bytes };
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
    opts: ManifestReadOptions = {},
  ): Promise<Descriptor | undefined> {
    const reference = manifestReference(ref);
    const what = `checking manifest ${reference} in ${refName(ref)}`;
    const { status, headers } = await this.#http.exchange(
      ref,
      manifestCall("HEAD", reference, opts),
      found,
      what,
    );
    if (status === 404) return undefined;
    const described = describedBy(headers, ref.digest, what);
    if (described === undefined) {
      // The registry left out the digest, size or media type: the manifest itself tells.
      const m = await this.getManifest(ref, opts);
      return { mediaType: m.mediaType, digest: m.digest, size: m.bytes.byteLength };
    }
    this.#checkManifestSize(described.size, what);
    return described;
  }

  /**
   * Uploads a manifest with the given media type. Pushes to `ref.tag` when the reference has one (checking the
   * bytes against `ref.digest` too, when given), else by `ref.digest`. Returns the digest of the bytes.
   */
  async putManifest(
    ref: Reference,
    bytes: Uint8Array,
    mediaType: string,
    opts: ManifestWriteOptions = {},
  ): Promise<string> {
    const reference = pushReference(ref);
    const what = `writing manifest ${reference} in ${refName(ref)}`;
    this.#checkManifestSize(bytes.byteLength, what);
    const digest = ref.digest ? checkDigest(bytes, ref.digest, what) : digestOf(bytes);
    const call = {
      method: "PUT",
      actions: "pull,push",
      target: `manifests/${reference}`,
      headers: { "content-type": mediaType },
      body: bytes,
      signal: opts.signal,
      retry: opts.retry,
    };
    const answer = await this.#http.exchange(ref, call, stored, what);
    checkStoredDigest(answer.headers, digest, what);
    return digest;
  }

  /**
   * Deletes a manifest by digest (the registry must allow deletion).
   */
  async deleteManifest(ref: Reference, digest: string, opts: RequestOptions = {}): Promise<void> {
    validateDigest(digest);
    const what = `deleting manifest ${digest} in ${refName(ref)}`;
    const call = { method: "DELETE", actions: "*", target: `manifests/${digest}`, signal: opts.signal };
    await this.#http.exchange(ref, call, deleted, what);
  }

  /**
   * Downloads a blob, verified against `digest`, at most `maxBytes` (default 4 MiB; reading stops as soon as the
   * limit is passed). Redirects (to storage back ends) are followed without forwarding credentials off-host.
   */
  async getBlob(
    ref: Reference,
    digest: string,
    opts: { maxBytes?: number; signal?: AbortSignal } = {},
  ): Promise<Uint8Array> {
    validateDigest(digest);
    const what = `reading blob ${digest} in ${refName(ref)}`;
    const answer = await this.#http.expect(ref, blobCall("GET", digest, opts.signal), ok, what);
    const bytes = await answer.bytes(opts.maxBytes ?? 4 * MiB, what);
    checkDigest(bytes, digest, what);
    return bytes;
  }

  /**
   * Tells whether a blob exists in the repository (`HEAD`).
   */
  async hasBlob(ref: Reference, digest: string, opts: RequestOptions = {}): Promise<boolean> {
    validateDigest(digest);
    const what = `checking blob ${digest} in ${refName(ref)}`;
    const answer = await this.#http.exchange(ref, blobCall("HEAD", digest, opts.signal), found, what);
    return answer.status === 200;
  }

  /**
   * Uploads a blob monolithically: `POST /v2/<repo>/blobs/uploads/` then `PUT <location>?digest=<d>` with the
   * bytes — two requests, no HEAD, no PATCH. A transient failure retries the pair. `opts.digest`, when given, is
   * checked against the bytes (and may name sha512).
   */
  uploadBlob(ref: Reference, bytes: Uint8Array, opts: BlobUploadOptions = {}): Promise<UploadedBlob> {
    return uploadBlob(this.#http, ref, bytes, opts);
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
  openBlob(ref: Reference, digest: string, opts: OpenBlobOptions = {}): Promise<BlobStream> {
    return openBlob(this.#http, ref, digest, opts);
  }

  /**
   * Cross-repository blob mount: `POST /v2/<repo>/blobs/uploads/?mount=<digest>&from=<from>` on the same
   * registry. `true` when the registry mounted it (201: the blob is now in `ref`'s repository, nothing was
   * transferred); `false` when it declined (202: it opened an upload session instead, which is left to expire).
   * The token asked for grants `pull` on `from` too.
   */
  mountBlob(ref: Reference, digest: string, from: string, opts: RequestOptions = {}): Promise<boolean> {
    return mountBlob(this.#http, ref, digest, from, opts.signal);
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
  uploadBlobStream(
    ref: Reference,
    stream: ReadableStream<Uint8Array>,
    opts: BlobStreamUploadOptions,
  ): Promise<UploadedBlob> {
    return uploadBlobStream(this.#http, ref, stream, opts);
  }

  /**
   * Lists a repository's tags, following `Link: <…>; rel="next"` pagination. `pageSize` asks for `?n=` per page
   * (the registry may cap it).
   */
  listTags(ref: Reference, opts: ListTagsOptions = {}): Promise<string[]> {
    return listTags(this.#http, ref, opts);
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
  referrers(
    ref: Reference,
    digest: string,
    opts: ReferrersOptions = {},
  ): Promise<Descriptor[] | undefined> {
    return listReferrers(this.#http, ref, digest, { ...opts, maxBytes: this.#maxManifestBytes });
  }

  /**
   * Releases HTTP clients, agents and their pooled connections. The client cannot be used afterwards.
   */
  close(): void {
    this.#http.close();
  }

  /** TOO_LARGE when a manifest of `size` bytes exceeds `maxManifestBytes`. */
  #checkManifestSize(size: number, what: string): void {
    if (size > this.#maxManifestBytes) {
      throw new AirlockError(
        "TOO_LARGE",
        `${what}: ${size} bytes exceed the limit of ${this.#maxManifestBytes} bytes`,
      );
    }
  }
}

/** A `GET` or `HEAD` of a manifest, accepting the manifest types asked for (all four kinds by default). */
function manifestCall(method: string, reference: string, opts: ManifestReadOptions): ApiCall {
  const headers = { accept: (opts.accept ?? defaultAccept).join(", ") };
  return { method, actions: "pull", target: `manifests/${reference}`, headers, signal: opts.signal };
}

/**
 * The descriptor a manifest's `HEAD` answer announces, or `undefined` when it leaves out the digest, the size or
 * the media type. DIGEST_MISMATCH when it names another digest than the one `requested`.
 */
function describedBy(headers: Headers, requested: string | undefined, what: string): Descriptor | undefined {
  const announced = headers.get("docker-content-digest") ?? undefined;
  if (requested && announced && announced !== requested) {
    throw new AirlockError(
      "DIGEST_MISMATCH",
      `${what}: the registry names digest ${announced}, expected ${requested}`,
    );
  }
  const digest = announced ?? requested;
  const size = Number(headers.get("content-length") ?? NaN);
  const mediaType = mediaTypeOf(headers);
  if (digest === undefined || !Number.isFinite(size) || !mediaType) return undefined;
  return { mediaType, digest, size };
}

/** The media type of a `Content-Type` header, without parameters. */
function mediaTypeOf(headers: Headers): string {
  return (headers.get("content-type") ?? "").split(";")[0].trim();
}

/**
 * A fetched manifest's media type: the body's `mediaType`, else the `Content-Type` header. Docker schema 1 is
 * refused (UNSUPPORTED_MEDIA_TYPE).
 */
function manifestMediaType(bytes: Uint8Array, headers: Headers, what: string): string {
  const contentType = mediaTypeOf(headers);
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
    const kind = mediaType || "schemaVersion 1";
    throw new AirlockError(
      "UNSUPPORTED_MEDIA_TYPE",
      `${what}: it is a Docker schema 1 manifest (${kind}), which airlock does not support; ` +
        `push the image again as Docker schema 2 or OCI`,
    );
  }
  return mediaType;
}
