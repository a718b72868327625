/**
 * The sigstore attachment layout (spec/hangar.md §5.5, spec/cosign.md §1.1–1.3, §3.1): the `sha256-<hex>.sig` /
 * `.att` tags, the OCI manifest + config that hold one layer per signature, and the append algorithm
 * containers/image uses, reproduced byte for byte:
 *
 * - a `.sig` manifest is read as Go reads it into image-spec's `Manifest` (unknown fields dropped,
 *   `artifactType`, `subject`, `annotations` kept) and its config into image-spec's `Image`;
 * - new signature layers are appended after every existing layer (foreign ones included) unless an identical layer
 *   (same media type, size, digest and annotations) is already there;
 * - config and manifest are re-serialised in Go struct order, compact.
 *
 * Everything here is pure: the caller fetches and uploads.
 *
 * @module
 */
import { base64Encode, goBase64Decode } from "../encoding/base64.ts";
import { AirlockError, type ErrorCode } from "../errors.ts";
import { type Descriptor, MediaType, type Platform } from "../registry/types.ts";
import {
  compareGoMapKeys,
  decodeGoStruct,
  goBool,
  goInt,
  goJsonInt,
  goJsonMap,
  goJsonString,
  goMap,
  goSlice,
  goString,
  goTypeError,
  type JsonNode,
  parseJsonTree,
} from "../encoding/go_json.ts";
import { digestError, sha256Digest } from "../encoding/digest.ts";
import { goQuote } from "../encoding/go_quote.ts";
import { parseSimpleSigningPayload, payloadAnnotations, type SimpleSigningPayload } from "./payload.ts";

// ---------------------------------------------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------------------------------------------

/** Layer annotation: base64 (std, padded) of the signature over the payload bytes. */
export const ANNOTATION_SIGNATURE = "dev.cosignproject.cosign/signature";
/** Layer annotation: PEM leaf certificate (keyless or `--cert`). */
export const ANNOTATION_CERTIFICATE = "dev.sigstore.cosign/certificate";
/** Layer annotation: PEM intermediates/root, concatenated (may be `""`). */
export const ANNOTATION_CHAIN = "dev.sigstore.cosign/chain";
/** Layer annotation: the Rekor bundle (SET) JSON. */
export const ANNOTATION_BUNDLE = "dev.sigstore.cosign/bundle";
/** Layer annotation: `{"SignedRFC3161Timestamp":"<base64 DER>"}`. */
export const ANNOTATION_RFC3161_TIMESTAMP = "dev.sigstore.cosign/rfc3161timestamp";
/** Layer annotation on attestation layers: the in-toto predicate type. */
export const ANNOTATION_PREDICATE_TYPE = "predicateType";

/** Tag suffix of signature attachments. */
export const SIGNATURE_TAG_SUFFIX = "sig";
/** Tag suffix of attestation attachments. */
export const ATTESTATION_TAG_SUFFIX = "att";

/** Media type of a signature layer (the simple-signing payload). */
export const SIMPLE_SIGNING_MEDIA_TYPE: string = MediaType.cosignSimpleSigning;
/** Media type of an attestation layer (a DSSE envelope). */
export const DSSE_ENVELOPE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json";
/** DSSE payload type of in-toto statements. */
export const IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json";

const CODE: ErrorCode = "ATTACHMENT_INVALID";

// ---------------------------------------------------------------------------------------------------------------
// DSSE (attestation layers, and what keyless verification checks)
// ---------------------------------------------------------------------------------------------------------------

/**
 * The DSSE pre-authentication encoding: `"DSSEv1" SP len(type) SP type SP len(payload) SP payload`.
 *
 * @example
 * ```ts
 * const signed = dssePae("application/vnd.in-toto+json", payloadBytes);
 * ```
 */
export function dssePae(payloadType: string, payload: Uint8Array): Uint8Array {
  const enc = new TextEncoder();
  const type = enc.encode(payloadType);
  const head = enc.encode(`DSSEv1 ${type.length} ${payloadType} ${payload.length} `);
  const out = new Uint8Array(head.length + payload.length);
  out.set(head);
  out.set(payload, head.length);
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Tags
// ---------------------------------------------------------------------------------------------------------------

/**
 * The attachment tag of a manifest digest: `sha256:<hex>` becomes `sha256-<hex>.<suffix>` (`.sig` by default),
 * in the same repository.
 *
 * @throws {AirlockError} `INVALID_ARGUMENT` when `digest` is not a valid digest
 *
 * @example
 * ```ts
 * signatureTag("sha256:25fd…4f22e"); // => "sha256-25fd…4f22e.sig"
 * ```
 */
export function signatureTag(digest: string, suffix: string = SIGNATURE_TAG_SUFFIX): string {
  const err = digestError(digest);
  if (err !== undefined) {
    throw new AirlockError("INVALID_ARGUMENT", `invalid digest ${goQuote(digest)}: ${err}`);
  }
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(suffix)) {
    throw new AirlockError("INVALID_ARGUMENT", `invalid attachment tag suffix ${goQuote(suffix)}`);
  }
  return digest.replace(":", "-") + "." + suffix;
}

/**
 * The attestation tag of a manifest digest: `sha256-<hex>.att`.
 *
 * @example
 * ```ts
 * attestationTag("sha256:25fd…4f22e"); // => "sha256-25fd…4f22e.att"
 * ```
 */
export function attestationTag(digest: string): string {
  return signatureTag(digest, ATTESTATION_TAG_SUFFIX);
}

