/**
 * Malformed manifests and indexes, for the hostile-input suite: named attacks (the shapes issue 15 names and
 * more), and seeded mutations of valid documents where the validity of each mutation is known by construction
 * (a mutation that breaks a type rule is invalid; one that only changes a value inside its type is valid).
 *
 * @module
 */
import type { Rng } from "./rng.ts";

/** OCI media types used here. */
export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
/** OCI index media type. */
export const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
const LAYER = "application/vnd.oci.image.layer.v1.tar+gzip";

const hex = (c: string) => c.repeat(64);

/** A valid image manifest document. */
export function validManifest(rng?: Rng): Record<string, unknown> {
  const n = rng ? rng.int(4) : 1;
  return {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: `sha256:${hex("a")}`, size: 123 },
    layers: Array.from({ length: n }, (_, i) => ({
      mediaType: LAYER,
      digest: `sha256:${hex("0123456789"[i])}`,
      size: 1000 + i,
      annotations: { k: `v${i}` },
    })),
  };
}

/** A valid index document. */
export function validIndex(rng?: Rng): Record<string, unknown> {
  const arches = ["amd64", "arm64", "s390x"];
  const n = rng ? 1 + rng.int(3) : 2;
  return {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: Array.from({ length: n }, (_, i) => ({
      mediaType: OCI_MANIFEST,
      digest: `sha256:${hex("bcd"[i])}`,
      size: 500 + i,
      platform: { architecture: arches[i], os: "linux" },
    })),
  };
}

/** A named malformed document and the media type it is served as. */
export interface ManifestAttack {
  /** What is wrong with it. */
  readonly name: string;
  /** The bytes served. */
  readonly body: string;
  /** The `Content-Type` served. */
  readonly mediaType: string;
}

/** The named attacks: JSON that is not a manifest or index of the type it is served as. */
export function manifestAttacks(): ManifestAttack[] {
  const m = (patch: Record<string, unknown>) => JSON.stringify({ ...validManifest(), ...patch });
  const i = (patch: Record<string, unknown>) => JSON.stringify({ ...validIndex(), ...patch });
  const entry = (patch: Record<string, unknown>) =>
    JSON.stringify({
      ...validIndex(),
      manifests: [{ ...(validIndex().manifests as object[])[0], ...patch }],
    });
  return [
    { name: "[] as a manifest", body: "[]", mediaType: OCI_MANIFEST },
    { name: "{} as a manifest", body: "{}", mediaType: OCI_MANIFEST },
    { name: "config: null", body: m({ config: null }), mediaType: OCI_MANIFEST },
    { name: 'manifests: "x"', body: i({ manifests: "x" }), mediaType: OCI_INDEX },
    { name: "[] as an index", body: "[]", mediaType: OCI_INDEX },
    { name: "{} as an index", body: "{}", mediaType: OCI_INDEX },
    { name: "layers: [null]", body: m({ layers: [null] }), mediaType: OCI_MANIFEST },
    { name: "layers: {}", body: m({ layers: {} }), mediaType: OCI_MANIFEST },
    {
      name: 'config size "1"',
      body: m({ config: { mediaType: OCI_CONFIG, digest: `sha256:${hex("a")}`, size: "1" } }),
      mediaType: OCI_MANIFEST,
    },
    {
      name: "config digest not hex",
      body: m({ config: { mediaType: OCI_CONFIG, digest: "sha256:zz", size: 1 } }),
      mediaType: OCI_MANIFEST,
    },
    { name: "index entry size -1", body: entry({ size: -1 }), mediaType: OCI_INDEX },
    { name: "index entry digest missing", body: entry({ digest: undefined }), mediaType: OCI_INDEX },
    { name: 'index entry platform "linux"', body: entry({ platform: "linux/amd64" }), mediaType: OCI_INDEX },
    {
      name: "index entry architecture 1",
      body: entry({ platform: { architecture: 1, os: "linux" } }),
      mediaType: OCI_INDEX,
    },
    { name: "index entry null", body: i({ manifests: [null] }), mediaType: OCI_INDEX },
    { name: "schemaVersion 3", body: m({ schemaVersion: 3 }), mediaType: OCI_MANIFEST },
    { name: "schemaVersion missing", body: m({ schemaVersion: undefined }), mediaType: OCI_MANIFEST },
    {
      name: "mediaType says index, served as manifest",
      body: m({ mediaType: OCI_INDEX }),
      mediaType: OCI_MANIFEST,
    },
    { name: "manifest with manifests (ambiguous)", body: m({ manifests: [] }), mediaType: OCI_MANIFEST },
    { name: "index with layers (ambiguous)", body: i({ layers: [] }), mediaType: OCI_INDEX },
    { name: "annotations with a number", body: m({ annotations: { a: 1 } }), mediaType: OCI_MANIFEST },
    { name: "not JSON", body: '{"schemaVersion":2,', mediaType: OCI_MANIFEST },
    { name: "a JSON string", body: '"manifest"', mediaType: OCI_MANIFEST },
    { name: "null", body: "null", mediaType: OCI_INDEX },
  ];
}

