/**
 * Image archives for the air gap: `save` writes images with their signatures into an OCI image layout packed in
 * a tar; `load` pushes an archive's content into a registry.
 *
 * Layout (OCI image-layout 1.0 inside a tar): `oci-layout`, `blobs/sha256/<hex>` for every blob and manifest,
 * and `index.json`, written last. `index.json` names each saved image with the annotation
 * `org.opencontainers.image.ref.name` = its full source reference (`host/repo:tag`, or `host/repo@digest`), and
 * each signature or attestation manifest saved with it as `host/repo:sha256-<hex>.sig` / `.att` (images first,
 * then attachments). Blobs are streamed from the registry into the tar (never held whole in memory) and
 * digest-checked on the way; each blob is stored once.
 *
 * `load` indexes the tar first (headers only) and checks that `index.json` is there and that every blob any
 * saved manifest names is present with its size: an archive cut short is refused before anything is pushed.
 * Then each image is copied with {@linkcode ImageCopier} (the archive is its source): blobs — skipped when the
 * registry has them (HEAD), so an interrupted load restarts where it stopped —, child manifests, the index at the
 * tag, then the signatures. Blob bytes are checked against their digests as they stream out of the archive.
 *
 * @module
 */
import { AirlockError, errorMessage, isAirlockError, toAirlockError } from "../errors.ts";
import { imagePlatform } from "../targets.ts";
import { manifestBlobs, planIndex } from "./index_merge.ts";
import type { ResolvedImageLine } from "../image_list.ts";
import {
  copyImages,
  type CopyReport,
  type CopyRunOptions,
  type LineCopyResult,
  type ResolvedMirrorLine,
} from "./mirror.ts";
import { allowsPlatform, type PlatformFilter } from "../platform.ts";
import { formatReference, parseReference, type Reference } from "../reference.ts";
import type { RegistryClient } from "../registry/client.ts";
import { isManifestUnknown } from "../registry/errors.ts";
import { failedLines, type ListReport } from "../list_run.ts";
import {
  type Descriptor,
  type FetchedManifest,
  isImageManifestMediaType,
  isIndexMediaType,
  MediaType,
} from "../registry/types.ts";
import { type Logger, silentLogger } from "../report.ts";
import { deadlineError } from "../pool.ts";
import { LinkedAbort } from "../abort.ts";
import { attachmentRef } from "../signature/attachment_store.ts";
import { ATTESTATION_TAG_SUFFIX, SIGNATURE_TAG_SUFFIX } from "../signature/attachments.ts";
import { TarWriter } from "./tar.ts";
import { type RegistriesDConfig, useSigstoreAttachments } from "../config/registries_d.ts";
import { ArchiveReader, blobPath, REF_NAME_ANNOTATION } from "./archive_reader.ts";

const enc = new TextEncoder();

/** Options of {@linkcode saveImages}. */
export interface SaveOptions {
  /** The registry client the images are read with. */
  readonly client: RegistryClient;
  /** Which children of an index to save. */
  readonly platforms: PlatformFilter;
  /** Save a filtered index when the filter leaves out children (default: fail the image). */
  readonly filteredIndex?: boolean;
  /** Leave `.sig`/`.att` manifests out. */
  readonly removeSignatures?: boolean;
  /** registries.d: `.sig` tags are read only where `use-sigstore-attachments` allows it. */
  readonly registriesD?: RegistriesDConfig;
  /** Stops before the next image (the archive is still completed). */
  readonly signal?: AbortSignal;
  /** Deadline per image in ms, all of its reads included (0 or absent: none); an image past it fails. */
  readonly timeoutMs?: number;
  /** Log lines. */
  readonly logger?: Logger;
  /** Called as each image finishes. */
  readonly onProgress?: (done: number, total: number) => void;
}

/** What {@linkcode saveImages} did. */
export interface SaveReport extends ListReport<LineCopyResult> {
  /** Images saved. */
  readonly images: number;
  /** `.sig`/`.att` manifests saved. */
  readonly attachments: number;
  /** Distinct blobs stored. */
  readonly blobs: number;
  /** Size of the archive. */
  readonly bytes: number;
  /** Wall time in milliseconds. */
  readonly ms: number;
}

/**
 * Saves the images of a resolved image list into `output` (an OCI layout in a tar). Images are saved one after
 * the other; one that fails is left out of `index.json` (and goes to the failed list) while the others are kept.
 * The archive is written to `output` directly and completed even when images fail; it is removed when the run
 * itself fails (I/O error).
 */
