/**
 * Strict reading of the image documents a registry serves — image manifests (OCI, Docker schema 2), indexes
 * (OCI index, Docker manifest list) and image configs — into typed values. Every image pipeline reads manifest
 * fields only through these parsers, so a document that is not what its media type says (`[]`, `{}`,
 * `"config": null`, `"manifests": "x"`, a size that is not a number, a digest that is not one) is a clear
 * `MANIFEST_INVALID` error for that image, never a JavaScript crash, never signed, never skipped.
 *
 * The rules are the image and distribution specifications' types, read as Go's `encoding/json` reads them where
 * that is harmless: optional members may be absent or `null` (Go's zero value); present ones must have their
 * type. Required: `schemaVersion` 2 (what `docker-registry` checks on push), an image manifest's `config`
 * descriptor and `layers` array (`null` = empty, as Go writes a nil slice), an index's `manifests` array (the
 * same); every descriptor's `digest` (`sha256`, `sha384` or `sha512` with its exact lowercase hex, as go-digest
 * validates) and `size` (an integer ≥ 0). A body `mediaType` must agree with the type the document is read as,
 * and the members of the other kind must be absent (containers/image's "ambiguous manifest" rule). Parsed
 * documents are cached by their bytes, so a manifest checked where it was fetched is not parsed again.
 *
 * @module
 */
import { AirlockError } from "../errors.ts";
import {
  type Descriptor,
  type FetchedManifest,
  type ImageIndex,
  type ImageManifest,
  isImageManifestMediaType,
  isIndexMediaType,
  type Platform,
} from "./types.ts";

/** A fetched manifest read as what its media type says: an index or a single image manifest. */
export type ImageDocument =
  | { readonly kind: "index"; readonly index: ImageIndex }
  | { readonly kind: "image"; readonly manifest: ImageManifest };

/** An image config as airlock reads it (the fields the platform filter and `inspect` use). */
export interface ImageConfig {
  /** Creation time, RFC 3339. */
  readonly created?: string;
  /** Author. */
  readonly author?: string;
  /** CPU architecture. */
  readonly architecture?: string;
  /** Operating system. */
  readonly os?: string;
  /** CPU variant. */
  readonly variant?: string;
  /** Docker version that built it. */
  readonly docker_version?: string;
  /** Runtime settings: labels and environment. */
  readonly config?: { readonly Labels?: Record<string, string>; readonly Env?: string[] };
}

const dec = new TextDecoder();
const cache = new WeakMap<Uint8Array, ImageIndex | ImageManifest | ImageConfig>();
const DIGEST_RE = /^(?:sha256:[a-f0-9]{64}|sha384:[a-f0-9]{96}|sha512:[a-f0-9]{128})$/;

type Json = Record<string, unknown>;

/** The reader of one document: its name for error texts. */
class Reader {
  constructor(readonly what: string) {}

  fail(detail: string): AirlockError {
    return new AirlockError("MANIFEST_INVALID", `${this.what} is not a valid ${detail}`);
  }

