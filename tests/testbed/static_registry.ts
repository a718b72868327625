/**
 * A **fake**, read-only registry for tests: it serves fixture bytes exactly as given, including what a real
 * registry refuses to store (image manifests whose layer blobs are missing, `.sig` manifests with thousands of
 * layers, blobs stored under a digest they do not hash to). It speaks the distribution wire protocol for reads
 * only, on 127.0.0.1 over plain HTTP (clients need `--tls-verify=false`):
 *
 * | request | answer |
 * |---|---|
 * | `GET/HEAD /v2/` | `200 {}` |
 * | `GET/HEAD /v2/<name>/manifests/<tag or digest>` | the bytes; `Content-Type` = the manifest's media type, `Docker-Content-Digest`, `Content-Length`; else `404 MANIFEST_UNKNOWN` (`NAME_UNKNOWN` for an unknown repository) |
 * | `GET/HEAD /v2/<name>/blobs/<digest>` | the bytes stored under that digest; else `404 BLOB_UNKNOWN` |
 * | `GET /v2/<name>/tags/list` | `{"name","tags"}` (sorted) |
 * | `GET /v2/<name>/referrers/<digest>` | with `referrers: true`: an OCI index of the manifests whose `subject` is that digest; otherwise `404` as a registry without the API |
 *
 * Content is a plain in-memory map ({@linkcode StaticContent}); fill it with {@linkcode putStaticManifest},
 * {@linkcode putStaticBlob} and {@linkcode loadContainersImageFixture}, then {@linkcode startStaticRegistry}. The map is
 * read on every request, so a test may change it while the server runs.
 *
 * @example
 * ```ts
 * const content: StaticContent = new Map();
 * const img = await loadContainersImageFixture(content, "cosign/valid", "v1", {
 *   manifest: fixturePath("vectors", "containers-image", "dir-img-cosign-valid-manifest.json"),
 *   signatures: [fixturePath("vectors", "containers-image", "dir-img-cosign-valid-signature-1")],
 * });
 * await using reg = await startStaticRegistry(content);
 * // airlock verify --tls-verify=false --key cosign.pub --insecure-ignore-tlog ${reg.host}/cosign/valid:v1
 * ```
 *
 * @module
 */
import { sha256Digest } from "./util.ts";

/** A manifest as served: exact bytes and the media type sent as `Content-Type`. */
export interface StaticManifest {
  readonly bytes: Uint8Array;
  readonly mediaType: string;
}

/** One repository of the fake registry. */
export interface StaticRepository {
  /** tag → manifest digest. */
  readonly tags: Map<string, string>;
  /** digest → manifest. The digest need not be the hash of the bytes (hostile fixtures). */
  readonly manifests: Map<string, StaticManifest>;
  /** digest → blob bytes. The digest need not be the hash of the bytes (hostile fixtures). */
  readonly blobs: Map<string, Uint8Array>;
}

/** The whole content: repository name → repository. */
export type StaticContent = Map<string, StaticRepository>;

/** Options of {@linkcode startStaticRegistry}. */
export interface StaticRegistryOptions {
  /** Offer the OCI referrers API (default `false`: `/referrers/` answers 404 like distribution 2.8). */
  readonly referrers?: boolean;
}

/** A running fake registry. */
export interface StaticRegistry extends AsyncDisposable {
  /** `127.0.0.1:PORT`. */
  readonly host: string;
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  /** Requests served so far, as `METHOD path` (query included). */
  readonly requests: string[];
  /** Stops the server. */
  stop(): Promise<void>;
}

const enc = new TextEncoder();
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const OCI_CONFIG = "application/vnd.oci.image.config.v1+json";

/**
 * The repository `name` of `content`, created empty when absent.
 *
 * @example
 * ```ts
 * staticRepository(content, "a/b").tags.set("v1", digest);
 * ```
 */
export function staticRepository(content: StaticContent, name: string): StaticRepository {
  let repo = content.get(name);
  if (!repo) {
    repo = { tags: new Map(), manifests: new Map(), blobs: new Map() };
    content.set(name, repo);
  }
  return repo;
}

/**
 * Stores a manifest (bytes or a JSON value, serialised compactly) and optionally tags it. The media type defaults
 * to the document's `mediaType`, else the OCI manifest type; the digest to the SHA-256 of the bytes.
 *
 * @returns the digest it is stored under
 *
 * @example
 * ```ts
 * const digest = await putStaticManifest(content, "a/b", bytes, { tag: "v1" });
 * ```
 */