export async function saveImages(
  images: readonly ResolvedImageLine[],
  output: string,
  o: SaveOptions,
): Promise<SaveReport> {
  const t0 = performance.now();
  const log = o.logger ?? silentLogger();
  let file: Deno.FsFile;
  try {
    file = await Deno.open(output, { write: true, create: true, truncate: true });
  } catch (e) {
    throw new AirlockError("IO_ERROR", `cannot write archive "${output}": ${errorMessage(e)}`, { cause: e });
  }
  const tar = new TarWriter(file);
  const stored = new Set<string>();
  const imageEntries: Descriptor[] = [];
  const attachmentEntries: Descriptor[] = [];
  const lines: LineCopyResult[] = [];
  const work = images.filter((r) => r.status === "ok");
  let done = 0;
  try {
    await tar.addFile("oci-layout", enc.encode('{"imageLayoutVersion":"1.0.0"}'));
    for (const r of images) {
      if (r.status === "ignored") {
        log.warn(r.warning);
        lines.push({ id: r.line.id, line: r.line.line, status: "ignored" });
        continue;
      }
      if (r.status === "invalid") {
        log.error(`error occurred when save [${r.line.line}]: ${r.error.message}`, { IMG: r.line.id });
        lines.push({ id: r.line.id, line: r.line.line, status: "failed", error: r.error });
        continue;
      }
      if (o.signal?.aborted) {
        const error = new AirlockError(
          "CANCELLED",
          "context canceled: the run was cancelled before this image",
        );
        lines.push({ id: r.line.id, line: r.line.line, status: "failed", error });
        continue;
      }
      const ref = r.reference;
      log.info(`Saving [${formatReference(ref)}]`, { IMG: r.line.id });
      const timeoutMs = o.timeoutMs ?? 0;
      const deadline = new AbortController();
      const timer = timeoutMs > 0
        ? setTimeout(() => deadline.abort(deadlineError(timeoutMs)), timeoutMs)
        : undefined;
      const link = new LinkedAbort(o.signal);
      deadline.signal.addEventListener("abort", () => link.abort(deadline.signal.reason), { once: true });
      const signal = link.signal;
      try {
        const saved = await saveOne(tar, stored, ref, { ...o, signal });
        if (saved === undefined) {
          log.warn(`Skip image [${formatReference(ref)}]: no available image for specified arch and os`, {
            IMG: r.line.id,
          });
          lines.push({ id: r.line.id, line: r.line.line, status: "skipped" });
        } else {
          imageEntries.push(saved.image);
          attachmentEntries.push(...saved.attachments);
          const k = saved.attachments.length;
          log.info(
            `Saved [${formatReference(ref)}] (${saved.image.digest}): ${k} signature manifest${
              k === 1 ? "" : "s"
            }`,
            { IMG: r.line.id },
          );
          lines.push({ id: r.line.id, line: r.line.line, status: "copied" });
        }
      } catch (e) {
        if (isAirlockError(e, "IO_ERROR")) throw e;
        const error = deadline.signal.aborted ? deadline.signal.reason as AirlockError : toAirlockError(e);
        log.error(`error occurred when save [${formatReference(ref)}]: ${error.message}`, { IMG: r.line.id });
        lines.push({ id: r.line.id, line: r.line.line, status: "failed", error });
      } finally {
        clearTimeout(timer);
        link.dispose();
      }
      o.onProgress?.(++done, work.length);
    }
    const index = {
      schemaVersion: 2,
      mediaType: MediaType.ociIndex,
      manifests: [...imageEntries, ...attachmentEntries],
    };
    await tar.addFile("index.json", enc.encode(JSON.stringify(index)));
    await tar.close();
    file.close();
  } catch (e) {
    try {
      file.close();
    } catch { /* closed already */ }
    await Deno.remove(output).catch(() => {});
    if (isAirlockError(e)) throw e;
    throw new AirlockError("IO_ERROR", `writing archive "${output}" failed: ${errorMessage(e)}`, {
      cause: e,
    });
  }
  return {
    lines,
    failed: failedLines(lines),
    images: imageEntries.length,
    attachments: attachmentEntries.length,
    blobs: stored.size,
    bytes: tar.bytesWritten,
    ms: performance.now() - t0,
  };
}

