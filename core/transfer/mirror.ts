/**
 * `mirror`: copy the images of an image list, with their signatures, from one registry to another (or to
 * other repositories of the same one), preserving digests. Each line is copied by {@linkcode ImageCopier}
 * (blobs, children, index, then signatures); a worker pool runs lines in parallel with a per-image deadline.
 *
 * Image lists (spec/hangar.md §2): hangar's default format, where `--source`/`--source-project` override the
 * source's registry/project and `--destination`/`--destination-project` give the destination's (the name and tag
 * are kept); and the mirror format `SOURCE_REPO DESTINATION_REPO TAG`, each repository with its registry (the
 * same overrides apply when given). Lines of neither format are ignored with hangar's warning.
 *
 * After a mirror, the signatures at the destination still name the SOURCE (their payload is signed and cannot
 * change), so `sign validate` passes there with `--exact-repository <source repo>`, not by default
 * (spec/hangar.md §6.4).
 *
 * @module
 */
import { AirlockError, errorMessage, isAirlockError, toAirlockError } from "../errors.ts";
import { imageCount, lineCollector, runListInOrder } from "../list_run.ts";
import type { LineOutput, LineResult, ListReport } from "../list_run.ts";
import {
  ignoredLineWarning,
  type ImageListLine,
  loadImageList,
  parseImageList,
  resolveImageLine,
  streamImageList,
} from "../image_list.ts";
import { formatReference, type Reference } from "../reference.ts";
import { type CopiedImage, type CopyOptions, type CopyStats, ImageCopier } from "./copy.ts";
import { type Logger, silentLogger } from "../report.ts";
import type { KeyBackend } from "../../backends/key_backend.ts";
import type { RegistriesDConfig } from "../config/registries_d.ts";
import { type ImageSignResult, Signer } from "../sign.ts";

/** Registry and project overrides of a mirror list. Empty = not given. */
export interface MirrorListOverrides {
  /** `--source`: the source registry of every line. */
  readonly source?: string;
  /** `--source-project`: the source project (first path segment) of every line. */
  readonly sourceProject?: string;
  /** `--destination`: the destination registry; required for default-format lines. */
  readonly destination?: string;
  /** `--destination-project`: the destination project of every line. */
  readonly destinationProject?: string;
}

/**
 * One line of a mirror list: a source/destination pair, a per-line error (the line goes to the failed list), or
 * an ignored line.
 */
export type ResolvedMirrorLine =
  | {
    readonly status: "ok";
    readonly line: ImageListLine;
    readonly source: Reference;
    readonly destination: Reference;
  }
  | { readonly status: "invalid"; readonly line: ImageListLine; readonly error: AirlockError }
  | { readonly status: "ignored"; readonly line: ImageListLine; readonly warning: string };

/**
 * Resolves the lines of a mirror list into source/destination pairs.
 *
 * - default format `[registry/]project/name[:tag]`: source = the line with `--source`/`--source-project`;
 *   destination = the line with `--destination` (required) and `--destination-project`.
 * - mirror format `SOURCE_REPO DESTINATION_REPO TAG`: `SOURCE_REPO:TAG` → `DESTINATION_REPO:TAG` (a `TAG` of the
 *   form `sha256:…` is a digest), each decomposed like a default line, overrides applied when given.
 *
 * @example
 * ```ts
 * resolveMirrorList(parseImageList("a.io/p/app b.io/q/app 1\n"), {});
 * // [{ status: "ok", source: a.io/p/app:1, destination: b.io/q/app:1, … }]
 * ```
 */
export function resolveMirrorList(
  lines: readonly ImageListLine[],
  o: MirrorListOverrides = {},
): ResolvedMirrorLine[] {
  return lines.map((line) => resolveMirrorLine(line, o));
}

/** One line of {@linkcode resolveMirrorList}. */
export function resolveMirrorLine(line: ImageListLine, o: MirrorListOverrides = {}): ResolvedMirrorLine {
  if (line.kind === "unknown") return { status: "ignored", line, warning: ignoredLineWarning(line) };
  try {
    const srcOverrides = { registry: o.source, project: o.sourceProject };
    const dstOverrides = { registry: o.destination, project: o.destinationProject };
    if (line.kind === "mirror") {
      const [s, d, t] = line.text.split(" ").filter((x) => x !== "");
      const sep = /^sha(256|512):/.test(t) ? "@" : ":";
      return {
        status: "ok",
        line,
        source: resolveImageLine(`${s}${sep}${t}`, srcOverrides),
        destination: resolveImageLine(`${d}${sep}${t}`, dstOverrides),
      };
    }
    if (!o.destination) {
      throw new AirlockError(
        "INVALID_ARGUMENT",
        `image list line "${line.line}": no destination registry, use '--destination' to specify it`,
      );
    }
    return {
      status: "ok",
      line,
      source: resolveImageLine(line, srcOverrides),
      destination: resolveImageLine(line, dstOverrides),
    };
  } catch (e) {
    const error = isAirlockError(e)
      ? e
      : new AirlockError("INVALID_REFERENCE", errorMessage(e), { cause: e });
    return { status: "invalid", line, error };
  }
}