export async function putStaticManifest(
  content: StaticContent,
  repo: string,
  manifest: Uint8Array | Record<string, unknown>,
  opts: { tag?: string; mediaType?: string; digest?: string } = {},
): Promise<string> {
  const bytes = manifest instanceof Uint8Array ? manifest : enc.encode(JSON.stringify(manifest));
  let mediaType = opts.mediaType;
  if (mediaType === undefined) {
    try {
      const doc = JSON.parse(new TextDecoder().decode(bytes));
      if (typeof doc?.mediaType === "string") mediaType = doc.mediaType;
    } catch {
      // not JSON: served with the default type
    }
  }
  const digest = opts.digest ?? await sha256Digest(bytes);
  const r = staticRepository(content, repo);
  r.manifests.set(digest, { bytes, mediaType: mediaType ?? OCI_MANIFEST });
  if (opts.tag !== undefined) r.tags.set(opts.tag, digest);
  return digest;
}

/**
 * Stores a blob under the SHA-256 of its bytes, or under `digest` when given (which may be a lie).
 *
 * @returns the digest it is stored under
 *
 * @example
 * ```ts
 * const d = await putStaticBlob(content, "a/b", payload);
 * ```
 */
export async function putStaticBlob(
  content: StaticContent,
  repo: string,
  bytes: Uint8Array,
  digest?: string,
): Promise<string> {
  const d = digest ?? await sha256Digest(bytes);
  staticRepository(content, repo).blobs.set(d, bytes);
  return d;
}

/** One signature as containers/image keeps it in a `dir:` image (`*-signature-N`). */
export interface ContainersImageSignature {
  readonly mimeType: string;
  readonly payload: Uint8Array;
  readonly annotations: Record<string, string>;
}

const SIGSTORE_PREFIX = "\x00sigstore-json\n";

/**
 * Reads a containers/image signature file: `\x00sigstore-json\n` + JSON `{mimeType, payload (base64), annotations}`.
 *
 * @example
 * ```ts
 * const sig = await readContainersImageSignature("dir-img-cosign-valid-signature-1");
 * ```
 */
export async function readContainersImageSignature(path: string): Promise<ContainersImageSignature> {
  const text = new TextDecoder().decode(await Deno.readFile(path));
  if (!text.startsWith(SIGSTORE_PREFIX)) throw new Error(`${path}: not a sigstore signature file`);
  const doc = JSON.parse(text.slice(SIGSTORE_PREFIX.length)) as {
    mimeType: string;
    payload: string;
    annotations?: Record<string, string>;
  };
  const payload = Uint8Array.from(atob(doc.payload), (c) => c.charCodeAt(0));
  return { mimeType: doc.mimeType, payload, annotations: doc.annotations ?? {} };
}

/**
 * Builds the `.sig` manifest and config containers/image writes for a list of signature layers (OCI manifest,
 * config `{"architecture":"","os":"","config":{},"rootfs":{"type":"layers","diff_ids":[…]}}`), stores the
 * payload blobs, the config and the manifest, and tags it `sha256-<hex>.sig`.
 *
 * @returns the `.sig` manifest digest
 *
 * @example
 * ```ts
 * await putSignatures(content, "a/b", imageDigest, [sig]);
 * ```
 */
export async function putSignatures(
  content: StaticContent,
  repo: string,
  imageDigest: string,
  signatures: readonly ContainersImageSignature[],
): Promise<string> {
  const layers = [];
  const diffIds = [];
  for (const s of signatures) {
    const digest = await putStaticBlob(content, repo, s.payload);
    diffIds.push(digest);
    layers.push({
      mediaType: s.mimeType,
      digest,
      size: s.payload.length,
      ...(Object.keys(s.annotations).length > 0 ? { annotations: s.annotations } : {}),
    });
  }
  const config = enc.encode(JSON.stringify({
    architecture: "",
    os: "",
    config: {},
    rootfs: { type: "layers", diff_ids: diffIds },
  }));
  const configDigest = await putStaticBlob(content, repo, config);
  return await putStaticManifest(content, repo, {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: configDigest, size: config.length },
    layers,
  }, { tag: imageDigest.replace(":", "-") + ".sig" });
}

/** What {@linkcode loadContainersImageFixture} stored. */
export interface LoadedFixture {
  /** The image manifest digest (SHA-256 of the fixture's manifest file). */
  readonly digest: string;
  /** The `.sig` manifest digest. */
  readonly signatureManifestDigest: string;
  /** The signatures, as read from the files. */
  readonly signatures: readonly ContainersImageSignature[];
}

/**
 * Loads a containers/image fixture (`*-manifest.json` and its `*-signature-N` files) into `repo`: the manifest
 * bytes exactly as in the file, tagged `tag` (its layer blobs are not there), and the signatures as a `.sig`
 * manifest ({@linkcode putSignatures}).
 *
 * @example
 * ```ts
 * const { digest } = await loadContainersImageFixture(content, "cosign/valid", "v1", { manifest, signatures });
 * ```
 */