/**
 * Reads an attachment tag back: `sha256-<hex>.sig` gives `{digest: "sha256:<hex>", suffix: "sig"}`; anything that
 * is not such a tag gives `undefined`.
 *
 * @example
 * ```ts
 * parseAttachmentTag("sha256-25fd…4f22e.att"); // => { digest: "sha256:25fd…4f22e", suffix: "att" }
 * ```
 */
export function parseAttachmentTag(tag: string): { digest: string; suffix: string } | undefined {
  const m = /^([a-z0-9]+)-([a-f0-9]+)\.([A-Za-z0-9_.-]+)$/.exec(tag);
  if (!m) return undefined;
  const digest = `${m[1]}:${m[2]}`;
  return digestError(digest) === undefined ? { digest, suffix: m[3] } : undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Models
// ---------------------------------------------------------------------------------------------------------------

/** A `.sig`/`.att` manifest as Go's image-spec `Manifest` holds it (what survives a parse and re-serialise). */
export interface AttachmentManifest {
  /** Any integer (containers/image does not check it). */
  schemaVersion: number;
  /** `""` is written as nothing (omitempty). */
  mediaType: string;
  /** `""` is written as nothing. */
  artifactType: string;
  /** The config blob; replaced by a descriptor of the new config on every append. */
  config: Descriptor;
  /** `null` = Go nil slice (written as `null`). */
  layers: Descriptor[] | null;
  /** OCI 1.1 `subject`: kept as read, written only when present. */
  subject?: Descriptor;
  /** Manifest annotations: kept as read, left out when absent or empty. */
  annotations?: Record<string, string>;
}

/** image-spec `ImageConfig` (the `config` member of an image config); every field is omitempty. */
export interface AttachmentImageConfig {
  /** The user (and group) the container process runs as. */
  User?: string;
  /** `map[string]struct{}`: only the keys survive. */
  ExposedPorts?: string[];
  /** Environment variables, as `NAME=value` entries. */
  Env?: string[];
  /** The command run when the container starts, as argv. */
  Entrypoint?: string[];
  /** Default arguments to the entrypoint (the command itself when there is no entrypoint). */
  Cmd?: string[];
  /** `map[string]struct{}`: only the keys survive. */
  Volumes?: string[];
  /** The working directory of the container process. */
  WorkingDir?: string;
  /** Image labels; written with keys sorted, as Go encodes maps. */
  Labels?: Record<string, string>;
  /** The signal that stops the container, e.g. `SIGTERM`. */
  StopSignal?: string;
  /** Deprecated, Windows only: `Cmd`/`Entrypoint` are already escaped. Written only when `true`. */
  ArgsEscaped?: boolean;
}

/** image-spec `History`. `created` is kept in Go's RFC 3339 output form. */
export interface AttachmentHistory {
  /** When the layer was created (Go `RFC3339Nano` output form). */
  created?: string;
  /** The command that created the layer. */
  created_by?: string;
  /** Who created the layer. */
  author?: string;
  /** A free-text comment on the layer. */
  comment?: string;
  /** `true` when the step made no filesystem layer (no `rootfs.diff_ids` entry). Written only when `true`. */
  empty_layer?: boolean;
}

/**
 * A `.sig` config as Go's image-spec `Image` holds it. Field order when serialised:
 * `created, author, architecture, os, os.version, os.features, variant, config, rootfs, history`.
 */
export interface AttachmentConfig {
  /** RFC 3339 in Go's `RFC3339Nano` output form (`0001-01-01T00:00:00Z`). */
  created?: string;
  /** The name and/or email of whoever created the image. */
  author?: string;
  /** CPU architecture (Go `GOARCH` value); always written, `""` in a fresh `.sig` config. */
  architecture: string;
  /** Operating system (Go `GOOS` value); always written, `""` in a fresh `.sig` config. */
  os: string;
  /** Operating system version (Windows images). */
  "os.version"?: string;
  /** Required operating system features (Windows images). */
  "os.features"?: string[];
  /** CPU variant, e.g. `v8` for `arm64`. */
  variant?: string;
  /** Container runtime defaults; always written (`{}` when empty). */
  config: AttachmentImageConfig;
  /** `type` is `"layers"`; `diff_ids` gets each appended payload's digest (`null` = Go nil slice). */
  rootfs: { type: string; diff_ids: string[] | null };
  /** Build history, kept as read; left out when empty. */
  history?: AttachmentHistory[];
}

/** The current content of a `.sig` tag: its manifest and config. */
export interface AttachmentState {
  /** The manifest at the `.sig` tag. */
  readonly manifest: AttachmentManifest;
  /** The config blob the manifest points at. */
  readonly config: AttachmentConfig;
}

// ---------------------------------------------------------------------------------------------------------------
// Go helpers local to this layout
// ---------------------------------------------------------------------------------------------------------------

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/**
 * Parses an RFC 3339 time as Go's `time.Time.UnmarshalJSON` does and returns it as Go's `MarshalJSON` writes it
 * (`RFC3339Nano`: fraction cut to 9 digits with trailing zeros dropped, `Z` for a zero offset, other offsets kept).
 */
function normaliseGoTime(node: JsonNode, path: string): string | undefined {
  if (node.kind === "null") return undefined;
  if (node.kind !== "string") throw new AirlockError(CODE, "Time.UnmarshalJSON: input is not a JSON string");
  const s = node.value;
  const m = RFC3339.exec(s);
  const bad = () =>
    new AirlockError(CODE, `parsing time ${goQuote(s)} as "2006-01-02T15:04:05Z07:00" (${path})`);
  if (!m) throw bad();
  const [, y, mo, d, h, mi, se, frac, zone] = m;
  const year = Number(y), month = Number(mo), day = Number(d);
  const dim = [
    31,
    year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28,
    31,
    30,
    31,
    30,
    31,
    31,
    30,
    31,
    30,
    31,
  ];
  if (month < 1 || month > 12 || day < 1 || day > dim[month - 1]) throw bad();
  if (Number(h) > 23 || Number(mi) > 59 || Number(se) > 59) throw bad();
  let z = zone;
  if (zone !== "Z") {
    if (Number(zone.slice(1, 3)) > 23 || Number(zone.slice(4, 6)) > 59) throw bad();
    if (zone.slice(1) === "00:00") z = "Z";
  }
  let f = frac === undefined ? "" : frac.slice(1, 10).replace(/0+$/, "");
  if (f !== "") f = "." + f;
  return `${y}-${mo}-${d}T${h}:${mi}:${se}${f}${z}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Reading the manifest
// ---------------------------------------------------------------------------------------------------------------

function decodePlatform(node: JsonNode, path: string): Platform | undefined {
  if (node.kind === "null") return undefined;
  const p: Platform = { architecture: "", os: "" };
  decodeGoStruct(node, "Platform", path, {
    architecture: (v, q) => (p.architecture = goString(v, q, p.architecture, CODE)),
    os: (v, q) => (p.os = goString(v, q, p.os, CODE)),
    "os.version": (v, q) => (p["os.version"] = goString(v, q, p["os.version"] ?? "", CODE)),
    "os.features": (
      v,
      q,
    ) => (p["os.features"] = goSlice(v, q, "[]string", (n, r) => goString(n, r, "", CODE), CODE)),
    variant: (v, q) => (p.variant = goString(v, q, p.variant ?? "", CODE)),
  }, CODE);
  return p;
}

function decodeDescriptorInto(d: Descriptor, node: JsonNode, path: string): void {
  decodeGoStruct(node, "Descriptor", path, {
    mediaType: (v, q) => (d.mediaType = goString(v, q, d.mediaType, CODE)),
    digest: (v, q) => (d.digest = goString(v, q, d.digest, CODE)),
    size: (v, q) => (d.size = goInt(v, q, d.size, CODE)),
    urls: (v, q) => (d.urls = goSlice(v, q, "[]string", (n, r) => goString(n, r, "", CODE), CODE)),
    annotations: (v, q) => {
      const m = goMap(v, q, "map[string]string", (n, r) => goString(n, r, "", CODE), CODE);
      d.annotations = m === undefined ? undefined : { ...(d.annotations ?? {}), ...m };
    },
    data: (v, q) => {
      if (v.kind === "null") d.data = undefined;
      else if (v.kind !== "string") throw goTypeError(v, "[]uint8", q, CODE);
      else d.data = base64Encode(goBase64Decode(v.value, CODE));
    },
    platform: (v, q) => (d.platform = decodePlatform(v, q)),
    artifactType: (v, q) => (d.artifactType = goString(v, q, d.artifactType ?? "", CODE)),
  }, CODE);
}

function emptyDescriptor(): Descriptor {
  return { mediaType: "", digest: "", size: 0 };
}

function fieldPresent(node: JsonNode, name: string): boolean {
  if (node.kind !== "object") return false;
  let present = false;
  for (const e of node.entries) {
    if (e.key.toLowerCase() === name.toLowerCase()) present = e.value.kind !== "null";
  }
  return present;
}

/** Options of {@linkcode parseAttachmentManifest}. */
export interface ParseAttachmentManifestOptions {
  /** The media type the registry named (Content-Type); when given it must be the OCI manifest type. */
  readonly contentType?: string;
  /** The tag, for error texts (`repo:sha256-….sig`). */
  readonly tag?: string;
}

/**
 * Reads an existing `.sig`/`.att` manifest as containers/image does (`manifest.OCI1FromManifest`): Go
 * `json.Unmarshal` into image-spec's `Manifest`, so unknown members are dropped while `artifactType`, `subject` and
 * `annotations` are kept; a body that also has `manifests` or `fsLayers` is rejected as ambiguous. The media type
 * must be the OCI image manifest type: the `contentType` when given, else the body's `mediaType` when present.
 *
 * @throws {AirlockError} `UNSUPPORTED_MEDIA_TYPE` for another media type, `ATTACHMENT_INVALID` for a body Go
 * would not decode.
 *
 * @example
 * ```ts
 * const manifest = parseAttachmentManifest(fetched.bytes, { contentType: fetched.mediaType, tag });
 * ```
 */
export function parseAttachmentManifest(
  bytes: Uint8Array,
  options: ParseAttachmentManifestOptions = {},
): AttachmentManifest {
  const root = parseJsonTree(bytes, CODE);
  const m: AttachmentManifest = {
    schemaVersion: 0,
    mediaType: "",
    artifactType: "",
    config: emptyDescriptor(),
    layers: null,
  };
  decodeGoStruct(root, "Manifest", "Manifest", {
    schemaVersion: (v, q) => (m.schemaVersion = goInt(v, q, m.schemaVersion, CODE)),
    mediaType: (v, q) => (m.mediaType = goString(v, q, m.mediaType, CODE)),
    artifactType: (v, q) => (m.artifactType = goString(v, q, m.artifactType, CODE)),
    config: (v, q) => decodeDescriptorInto(m.config, v, q),
    layers: (v, q) => (m.layers = goSlice(v, q, "[]v1.Descriptor", (n, r) => {
      const d = emptyDescriptor();
      decodeDescriptorInto(d, n, r ?? q);
      return d;
    }, CODE) ?? null),
    subject: (v, q) => {
      if (v.kind === "null") {
        m.subject = undefined;
        return;
      }
      m.subject ??= emptyDescriptor();
      decodeDescriptorInto(m.subject, v, q);
    },
    annotations: (v, q) => {
      const a = goMap(v, q, "map[string]string", (n, r) => goString(n, r, "", CODE), CODE);
      m.annotations = a === undefined ? undefined : { ...(m.annotations ?? {}), ...a };
    },
  }, CODE);
  const unexpected = ["fsLayers", "manifests"].filter((f) => fieldPresent(root, f));
  if (unexpected.length > 0) {
    throw new AirlockError(
      CODE,
      `rejecting ambiguous manifest, unexpected fields []string{${
        unexpected.map((f) => `"${f}"`).join(", ")
      }} ` +
        `in supposedly ${MediaType.ociManifest}`,
    );
  }
  const mediaType = options.contentType ?? (m.mediaType !== "" ? m.mediaType : MediaType.ociManifest);
  if (mediaType !== MediaType.ociManifest) {
    throw new AirlockError(
      "UNSUPPORTED_MEDIA_TYPE",
      `unexpected MIME type for sigstore attachment manifest${options.tag ? " " + options.tag : ""}: ${
        goQuote(mediaType)
      }`,
    );
  }
  return m;
}

// ---------------------------------------------------------------------------------------------------------------
// Reading the config
// ---------------------------------------------------------------------------------------------------------------

function goStringSet(node: JsonNode, path: string, prev: string[] | undefined): string[] | undefined {
  const m = goMap(node, path, "map[string]struct {}", (n, q) => {
    if (n.kind !== "object" && n.kind !== "null") throw goTypeError(n, "struct {}", q, CODE);
    return true;
  }, CODE);
  if (m === undefined) return undefined;
  return [...new Set([...(prev ?? []), ...Object.keys(m)])];
}

function decodeHistory(node: JsonNode, path: string): AttachmentHistory {
  const h: AttachmentHistory = {};
  decodeGoStruct(node, "History", path, {
    created: (v, q) => (h.created = normaliseGoTime(v, q)),
    created_by: (v, q) => (h.created_by = goString(v, q, h.created_by ?? "", CODE)),
    author: (v, q) => (h.author = goString(v, q, h.author ?? "", CODE)),
    comment: (v, q) => (h.comment = goString(v, q, h.comment ?? "", CODE)),
    empty_layer: (v, q) => (h.empty_layer = goBool(v, q, h.empty_layer ?? false, CODE)),
  }, CODE);
  return h;
}

/**
 * Reads a `.sig` config as containers/image does: Go `json.Unmarshal` into image-spec's `Image`. Unknown members
 * (go-containerregistry's `container`, `docker_version`, …) are dropped; known ones, such as cosign's `created`
 * and `history`, are kept and re-serialise in Go's form ({@linkcode serializeAttachmentConfig}).
 *
 * @param digest the config digest, for the error text only
 * @throws {AirlockError} `ATTACHMENT_INVALID`: `parsing sigstore attachment config <digest>: <Go error>`
 *
 * @example
 * ```ts
 * const config = parseAttachmentConfig(configBytes, manifest.config.digest);
 * ```
 */
export function parseAttachmentConfig(bytes: Uint8Array, digest?: string): AttachmentConfig {
  try {
    return decodeConfig(parseJsonTree(bytes, CODE));
  } catch (e) {
    if (e instanceof AirlockError) {
      throw new AirlockError(
        CODE,
        `parsing sigstore attachment config${digest ? " " + digest : ""}: ${e.message}`,
        {
          cause: e,
        },
      );
    }
    throw e;
  }
}

function decodeConfig(root: JsonNode): AttachmentConfig {
  const c: AttachmentConfig = { architecture: "", os: "", config: {}, rootfs: { type: "", diff_ids: null } };
  const str = (v: JsonNode, q: string, prev: string | undefined) => goString(v, q, prev ?? "", CODE);
  const strs = (v: JsonNode, q: string) =>
    goSlice(v, q, "[]string", (n, r) => goString(n, r, "", CODE), CODE);
  decodeGoStruct(root, "Image", "Image", {
    created: (v, q) => (c.created = normaliseGoTime(v, q)),
    author: (v, q) => (c.author = str(v, q, c.author)),
    architecture: (v, q) => (c.architecture = str(v, q, c.architecture)),
    os: (v, q) => (c.os = str(v, q, c.os)),
    "os.version": (v, q) => (c["os.version"] = str(v, q, c["os.version"])),
    "os.features": (v, q) => (c["os.features"] = strs(v, q)),
    variant: (v, q) => (c.variant = str(v, q, c.variant)),
    config: (v, q) => {
      const ic = c.config;
      decodeGoStruct(v, "ImageConfig", q, {
        User: (w, r) => (ic.User = str(w, r, ic.User)),
        ExposedPorts: (w, r) => (ic.ExposedPorts = goStringSet(w, r, ic.ExposedPorts)),
        Env: (w, r) => (ic.Env = strs(w, r)),
        Entrypoint: (w, r) => (ic.Entrypoint = strs(w, r)),
        Cmd: (w, r) => (ic.Cmd = strs(w, r)),
        Volumes: (w, r) => (ic.Volumes = goStringSet(w, r, ic.Volumes)),
        WorkingDir: (w, r) => (ic.WorkingDir = str(w, r, ic.WorkingDir)),
        Labels: (w, r) => {
          const m = goMap(w, r, "map[string]string", (n, p) => goString(n, p, "", CODE), CODE);
          ic.Labels = m === undefined ? undefined : { ...(ic.Labels ?? {}), ...m };
        },
        StopSignal: (w, r) => (ic.StopSignal = str(w, r, ic.StopSignal)),
        ArgsEscaped: (w, r) => (ic.ArgsEscaped = goBool(w, r, ic.ArgsEscaped ?? false, CODE)),
      }, CODE);
    },
    rootfs: (v, q) =>
      decodeGoStruct(v, "RootFS", q, {
        type: (w, r) => (c.rootfs.type = str(w, r, c.rootfs.type)),
        diff_ids: (w, r) => (c.rootfs.diff_ids = goSlice(w, r, "[]digest.Digest", (n, p) =>
          goString(n, p, "", CODE), CODE) ?? null),
      }, CODE),
    history: (v, q) => (c.history = goSlice(v, q, "[]v1.History", (n, r) => decodeHistory(n, r ?? q), CODE)),
  }, CODE);
  return c;
}

// ---------------------------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------------------------

type Field = readonly [name: string, json: string | undefined];

function goStruct(fields: readonly Field[]): string {
  return "{" + fields.filter((f) => f[1] !== undefined).map(([k, v]) => goJsonString(k) + ":" + v).join(",") +
    "}";
}

const nonEmpty = (s: string | undefined): string | undefined => (s ? goJsonString(s) : undefined);
const strList = (a: readonly string[] | undefined): string | undefined =>
  a && a.length > 0 ? "[" + a.map(goJsonString).join(",") + "]" : undefined;
const strMap = (m: Readonly<Record<string, string>> | undefined): string | undefined =>
  m && Object.keys(m).length > 0 ? goJsonMap(m, goJsonString) : undefined;
const strSet = (a: readonly string[] | undefined): string | undefined =>
  a && a.length > 0
    ? "{" + [...a].sort(compareGoMapKeys).map((k) => goJsonString(k) + ":{}").join(",") + "}"
    : undefined;

function encodePlatform(p: Platform): string {
  return goStruct([
    ["architecture", goJsonString(p.architecture)],
    ["os", goJsonString(p.os)],
    ["os.version", nonEmpty(p["os.version"])],
    ["os.features", strList(p["os.features"])],
    ["variant", nonEmpty(p.variant)],
  ]);
}

function encodeDescriptor(d: Descriptor): string {
  return goStruct([
    ["mediaType", goJsonString(d.mediaType)],
    ["digest", goJsonString(d.digest)],
    ["size", goJsonInt(d.size)],
    ["urls", strList(d.urls)],
    ["annotations", strMap(d.annotations)],
    ["data", nonEmpty(d.data)],
    ["platform", d.platform ? encodePlatform(d.platform) : undefined],
    ["artifactType", nonEmpty(d.artifactType)],
  ]);
}

/**
 * Serialises a `.sig` manifest as Go's `json.Marshal(imgspecv1.Manifest)`: compact, field order `schemaVersion,
 * mediaType, artifactType, config, layers, subject, annotations`; descriptor order `mediaType, digest, size, urls,
 * annotations, data, platform, artifactType`; empty optional fields left out, map keys sorted.
 *
 * @example
 * ```ts
 * const bytes = serializeAttachmentManifest(manifest);
 * ```
 */
export function serializeAttachmentManifest(m: AttachmentManifest): Uint8Array {
  const json = goStruct([
    ["schemaVersion", goJsonInt(m.schemaVersion)],
    ["mediaType", nonEmpty(m.mediaType)],
    ["artifactType", nonEmpty(m.artifactType)],
    ["config", encodeDescriptor(m.config)],
    ["layers", m.layers === null ? "null" : "[" + m.layers.map(encodeDescriptor).join(",") + "]"],
    ["subject", m.subject ? encodeDescriptor(m.subject) : undefined],
    ["annotations", strMap(m.annotations)],
  ]);
  return new TextEncoder().encode(json);
}

/**
 * Serialises a `.sig` config as Go's `json.Marshal(imgspecv1.Image)`: compact, field order `created, author,
 * architecture, os, os.version, os.features, variant, config, rootfs, history`; `architecture`, `os`, `config`,
 * `rootfs` always written (`config` as `{}` when empty), `diff_ids` as `null` when nil.
 *
 * @example
 * ```ts
 * serializeAttachmentConfig(freshAttachmentState().config); // {"architecture":"","os":"","config":{},"rootfs":{"type":"layers","diff_ids":null}}
 * ```
 */
export function serializeAttachmentConfig(c: AttachmentConfig): Uint8Array {
  const ic = c.config;
  const imageConfig = goStruct([
    ["User", nonEmpty(ic.User)],
    ["ExposedPorts", strSet(ic.ExposedPorts)],
    ["Env", strList(ic.Env)],
    ["Entrypoint", strList(ic.Entrypoint)],
    ["Cmd", strList(ic.Cmd)],
    ["Volumes", strSet(ic.Volumes)],
    ["WorkingDir", nonEmpty(ic.WorkingDir)],
    ["Labels", strMap(ic.Labels)],
    ["StopSignal", nonEmpty(ic.StopSignal)],
    ["ArgsEscaped", ic.ArgsEscaped ? "true" : undefined],
  ]);
  const history = c.history && c.history.length > 0
    ? "[" + c.history.map((h) =>
      goStruct([
        ["created", h.created !== undefined ? goJsonString(h.created) : undefined],
        ["created_by", nonEmpty(h.created_by)],
        ["author", nonEmpty(h.author)],
        ["comment", nonEmpty(h.comment)],
        ["empty_layer", h.empty_layer ? "true" : undefined],
      ])
    ).join(",") + "]"
    : undefined;
  const json = goStruct([
    ["created", c.created !== undefined ? goJsonString(c.created) : undefined],
    ["author", nonEmpty(c.author)],
    ["architecture", goJsonString(c.architecture)],
    ["os", goJsonString(c.os)],
    ["os.version", nonEmpty(c["os.version"])],
    ["os.features", strList(c["os.features"])],
    ["variant", nonEmpty(c.variant)],
    ["config", imageConfig],
    [
      "rootfs",
      goStruct([
        ["type", goJsonString(c.rootfs.type)],
        [
          "diff_ids",
          c.rootfs.diff_ids === null ? "null" : "[" + c.rootfs.diff_ids.map(goJsonString).join(",") + "]",
        ],
      ]),
    ],
    ["history", history],
  ]);
  return new TextEncoder().encode(json);
}

/**
 * The state containers/image starts from when no `.sig` tag exists yet: an OCI manifest with an empty config
 * descriptor and no layers, and a config that is empty except `rootfs.type = "layers"`.
 *
 * @example
 * ```ts
 * const { manifest, config } = freshAttachmentState();
 * ```
 */
export function freshAttachmentState(): AttachmentState {
  return {
    manifest: {
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      artifactType: "",
      config: { mediaType: MediaType.ociConfig, digest: "", size: 0 },
      layers: null,
    },
    config: { architecture: "", os: "", config: {}, rootfs: { type: "layers", diff_ids: null } },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Appending
// ---------------------------------------------------------------------------------------------------------------

/** One signature (or other attachment) to add as a layer. */
export interface NewAttachmentLayer {
  /** The blob: the payload bytes for a signature. */
  readonly payload: Uint8Array;
  /** The layer annotations (`dev.cosignproject.cosign/signature`, …). */
  readonly annotations?: Readonly<Record<string, string>>;
  /** Default {@linkcode SIMPLE_SIGNING_MEDIA_TYPE}. */
  readonly mediaType?: string;
}

/** What {@linkcode appendSignatureLayers} produced: the new state, its bytes, and the blobs to upload first. */
export interface AppendResult {
  readonly manifest: AttachmentManifest;
  readonly config: AttachmentConfig;
  /** The manifest to PUT at the `.sig` tag. */
  readonly manifestBytes: Uint8Array;
  /** `sha256:<hex>` of `manifestBytes`. */
  readonly manifestDigest: string;
  /** The config blob to upload (always, even when nothing was added, as containers/image does). */
  readonly configBytes: Uint8Array;
  /** `sha256:<hex>` of `configBytes`. */
  readonly configDigest: string;
  /** Payload blobs of the added layers, each once, in order. */
  readonly layersToUpload: readonly { readonly digest: string; readonly bytes: Uint8Array }[];
  /** How many layers were added (0 when every one was already there). */
  readonly added: number;
}

function sameAnnotations(
  a: Readonly<Record<string, string>> | undefined,
  b: Readonly<Record<string, string>> | undefined,
): boolean {
  const ka = Object.keys(a ?? {});
  const kb = Object.keys(b ?? {});
  if (ka.length !== kb.length) return false;
  return ka.every((k) => b !== undefined && Object.hasOwn(b, k) && b[k] === a![k]);
}

/**
 * containers/image's `layerMatchesSigstoreSignature`: the layer has the same media type, `size == len(payload)`,
 * `digest == sha256(payload)` and an identical annotations map (absent and empty maps are equal).
 *
 * @example
 * ```ts
 * manifest.layers?.some((l) => layerMatchesSignature(l, mediaType, payload, annotations));
 * ```
 */
export function layerMatchesSignature(
  layer: Descriptor,
  mediaType: string,
  payload: Uint8Array,
  annotations: Readonly<Record<string, string>> | undefined,
  payloadDigest: string = sha256Digest(payload),
): boolean {
  return layer.mediaType === mediaType && layer.size === payload.length && layer.digest === payloadDigest &&
    sameAnnotations(layer.annotations, annotations);
}

function cloneDescriptor(d: Descriptor): Descriptor {
  return structuredClone(d);
}

/**
 * Appends signature layers to a `.sig` tag's content exactly as containers/image does
 * (`putSignaturesToSigstoreAttachments`, spec/hangar.md §5.5 steps 3–6):
 *
 * 1. start from `existing` (parsed manifest + config) or from {@linkcode freshAttachmentState};
 * 2. for each new layer, skip it when some current layer (existing or just added) matches it
 *    ({@linkcode layerMatchesSignature}); otherwise append the layer `{mediaType, digest, size, annotations}` and
 *    its digest to `rootfs.diff_ids`;
 * 3. serialise the config, point `manifest.config` at it (`{mediaType: OCI config, digest, size}`, replacing
 *    whatever descriptor was there), serialise the manifest.
 *
 * Existing layers, foreign ones included, are kept in order. Inputs are not modified.
 *
 * @example
 * ```ts
 * const r = appendSignatureLayers(undefined, [{ payload, annotations: { [ANNOTATION_SIGNATURE]: b64 } }]);
 * // r.configBytes.length === 153; upload r.layersToUpload, then the config, then PUT r.manifestBytes
 * ```
 */
export function appendSignatureLayers(
  existing: AttachmentState | undefined,
  newLayers: readonly NewAttachmentLayer[],
): AppendResult {
  const base = existing ?? freshAttachmentState();
  const manifest: AttachmentManifest = {
    ...base.manifest,
    config: cloneDescriptor(base.manifest.config),
    layers: base.manifest.layers === null ? null : base.manifest.layers.map(cloneDescriptor),
    ...(base.manifest.subject ? { subject: cloneDescriptor(base.manifest.subject) } : {}),
    ...(base.manifest.annotations ? { annotations: { ...base.manifest.annotations } } : {}),
  };
  const config: AttachmentConfig = structuredClone(base.config);
  const uploads = new Map<string, Uint8Array>();
  let added = 0;
  for (const layer of newLayers) {
    const mediaType = layer.mediaType ?? SIMPLE_SIGNING_MEDIA_TYPE;
    const digest = sha256Digest(layer.payload);
    if (
      (manifest.layers ?? []).some((l) =>
        layerMatchesSignature(l, mediaType, layer.payload, layer.annotations, digest)
      )
    ) {
      continue;
    }
    const desc: Descriptor = { mediaType, digest, size: layer.payload.length };
    if (layer.annotations && Object.keys(layer.annotations).length > 0) {
      desc.annotations = { ...layer.annotations };
    }
    manifest.layers = [...(manifest.layers ?? []), desc];
    config.rootfs.diff_ids = [...(config.rootfs.diff_ids ?? []), digest];
    if (!uploads.has(digest)) uploads.set(digest, layer.payload);
    added++;
  }
  const configBytes = serializeAttachmentConfig(config);
  const configDigest = sha256Digest(configBytes);
  manifest.config = { mediaType: MediaType.ociConfig, digest: configDigest, size: configBytes.length };
  const manifestBytes = serializeAttachmentManifest(manifest);
  return {
    manifest,
    config,
    manifestBytes,
    manifestDigest: sha256Digest(manifestBytes),
    configBytes,
    configDigest,
    layersToUpload: [...uploads].map(([digest, bytes]) => ({ digest, bytes })),
    added,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Reading signatures out of a manifest
// ---------------------------------------------------------------------------------------------------------------

/** One layer of an attachment manifest, with the cosign annotations picked out. */
export interface AttachmentLayer {
  /** Position in the manifest's `layers`. */
  readonly index: number;
  /**
   * {@linkcode SIMPLE_SIGNING_MEDIA_TYPE} for signatures, {@linkcode DSSE_ENVELOPE_MEDIA_TYPE} for attestations,
   * anything else for other attachments.
   */
  readonly mediaType: string;
  /** `algorithm:hex` digest of the layer blob, as the descriptor states it. */
  readonly digest: string;
  /** Size of the layer blob in bytes, as the descriptor states it. */
  readonly size: number;
  /** Every layer annotation (a copy; `{}` when there are none). */
  readonly annotations: Readonly<Record<string, string>>;
  /**
   * `true` when the media type is {@linkcode SIMPLE_SIGNING_MEDIA_TYPE}: containers/image evaluates only these;
   * every other layer counts as a "sigstore non-signature attachment" (spec/hangar.md §6.4b).
   */
  readonly isSignature: boolean;
  /** {@linkcode ANNOTATION_SIGNATURE}, base64 (may be `""` on attestation layers). */
  readonly signature?: string;
  /** {@linkcode ANNOTATION_CERTIFICATE} (PEM). */
  readonly certificate?: string;
  /** {@linkcode ANNOTATION_CHAIN} (PEM). */
  readonly chain?: string;
  /** {@linkcode ANNOTATION_BUNDLE} (JSON). */
  readonly bundle?: string;
  /** {@linkcode ANNOTATION_RFC3161_TIMESTAMP} (JSON). */
  readonly rfc3161Timestamp?: string;
  /** {@linkcode ANNOTATION_PREDICATE_TYPE}. */
  readonly predicateType?: string;
}

/**
 * Lists the layers of an attachment manifest in order, with their cosign annotations and the containers/image
 * classification (`isSignature`).
 *
 * @example
 * ```ts
 * for (const l of listAttachmentLayers(manifest).filter((l) => l.isSignature)) fetchBlob(l.digest);
 * ```
 */
export function listAttachmentLayers(manifest: AttachmentManifest): AttachmentLayer[] {
  return (manifest.layers ?? []).map((d, index) => {
    const a = d.annotations ?? {};
    const pick = (k: string) => (Object.hasOwn(a, k) ? a[k] : undefined);
    const layer: AttachmentLayer = {
      index,
      mediaType: d.mediaType,
      digest: d.digest,
      size: d.size,
      annotations: { ...a },
      isSignature: d.mediaType === SIMPLE_SIGNING_MEDIA_TYPE,
      signature: pick(ANNOTATION_SIGNATURE),
      certificate: pick(ANNOTATION_CERTIFICATE),
      chain: pick(ANNOTATION_CHAIN),
      bundle: pick(ANNOTATION_BUNDLE),
      rfc3161Timestamp: pick(ANNOTATION_RFC3161_TIMESTAMP),
      predicateType: pick(ANNOTATION_PREDICATE_TYPE),
    };
    for (const k of Object.keys(layer) as (keyof AttachmentLayer)[]) {
      if (layer[k] === undefined) delete (layer as unknown as Record<string, unknown>)[k];
    }
    return layer;
  });
}

/**
 * Splits layers as containers/image's policy evaluation does: signature layers to evaluate, in order, and the
 * count of other layers (reported as `… sigstore non-signature attachments` when nothing was accepted).
 *
 * @example
 * ```ts
 * const { signatures, nonSignatureAttachments } = classifyAttachmentLayers(listAttachmentLayers(manifest));
 * ```
 */
export function classifyAttachmentLayers(
  layers: readonly AttachmentLayer[],
): { signatures: AttachmentLayer[]; nonSignatureAttachments: number } {
  const signatures = layers.filter((l) => l.isSignature);
  return { signatures, nonSignatureAttachments: layers.length - signatures.length };
}

/**
 * Decodes a layer's signature annotation as containers/image does.
 *
 * @throws {AirlockError} `SIGNATURE_INVALID`: `missing dev.cosignproject.cosign/signature annotation` or
 * `base64 decoding: illegal base64 data at input byte <n>`
 *
 * @example
 * ```ts
 * const sig = decodeSignatureAnnotation(layer.annotations);
 * ```
 */
export function decodeSignatureAnnotation(
  annotations: Readonly<Record<string, string>> | undefined,
): Uint8Array {
  if (annotations === undefined || !Object.hasOwn(annotations, ANNOTATION_SIGNATURE)) {
    throw new AirlockError("SIGNATURE_INVALID", `missing ${ANNOTATION_SIGNATURE} annotation`);
  }
  try {
    return goBase64Decode(annotations[ANNOTATION_SIGNATURE]);
  } catch (e) {
    throw new AirlockError("SIGNATURE_INVALID", `base64 decoding: ${(e as Error).message}`, { cause: e });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Idempotency
// ---------------------------------------------------------------------------------------------------------------

/** A layer with its blob fetched (and digest-checked) by the caller. */
export interface DecodedAttachmentLayer {
  readonly mediaType: string;
  /** The layer digest; when given, the payload must hash to it. */
  readonly digest?: string;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly payload: Uint8Array;
}

/** What {@linkcode findEquivalentSignature} looks for. */
export interface EquivalentSignatureQuery {
  /** The digest the new signature would name. */
  readonly manifestDigest: string;
  /** The identity the new signature would carry. */
  readonly dockerReference: string;
  /** The user annotations the new signature would carry (besides `creator`/`timestamp`); default none. */
  readonly annotations?: Readonly<Record<string, string>>;
  /**
   * Tells whether `signature` over `payload` verifies with the signing key (for keyless: the identity in the
   * layer's certificate). A throw counts as "no".
   */
  verify(
    payload: Uint8Array,
    signature: Uint8Array,
    layer: DecodedAttachmentLayer,
  ): boolean | Promise<boolean>;
}

/** The equivalent signature found. */
export interface EquivalentSignature {
  /** Index in the `layers` given. */
  readonly index: number;
  readonly payload: SimpleSigningPayload;
}

/**
 * airlock's idempotency rule: is there already a signature by the same key for the same digest and identity?
 * A layer is equivalent when it is a simple-signing layer, its payload hashes to its digest (when given), its
 * signature annotation decodes and verifies (`query.verify`), its payload passes the strict parse, names
 * `manifestDigest` and `dockerReference` exactly, and its user annotations (the `optional` members other than
 * `creator` and `timestamp`) equal `query.annotations` exactly (string values; none means none). Creator and
 * timestamp do not matter. The signature is checked before the payload is parsed, as in verification.
 *
 * @returns the first equivalent layer, or `undefined` (then a new layer is due)
 *
 * @example
 * ```ts
 * const found = await findEquivalentSignature(decoded, {
 *   manifestDigest, dockerReference, verify: (p, s) => verifyWithKey(publicKey, p, s),
 * });
 * if (found && !force) return "already signed";
 * ```
 */
export async function findEquivalentSignature(
  layers: readonly DecodedAttachmentLayer[],
  query: EquivalentSignatureQuery,
): Promise<EquivalentSignature | undefined> {
  const wanted = query.annotations ?? {};
  for (let index = 0; index < layers.length; index++) {
    const layer = layers[index];
    if (layer.mediaType !== SIMPLE_SIGNING_MEDIA_TYPE) continue;
    if (layer.digest !== undefined && layer.digest !== sha256Digest(layer.payload)) continue;
    let signature: Uint8Array;
    try {
      signature = decodeSignatureAnnotation(layer.annotations);
    } catch {
      continue;
    }
    let ok = false;
    try {
      ok = await query.verify(layer.payload, signature, layer);
    } catch {
      ok = false;
    }
    if (!ok) continue;
    let payload: SimpleSigningPayload;
    try {
      payload = parseSimpleSigningPayload(layer.payload);
    } catch {
      continue;
    }
    if (payload.dockerManifestDigest !== query.manifestDigest) continue;
    if (payload.dockerReference !== query.dockerReference) continue;
    const have = payloadAnnotations(payload);
    const keys = Object.keys(have);
    if (keys.length !== Object.keys(wanted).length) continue;
    if (!keys.every((k) => Object.hasOwn(wanted, k) && have[k] === wanted[k])) continue;
    return { index, payload };
  }
  return undefined;
}
