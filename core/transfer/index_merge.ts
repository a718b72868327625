/**
 * The index `mirror` writes at the destination, as hangar v1.8's mirror builds it: the source entries that pass the
 * arch/os filter (with `provenance`, also the buildx attestation entries of the platforms chosen), merged with the
 * platforms the destination's index at the tag already lists — a chosen platform replaces the destination's entry
 * of the same platform, attestation entries whose image is gone are dropped. Unlike hangar, which always pushes an
 * index of its own making, the source index is kept byte for byte (its digest and signatures carry over) whenever
 * the result lists exactly the source's entries; otherwise the new index is the source document with its
 * `manifests` replaced (every other field, and every entry's fields, as they were). {@linkcode planIndex} decides
 * which children of a source index are copied, {@linkcode manifestBlobs} which blobs of a manifest.
 *
 * @module
 */
import { sha256Digest } from "../encoding/digest.ts";
import { formatPlatform } from "../platform.ts";
import { readIndexObject } from "../registry/manifest.ts";
import type { Descriptor, FetchedManifest } from "../registry/types.ts";
import { parseImageManifest } from "../registry/manifest.ts";
import { AirlockError } from "../errors.ts";
import { allowsPlatform, type PlatformFilter } from "../platform.ts";
import { isIndexMediaType, isSchema1MediaType } from "../registry/types.ts";

/** buildx's annotations on an attestation entry (`unknown/unknown`) and the image entry it describes. */
const REFERENCE_TYPE = "vnd.docker.reference.type";
const REFERENCE_DIGEST = "vnd.docker.reference.digest";

/**
 * Whether an index entry is a buildx attestation manifest (SLSA provenance, SBOM): platform `unknown/unknown` and
 * `vnd.docker.reference.type: attestation-manifest` (hangar's `IsAttestations`).
 *
 * @example
 * ```ts
 * isAttestationEntry({ mediaType: "…", digest: "sha256:…", size: 1, platform: { architecture: "unknown", os: "unknown" },
 *   annotations: { "vnd.docker.reference.type": "attestation-manifest" } }); // true
 * ```
 */
export function isAttestationEntry(e: Descriptor): boolean {
  return e.platform?.architecture === "unknown" && e.platform?.os === "unknown" &&
    e.annotations?.[REFERENCE_TYPE] === "attestation-manifest";
}

/** The image entry an attestation entry describes. */
function describedDigest(e: Descriptor): string | undefined {
  return e.annotations?.[REFERENCE_DIGEST];
}

/** The identity of an entry's platform for replacement: os, architecture, variant and os.version. */
function platformKey(e: Descriptor): string {
  const p = e.platform;
  return p ? `${p.os}/${p.architecture}/${p.variant ?? ""}/${p["os.version"] ?? ""}` : "";
}

/**
 * The entries of an index the filter chose: those `allowed` accepts, and with `provenance` the attestation entries
 * of the chosen images (which the filter itself refuses: their platform is `unknown/unknown`).
 */
export function chooseEntries(
  entries: readonly Descriptor[],
  allowed: (e: Descriptor) => boolean,
  provenance: boolean,
): Descriptor[] {
  const images = new Set(entries.filter((e) => allowed(e) && !isAttestationEntry(e)).map((e) => e.digest));
  return entries.filter((e) =>
    allowed(e) || (provenance && isAttestationEntry(e) && images.has(describedDigest(e) ?? ""))
  );
}

/** The index to write at the destination. */
export interface DestinationIndex {
  /** The bytes: the source index's own, or a new document. */
  readonly bytes: Uint8Array;
  /** Their digest. */
  readonly digest: string;
  /** Whether this is not the source index (a new digest: the source index's signatures do not apply). */
  readonly rewritten: boolean;
  /** Platforms of the source index not in the destination index (`os/arch[/variant]`, or digests). */
  readonly leftOut: readonly string[];
  /** Platforms of the destination's earlier index kept in the new one. */
  readonly kept: readonly string[];
}

/**
 * The index to write: the `chosen` entries of `doc` (the parsed source index, `chosen` being objects of its
 * `manifests`) merged with `existing` (the destination's index at the tag; `undefined` for none, or to replace it).
 * The source bytes when the result lists exactly the source's entries.
 */
