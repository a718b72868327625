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
import { type ImageSource, manifestBlobs, planIndex } from "./copy.ts";
import type { ResolvedImageLine } from "../image_list.ts";
import {
  copyImages,
  type CopyItem,
  type CopyReport,
  type CopyRunOptions,
  type LineCopyResult,
} from "./mirror.ts";
import { allowsPlatform, type PlatformFilter } from "../platform.ts";
import { formatReference, parseReference, type Reference, repositoryName } from "../reference.ts";
import type { BlobStream, RegistryClient } from "../registry/client.ts";
import { isManifestUnknown, RegistryError } from "../registry/errors.ts";
import { failedLines } from "../list_run.ts";
import {
  type Descriptor,
  type FetchedManifest,
  type ImageIndex,
  type ImageManifest,
  isImageManifestMediaType,
  isIndexMediaType,
  MediaType,
} from "../registry/types.ts";
import { type Logger, silentLogger } from "../report.ts";
import { deadlineError } from "../pool.ts";
import { LinkedAbort } from "../abort.ts";
import { attachmentRef } from "../signature/attachment_store.ts";
import {
  ATTESTATION_TAG_SUFFIX,
  parseAttachmentTag,
  SIGNATURE_TAG_SUFFIX,
} from "../signature/attachments.ts";
import { sha256Digest } from "../encoding/digest.ts";
import { parseImageIndex, parseImageManifest } from "../registry/manifest.ts";
import { indexTar, type TarEntryLocation, TarWriter } from "./tar.ts";
import { type RegistriesDConfig, useSigstoreAttachments } from "../config/registries_d.ts";
import { createHash } from "node:crypto";

/** The annotation that names an image in `index.json`. */
export const REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name";

const enc = new TextEncoder();
const dec = new TextDecoder();

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
export interface SaveReport {
  /** One entry per list line, in list order. */
  readonly lines: readonly LineCopyResult[];
  /** The failed lines (for the failed list). */
  readonly failed: readonly string[];
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
 *
 * @example
 * ```ts
 * const report = await saveImages(resolveImageList(lines), "images.tar", { client, platforms });
 * ```
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

/** `blobs/<algorithm>/<hex>` of a digest. */
function blobPath(digest: string): string {
  const i = digest.indexOf(":");
  return `blobs/${digest.slice(0, i)}/${digest.slice(i + 1)}`;
}

/** One image named in an archive's `index.json`. */
export interface ArchiveImage {
  /** The `org.opencontainers.image.ref.name` as saved (the source reference). */
  readonly name: string;
  /** It, parsed. */
  readonly reference: Reference;
  /** The index.json entry. */
  readonly descriptor: Descriptor;
}

/**
 * An image archive made by {@linkcode saveImages}, opened for reading: an {@linkcode ImageSource} whose
 * manifests are found by digest, or by tag through the `index.json` names.
 *
 * @example
 * ```ts
 * const archive = await ArchiveReader.open("images.tar");
 * try { console.log(archive.images.map((i) => i.name)); } finally { archive.close(); }
 * ```
 */
export class ArchiveReader implements ImageSource {
  /** The images of the archive, in `index.json` order (attachments left out). */
  readonly images: readonly ArchiveImage[];
  readonly #path: string;
  readonly #file: Deno.FsFile;
  readonly #entries: Map<string, TarEntryLocation>;
  readonly #names: Map<string, Descriptor>;
  #turn: Promise<unknown> = Promise.resolve();

  private constructor(
    path: string,
    file: Deno.FsFile,
    entries: Map<string, TarEntryLocation>,
    names: Map<string, Descriptor>,
    images: ArchiveImage[],
  ) {
    this.#path = path;
    this.#file = file;
    this.#entries = entries;
    this.#names = names;
    this.images = images;
  }

