/**
 * Copying one image — its manifest tree, blobs and signatures — from a source (a registry, or an archive made by
 * `airlock save`) into a destination registry, preserving every digest. The engine under `mirror` and `load`.
 *
 * Guarantees:
 * - **Byte-exact manifests**: manifests are PUT with the bytes read from the source (digests are preserved); the
 *   only manifest airlock ever writes itself is a new index, and only when asked (`filteredIndex`, `mergeIndex`).
 * - **Blobs are streamed**, never buffered whole: cross-repository mount on the same registry, otherwise a
 *   streamed read from the source piped into a streamed upload (one PATCH, as docker push does); the digest is checked while the bytes pass, and a
 *   mismatch cancels the upload (nothing is committed, and no manifest naming the blob is written).
 * - **Order**: blobs, then child manifests, then the index (or the single manifest) at the tag, then signatures.
 *   A copy cut short at any point leaves nothing that passes signature validation at the destination.
 * - **Platforms**: an index is copied as is when every child passes the arch/os filter (with `provenance`, buildx
 *   attestation entries go with their image); otherwise the image fails with `INDEX_FILTERED`, unless
 *   `filteredIndex` asks for a new index of the matching children. With `mergeIndex` (hangar's mirror), the index
 *   written at a tag also keeps the platforms the destination's index there lists (`index_merge.ts`). A new index
 *   has a new digest, so the source index's signatures do not carry over; the children's do.
 * - **Signatures**: the `.sig` and `.att` tags of every copied manifest (and its OCI referrers, where the source
 *   offers the API) follow it, unless `removeSignatures`. A destination tag that does not exist gets the source
 *   manifest byte-exact; one that exists keeps all its layers and gets the source's missing ones appended
 *   (containers/image's append rule), then is re-read to confirm no concurrent writer lost ours.
 *
 * @module
 */
import { describeSource, type RegistriesDConfig, useSigstoreAttachments } from "../config/registries_d.ts";
import { imagePlatform } from "../targets.ts";
import { KeyedLock } from "../keyed_lock.ts";
import { AirlockError } from "../errors.ts";
import { allowsPlatform, formatPlatform, type PlatformFilter } from "../platform.ts";
import { formatReference, type Reference } from "../reference.ts";
import { type BlobStream, RegistryClient } from "../registry/client.ts";
import { isManifestUnknown } from "../registry/errors.ts";
import {
  type Descriptor,
  type FetchedManifest,
  isImageManifestMediaType,
  isIndexMediaType,
  isSchema1MediaType,
  MediaType,
} from "../registry/types.ts";
import type { Logger } from "../report.ts";
import { attachmentRef, readAttachment, writeAttachment } from "../signature/attachment_store.ts";
import {
  appendSignatureLayers,
  ATTESTATION_TAG_SUFFIX,
  SIGNATURE_TAG_SUFFIX,
} from "../signature/attachments.ts";
import {
  type AttachmentManifest,
  parseAttachmentConfig,
  parseAttachmentManifest,
} from "../signature/attachment_manifest.ts";
import { destinationIndex, isCopiedBlob, manifestBlobs, planIndex } from "./index_merge.ts";

/**
 * Where images are read from. {@linkcode RegistryClient} is one; the archive reader of `airlock load` is another.
 * A missing manifest must be reported so that {@linkcode isManifestUnknown} recognises it.
 */
export interface ImageSource {
  /** A manifest by `ref.digest ?? ref.tag`, digest-checked. */
  getManifest(ref: Reference, opts?: { accept?: string[]; signal?: AbortSignal }): Promise<FetchedManifest>;
  /** A small blob (signature payloads, configs), digest-checked. */
  getBlob(
    ref: Reference,
    digest: string,
    opts?: { maxBytes?: number; signal?: AbortSignal },
  ): Promise<Uint8Array>;
  /** A blob of any size as a digest-checking stream. */
  openBlob(
    ref: Reference,
    digest: string,
    opts?: { size?: number; signal?: AbortSignal },
  ): Promise<BlobStream>;
  /** OCI referrers of a digest; `undefined` when the source does not offer the API. */
  referrers?(
    ref: Reference,
    digest: string,
    opts?: { signal?: AbortSignal },
  ): Promise<Descriptor[] | undefined>;
}