/** Saves one image: blobs, manifests, attachments; returns its index.json entries (undefined: skipped). */
async function saveOne(
  tar: TarWriter,
  stored: Set<string>,
  ref: Reference,
  o: SaveOptions,
): Promise<{ image: Descriptor; attachments: Descriptor[] } | undefined> {
  const c = o.client;
  const signal = o.signal;
  const top = await c.getManifest(ref, { signal });
  const repo = { registry: ref.registry, repository: ref.repository };
  let topBytes = top.bytes;
  let topDigest = top.digest;
  let signed: string[];
  if (isIndexMediaType(top.mediaType)) {
    const plan = planIndex(top, o.platforms, o.filteredIndex === true, formatReference(ref));
    if (plan.children.length === 0) return undefined;
    const children: FetchedManifest[] = [];
    for (const d of plan.children) {
      const m = await c.getManifest({ ...repo, digest: d.digest }, { signal });
      if (!isImageManifestMediaType(m.mediaType)) {
        throw new AirlockError("UNSUPPORTED_MEDIA_TYPE", `index entry ${d.digest} is "${m.mediaType}"`);
      }
      children.push(m);
    }
    for (const m of children) await storeManifest(tar, stored, c, repo, m, signal);
    topBytes = plan.bytes;
    topDigest = plan.digest;
    signed = plan.filtered ? children.map((m) => m.digest) : [...children.map((m) => m.digest), top.digest];
  } else if (isImageManifestMediaType(top.mediaType)) {
    const platform = await imagePlatform(c, ref, top, o.platforms, signal);
    if (platform !== undefined && !allowsPlatform(o.platforms, platform)) return undefined;
    await storeManifest(tar, stored, c, repo, top, signal, false);
    signed = [top.digest];
  } else {
    throw new AirlockError("UNSUPPORTED_MEDIA_TYPE", `unsupported MIME type "${top.mediaType}"`);
  }
  await storeBytes(tar, stored, topDigest, topBytes);
  const image: Descriptor = {
    mediaType: top.mediaType,
    digest: topDigest,
    size: topBytes.byteLength,
    annotations: { [REF_NAME_ANNOTATION]: formatReference(ref) },
  };
  const attachments: Descriptor[] = [];
  if (!o.removeSignatures) {
    for (const digest of signed) {
      for (const suffix of [SIGNATURE_TAG_SUFFIX, ATTESTATION_TAG_SUFFIX]) {
        if (
          suffix === SIGNATURE_TAG_SUFFIX && o.registriesD &&
          !useSigstoreAttachments(o.registriesD, ref).value
        ) {
          continue;
        }
        const tagRef = attachmentRef(ref, digest, suffix);
        let m: FetchedManifest;
        try {
          m = await c.getManifest(tagRef, { accept: [MediaType.ociManifest], signal });
        } catch (e) {
          if (isManifestUnknown(e)) continue;
          throw e;
        }
        await storeManifest(tar, stored, c, repo, m, signal);
        attachments.push({
          mediaType: MediaType.ociManifest,
          digest: m.digest,
          size: m.bytes.byteLength,
          annotations: { [REF_NAME_ANNOTATION]: formatReference(tagRef) },
        });
      }
    }
  }
  return { image, attachments };
}

/** Stores a manifest's blobs (streamed), then the manifest itself (unless `withSelf` is false). */
async function storeManifest(
  tar: TarWriter,
  stored: Set<string>,
  c: RegistryClient,
  repo: Reference,
  m: FetchedManifest,
  signal?: AbortSignal,
  withSelf = true,
): Promise<void> {
  for (const d of manifestBlobs(m.bytes)) {
    if (stored.has(d.digest)) continue;
    const blob = await c.openBlob(repo, d.digest, { size: d.size, signal });
    await tar.addStream(blobPath(d.digest), d.size, blob.stream);
    stored.add(d.digest);
  }
  if (withSelf) await storeBytes(tar, stored, m.digest, m.bytes);
}

async function storeBytes(
  tar: TarWriter,
  stored: Set<string>,
  digest: string,
  bytes: Uint8Array,
): Promise<void> {
  if (stored.has(digest)) return;
  await tar.addFile(blobPath(digest), bytes);
  stored.add(digest);
}

/** Options of {@linkcode loadArchive}. */
export interface LoadOptions extends Omit<CopyRunOptions, "source" | "platforms"> {
  /** `--destination`: the registry every image goes to. */
  readonly registry: string;
  /** `--destination-project`: replaces the first path segment of every repository. */
  readonly project?: string;
}

/**
 * The destination of an archived image: the same repository and tag (or digest) at `registry`, with the first
 * path segment replaced by `project` when given.
 */
export function loadDestination(ref: Reference, registry: string, project?: string): Reference {
  let repository = ref.repository;
  if (project) {
    const slash = repository.indexOf("/");
    repository = slash < 0 ? `${project}/${repository}` : `${project}${repository.slice(slash)}`;
  }
  const s = `${registry}/${repository}` + (ref.tag !== undefined ? `:${ref.tag}` : "") +
    (ref.digest !== undefined ? `@${ref.digest}` : "");
  return parseReference(s);
}

/**
 * Pushes every image of an archive (with its signatures) into a registry. Resumable: blobs and manifests the
 * registry has already are not sent again.
 *
 * @throws {AirlockError} `ARCHIVE_INVALID` / `IO_ERROR` when the archive cannot be used (nothing is pushed then).
 */
export async function loadArchive(path: string, o: LoadOptions): Promise<CopyReport & { images: number }> {
  const archive = await ArchiveReader.open(path, o.signal);
  try {
    const lines = archive.images.map((img, i): ResolvedMirrorLine => {
      const line = { id: i + 1, line: img.name, text: img.name, kind: "default" as const };
      try {
        const destination = loadDestination(img.reference, o.registry, o.project);
        return { status: "ok", line, source: img.reference, destination };
      } catch (e) {
        const error = isAirlockError(e) ? e : new AirlockError("INVALID_REFERENCE", errorMessage(e));
        return { status: "invalid", line, error };
      }
    });
    const report = await copyImages(lines, {
      verb: "Loading",
      doneVerb: "Loaded",
      ...o,
      source: archive,
      platforms: { arch: [], os: [], variant: [] },
      mount: false,
    });
    return { ...report, images: archive.images.length };
  } finally {
    archive.close();
  }
}
