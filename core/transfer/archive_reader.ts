/**
 * Reading an image archive (`save`'s OCI image layout in a tar) as an image source for `load`: the tar is indexed
 * first (headers only) and checked complete — `index.json` present, every blob any saved manifest names present
 * with its size — before anything is pushed; manifests are read strictly (a document that is not what it should
 * be makes the archive invalid); blob bytes are checked against their digests as they stream out.
 *
 * @module
 */
import { AirlockError, errorMessage, isAirlockError } from "../errors.ts";
import type { ImageSource } from "./copy.ts";
import { manifestBlobs } from "./index_merge.ts";
import { formatReference, parseReference, type Reference, repositoryName } from "../reference.ts";
import type { BlobStream } from "../registry/client.ts";
import { RegistryError } from "../registry/errors.ts";
import {
  type Descriptor,
  type FetchedManifest,
  type ImageIndex,
  type ImageManifest,
  MediaType,
} from "../registry/types.ts";
import { parseAttachmentTag } from "../signature/attachments.ts";
import { sha256Digest } from "../encoding/digest.ts";
import { parseImageIndex, parseImageManifest } from "../registry/manifest.ts";
import { indexTar, type TarEntryLocation } from "./tar.ts";
import { createHash } from "node:crypto";

const dec = new TextDecoder();

/** The annotation that names an image in `index.json`. */
export const REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name";

/** `blobs/<algorithm>/<hex>` of a digest. */
export function blobPath(digest: string): string {
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
