/**
 * Test images built in memory, without Docker: a small tar layer written here (ustar, entries sorted, mtime 0,
 * uid/gid 0, mode 0644/0755), gzipped with `CompressionStream("gzip")`, a config JSON (architecture, os,
 * variant, rootfs.diff_ids) and an OCI or Docker schema 2 manifest; for multi-arch an OCI index or Docker
 * manifest list with `platform` on each entry (optionally left off some entries).
 *
 * Determinism: the tar bytes depend only on the inputs. The gzip stream comes from the runtime's deflate, so
 * digests are stable within one Deno version (and in practice across runs), not promised across versions;
 * tests must read digests from the built image, never hard-code them.
 *
 * `pushImage` writes an image through a {@linkcode BlobManifestSink}: airlock's RegistryClient has exactly
 * that shape; {@linkcode rawSink} is a plain-`fetch` implementation for tests that must not depend on it.
 *
 * @module
 */
import type { Reference } from "../../core/reference.ts";
import { MediaType, type Platform } from "../../core/registry/types.ts";
import { concatBytes, sha256Digest } from "./util.ts";

/** A manifest (image manifest, index or list) as pushed: its digest, media type and exact bytes. */
export interface ManifestBytes {
  /** `sha256:<hex>` of `bytes`. */
  digest: string;
  /** The manifest's media type (also its `mediaType` field). */
  mediaType: string;
  /** The serialized manifest. */
  bytes: Uint8Array;
}

/** A built image: every blob, every manifest (children first, `top` last) and the top manifest. */
export interface TestImage {
  /** Layer and config blobs by digest. */
  blobs: Map<string, Uint8Array>;
  /** Every manifest, children before the index that names them; the last one is `top`. */
  manifests: ManifestBytes[];
  /** The manifest a tag points at: the image manifest, or the index / manifest list. */
  top: ManifestBytes;
  /** For a multi-arch image: each child's platform (`os/arch[/variant]`) and digest, in index order. */
  platforms: { platform: string; digest: string }[];
  /** With `attestations`: each attestation manifest's digest and the digest of the image it describes. */
  attestations?: { digest: string; describes: string }[];
}

/** Options of {@linkcode buildImage}. */
export interface BuildImageOptions {
  /** `linux/amd64` (default), `linux/arm64/v8`, or a {@linkcode Platform}. */
  platform?: string | Platform;
  /** `oci` (default) or `docker` (schema 2 media types). */
  format?: "oci" | "docker";
  /** Files of the layer (path → content); default: one file naming the seed and platform. */
  files?: Record<string, string | Uint8Array>;
  /** Any string: different seeds give different images (different digests). */
  seed?: string;
  /** Manifest annotations (OCI only). */
  annotations?: Record<string, string>;
}

/** Options of {@linkcode buildMultiArchImage}. */
export interface BuildMultiArchOptions {
  /** The platforms (default `linux/amd64`, `linux/arm64/v8`). */
  platforms?: (string | Platform)[];
  /** `oci` (default: OCI index of OCI manifests) or `docker` (manifest list of schema 2 manifests). */
  format?: "oci" | "docker";
  /** Any string: different seeds give different images. */
  seed?: string;
  /** Indexes of entries written without `platform` (an index some tools produce for attestations). */
  omitPlatform?: number[];
  /** Index annotations (OCI only). */
  annotations?: Record<string, string>;
  /**
   * After the images, one attestation manifest per platform, listed as buildx lists them: platform
   * `unknown/unknown`, annotations `vnd.docker.reference.type: attestation-manifest` and
   * `vnd.docker.reference.digest: <image>` (OCI only).
   */
  attestations?: boolean;
}

/** Where `pushImage` writes: the shape of airlock's RegistryClient upload methods. */
export interface BlobManifestSink {
  /** Uploads a blob to `ref`'s repository; returns its digest and size. */
  uploadBlob(
    ref: Reference,
    bytes: Uint8Array,
    opts?: { digest?: string },
  ): Promise<{ digest: string; size: number }>;
  /** Puts a manifest at `ref.tag` or `ref.digest`; returns its digest. */
  putManifest(ref: Reference, bytes: Uint8Array, mediaType: string): Promise<string>;
}

/** One entry of a tar archive made by {@linkcode makeTar}. */
export interface TarEntry {
  /** Path inside the archive, no leading `/`; a trailing `/` makes a directory. */
  path: string;
  /** File content (ignored for directories). */
  content?: Uint8Array;
}

const enc = new TextEncoder();

/**
 * Parses `os/arch[/variant]` into a {@linkcode Platform}.
 *
 * @example
 * ```ts
 * parsePlatform("linux/arm64/v8"); // {os: "linux", architecture: "arm64", variant: "v8"}
 * ```
 */
