/**
 * Which manifests of an image get a signature (and which are checked by `sign validate`): for an index, every
 * child passing the platform filter, plus the index itself when asked; for a single image, its manifest when its
 * config passes the filter (spec/hangar.md §5.1, DESIGN.md "What gets signed").
 *
 * @module
 */
import { AirlockError } from "./errors.ts";
import { allowsPlatform, formatPlatform, type PlatformFilter } from "./platform.ts";
import { formatReference, type Reference, repositoryName } from "./reference.ts";
import type { RegistryClient } from "./registry/client.ts";
import { parseImageConfig, parseImageDocument, parseImageManifest } from "./registry/manifest.ts";
import {
  type Descriptor,
  type FetchedManifest,
  type ImageIndex,
  isIndexMediaType,
  isSchema1MediaType,
  MediaType,
} from "./registry/types.ts";

/** One manifest to sign or check. */
export interface Target {
  /** `index` for a list/index, `image` for a single image manifest. */
  readonly kind: "index" | "image";
  /** The manifest digest the signature names. */
  readonly digest: string;
  /**
   * The identity written into the payload: the list line's reference, fully normalised, for the index and every
   * platform manifest alike — `host/repo:tag`, or `host/repo@<digest named>` for a digest-pinned line — what
   * `skopeo copy --all --sign-by-sigstore-private-key` writes (hangar v1 wrote `host/repo@<child>` for children).
   */
  readonly identity: string;
  /** `os/arch[/variant]`, when known. */
  readonly platform?: string;
}

/** What {@linkcode selectTargets} found. */
export interface TargetSelection {
  /** The top-level manifest as fetched. */
  readonly top: FetchedManifest;
  /** The manifests to sign or check, children first, then the index. */
  readonly targets: Target[];
  /** Errors of individual list entries (an entry that is itself a list, or schema 1); the others still count. */
  readonly entryErrors: AirlockError[];
}

/** Options of {@linkcode selectTargets}. */
export interface SelectOptions {
  /** The arch/os filter (hangar's `Allow`). */
  readonly filter: PlatformFilter;
  /** Include the index itself (sign: `--sign-index`, validate: `--require-index-signature`). */
  readonly includeIndex: boolean;
  /** Apply the filter to a single-arch image's config too (default `true`, hangar); `false` takes it as it is. */
  readonly filterSingleImage?: boolean;
  /** Cancels the fetches. */
  readonly signal?: AbortSignal;
}

/**
 * Fetches the image's top-level manifest (and, for a single image, its config) and lists the manifests to sign.
 *
 * @throws {AirlockError} `UNSUPPORTED_MEDIA_TYPE` for schema 1 and unknown manifest types; `MANIFEST_INVALID` for
 *   a manifest or index that is not what its type says (see `registry/manifest.ts`); registry errors.
 */
export async function selectTargets(
  client: RegistryClient,
  ref: Reference,
  opts: SelectOptions,
): Promise<TargetSelection> {
  const top = await client.getManifest(ref, { signal: opts.signal });
  const named = namedIdentity(ref, top.digest);
  // Docker schema 1 never gets here: getManifest refuses it (UNSUPPORTED_MEDIA_TYPE).
  const doc = parseImageDocument(top, formatReference(ref));
  if (doc.kind === "index") return selectFromIndex(top, doc.index, named, opts);
  const filter = opts.filterSingleImage === false ? { arch: [], os: [], variant: [] } : opts.filter;
  const platform = await imagePlatform(client, ref, top, filter, opts.signal);
  const targets: Target[] = allowsPlatform(filter, platform)
    ? [{
      kind: "image",
      digest: top.digest,
      identity: named,
      platform: platform && formatPlatform(platform),
    }]
    : [];
  return { top, targets, entryErrors: [] };
}

/** `host/repo:tag`, or `host/repo@digest` when the reference names no tag (the line's own digest when pinned). */
function namedIdentity(ref: Reference, digest: string): string {
  const repo = repositoryName(ref);
  return ref.tag !== undefined ? `${repo}:${ref.tag}` : `${repo}@${ref.digest ?? digest}`;
}

function selectFromIndex(
  top: FetchedManifest,
  index: ImageIndex,
  named: string,
  opts: SelectOptions,
): TargetSelection {
  const targets: Target[] = [];
  const entryErrors: AirlockError[] = [];
  for (const entry of index.manifests) {
    // An entry without `platform` is treated as ("", "", ""), which every filter allows (hangar panics here).
    if (!allowsPlatform(opts.filter, entry.platform)) continue;
    const problem = entryProblem(entry);
    if (problem) {
      entryErrors.push(problem);
      continue;
    }
    targets.push({
      kind: "image",
      digest: entry.digest,
      identity: named,
      platform: entry.platform && formatPlatform(entry.platform),
    });
  }
  if (opts.includeIndex) targets.push({ kind: "index", digest: top.digest, identity: named });
  return { top, targets, entryErrors };
}

function entryProblem(entry: Descriptor): AirlockError | undefined {
  if (isIndexMediaType(entry.mediaType)) {
    return new AirlockError(
      "UNSUPPORTED_MEDIA_TYPE",
      `signImage: the image MIME type should be a single image, not "${entry.mediaType}"`,
    );
  }
  if (isSchema1MediaType(entry.mediaType)) {
    return new AirlockError(
      "UNSUPPORTED_MEDIA_TYPE",
      `signImage: MIME type "${entry.mediaType}" is not supported to sign`,
    );
  }
  return undefined;
}

/** What {@linkcode imagePlatform} reads configs from: a registry client, or the archive reader of `load`. */
export interface ConfigSource {
  /** A small blob, digest-checked. */
  getBlob(ref: Reference, digest: string, opts?: { signal?: AbortSignal }): Promise<Uint8Array>;
}

/**
 * The platform of a single image, read from its config, when `filter` needs it (`undefined` when the filter
 * accepts everything, or for artifacts whose config is not an image config).
 *
 * @example
 * ```ts
 * const p = await imagePlatform(client, ref, top, filter);
 * if (p && !allowsPlatform(filter, p)) skip();
 * ```
 */
export async function imagePlatform(
  source: ConfigSource,
  ref: Reference,
  top: FetchedManifest,
  filter: PlatformFilter,
  signal?: AbortSignal,
): Promise<{ architecture: string; os: string; variant?: string } | undefined> {
  if (filter.arch.length === 0 && filter.os.length === 0 && filter.variant.length === 0) return undefined;
  const cfg = parseImageManifest(top.bytes, `manifest ${top.digest}`, top.mediaType).config;
  if (cfg.mediaType !== MediaType.ociConfig && cfg.mediaType !== MediaType.dockerConfig) return undefined;
  const bytes = await source.getBlob(ref, cfg.digest, { signal });
  const config = parseImageConfig(bytes, `config ${cfg.digest}`);
  return { architecture: config.architecture ?? "", os: config.os ?? "", variant: config.variant };
}