  /**
   * Opens and checks an archive: the tar must be complete, `index.json` must be there, and every blob that a
   * saved manifest names must be in it with its size.
   *
   * @throws {AirlockError} `IO_ERROR` when the file cannot be read; `ARCHIVE_INVALID` when it is cut short,
   *   damaged, or not an image archive.
   * @param path the archive file
   * @param signal stops the indexing of the tar (its reason is thrown)
   */
  static async open(path: string, signal?: AbortSignal): Promise<ArchiveReader> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { read: true });
    } catch (e) {
      throw new AirlockError("IO_ERROR", `cannot open archive "${path}": ${errorMessage(e)}`, { cause: e });
    }
    try {
      const size = (await file.stat()).size;
      const entries = await indexTar(file, size, path, signal);
      const reader = new ArchiveReader(path, file, entries, new Map(), []);
      const indexLoc = entries.get("index.json");
      if (!indexLoc) {
        throw new AirlockError(
          "ARCHIVE_INVALID",
          `archive "${path}" has no index.json: it is not an image archive, or it was cut short`,
        );
      }
      const indexBytes = await reader.#read(indexLoc);
      const index = inArchive(path, () => parseImageIndex(indexBytes, "index.json"));
      const names = new Map<string, Descriptor>();
      const images: ArchiveImage[] = [];
      for (const d of index.manifests) {
        const name = d.annotations?.[REF_NAME_ANNOTATION];
        if (!name) continue;
        let reference: Reference;
        try {
          reference = parseReference(name);
        } catch (e) {
          throw new AirlockError(
            "ARCHIVE_INVALID",
            `archive "${path}": bad image name "${name}": ${errorMessage(e)}`,
          );
        }
        names.set(name, d);
        const isAttachment = reference.tag !== undefined && parseAttachmentTag(reference.tag) !== undefined;
        if (!isAttachment) images.push({ name, reference, descriptor: d });
      }
      const checked = new ArchiveReader(path, file, entries, names, images);
      await checked.#checkComplete([...names.values()]);
      return checked;
    } catch (e) {
      file.close();
      throw e;
    }
  }

  /** Every manifest named, and every blob they name, must be in the archive with the right size. */
  async #checkComplete(roots: Descriptor[]): Promise<void> {
    const seen = new Set<string>();
    const need = (d: Descriptor, by: string): TarEntryLocation => {
      const loc = this.#entries.get(blobPath(d.digest));
      if (!loc) {
        throw new AirlockError(
          "ARCHIVE_INVALID",
          `archive "${this.#path}" lacks blob ${d.digest} (named by ${by}): it is incomplete or was cut short`,
        );
      }
      if (loc.size !== d.size) {
        throw new AirlockError(
          "ARCHIVE_INVALID",
          `archive "${this.#path}": blob ${d.digest} has ${loc.size} bytes, ${by} says ${d.size}`,
        );
      }
      return loc;
    };
    // Depth first, with a stack of its own: an archive of deeply nested indexes cannot exhaust the call stack.
    const stack = roots.map((d) => ({ d, by: d.annotations?.[REF_NAME_ANNOTATION] ?? d.digest })).reverse();
    for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
      const { d, by } = next;
      if (seen.has(d.digest)) continue;
      seen.add(d.digest);
      const bytes = await this.#read(need(d, by));
      if (sha256Digest(bytes) !== d.digest) {
        throw new AirlockError("ARCHIVE_INVALID", `archive "${this.#path}": manifest ${d.digest} is damaged`);
      }
      const what = `manifest ${d.digest}`;
      const doc = inArchive(this.#path, () => readDocument(bytes, what));
      if ("manifests" in doc) {
        for (const c of [...doc.manifests].reverse()) stack.push({ d: c, by: `index ${d.digest}` });
      } else {
        for (const b of inArchive(this.#path, () => manifestBlobs(bytes, what))) need(b, what);
      }
    }
  }

  /** Reads an entry whole (manifests, index.json: small); reads of the shared handle take turns. */
  #read(loc: TarEntryLocation, max = 4 * 1024 * 1024): Promise<Uint8Array> {
    const run = this.#turn.then(() => this.#readNow(loc, max));
    this.#turn = run.catch(() => {});
    return run;
  }

  async #readNow(loc: TarEntryLocation, max: number): Promise<Uint8Array> {
    if (loc.size > max) {
      throw new AirlockError("TOO_LARGE", `archive entry of ${loc.size} bytes exceeds ${max}`);
    }
    await this.#file.seek(loc.offset, Deno.SeekMode.Start);
    const out = new Uint8Array(loc.size);
    let got = 0;
    while (got < loc.size) {
      const n = await this.#file.read(out.subarray(got));
      if (n === null) throw new AirlockError("ARCHIVE_INVALID", `archive "${this.#path}" ends early`);
      got += n;
    }
    return out;
  }

  #notFound(what: string): RegistryError {
    return new RegistryError("NOT_FOUND", `${what}: not in archive "${this.#path}"`, 404, [
      { code: "MANIFEST_UNKNOWN", message: "manifest unknown" },
    ]);
  }

  /** A manifest by digest, or by tag through the `index.json` names. */
  async getManifest(
    ref: Reference,
    _opts: { accept?: string[]; signal?: AbortSignal } = {},
  ): Promise<FetchedManifest> {
    let digest = ref.digest;
    let declared: string | undefined;
    if (digest === undefined) {
      const d = this.#names.get(formatReference(ref));
      if (!d) throw this.#notFound(formatReference(ref));
      digest = d.digest;
      declared = d.mediaType;
    }
    const loc = this.#entries.get(blobPath(digest));
    if (!loc) throw this.#notFound(`${repositoryName(ref)}@${digest}`);
    const bytes = await this.#read(loc);
    if (sha256Digest(bytes) !== digest) {
      throw new AirlockError("DIGEST_MISMATCH", `archive "${this.#path}": manifest ${digest} is damaged`);
    }
    const doc = inArchive(this.#path, () => readDocument(bytes, `manifest ${digest}`));
    const mediaType = doc.mediaType ?? declared ??
      ("manifests" in doc ? MediaType.ociIndex : MediaType.ociManifest);
    return { mediaType, digest, bytes };
  }

  /** A small blob, digest-checked. */
  async getBlob(_ref: Reference, digest: string, opts: { maxBytes?: number } = {}): Promise<Uint8Array> {
    const loc = this.#entries.get(blobPath(digest));
    if (!loc) throw new AirlockError("ARCHIVE_INVALID", `archive "${this.#path}" lacks blob ${digest}`);
    const bytes = await this.#read(loc, opts.maxBytes);
    if (sha256Digest(bytes) !== digest) {
      throw new AirlockError("DIGEST_MISMATCH", `archive "${this.#path}": blob ${digest} is damaged`);
    }
    return bytes;
  }

  /** A blob as a stream read from the archive file (its own handle), digest-checked at its end. */
  async openBlob(_ref: Reference, digest: string, opts: { size?: number } = {}): Promise<BlobStream> {
    const loc = this.#entries.get(blobPath(digest));
    if (!loc) throw new AirlockError("ARCHIVE_INVALID", `archive "${this.#path}" lacks blob ${digest}`);
    if (opts.size !== undefined && opts.size !== loc.size) {
      throw new AirlockError(
        "DIGEST_MISMATCH",
        `archive "${this.#path}": blob ${digest} has ${loc.size} bytes`,
      );
    }
    const file = await Deno.open(this.#path, { read: true });
    await file.seek(loc.offset, Deno.SeekMode.Start);
    const algorithm = digest.slice(0, digest.indexOf(":"));
    const hash = createHash(algorithm);
    let left = loc.size;
    const path = this.#path;
    const close = () => {
      try {
        file.close();
      } catch { /* closed */ }
    };
    // A byte stream: a BYOB consumer (the registry upload) gets the file read straight into its buffer.
    const stream = new ReadableStream({
      type: "bytes",
      autoAllocateChunkSize: 1024 * 1024,
      async pull(c) {
        const req = c.byobRequest!;
        if (left === 0) {
          close();
          const actual = `${algorithm}:${hash.digest("hex")}`;
          if (actual !== digest) {
            c.error(
              new AirlockError("DIGEST_MISMATCH", `archive "${path}": blob ${digest} is damaged (${actual})`),
            );
          } else {
            c.close();
            req.respond(0);
          }
          return;
        }
        const v = req.view!;
        const view = new Uint8Array(v.buffer, v.byteOffset, Math.min(v.byteLength, left));
        let n: number | null;
        try {
          n = await file.read(view);
        } catch (e) {
          close();
          c.error(e);
          return;
        }
        if (n === null) {
          close();
          c.error(new AirlockError("ARCHIVE_INVALID", `archive "${path}" ends inside blob ${digest}`));
          return;
        }
        left -= n;
        hash.update(view.subarray(0, n));
        req.respond(n);
      },
      cancel() {
        close();
      },
    }, { highWaterMark: 0 });
    return { size: loc.size, stream };
  }

  /** Closes the archive file. */
  close(): void {
    try {
      this.#file.close();
    } catch { /* closed */ }
  }
}

/** A manifest stored in an archive, read strictly: an index when it has `manifests`, else an image manifest. */
function readDocument(bytes: Uint8Array, what: string): ImageIndex | ImageManifest {
  let isIndex = false;
  try {
    const doc = JSON.parse(dec.decode(bytes));
    isIndex = typeof doc === "object" && doc !== null && "manifests" in doc;
  } catch {
    // the manifest parser says what is wrong
  }
  return isIndex ? parseImageIndex(bytes, what) : parseImageManifest(bytes, what);
}

/** Runs a parser over archive content: a document that is not what it should be makes the archive invalid. */
function inArchive<T>(path: string, parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    if (!isAirlockError(e, "MANIFEST_INVALID")) throw e;
    throw new AirlockError("ARCHIVE_INVALID", `archive "${path}": ${e.message}`, { cause: e });
  }
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
 *
 * @example
 * ```ts
 * loadDestination(parseReference("a.io/p/app:1"), "b.io"); // b.io/p/app:1
 * ```
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
 *
 * @example
 * ```ts
 * const report = await loadArchive("images.tar", { destination: client, registry: "reg.example", jobs: 4, timeoutMs: 0 });
 * ```
 */
export async function loadArchive(path: string, o: LoadOptions): Promise<CopyReport & { images: number }> {
  const archive = await ArchiveReader.open(path, o.signal);
  try {
    const items: CopyItem[] = [];
    const extra: LineCopyResult[] = [];
    archive.images.forEach((img, i) => {
      try {
        items.push({
          id: i + 1,
          line: img.name,
          source: img.reference,
          destination: loadDestination(img.reference, o.registry, o.project),
        });
      } catch (e) {
        const error = isAirlockError(e) ? e : new AirlockError("INVALID_REFERENCE", errorMessage(e));
        extra.push({ id: i + 1, line: img.name, status: "failed", error });
      }
    });
    const report = await copyImages(items, extra, {
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