/** How images are copied. */
export interface CopyOptions {
  /** Where images come from. */
  readonly source: ImageSource;
  /** The destination registry client (may be the same object as `source`). */
  readonly destination: RegistryClient;
  /** Which children of an index to copy; empty sets accept everything. */
  readonly platforms: PlatformFilter;
  /** Write an index of the matching children when the filter leaves some out (default: fail the image). */
  readonly filteredIndex?: boolean;
  /**
   * Merge the index written at a destination tag with the platforms the index already there lists (hangar's
   * mirror; see `index_merge.ts`). Default: the destination tag is replaced.
   */
  readonly mergeIndex?: boolean;
  /** Also copy the buildx attestation entries (`unknown/unknown`) of the platforms copied (hangar's `--provenance`). */
  readonly provenance?: boolean;
  /** Do not copy `.sig`/`.att` tags and referrers. */
  readonly removeSignatures?: boolean;
  /**
   * registries.d: `.sig` tags are read where `use-sigstore-attachments` allows it for the source, and writing
   * them where it is off for the destination fails the image. Absent: always read and write.
   */
  readonly registriesD?: RegistriesDConfig;
  /** Mount blobs across repositories when source and destination are the same registry (default true). */
  readonly mount?: boolean;
  /** Blobs of one manifest transferred at once (default 3). */
  readonly blobConcurrency?: number;
  /** Debug lines. */
  readonly logger?: Logger;
}

/** Counters of a copier's work, for reports and tests. */
export interface CopyStats {
  /** Blobs streamed from the source and uploaded. */
  blobsUploaded: number;
  /** Blobs mounted from another repository of the same registry. */
  blobsMounted: number;
  /** Blobs the destination had already. */
  blobsPresent: number;
  /** Bytes of the blobs uploaded. */
  bytesUploaded: number;
  /** Manifests written (images, indexes, referrers). */
  manifestsWritten: number;
  /** Manifests the destination had already. */
  manifestsPresent: number;
  /** `.sig`/`.att` tags created at the destination. */
  attachmentsCopied: number;
  /** `.sig`/`.att` tags that existed and got the source's missing layers. */
  attachmentsMerged: number;
}

/** One attachment tag's outcome. */
export interface CopiedAttachment {
  /** The manifest it belongs to. */
  readonly digest: string;
  /** `sig` or `att`. */
  readonly suffix: string;
  /** `copied`: created byte-exact; `merged`: layers appended; `present`: nothing was missing. */
  readonly status: "copied" | "merged" | "present";
}

/** One image's outcome. */
export interface CopiedImage {
  /** The source, fully normalised. */
  readonly source: string;
  /** The destination, fully normalised. */
  readonly destination: string;
  /** `copied`, or `skipped` when no manifest matched the platform filter. */
  readonly status: "copied" | "skipped";
  /** The digest now at the destination tag (differs from the source only when a new index was written). */
  readonly digest?: string;
  /** The digest of the source's top-level manifest. */
  readonly sourceDigest?: string;
  /** Whether a new index was written (filtered, or merged with the destination's): not the source's digest. */
  readonly filteredIndex?: boolean;
  /** With a new index: the source platforms it leaves out. */
  readonly leftOut?: readonly string[];
  /** With a new index: the platforms of the destination's earlier index it keeps. */
  readonly kept?: readonly string[];
  /** Digests of the image manifests copied (children of an index, or the single manifest). */
  readonly manifests: readonly string[];
  /** Platforms copied (`os/arch[/variant]`), when known. */
  readonly platforms: readonly string[];
  /** The attachment tags written or found. */
  readonly attachments: readonly CopiedAttachment[];
}

/**
 * Copies images from a source into a registry. One copier per run: it remembers which blobs it has already put
 * into which repository, serialises writes to one attachment tag, and counts its work.
 *
 * @example
 * ```ts
 * const copier = new ImageCopier({ source: client, destination: client, platforms });
 * const done = await copier.copy(parseReference("src.example/app:1"), parseReference("dst.example/app:1"));
 * ```
 */