  object(bytes: Uint8Array, kind: string): Json {
    let doc: unknown;
    try {
      doc = JSON.parse(dec.decode(bytes));
    } catch (e) {
      throw this.fail(`${kind}: invalid JSON (${e instanceof Error ? e.message : String(e)})`);
    }
    if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
      throw this.fail(`${kind}: a ${kind} is a JSON object, this is ${describe(doc)}`);
    }
    return doc as Json;
  }

  /** An optional member: absent or null gives `undefined`; otherwise it must pass `check`. */
  optional<T>(o: Json, key: string, path: string, check: (v: unknown, path: string) => T): T | undefined {
    const v = o[key];
    return v === undefined || v === null ? undefined : check(v, `${path}.${key}`);
  }

  string(v: unknown, path: string): string {
    if (typeof v !== "string") throw this.fail(`document: ${path} must be a string, not ${describe(v)}`);
    return v;
  }

  strings(v: unknown, path: string): string[] {
    if (!Array.isArray(v)) {
      throw this.fail(`document: ${path} must be an array of strings, not ${describe(v)}`);
    }
    return v.map((s, i) => this.string(s, `${path}[${i}]`));
  }

  stringMap(v: unknown, path: string): Record<string, string> {
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
      throw this.fail(`document: ${path} must be an object of strings, not ${describe(v)}`);
    }
    const out: Record<string, string> = {};
    for (const [k, s] of Object.entries(v)) {
      Object.defineProperty(out, k, {
        value: this.string(s, `${path}.${k}`),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return out;
  }

  descriptor(v: unknown, path: string): Descriptor {
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
      throw this.fail(`document: ${path} must be a descriptor object, not ${describe(v)}`);
    }
    const o = v as Json;
    const digest = o.digest;
    if (typeof digest !== "string" || !DIGEST_RE.test(digest)) {
      throw this.fail(`document: ${path}.digest ${describe(digest)} is not a sha256/sha384/sha512 digest`);
    }
    const size = o.size;
    if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
      throw this.fail(`document: ${path}.size ${describe(size)} is not a size (an integer of 0 or more)`);
    }
    const d: Descriptor = {
      mediaType: this.optional(o, "mediaType", path, (x, p) => this.string(x, p)) ?? "",
      digest,
      size,
    };
    const urls = this.optional(o, "urls", path, (x, p) => this.strings(x, p));
    if (urls) d.urls = urls;
    const annotations = this.optional(o, "annotations", path, (x, p) => this.stringMap(x, p));
    if (annotations) d.annotations = annotations;
    const data = this.optional(o, "data", path, (x, p) => this.string(x, p));
    if (data !== undefined) d.data = data;
    const artifactType = this.optional(o, "artifactType", path, (x, p) => this.string(x, p));
    if (artifactType !== undefined) d.artifactType = artifactType;
    const platform = this.optional(o, "platform", path, (x, p) => this.platform(x, p));
    if (platform) d.platform = platform;
    return d;
  }

  platform(v: unknown, path: string): Platform {
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
      throw this.fail(`document: ${path} must be a platform object, not ${describe(v)}`);
    }
    const o = v as Json;
    const p: Platform = {
      architecture: this.optional(o, "architecture", path, (x, q) => this.string(x, q)) ?? "",
      os: this.optional(o, "os", path, (x, q) => this.string(x, q)) ?? "",
    };
    const variant = this.optional(o, "variant", path, (x, q) => this.string(x, q));
    if (variant !== undefined) p.variant = variant;
    const version = this.optional(o, "os.version", path, (x, q) => this.string(x, q));
    if (version !== undefined) p["os.version"] = version;
    const features = this.optional(o, "os.features", path, (x, q) => this.strings(x, q));
    if (features) p["os.features"] = features;
    return p;
  }

  /** `schemaVersion` 2, a `mediaType` agreeing with `mediaType` (when given), and none of `foreign`. */
  header(
    o: Json,
    kind: string,
    mediaType: string | undefined,
    foreign: readonly string[],
  ): string | undefined {
    if (o.schemaVersion !== 2) {
      throw this.fail(`${kind}: schemaVersion must be 2, not ${describe(o.schemaVersion)}`);
    }
    const declared = this.optional(o, "mediaType", "", (x, p) => this.string(x, p));
    if (declared !== undefined && mediaType !== undefined && declared !== mediaType) {
      throw this.fail(`${kind}: its mediaType "${declared}" is not "${mediaType}"`);
    }
    const unexpected = foreign.filter((k) => o[k] !== undefined);
    if (unexpected.length > 0) {
      throw this.fail(`${kind}: ambiguous, it has the member(s) ${unexpected.join(", ")} of another kind`);
    }
    return declared;
  }

  /** The members every manifest and index may carry: artifactType, subject, annotations. */
  common(
    o: Json,
    out: { artifactType?: string; subject?: Descriptor; annotations?: Record<string, string> },
  ) {
    const artifactType = this.optional(o, "artifactType", "", (x, p) => this.string(x, p));
    if (artifactType !== undefined) out.artifactType = artifactType;
    const subject = this.optional(o, "subject", "", (x, p) => this.descriptor(x, p));
    if (subject) out.subject = subject;
    const annotations = this.optional(o, "annotations", "", (x, p) => this.stringMap(x, p));
    if (annotations) out.annotations = annotations;
  }
}

/** Whether a cached document read before may be returned for `mediaType` (its body type does not contradict it). */
function agrees(doc: { mediaType?: string }, mediaType: string | undefined): boolean {
  return mediaType === undefined || doc.mediaType === undefined || doc.mediaType === mediaType;
}

/** A short description of a JSON value's kind, for error texts (never the value itself: it may be huge). */
function describe(v: unknown): string {
  if (v === null) return "null";
  if (v === undefined) return "missing";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") return v.length <= 80 ? JSON.stringify(v) : "a long string";
  if (typeof v === "number") return String(v);
  return typeof v === "object" ? "an object" : `a ${typeof v}`;
}

/**
 * Reads an image manifest (OCI or Docker schema 2).
 *
 * @param bytes the document as fetched
 * @param what names it in error texts (`manifest sha256:…`)
 * @param mediaType the type it was served as; a body `mediaType` must agree with it
 * @throws {AirlockError} `MANIFEST_INVALID`, saying what is wrong.
 *
 * @example
 * ```ts
 * const m = parseImageManifest(fetched.bytes, `manifest ${fetched.digest}`);
 * console.log(m.config.digest, m.layers.length);
 * ```
 */
export function parseImageManifest(bytes: Uint8Array, what: string, mediaType?: string): ImageManifest {
  const hit = cache.get(bytes);
  if (hit && "config" in hit && "layers" in hit && agrees(hit, mediaType)) return hit as ImageManifest;
  const r = new Reader(what);
  const o = r.object(bytes, "image manifest");
  const declared = r.header(o, "image manifest", mediaType, ["manifests", "fsLayers", "history"]);
  if (o.config === undefined || o.config === null) {
    throw r.fail("image manifest: it has no config descriptor");
  }
  const config = r.descriptor(o.config, "config");
  const layersValue = o.layers ?? [];
  if (!Array.isArray(layersValue)) {
    throw r.fail(`image manifest: layers must be an array, not ${describe(o.layers)}`);
  }
  const layers = layersValue.map((l, i) => r.descriptor(l, `layers[${i}]`));
  const m: ImageManifest = { schemaVersion: 2, config, layers };
  if (declared !== undefined) m.mediaType = declared;
  r.common(o, m);
  cache.set(bytes, m);
  return m;
}

