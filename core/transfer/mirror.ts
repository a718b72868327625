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
import { failedLines } from "../list_run.ts";
import {
  ignoredLineWarning,
  type ImageListLine,
  loadImageList,
  parseImageList,
  resolveImageLine,
} from "../image_list.ts";
import { runPool } from "../pool.ts";
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
  return lines.map((line): ResolvedMirrorLine => {
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
  });
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

/** One image to copy: the list line it came from and the two references. */
export interface CopyItem {
  /** The line's id (`IMG:n`). */
  readonly id: number;
  /** The line as the failed list records it. */
  readonly line: string;
  /** Where the image is read. */
  readonly source: Reference;
  /** Where it is written. */
  readonly destination: Reference;
}

/** Options of {@linkcode copyImages} and {@linkcode mirrorImages}. */
export interface CopyRunOptions extends CopyOptions {
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
export interface LineCopyResult {
  /** The line's id. */
  readonly id: number;
  /** The original line. */
  readonly line: string;
  /** `failed` lines go to the failed list; `ignored` lines are neither images nor mirror lines. */
  readonly status: "copied" | "skipped" | "failed" | "ignored";
  /** The image's outcome, when it was reached. */
  readonly result?: CopiedImage;
  /** With a signer: what was signed at the destination. */
  readonly signed?: ImageSignResult;
  /** What went wrong. */
  readonly error?: AirlockError;
}

/** The outcome of a run. */
export interface CopyReport {
  /** One entry per line, in list order. */
  readonly lines: readonly LineCopyResult[];
  /** The failed lines, in list order (for the failed list). */
  readonly failed: readonly string[];
  /** What the copier did. */
  readonly stats: CopyStats;
  /** Wall time of the run, in milliseconds. */
  readonly ms: number;
}

/**
 * Copies images with a worker pool; failures are per line. Lines in `extra` (invalid or ignored entries of the
 * list) are merged into the report in id order.
 */
export async function copyImages(
  items: readonly CopyItem[],
  extra: readonly LineCopyResult[],
  o: CopyRunOptions,
): Promise<CopyReport> {
  const t0 = performance.now();
  const log = o.logger ?? silentLogger();
  const copier = new ImageCopier(o);
  const signer = o.signer
    ? await Signer.create({ ...o.signer, client: o.destination, platforms: o.platforms, logger: log })
    : undefined;
  let done = 0;
  const results = await runPool(items, o.jobs, async (item, signal) => {
    const fields = { IMG: item.id };
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
  }, {
    signal: o.signal,
    timeoutMs: o.timeoutMs,
    // Each image's result line as soon as it is done.
    onSettled: (i, r) => {
      const item = items[i];
      const fields = { IMG: item.id };
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
      o.onProgress?.(++done, items.length);
    },
  });

  const byId = new Map<number, LineCopyResult>();
  items.forEach((item, i) => {
    const r = results[i];
    if (r.ok) {
      const { copied, signed } = r.value;
      byId.set(item.id, { id: item.id, line: item.line, status: copied.status, result: copied, signed });
      return;
    }
    byId.set(item.id, { id: item.id, line: item.line, status: "failed", error: toAirlockError(r.error) });
  });
  for (const e of extra) {
    if (e.status === "ignored" && e.error === undefined) log.warn(ignoredLineWarning(e.line));
    else if (e.error) log.error(`error occurred when copy [${e.line}]: ${e.error.message}`, { IMG: e.id });
    byId.set(e.id, e);
  }
  const lines = [...byId.values()].sort((a, b) => a.id - b.id);
  return {
    lines,
    failed: failedLines(lines),
    stats: { ...copier.stats },
    ms: performance.now() - t0,
  };
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
 * Mirrors every image of a resolved mirror list.
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
  resolved: readonly ResolvedMirrorLine[],
  o: CopyRunOptions,
): Promise<CopyReport> {
  const items: CopyItem[] = [];
  const extra: LineCopyResult[] = [];
  for (const r of resolved) {
    if (r.status === "ok") {
      items.push({ id: r.line.id, line: r.line.line, source: r.source, destination: r.destination });
    } else if (r.status === "invalid") {
      extra.push({ id: r.line.id, line: r.line.line, status: "failed", error: r.error });
    } else extra.push({ id: r.line.id, line: r.line.line, status: "ignored" });
  }
  return copyImages(items, extra, { verb: "Mirroring", doneVerb: "Mirrored", ...o });
}
