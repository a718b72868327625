/**
 * The `.sig`/`.att` manifest and its config as containers/image reads and writes them (spec/hangar.md §5.5): read
 * as Go reads them into image-spec's `Manifest` and `Image` (unknown fields dropped, `artifactType`, `subject`,
 * `annotations` kept), re-serialised in Go struct order, compact, so that an append changes nothing else.
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
import { goQuote } from "../encoding/go_quote.ts";

const CODE: ErrorCode = "ATTACHMENT_INVALID";

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