export class ImageCopier {
  /** What the copier did so far. */
  readonly stats: CopyStats = {
    blobsUploaded: 0,
    blobsMounted: 0,
    blobsPresent: 0,
    bytesUploaded: 0,
    manifestsWritten: 0,
    manifestsPresent: 0,
    attachmentsCopied: 0,
    attachmentsMerged: 0,
  };
  readonly #o: CopyOptions;
  readonly #blobs = new Map<string, Promise<void>>();
  readonly #locks = new KeyedLock();
  readonly #noReferrers = new Set<string>();

  /**
   * Creates a copier for one run, with empty {@linkcode ImageCopier.stats}.
   *
   * @param options source, destination, filter and policies of the run
   */
  constructor(options: CopyOptions) {
    this.#o = options;
  }

  /**
   * Copies the image `src` (tag or digest) to `dst` (its tag, if any, is written last): blobs, child manifests,
   * the top manifest, then signatures.
   *
   * @throws {AirlockError} `INDEX_FILTERED` when the filter leaves out children and no filtered index was asked
   *   for; `UNSUPPORTED_MEDIA_TYPE`; `ATTACHMENTS_DISABLED`; registry and digest errors.
   */
  async copy(src: Reference, dst: Reference, signal?: AbortSignal): Promise<CopiedImage> {
    const o = this.#o;
    const top = await o.source.getManifest(src, { signal });
    const base = { source: formatReference(src), destination: formatReference(dst) };
    let manifests: string[];
    let platforms: string[];
    let signed: string[];
    let digest: string;
    let rewritten: { leftOut: readonly string[]; kept: readonly string[] } | undefined;
    if (isIndexMediaType(top.mediaType)) {
      // 1. Which children, and the index to write; 2. children (blobs first, then each manifest); 3. the index.
      const plan = planIndex(top, o.platforms, o.filteredIndex === true, base.source, {
        provenance: o.provenance,
      });
      if (plan.children.length === 0) {
        return { ...base, status: "skipped", manifests: [], platforms: [], attachments: [] };
      }
      const there = o.mergeIndex && dst.tag !== undefined
        ? await this.#destinationTag(dst, signal)
        : undefined;
      const index = destinationIndex(top, plan.doc, plan.children, there?.index);
      await mapLimit(plan.children, 2, (c) => this.#copyChild(src, dst, c, signal));
      await this.#putTop(dst, index.bytes, top.mediaType, index.digest, signal, there);
      manifests = plan.children.map((c) => c.digest);
      platforms = plan.children.flatMap((c) => (c.platform ? [formatPlatform(c.platform)] : []));
      digest = index.digest;
      rewritten = index.rewritten ? { leftOut: index.leftOut, kept: index.kept } : undefined;
      // The source index's signatures follow it only when it is the index written.
      signed = rewritten ? manifests : [...manifests, top.digest];
    } else if (isImageManifestMediaType(top.mediaType)) {
      const platform = await this.#imagePlatform(src, top, signal);
      if (platform !== undefined && !allowsPlatform(o.platforms, platform)) {
        return { ...base, status: "skipped", manifests: [], platforms: [], attachments: [] };
      }
      await this.#copyManifest(src, dst, top, dst.tag, signal);
      manifests = [top.digest];
      platforms = platform ? [formatPlatform(platform)] : [];
      signed = manifests;
      digest = top.digest;
    } else if (isSchema1MediaType(top.mediaType)) {
      throw new AirlockError(
        "UNSUPPORTED_MEDIA_TYPE",
        `${base.source}: Docker schema 1 manifests (${top.mediaType}) cannot be copied with their digest`,
      );
    } else {
      throw new AirlockError(
        "UNSUPPORTED_MEDIA_TYPE",
        `${base.source}: unsupported MIME type "${top.mediaType}"`,
      );
    }
    // 4. Signatures last: until they are there, validation at the destination fails.
    const attachments = o.removeSignatures
      ? []
      : (await Promise.all(signed.map((d) => this.#copyAttachments(src, dst, d, signal)))).flat();
    return {
      ...base,
      status: "copied",
      digest,
      sourceDigest: top.digest,
      filteredIndex: rewritten !== undefined,
      ...rewritten,
      manifests,
      platforms,
      attachments,
    };
  }

  /** What the destination tag holds: its digest (none when absent) and, when it is an index, the index to merge. */
  async #destinationTag(dst: Reference, signal?: AbortSignal): Promise<TagContent> {
    try {
      const m = await this.#o.destination.getManifest(
        { registry: dst.registry, repository: dst.repository, tag: dst.tag },
        { signal },
      );
      return { digest: m.digest, index: isIndexMediaType(m.mediaType) ? m : undefined };
    } catch (e) {
      if (isManifestUnknown(e)) return {};
      throw e;
    }
  }

  /** A child of an index: skipped when the destination has it already (then its blobs are there too). */
  async #copyChild(src: Reference, dst: Reference, child: Descriptor, signal?: AbortSignal): Promise<void> {
    const at = { registry: dst.registry, repository: dst.repository, digest: child.digest };
    if (await this.#o.destination.headManifest(at, { signal })) {
      this.stats.manifestsPresent++;
      return;
    }
    const m = await this.#o.source.getManifest(
      { registry: src.registry, repository: src.repository, digest: child.digest },
      { signal },
    );
    if (!isImageManifestMediaType(m.mediaType)) {
      throw new AirlockError(
        "UNSUPPORTED_MEDIA_TYPE",
        `${formatReference(src)}: index entry ${child.digest} is "${m.mediaType}", not an image manifest`,
      );
    }
    await this.#copyManifest(src, dst, m, undefined, signal);
  }