export async function loadContainersImageFixture(
  content: StaticContent,
  repo: string,
  tag: string,
  files: { manifest: string; signatures: readonly string[] },
): Promise<LoadedFixture> {
  const digest = await putStaticManifest(content, repo, await Deno.readFile(files.manifest), { tag });
  const signatures = await Promise.all(files.signatures.map(readContainersImageSignature));
  const signatureManifestDigest = await putSignatures(content, repo, digest, signatures);
  return { digest, signatureManifestDigest, signatures };
}

function errorResponse(status: number, code: string, message: string): Response {
  return new Response(JSON.stringify({ errors: [{ code, message, detail: null }] }), {
    status,
    headers: { "content-type": "application/json; charset=utf-8" },
  });
}

function body(bytes: Uint8Array, method: string, headers: Record<string, string>): Response {
  return new Response(method === "HEAD" ? null : bytes.slice(), {
    status: 200,
    headers: { ...headers, "content-length": String(bytes.length) },
  });
}

function referrersIndex(repo: StaticRepository, digest: string): Uint8Array {
  const manifests = [];
  for (const [d, m] of repo.manifests) {
    let doc: {
      subject?: { digest?: string };
      artifactType?: string;
      config?: { mediaType?: string };
      annotations?: Record<string, string>;
    };
    try {
      doc = JSON.parse(new TextDecoder().decode(m.bytes));
    } catch {
      continue;
    }
    if (doc?.subject?.digest !== digest) continue;
    manifests.push({
      mediaType: m.mediaType,
      digest: d,
      size: m.bytes.length,
      artifactType: doc.artifactType ?? doc.config?.mediaType,
      ...(doc.annotations ? { annotations: doc.annotations } : {}),
    });
  }
  return enc.encode(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }));
}

/**
 * Starts the fake registry on 127.0.0.1 (a port chosen by the system) serving `content`.
 *
 * @example
 * ```ts
 * await using reg = await startStaticRegistry(content, { referrers: true });
 * ```
 */
export function startStaticRegistry(
  content: StaticContent,
  opts: StaticRegistryOptions = {},
): Promise<StaticRegistry> {
  const requests: string[] = [];
  const handler = (req: Request): Response => {
    const url = new URL(req.url);
    requests.push(`${req.method} ${url.pathname}${url.search}`);
    if (req.method !== "GET" && req.method !== "HEAD") {
      return errorResponse(405, "UNSUPPORTED", "this fake registry is read-only");
    }
    const path = url.pathname;
    if (path === "/v2/" || path === "/v2") {
      return body(enc.encode("{}"), req.method, {
        "content-type": "application/json",
        "docker-distribution-api-version": "registry/2.0",
      });
    }
    const tags = /^\/v2\/(.+)\/tags\/list$/.exec(path);
    if (tags) {
      const repo = content.get(tags[1]);
      if (!repo) return errorResponse(404, "NAME_UNKNOWN", "repository name not known to registry");
      return body(
        enc.encode(JSON.stringify({ name: tags[1], tags: [...repo.tags.keys()].sort() })),
        req.method,
        {
          "content-type": "application/json",
        },
      );
    }
    const m = /^\/v2\/(.+)\/(manifests|blobs|referrers)\/([^/]+)$/.exec(path);
    if (!m) return new Response("404 page not found\n", { status: 404 });
    const [, name, kind, reference] = m;
    if (kind === "referrers" && !opts.referrers) return new Response("404 page not found\n", { status: 404 });
    const repo = content.get(name);
    if (!repo) return errorResponse(404, "NAME_UNKNOWN", "repository name not known to registry");
    if (kind === "referrers") {
      return body(referrersIndex(repo, reference), req.method, { "content-type": OCI_INDEX });
    }
    if (kind === "blobs") {
      const blob = repo.blobs.get(reference);
      if (!blob) return errorResponse(404, "BLOB_UNKNOWN", "blob unknown to registry");
      return body(blob, req.method, {
        "content-type": "application/octet-stream",
        "docker-content-digest": reference,
      });
    }
    const digest = reference.includes(":") ? reference : repo.tags.get(reference);
    const manifest = digest === undefined ? undefined : repo.manifests.get(digest);
    if (!manifest || digest === undefined) return errorResponse(404, "MANIFEST_UNKNOWN", "manifest unknown");
    return body(manifest.bytes, req.method, {
      "content-type": manifest.mediaType,
      "docker-content-digest": digest,
    });
  };

  return new Promise((resolve) => {
    const server = Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      onListen: () => {},
      onError: () => new Response("internal error", { status: 500 }),
    }, handler);
    const port = server.addr.port;
    const stop = async () => {
      try {
        await server.shutdown();
      } catch {
        // already stopped
      }
    };
    resolve({
      host: `127.0.0.1:${port}`,
      url: `http://127.0.0.1:${port}`,
      requests,
      stop,
      [Symbol.asyncDispose]: stop,
    });
  });
}