/** Values of the wrong type for any member. */
const WRONG = [null, 1, -1, 1.5, "x", true, [], {}, [1], ["x"], { a: 1 }];

/**
 * A seeded mutation of a valid manifest or index, with whether it is still valid. Mutations: a member deleted,
 * set to a value of another type or to null, a descriptor's digest or size broken, an unknown member added, a
 * descriptor's annotations or platform broken, the document wrapped or truncated.
 */
export function mutateManifest(rng: Rng): { body: string; mediaType: string; valid: boolean; what: string } {
  const isIndex = rng.chance(0.5);
  const doc = isIndex ? validIndex(rng) : validManifest(rng);
  const mediaType = isIndex ? OCI_INDEX : OCI_MANIFEST;
  const list = (isIndex ? doc.manifests : doc.layers) as Record<string, unknown>[];
  const kind = rng.int(9);
  let valid = false;
  let what = "";
  if (kind === 0) {
    const key = rng.pick(
      isIndex
        ? ["schemaVersion", "manifests", "mediaType"]
        : ["schemaVersion", "config", "layers", "mediaType"],
    );
    delete doc[key];
    // Absent optional members and a missing list (Go: nil slice) are fine; a missing schemaVersion or config is not.
    valid = key === "mediaType" || key === "manifests" || key === "layers";
    what = `${key} deleted`;
  } else if (kind === 1) {
    const key = rng.pick(isIndex ? ["schemaVersion", "manifests"] : ["schemaVersion", "config", "layers"]);
    const v = rng.pick(WRONG);
    doc[key] = v;
    valid = (key === "manifests" || key === "layers") && (v === null || (Array.isArray(v) && v.length === 0));
    what = `${key} = ${JSON.stringify(v)}`;
  } else if (kind === 2 && list.length > 0) {
    const d = rng.pick(list);
    const bad = rng.pick([
      `sha256:${"a".repeat(63)}`,
      `sha256:${"A".repeat(64)}`,
      `md5:${"a".repeat(32)}`,
      `sha256:${"a".repeat(64)}\n`,
      "",
      `sha512:${"a".repeat(64)}`,
    ]);
    d.digest = bad;
    what = `digest ${JSON.stringify(bad)}`;
  } else if (kind === 3 && list.length > 0) {
    const d = rng.pick(list);
    const v = rng.pick([-1, 1.5, "12", null, 2 ** 53, Number.MAX_SAFE_INTEGER, 0, {}]);
    d.size = v;
    valid = v === 0 || v === Number.MAX_SAFE_INTEGER;
    what = `size ${JSON.stringify(v)}`;
  } else if (kind === 4) {
    doc[`x-${rng.text(5)}`] = rng.pick(WRONG);
    valid = true; // unknown members are ignored, as Go does
    what = "unknown member";
  } else if (kind === 5 && list.length > 0) {
    const d = rng.pick(list);
    const v = rng.pick([{ a: 1 }, { a: null }, ["x"], "x", null, { a: "b" }]);
    d.annotations = v;
    valid = v === null ||
      (typeof v === "object" && !Array.isArray(v) && Object.values(v).every((s) => typeof s === "string"));
    what = `annotations ${JSON.stringify(v)}`;
  } else if (kind === 6 && isIndex && list.length > 0) {
    const d = rng.pick(list);
    const v = rng.pick(["linux", 1, [], null, { architecture: 1 }, { os: ["linux"] }, {
      architecture: "arm",
      os: "linux",
      variant: "v7",
    }, { "os.features": "x" }]);
    d.platform = v;
    valid = v === null ||
      (typeof v === "object" && !Array.isArray(v) &&
        Object.entries(v).every(([k, s]) => k !== "os.features" && typeof s === "string"));
    what = `platform ${JSON.stringify(v)}`;
  } else if (kind === 7) {
    const text = JSON.stringify(doc);
    return { body: text.slice(0, rng.int(text.length)), mediaType, valid: false, what: "truncated" };
  } else {
    const wrap = rng.pick(["[]", "[doc]", "null", "1", '"doc"']);
    return {
      body: wrap.replace("doc", JSON.stringify(doc)),
      mediaType,
      valid: false,
      what: `wrapped ${wrap}`,
    };
  }
  return { body: JSON.stringify(doc), mediaType, valid, what };
}