/**
 * Reads a mirror list file: like {@linkcode loadImageList}, but lines in the mirror format count as images too.
 *
 * @throws {AirlockError} `INVALID_IMAGE_LIST` when the file cannot be read or has neither kind of line.
 */
export async function loadMirrorList(path: string): Promise<ImageListLine[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch {
    return await loadImageList(path); // throws hangar's "failed to open" error
  }
  const lines = parseImageList(text);
  if (!lines.some((l) => l.kind !== "unknown")) {
    throw new AirlockError("INVALID_IMAGE_LIST", `no images in image list "${path}"`);
  }
  return lines;
}

/**
 * What a first pass over a mirror list file tells before a run (the file is read as it goes, never whole): how many
 * lines name images (for progress), and how many are in hangar's default format (those need `--destination`).
 *
 * @throws {AirlockError} `INVALID_IMAGE_LIST` when the file cannot be read or has neither kind of line (the
 *   messages of {@linkcode loadMirrorList}).
 */
export async function surveyMirrorList(
  path: string,
  o: MirrorListOverrides = {},
): Promise<{ readonly images: number; readonly defaults: number }> {
  let images = 0;
  let defaults = 0;
  let listed = 0;
  for await (const line of streamImageList(path)) {
    if (line.kind === "unknown") continue;
    listed++;
    if (line.kind === "default") defaults++;
    if (resolveMirrorLine(line, o).status === "ok") images++;
  }
  if (listed === 0) throw new AirlockError("INVALID_IMAGE_LIST", `no images in image list "${path}"`);
  return { images, defaults };
}

/** The lines of a mirror list file, resolved one at a time as the file is read ({@linkcode resolveMirrorLine}). */
export async function* streamMirrorList(
  path: string,
  o: MirrorListOverrides = {},
): AsyncGenerator<ResolvedMirrorLine> {
  for await (const line of streamImageList(path)) yield resolveMirrorLine(line, o);
}

/** Options of {@linkcode copyImages} and {@linkcode mirrorImages}. */
export interface CopyRunOptions extends CopyOptions, LineOutput<LineCopyResult> {
  /** Images copied at once (1–20). */
  readonly jobs: number;
  /** Deadline per image, covering all of its work; 0 = none. */
  readonly timeoutMs: number;
  /** Stops scheduling new images (in-flight copies finish). */
  readonly signal?: AbortSignal;
  /** Called as each image finishes. */
  readonly onProgress?: (done: number, total: number) => void;
  /** Log lines (info per image, errors); default none. */
  readonly logger?: Logger;
  /** The verb of log lines: `Mirroring`, `Loading`. */
  readonly verb?: string;
  /**
   * Sign each image at the destination once it is copied (hangar's `mirror --sigstore-private-key`): the index and
   * the platform manifests the filter chose, with the identity `sign` writes for the destination reference (a new
   * index by its digest when the line names a digest).
   */
  readonly signer?: { readonly key: KeyBackend; readonly registriesD: RegistriesDConfig };
  /** The verb of an image's result line: `Mirrored`, `Loaded`. */
  readonly doneVerb?: string;
}

/** One line's outcome. */
export interface LineCopyResult extends LineResult<"copied" | "skipped" | "failed" | "ignored", CopiedImage> {
  /** With a signer: what was signed at the destination. */
  readonly signed?: ImageSignResult;
}

/** The outcome of a run (`lines` and `failed` empty when the run was told not to keep lines). */
export interface CopyReport extends ListReport<LineCopyResult> {
  /** What the copier did. */
  readonly stats: CopyStats;
  /** Wall time of the run, in milliseconds. */
  readonly ms: number;
}

interface CopyWork {
  readonly copied: CopiedImage;
  readonly signed?: ImageSignResult;
}

/**
 * Copies the images of a list with a worker pool, in list order ({@linkcode runListInOrder}: lines may come one
 * at a time as a file is read, and with `keepLines: false` nothing grows with the list); failures are per line,
 * and lines that name no image are reported as the list gives them (ignored, or failed when invalid).
 */