export function parsePlatform(p: string | Platform): Platform {
  if (typeof p !== "string") return p;
  const [os, architecture, variant] = p.split("/");
  if (!os || !architecture) throw new Error(`invalid platform "${p}"`);
  return variant ? { architecture, os, variant } : { architecture, os };
}

/**
 * Formats a {@linkcode Platform} as `os/arch[/variant]`.
 *
 * @example
 * ```ts
 * formatPlatform({ os: "linux", architecture: "amd64" }); // "linux/amd64"
 * ```
 */
export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ""}`;
}

/**
 * A deterministic ustar archive: entries sorted by path, parent directories added, mtime 0, uid/gid 0, owner
 * names empty, mode 0644 for files and 0755 for directories, two zero blocks at the end.
 *
 * @example
 * ```ts
 * const tar = makeTar([{ path: "etc/hello", content: new TextEncoder().encode("hi\n") }]);
 * ```
 */
export function makeTar(entries: TarEntry[]): Uint8Array {
  const all = new Map<string, TarEntry>();
  for (const e of entries) {
    const parts = e.path.replace(/\/$/, "").split("/");
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join("/") + "/";
      if (!all.has(dir)) all.set(dir, { path: dir });
    }
    all.set(e.path, e);
  }
  const sorted = [...all.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const blocks: Uint8Array[] = [];
  for (const e of sorted) {
    const isDir = e.path.endsWith("/");
    const content = isDir ? new Uint8Array() : e.content ?? new Uint8Array();
    blocks.push(tarHeader(e.path, content.length, isDir));
    if (content.length > 0) {
      const padded = new Uint8Array(Math.ceil(content.length / 512) * 512);
      padded.set(content);
      blocks.push(padded);
    }
  }
  blocks.push(new Uint8Array(1024));
  return concatBytes(...blocks);
}

function tarHeader(path: string, size: number, isDir: boolean): Uint8Array {
  const h = new Uint8Array(512);
  const put = (off: number, len: number, s: string) => {
    const b = enc.encode(s);
    if (b.length > len) throw new Error(`tar field too long: ${s}`);
    h.set(b, off);
  };
  const octal = (off: number, len: number, n: number) =>
    put(off, len, n.toString(8).padStart(len - 1, "0") + "\0");
  let name = path;
  let prefix = "";
  if (enc.encode(path).length > 100) {
    const cut = path.lastIndexOf("/", path.length - 2);
    prefix = path.slice(0, cut);
    name = path.slice(cut + 1);
  }
  put(0, 100, name);
  octal(100, 8, isDir ? 0o755 : 0o644);
  octal(108, 8, 0);
  octal(116, 8, 0);
  octal(124, 12, size);
  octal(136, 12, 0);
  h.fill(0x20, 148, 156); // checksum field counts as spaces
  put(156, 1, isDir ? "5" : "0");
  put(257, 6, "ustar\0");
  put(263, 2, "00");
  put(345, 155, prefix);
  const sum = h.reduce((a, b) => a + b, 0);
  put(148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
  return h;
}

/**
 * gzip of `data` through `CompressionStream("gzip")`.
 *
 * @example
 * ```ts
 * const gz = await gzip(makeTar([]));
 * ```
 */
export async function gzip(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new CompressionStream("gzip"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function manifestBytes(mediaType: string, value: unknown): Promise<ManifestBytes> {
  const bytes = enc.encode(JSON.stringify(value, null, 2));
  return { digest: await sha256Digest(bytes), mediaType, bytes };
}

/**
 * Builds a single-platform image: one gzipped tar layer, a config, an OCI (or Docker schema 2) manifest.
 *
 * @example
 * ```ts
 * const img = await buildImage({ platform: "linux/arm64/v8", seed: "a" });
 * img.top.digest; // sha256:…
 * ```
 */
export async function buildImage(opts: BuildImageOptions = {}): Promise<TestImage> {
  const platform = parsePlatform(opts.platform ?? "linux/amd64");
  const docker = opts.format === "docker";
  const seed = opts.seed ?? "airlock";
  const files = opts.files ?? { "etc/airlock-test": `seed=${seed}\nplatform=${formatPlatform(platform)}\n` };
  const tar = makeTar(
    Object.entries(files).map(([path, c]) => ({
      path: path.replace(/^\/+/, ""),
      content: typeof c === "string" ? enc.encode(c) : c,
    })),
  );
  const layer = await gzip(tar);
  const layerDigest = await sha256Digest(layer);
  const config = enc.encode(JSON.stringify({
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    created: "1970-01-01T00:00:00Z",
    config: { Env: ["PATH=/usr/bin:/bin"], Labels: { "airlock.test.seed": seed } },
    rootfs: { type: "layers", diff_ids: [await sha256Digest(tar)] },
    history: [{ created: "1970-01-01T00:00:00Z", created_by: "airlock testbed" }],
  }));
  const configDigest = await sha256Digest(config);
  const mediaType = docker ? MediaType.dockerManifest : MediaType.ociManifest;
  const manifest = await manifestBytes(mediaType, {
    schemaVersion: 2,
    mediaType,
    config: {
      mediaType: docker ? MediaType.dockerConfig : MediaType.ociConfig,
      digest: configDigest,
      size: config.length,
    },
    layers: [{
      mediaType: docker ? MediaType.dockerLayerGzip : MediaType.ociLayerGzip,
      digest: layerDigest,
      size: layer.length,
    }],
    ...(opts.annotations && !docker ? { annotations: opts.annotations } : {}),
  });
  return {
    blobs: new Map([[layerDigest, layer], [configDigest, config]]),
    manifests: [manifest],
    top: manifest,
    platforms: [],
  };
}

/**
 * Builds a multi-arch image: one image per platform and an OCI index (or Docker manifest list) naming them,
 * each entry with its `platform` unless listed in `omitPlatform`.
 *
 * @example
 * ```ts
 * const img = await buildMultiArchImage({ platforms: ["linux/amd64", "linux/arm64/v8"], seed: "x" });
 * img.manifests.length; // 3: two children, then the index
 * ```
 */
export async function buildMultiArchImage(opts: BuildMultiArchOptions = {}): Promise<TestImage> {
  const platforms = (opts.platforms ?? ["linux/amd64", "linux/arm64/v8"]).map(parsePlatform);
  const docker = opts.format === "docker";
  const blobs = new Map<string, Uint8Array>();
  const children: ManifestBytes[] = [];
  for (const platform of platforms) {
    const img = await buildImage({ platform, format: opts.format, seed: opts.seed });
    for (const [d, b] of img.blobs) blobs.set(d, b);
    children.push(img.top);
  }
  const attestations = opts.attestations && !docker
    ? await Promise.all(children.map((c) => attestationManifest(c.digest, blobs)))
    : [];
  const mediaType = docker ? MediaType.dockerManifestList : MediaType.ociIndex;
  const top = await manifestBytes(mediaType, {
    schemaVersion: 2,
    mediaType,
    manifests: [
      ...children.map((c, i) => ({
        mediaType: c.mediaType,
        digest: c.digest,
        size: c.bytes.length,
        ...(opts.omitPlatform?.includes(i) ? {} : { platform: platforms[i] }),
      })),
      ...attestations.map((a, i) => ({
        mediaType: a.mediaType,
        digest: a.digest,
        size: a.bytes.length,
        annotations: {
          "vnd.docker.reference.digest": children[i].digest,
          "vnd.docker.reference.type": "attestation-manifest",
        },
        platform: { architecture: "unknown", os: "unknown" },
      })),
    ],
    ...(opts.annotations && !docker ? { annotations: opts.annotations } : {}),
  });
  return {
    blobs,
    manifests: [...children, ...attestations, top],
    top,
    platforms: children.map((c, i) => ({ platform: formatPlatform(platforms[i]), digest: c.digest })),
    ...(opts.attestations && !docker
      ? { attestations: attestations.map((a, i) => ({ digest: a.digest, describes: children[i].digest })) }
      : {}),
  };
}

/** An attestation manifest as buildx writes one (an in-toto statement layer about `image`); blobs go into `blobs`. */
async function attestationManifest(image: string, blobs: Map<string, Uint8Array>): Promise<ManifestBytes> {
  const statement = enc.encode(JSON.stringify({
    _type: "https://in-toto.io/Statement/v0.1",
    predicateType: "https://slsa.dev/provenance/v0.2",
    subject: [{ name: "_", digest: { sha256: image.slice("sha256:".length) } }],
    predicate: { builder: { id: "airlock-testbed" } },
  }));
  const config = enc.encode(
    JSON.stringify({
      architecture: "unknown",
      os: "unknown",
      config: {},
      rootfs: { type: "layers", diff_ids: [await sha256Digest(statement)] },
    }),
  );
  const statementDigest = await sha256Digest(statement);
  const configDigest = await sha256Digest(config);
  blobs.set(statementDigest, statement);
  blobs.set(configDigest, config);
  return await manifestBytes(MediaType.ociManifest, {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: configDigest, size: config.length },
    layers: [{
      mediaType: "application/vnd.in-toto+json",
      digest: statementDigest,
      size: statement.length,
      annotations: { "in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2" },
    }],
  });
}

/**
 * Pushes every blob, then every manifest (children by digest, the top one at `tag`, or by digest when `tag` is
 * undefined) to `repo`'s repository through `sink`. Returns the top manifest's digest.
 *
 * @example
 * ```ts
 * const img = await buildMultiArchImage();
 * const repo = { registry: reg.host, repository: "a/b" };
 * await pushImage(img, repo, "v1", rawSink(reg.url));
 * ```
 */
export async function pushImage(
  image: TestImage,
  repo: Reference,
  tag: string | undefined,
  sink: BlobManifestSink,
): Promise<string> {
  const base = { registry: repo.registry, repository: repo.repository };
  for (const [digest, bytes] of image.blobs) await sink.uploadBlob(base, bytes, { digest });
  for (const m of image.manifests) {
    const ref: Reference = m === image.top && tag !== undefined
      ? { ...base, tag }
      : { ...base, digest: m.digest };
    await sink.putManifest(ref, m.bytes, m.mediaType);
  }
  return image.top.digest;
}

/**
 * A {@linkcode BlobManifestSink} made of plain `fetch` calls against `baseUrl` (the `registry` part of the
 * references is ignored): monolithic blob upload (`POST /v2/<repo>/blobs/uploads/`, `PUT <location>&digest=…`)
 * and `PUT /v2/<repo>/manifests/<tag|digest>`. Throws on any unexpected status.
 *
 * @example
 * ```ts
 * const sink = rawSink(reg.url, { authorization: `Basic ${btoa("alice:pw")}` }, reg.client);
 * ```
 */
export function rawSink(baseUrl: string, headers?: HeadersInit, client?: Deno.HttpClient): BlobManifestSink {
  const base = baseUrl.replace(/\/+$/, "");
  const call = async (url: string, init: RequestInit, want: number): Promise<Response> => {
    const h = new Headers(headers);
    for (const [k, v] of new Headers(init.headers)) h.set(k, v);
    const res = await fetch(url, { ...init, headers: h, client });
    if (res.status !== want) {
      throw new Error(`${init.method} ${url}: ${res.status} ${await res.text()}`);
    }
    return res;
  };
  return {
    async uploadBlob(ref, bytes, opts) {
      const digest = opts?.digest ?? await sha256Digest(bytes);
      const post = await call(`${base}/v2/${ref.repository}/blobs/uploads/`, { method: "POST" }, 202);
      await post.body?.cancel();
      const location = post.headers.get("location");
      if (!location) throw new Error("blob upload: no Location header");
      const url = new URL(location, base);
      url.searchParams.set("digest", digest);
      const put = await call(url.href, {
        method: "PUT",
        headers: { "content-type": "application/octet-stream" },
        body: bytes as Uint8Array<ArrayBuffer>,
      }, 201);
      await put.body?.cancel();
      return { digest, size: bytes.length };
    },
    async putManifest(ref, bytes, mediaType) {
      const at = ref.digest ?? ref.tag;
      if (!at) throw new Error("putManifest: the reference names neither a tag nor a digest");
      const res = await call(`${base}/v2/${ref.repository}/manifests/${at}`, {
        method: "PUT",
        headers: { "content-type": mediaType },
        body: bytes as Uint8Array<ArrayBuffer>,
      }, 201);
      await res.body?.cancel();
      return res.headers.get("docker-content-digest") ?? await sha256Digest(bytes);
    },
  };
}

/** A registry to push to: its `host:port`, base URL and (with TLS) the HTTP client trusting its CA. */
export interface PushTarget {
  readonly host: string;
  readonly url: string;
  readonly client?: Deno.HttpClient;
}

/** Pushes `img` to `repo:tag` of `reg` with plain `fetch`; returns it. */
export async function pushTo(
  reg: PushTarget,
  repo: string,
  tag: string | undefined,
  img: TestImage,
): Promise<TestImage> {
  await pushImage(
    img,
    { registry: reg.host, repository: repo },
    tag,
    rawSink(reg.url, undefined, reg.client),
  );
  return img;
}

/**
 * Builds a single-arch image (seeded) and pushes it to `repo:tag` with plain `fetch`; returns it.
 *
 * @example
 * ```ts
 * const img = await pushSingle(reg, "a/single", "v1", "seed-1");
 * ```
 */
export async function pushSingle(
  reg: PushTarget,
  repo: string,
  tag: string | undefined,
  seed: string,
  platform = "linux/amd64",
): Promise<TestImage> {
  return await pushTo(reg, repo, tag, await buildImage({ seed, platform }));
}

/**
 * Builds a multi-arch image (seeded) and pushes it to `repo:tag` with plain `fetch`; returns it.
 *
 * @example
 * ```ts
 * const img = await pushMulti(reg, "a/multi", "v1", "seed-2", { format: "docker" });
 * ```
 */
export async function pushMulti(
  reg: PushTarget,
  repo: string,
  tag: string | undefined,
  seed: string,
  opts: { platforms?: string[]; omitPlatform?: number[]; format?: "oci" | "docker" } = {},
): Promise<TestImage> {
  return await pushTo(reg, repo, tag, await buildMultiArchImage({ seed, ...opts }));
}