/**
 * Reads an image index (OCI) or manifest list (Docker).
 *
 * @param bytes the document as fetched
 * @param what names it in error texts (`index reg.example/app:1`)
 * @param mediaType the type it was served as; a body `mediaType` must agree with it
 * @throws {AirlockError} `MANIFEST_INVALID`, saying what is wrong.
 */
export function parseImageIndex(bytes: Uint8Array, what: string, mediaType?: string): ImageIndex {
  const hit = cache.get(bytes);
  if (hit && "manifests" in hit && agrees(hit, mediaType)) return hit as ImageIndex;
  const r = new Reader(what);
  const o = r.object(bytes, "index");
  const declared = r.header(o, "index", mediaType, ["config", "layers", "fsLayers", "history"]);
  const entries = o.manifests ?? [];
  if (!Array.isArray(entries)) {
    throw r.fail(`index: manifests must be an array, not ${describe(o.manifests)}`);
  }
  const index: ImageIndex = {
    schemaVersion: 2,
    manifests: entries.map((e, i) => r.descriptor(e, `manifests[${i}]`)),
  };
  if (declared !== undefined) index.mediaType = declared;
  r.common(o, index);
  cache.set(bytes, index);
  return index;
}

/**
 * Reads a fetched manifest as what its media type says: an index or an image manifest.
 *
 * @throws {AirlockError} `UNSUPPORTED_MEDIA_TYPE` for any other media type; `MANIFEST_INVALID` for a document
 *   that is not what its type says.
 *
 * @example
 * ```ts
 * const doc = parseImageDocument(await client.getManifest(ref), formatReference(ref));
 * if (doc.kind === "index") console.log(doc.index.manifests.length);
 * ```
 */
export function parseImageDocument(fetched: FetchedManifest, name: string): ImageDocument {
  if (isIndexMediaType(fetched.mediaType)) {
    return { kind: "index", index: parseImageIndex(fetched.bytes, `index ${name}`, fetched.mediaType) };
  }
  if (isImageManifestMediaType(fetched.mediaType)) {
    return {
      kind: "image",
      manifest: parseImageManifest(fetched.bytes, `manifest ${name}`, fetched.mediaType),
    };
  }
  throw new AirlockError("UNSUPPORTED_MEDIA_TYPE", `unsupported MIME type "${fetched.mediaType}" of ${name}`);
}

/**
 * Reads an image config blob: a JSON object whose `architecture`, `os`, `variant`, `created`, `author`,
 * `docker_version` are strings and whose `config.Labels` / `config.Env` are a string map / string array, when
 * present (other members are not read).
 *
 * @throws {AirlockError} `MANIFEST_INVALID`, saying what is wrong.
 */
export function parseImageConfig(bytes: Uint8Array, what: string): ImageConfig {
  const hit = cache.get(bytes);
  if (hit && !("layers" in hit) && !("manifests" in hit)) return hit as ImageConfig;
  const r = new Reader(what);
  const o = r.object(bytes, "image config");
  const str = (k: string) => r.optional(o, k, "", (x, p) => r.string(x, p));
  const runtime = r.optional(o, "config", "", (x, p) => {
    if (typeof x !== "object" || Array.isArray(x)) {
      throw r.fail(`image config: ${p} must be an object, not ${describe(x)}`);
    }
    const c = x as Json;
    return {
      Labels: r.optional(c, "Labels", p, (y, q) => r.stringMap(y, q)),
      Env: r.optional(c, "Env", p, (y, q) => r.strings(y, q)),
    };
  });
  const config: ImageConfig = {
    created: str("created"),
    author: str("author"),
    architecture: str("architecture"),
    os: str("os"),
    variant: str("variant"),
    docker_version: str("docker_version"),
    config: runtime,
  };
  cache.set(bytes, config);
  return config;
}

/**
 * An index as its JSON object, every member and every entry's members as written (for writing a modified copy
 * that keeps what airlock does not know), after {@linkcode parseImageIndex} has checked it; `manifests: null` is
 * given as `[]`.
 *
 * @throws {AirlockError} `MANIFEST_INVALID`, as {@linkcode parseImageIndex}.
 *
 * @example
 * ```ts
 * const doc = readIndexObject(top.bytes, `index ${top.digest}`, top.mediaType);
 * const copy = JSON.stringify({ ...doc, manifests: doc.manifests.slice(0, 1) });
 * ```
 */
export function readIndexObject(
  bytes: Uint8Array,
  what: string,
  mediaType?: string,
): Record<string, unknown> & { readonly manifests: Descriptor[] } {
  parseImageIndex(bytes, what, mediaType);
  const raw = JSON.parse(dec.decode(bytes)) as Record<string, unknown> & { manifests?: Descriptor[] | null };
  return { ...raw, manifests: raw.manifests ?? [] };
}