  /** An image manifest: its blobs, then the manifest bytes (at `tag` when given, else by digest). */
  async #copyManifest(
    src: Reference,
    dst: Reference,
    m: FetchedManifest,
    tag: string | undefined,
    signal?: AbortSignal,
  ): Promise<void> {
    const repo = { registry: dst.registry, repository: dst.repository };
    if (tag !== undefined) {
      const there = await this.#o.destination.headManifest({ ...repo, tag }, { signal });
      if (there?.digest === m.digest) {
        this.stats.manifestsPresent++;
        return;
      }
    }
    const blobs = manifestBlobs(m.bytes, `manifest ${m.digest} of ${formatReference(src)}`, m.mediaType);
    await mapLimit(blobs, this.#o.blobConcurrency ?? 3, (d) => this.#copyBlob(src, dst, d, signal));
    await this.#o.destination.putManifest({ ...repo, tag, digest: m.digest }, m.bytes, m.mediaType, {
      signal,
    });
    this.stats.manifestsWritten++;
  }

  /**
   * The index (original or new) at the destination tag, unless it is there already (`known`: what the tag was
   * found to hold in this copy, which saves the `HEAD`).
   */
  async #putTop(
    dst: Reference,
    bytes: Uint8Array,
    mediaType: string,
    digest: string,
    signal?: AbortSignal,
    known?: TagContent,
  ): Promise<void> {
    const repo = { registry: dst.registry, repository: dst.repository };
    const there = known ?? await this.#o.destination.headManifest(
      dst.tag !== undefined ? { ...repo, tag: dst.tag } : { ...repo, digest },
      { signal },
    );
    if (there?.digest === digest) {
      this.stats.manifestsPresent++;
      return;
    }
    await this.#o.destination.putManifest({ ...repo, tag: dst.tag, digest }, bytes, mediaType, { signal });
    this.stats.manifestsWritten++;
  }

  /**
   * One blob into the destination repository, once per run: mounted when source and destination are the same
   * registry, else skipped when present (HEAD), else streamed.
   */
  #copyBlob(src: Reference, dst: Reference, d: Descriptor, signal?: AbortSignal): Promise<void> {
    const key = `${dst.registry}/${dst.repository}@${d.digest}`;
    let p = this.#blobs.get(key);
    if (p) return p;
    p = (async () => {
      const o = this.#o;
      const repo = { registry: dst.registry, repository: dst.repository };
      const sameRegistry = o.source instanceof RegistryClient && src.registry === dst.registry;
      if (sameRegistry && (o.mount ?? true) && src.repository !== dst.repository) {
        if (await o.destination.mountBlob(repo, d.digest, src.repository, { signal })) {
          this.stats.blobsMounted++;
          return;
        }
        o.logger?.debug(`Mount of ${d.digest} from ${src.repository} declined; uploading it`);
      } else if (await o.destination.hasBlob(repo, d.digest, { signal })) {
        this.stats.blobsPresent++;
        return;
      }
      const blob = await o.source.openBlob(
        { registry: src.registry, repository: src.repository },
        d.digest,
        { size: d.size, signal },
      );
      await o.destination.uploadBlobStream(repo, blob.stream, {
        digest: d.digest,
        size: d.size,
        signal,
      });
      this.stats.blobsUploaded++;
      this.stats.bytesUploaded += d.size;
    })();
    this.#blobs.set(key, p);
    p.catch(() => this.#blobs.delete(key));
    return p;
  }

  /** The `.sig` and `.att` tags of `digest`, then its referrers. */
  async #copyAttachments(
    src: Reference,
    dst: Reference,
    digest: string,
    signal?: AbortSignal,
  ): Promise<CopiedAttachment[]> {
    const o = this.#o;
    const out: CopiedAttachment[] = [];
    for (const suffix of [SIGNATURE_TAG_SUFFIX, ATTESTATION_TAG_SUFFIX]) {
      if (
        suffix === SIGNATURE_TAG_SUFFIX && o.registriesD && !useSigstoreAttachments(o.registriesD, src).value
      ) {
        o.logger?.debug(
          `registries.d turns sigstore attachments off for ${formatReference(src)}: not reading them`,
        );
        continue;
      }
      const srcTag = attachmentRef(src, digest, suffix);
      let fetched: FetchedManifest;
      try {
        fetched = await o.source.getManifest(srcTag, { accept: [MediaType.ociManifest], signal });
      } catch (e) {
        if (isManifestUnknown(e)) continue;
        throw e;
      }
      if (suffix === SIGNATURE_TAG_SUFFIX && o.registriesD) {
        const decision = useSigstoreAttachments(o.registriesD, dst);
        if (!decision.value) {
          throw new AirlockError(
            "ATTACHMENTS_DISABLED",
            `${
              formatReference(src)
            } has signatures, but writing sigstore attachments is disabled by configuration ` +
              `for ${formatReference(dst)} (use-sigstore-attachments is ${
                decision.source ? `false for ${describeSource(decision.source)}` : describeSource(undefined)
              }); enable it or give --remove-signatures`,
          );
        }
      }
      const manifest = parseAttachmentManifest(fetched.bytes, {
        contentType: fetched.mediaType === "" ? undefined : fetched.mediaType,
        tag: srcTag.tag,
      });
      const key = `${dst.registry}/${dst.repository}:${srcTag.tag}`;
      const status = await this.#locks.run(
        key,
        () => this.#writeAttachment(src, dst, digest, suffix, fetched, manifest, signal),
      );
      out.push({ digest, suffix, status });
    }
    await this.#copyReferrers(src, dst, digest, signal);
    return out;
  }

  /** Creates or merges one attachment tag at the destination, then confirms our layers are in it. */
  async #writeAttachment(
    src: Reference,
    dst: Reference,
    digest: string,
    suffix: string,
    fetched: FetchedManifest,
    manifest: AttachmentManifest,
    signal?: AbortSignal,
  ): Promise<"copied" | "merged" | "present"> {
    const o = this.#o;
    const dstTag = attachmentRef(dst, digest, suffix);
    const wanted = manifest.layers ?? [];
    for (let round = 0; round < 4; round++) {
      const existing = await readAttachment(o.destination, dst, digest, { suffix, signal });
      let status: "copied" | "merged";
      if (!existing) {
        // The tag is new: the source's manifest byte-exact (same digest), after its blobs.
        for (const d of [manifest.config, ...wanted].filter(isCopiedBlob)) {
          await this.#copyBlob(src, dst, d, signal);
        }
        await o.destination.putManifest(dstTag, fetched.bytes, MediaType.ociManifest, { signal });
        status = "copied";
      } else {
        if (existing.manifestDigest === fetched.digest) return "present";
        const have = existing.manifest.layers ?? [];
        const missing = wanted.filter((l) => !have.some((h) => sameLayer(h, l)));
        if (missing.length === 0) return "present";
        // Keep every destination layer; append the source's missing ones (the same rule as signing).
        const payloads = await Promise.all(
          missing.map((l) =>
            o.source.getBlob({ registry: src.registry, repository: src.repository }, l.digest, { signal })
          ),
        );
        const configBytes = await o.destination.getBlob(dstTag, existing.manifest.config.digest, { signal });
        const state = {
          manifest: existing.manifest,
          config: parseAttachmentConfig(configBytes, existing.manifest.config.digest),
        };
        const result = appendSignatureLayers(
          state,
          missing.map((l, i) => ({
            payload: payloads[i],
            annotations: l.annotations,
            mediaType: l.mediaType,
          })),
        );
        await writeAttachment(o.destination, dstTag, result, signal);
        status = "merged";
      }
      // Confirm: a concurrent writer (a signer, another mirror) may have replaced the tag since we read it.
      const after = await readAttachment(o.destination, dst, digest, { suffix, signal });
      const kept = after?.manifest.layers ?? [];
      if (wanted.every((l) => kept.some((k) => sameLayer(k, l)))) {
        if (status === "copied") this.stats.attachmentsCopied++;
        else this.stats.attachmentsMerged++;
        return status;
      }
      o.logger?.debug(
        `${dstTag.tag} in ${dst.repository} was overwritten by a concurrent writer; merging again`,
      );
    }
    throw new AirlockError(
      "REGISTRY_ERROR",
      `${formatReference(dstTag)} kept being overwritten by concurrent writers`,
    );
  }

  /** OCI referrers of `digest` (image manifests only), where the source offers the API. */
  async #copyReferrers(src: Reference, dst: Reference, digest: string, signal?: AbortSignal): Promise<void> {
    const source = this.#o.source;
    if (!source.referrers || this.#noReferrers.has(src.registry)) return;
    const list = await source.referrers({ registry: src.registry, repository: src.repository }, digest, {
      signal,
    });
    if (list === undefined) {
      this.#noReferrers.add(src.registry); // no referrers API: do not ask again in this run
      return;
    }
    for (const r of list) {
      if (!isImageManifestMediaType(r.mediaType)) {
        this.#o.logger?.debug(`Referrer ${r.digest} of ${digest} is "${r.mediaType}": not copied`);
        continue;
      }
      await this.#copyChild(src, dst, r, signal);
    }
  }

  /** The platform of a single image from its config, when a filter needs it. */
  #imagePlatform(
    src: Reference,
    top: FetchedManifest,
    signal?: AbortSignal,
  ): Promise<{ architecture: string; os: string; variant?: string } | undefined> {
    return imagePlatform(this.#o.source, src, top, this.#o.platforms, signal);
  }
}

/** What a destination tag held when it was read: its digest (none: absent) and the index there, if it is one. */
interface TagContent {
  readonly digest?: string;
  readonly index?: FetchedManifest;
}

/** containers/image's layer identity in an attachment manifest: media type, digest, size and annotations. */
function sameLayer(a: Descriptor, b: Descriptor): boolean {
  if (a.mediaType !== b.mediaType || a.digest !== b.digest || a.size !== b.size) return false;
  const ka = Object.keys(a.annotations ?? {});
  const kb = Object.keys(b.annotations ?? {});
  return ka.length === kb.length && ka.every((k) => b.annotations?.[k] === a.annotations?.[k]);
}

/**
 * Runs `fn` over `items` with at most `limit` at once; rejects with the first failure after all have settled.
 */
export async function mapLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const errors: unknown[] = [];
  const worker = async () => {
    while (next < items.length && errors.length === 0) {
      const item = items[next++];
      try {
        await fn(item);
      } catch (e) {
        errors.push(e);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (errors.length > 0) throw errors[0];
}