export function destinationIndex(
  source: FetchedManifest,
  doc: Readonly<Record<string, unknown>> & { readonly manifests: readonly Descriptor[] },
  chosen: readonly Descriptor[],
  existing: FetchedManifest | undefined,
): DestinationIndex {
  const entries = doc.manifests;
  const picked = entries.filter((e) => chosen.includes(e));
  const earlier = existing ? existingEntries(existing) : [];
  const pickedKeys = new Set(picked.filter((e) => !isAttestationEntry(e)).map(platformKey));
  const pickedDigests = new Set(picked.map((e) => e.digest));
  // hangar's builder: the destination's entries first, each replaced by a chosen entry of the same platform (or
  // digest), then the chosen ones; attestation entries whose image is no longer listed are dropped.
  const keptEarlier = earlier.filter((e) =>
    !pickedDigests.has(e.digest) && (isAttestationEntry(e) || !pickedKeys.has(platformKey(e)))
  );
  const merged = [...keptEarlier, ...picked];
  const images = new Set(merged.filter((e) => !isAttestationEntry(e)).map((e) => e.digest));
  const final = merged.filter((e) => !isAttestationEntry(e) || images.has(describedDigest(e) ?? ""));

  const finalDigests = new Set(final.map((e) => e.digest));
  const sourceDigests = new Set(entries.map((e) => e.digest));
  const same = finalDigests.size === sourceDigests.size &&
    [...finalDigests].every((d) => sourceDigests.has(d));
  if (same) return { bytes: source.bytes, digest: source.digest, rewritten: false, leftOut: [], kept: [] };
  const leftOut = entries.filter((e) => !finalDigests.has(e.digest) && !isAttestationEntry(e)).map(describe);
  const kept = keptEarlier.filter((e) => finalDigests.has(e.digest) && !isAttestationEntry(e)).map(describe);
  const bytes = new TextEncoder().encode(JSON.stringify({ ...doc, manifests: final }));
  return { bytes, digest: sha256Digest(bytes), rewritten: true, leftOut, kept };
}

/** The entries of the destination's index at the tag, as written (`MANIFEST_INVALID` when it is malformed). */
function existingEntries(existing: FetchedManifest): Descriptor[] {
  return readIndexObject(existing.bytes, `index ${existing.digest}`, existing.mediaType).manifests;
}

/** An entry for messages: its platform, or its digest without one. */
function describe(e: Descriptor): string {
  return e.platform ? formatPlatform(e.platform) : e.digest;
}

/** The children of an index to copy and the index bytes to write. */
export interface IndexPlan {
  /** The entries chosen (see {@linkcode chooseEntries}), in index order: objects of `doc.manifests`. */
  readonly children: Descriptor[];
  /** The index to write when nothing is merged: the source's bytes, or an index of the chosen entries. */
  readonly bytes: Uint8Array;
  /** The digest of `bytes`. */
  readonly digest: string;
  /** Whether `bytes` is a filtered index (a new digest). */
  readonly filtered: boolean;
  /** The parsed source index. */
  readonly doc: Readonly<Record<string, unknown>> & { readonly manifests: readonly Descriptor[] };
}

/**
 * Chooses the entries of an index that pass the filter (with `provenance`, also the buildx attestation entries of
 * the chosen images). All of them: the index is copied as is. Some: a filtered index when allowed, else
 * `INDEX_FILTERED`. None: nothing to copy.
 *
 * @throws {AirlockError} `INDEX_FILTERED`; `UNSUPPORTED_MEDIA_TYPE` for nested indexes among the chosen entries.
 */
export function planIndex(
  top: FetchedManifest,
  filter: PlatformFilter,
  allowFiltered: boolean,
  name: string,
  opts: { provenance?: boolean } = {},
): IndexPlan {
  const doc = readIndexObject(top.bytes, `index ${name}`, top.mediaType);
  const entries = doc.manifests;
  const chosen = chooseEntries(entries, (e) => allowsPlatform(filter, e.platform), opts.provenance === true);
  for (const e of chosen) {
    if (isIndexMediaType(e.mediaType) || isSchema1MediaType(e.mediaType)) {
      throw new AirlockError(
        "UNSUPPORTED_MEDIA_TYPE",
        `${name}: index entry ${e.digest} is "${e.mediaType}"; nested indexes and schema 1 are not supported`,
      );
    }
  }
  if (chosen.length === entries.length || chosen.length === 0) {
    return { children: chosen, bytes: top.bytes, digest: top.digest, filtered: false, doc };
  }
  const left = entries.filter((e) => !chosen.includes(e)).map((
    e,
  ) => (e.platform ? formatPlatform(e.platform) : e.digest));
  if (!allowFiltered) {
    throw new AirlockError(
      "INDEX_FILTERED",
      `${name}: the --arch/--os filter leaves out ${
        left.join(", ")
      }; an index is copied as is only with all ` +
        `of its children. Give --filtered-index to write an index of the matching platforms (a new digest: the ` +
        `source index's signature does not apply to it), or widen --arch/--os`,
    );
  }
  const filtered = destinationIndex(top, doc, chosen, undefined);
  return { children: chosen, bytes: filtered.bytes, digest: filtered.digest, filtered: true, doc };
}

/**
 * The blobs of an image manifest that travel with it: config and layers, without non-distributable layers.
 */
export function manifestBlobs(bytes: Uint8Array, what = "manifest", mediaType?: string): Descriptor[] {
  const doc = parseImageManifest(bytes, what, mediaType);
  return [doc.config, ...doc.layers].filter(isCopiedBlob);
}

/** Blobs that are copied: everything but non-distributable (foreign) layers, which live at their `urls`. */
export function isCopiedBlob(d: Descriptor): boolean {
  const foreign = /nondistributable|foreign/.test(d.mediaType) && (d.urls?.length ?? 0) > 0;
  return !foreign;
}