export async function copyImages(
  lines: Iterable<ResolvedMirrorLine> | AsyncIterable<ResolvedMirrorLine>,
  o: CopyRunOptions,
): Promise<CopyReport> {
  const t0 = performance.now();
  const log = o.logger ?? silentLogger();
  const copier = new ImageCopier(o);
  const signer = o.signer
    ? await Signer.create({ ...o.signer, client: o.destination, platforms: o.platforms, logger: log })
    : undefined;
  const total = imageCount(lines, o.total);
  let done = 0;
  const out = lineCollector<LineCopyResult>(o);
  await runListInOrder<CopyWork, LineCopyResult, ResolvedMirrorLine>(lines, o, {
    work: async (item, signal) => {
      const fields = { IMG: item.line.id };
      log.info(
        `${o.verb ?? "Copying"} [${formatReference(item.source)}] => [${formatReference(item.destination)}]`,
        fields,
      );
      const r = await copier.copy(item.source, item.destination, signal);
      if (r.status === "skipped") return { copied: r };
      if (r.filteredIndex) log.warn(newIndexWarning(r, signer !== undefined), fields);
      if (!signer) return { copied: r };
      // A line naming a digest gets the index written (its digest differs from the source's when it is new).
      const at = item.destination.tag === undefined
        ? { ...item.destination, digest: r.digest }
        : item.destination;
      const written = await signer.write(at, signal);
      await signer.confirm(written);
      log.info(`Signed [${formatReference(at)}]: ${written.result.targets.length} manifest(s)`, fields);
      return { copied: r, signed: written.result };
    },
    // Each image's result line as soon as it is done.
    settled: (item, r) => {
      const fields = { IMG: item.line.id };
      if (!r.ok) {
        const error = toAirlockError(r.error);
        log.error(`error occurred when copy [${formatReference(item.source)}]: ${error.message}`, fields);
      } else if (r.value.copied.status === "skipped") {
        log.warn(
          `Skip image [${r.value.copied.source}]: no available image for specified arch and os`,
          fields,
        );
      } else {
        log.info(copiedLine(o.doneVerb ?? "Copied", r.value.copied), fields);
      }
      o.onProgress?.(++done, total);
    },
    finish: (item, r): LineCopyResult => {
      const { id, line } = item.line;
      if (!r.ok) return { id, line, status: "failed", error: toAirlockError(r.error) };
      return { id, line, status: r.value.copied.status, result: r.value.copied, signed: r.value.signed };
    },
    unresolved: (l): LineCopyResult => {
      const { id, line } = l.line;
      if (l.status === "ignored") {
        log.warn(l.warning);
        return { id, line, status: "ignored" };
      }
      log.error(`error occurred when copy [${line}]: ${l.error.message}`, { IMG: id });
      return { id, line, status: "failed", error: l.error };
    },
    emit: out.add,
  });
  return { ...out.report(), stats: { ...copier.stats }, ms: performance.now() - t0 };
}

/** The warning for an image whose destination index is not the source's (one per image). */
function newIndexWarning(r: CopiedImage, signing: boolean): string {
  const why: string[] = [];
  if (r.leftOut?.length) why.push(`leaves out ${r.leftOut.join(", ")} (--arch/--os)`);
  if (r.kept?.length) {
    why.push(`keeps ${r.kept.join(", ")} of the destination's index (--overwrite replaces it instead)`);
  }
  return `Wrote a new index ${r.digest} for [${r.destination}] that ${
    why.join(" and ")
  }: the signature of the ` +
    `source index ${r.sourceDigest} does not carry over to it; ` +
    (signing
      ? "it is signed with the given key"
      : "sign it at the destination (airlock sign, or mirror with --key / --sigstore-private-key)");
}

/**
 * The result line of a copied image: `Mirrored [src] => [dst]: 2 manifests (linux/amd64, linux/arm64), 3 signature
 * tags (2 copied, 1 merged, 0 already there)`.
 */
function copiedLine(verb: string, r: CopiedImage): string {
  const n = (k: number, one: string, many: string) => `${k} ${k === 1 ? one : many}`;
  const platforms = r.platforms.length > 0 ? ` (${r.platforms.join(", ")})` : "";
  const tags = r.attachments.length;
  const by = (s: string) => r.attachments.filter((a) => a.status === s).length;
  const tagDetail = tags > 0
    ? ` (${by("copied")} copied, ${by("merged")} merged, ${by("present")} already there)`
    : "";
  return `${verb} [${r.source}] => [${r.destination}]: ${n(r.manifests.length, "manifest", "manifests")}` +
    `${platforms}, ${n(tags, "signature tag", "signature tags")}${tagDetail}`;
}

/**
 * Mirrors every image of a resolved mirror list (an array, or lines read as they come: {@linkcode streamMirrorList}).
 *
 * @example
 * ```ts
 * const lines = await loadImageList("list.txt");
 * const report = await mirrorImages(resolveMirrorList(lines, { destination: "reg.example" }), {
 *   source: client, destination: client, platforms, jobs: 4, timeoutMs: 600_000,
 * });
 * ```
 */
export function mirrorImages(
  resolved: Iterable<ResolvedMirrorLine> | AsyncIterable<ResolvedMirrorLine>,
  o: CopyRunOptions,
): Promise<CopyReport> {
  return copyImages(resolved, { verb: "Mirroring", doneVerb: "Mirrored", ...o });
}
