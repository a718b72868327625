/**
 * hangar's image-list file grammar (spec/hangar.md §2), shared by `sign`, `sign validate` and `inspect list`.
 *
 * Reading: the text is split on `\n` (one trailing `\r` per line dropped), each line is trimmed with Go's
 * `strings.TrimSpace` rules, and empty lines and lines starting with `#` or `//` are skipped. Every other line
 * gets an id (`IMG:n`), 1-based, in file order, including lines that are later ignored as invalid.
 *
 * Classification: three space-separated tokens is hangar's mirror format (ignored here, with a warning); a
 * line with at least one `/`-segment free of spaces is the default format (an image); anything else is
 * unknown (ignored, with the same warning). Default lines are decomposed by hangar's table (§2.3), with its
 * quirks kept: a project is always present (`reg.io/nginx:1` → `reg.io/library/nginx:1`), three segments
 * always take the first as the registry, and a missing or ambiguous tag becomes `latest`.
 *
 * Deliberate differences from hangar (spec/hangar.md §11):
 * - **Digest-pinned lines** (`…/name@sha256:<hex>`, `name:tag@sha256:<hex>`) become real digest references,
 *   so they work for multi-arch images too (hangar builds `name@sha256@sha256:<child>` and fails, item 2).
 *   No `latest` tag is added to a digest line; an explicit tag is kept next to the digest.
 * - **Inline comments**: whitespace followed by `#` starts a comment that is removed before classification, so
 *   `nginx:1 # web` is the image `nginx:1` (hangar sees three tokens, a mirror line, and skips it, item 4).
 *   The failed list and warnings still show the whole trimmed line.
 * - **No line-length limit**: hangar's `bufio.Scanner` silently ends the list at a line over 64 KiB (item 5);
 *   here every line is read, and one too long to be a reference fails to parse as one, by itself.
 *
 * @module
 */
import { AirlockError, errorMessage, isAirlockError, toAirlockError } from "./errors.ts";
import { parseReference, type Reference } from "./reference.ts";
import { goQuote } from "./encoding/go_quote.ts";

/** How hangar classifies a line: an image (`default`), a mirror triple, or neither. */
export type ImageLineKind = "default" | "mirror" | "unknown";

/**
 * One non-comment line of an image list.
 *
 * @example
 * ```ts
 * const [line] = parseImageList("nginx:1.25 # web\n");
 * // { id: 1, line: "nginx:1.25 # web", text: "nginx:1.25", kind: "default" }
 * ```
 */
export interface ImageListLine {
  /** 1-based position among the non-comment lines; printed as `IMG:n`. */
  readonly id: number;
  /** The line as written, trimmed: what the failed list records and warnings quote. */
  readonly line: string;
  /** `line` without an inline comment: what is classified and parsed. */
  readonly text: string;
  /** hangar's classification of `text`. */
  readonly kind: ImageLineKind;
}

/**
 * The pieces of a default-format line per hangar's decomposition table, before overrides.
 */
export interface ImageLineParts {
  /** hangar's `GetRegistryName` (not normalised: `library/foo/bar` gives `library`). */
  readonly registry: string;
  /** hangar's `GetProjectName`; always present. */
  readonly project: string;
  /** hangar's `GetImageName`; may contain `/` for four or more segments. */
  readonly name: string;
  /** The tag: hangar's `GetImageTag` (`latest` when absent), or only an explicit one on a digest line. */
  readonly tag?: string;
  /** The digest after `@`, on a digest-pinned line (not validated here). */
  readonly digest?: string;
}

/**
 * `--registry` / `--project`: replace the registry or project of every image line. Empty = not given.
 */
export interface ImageListOverrides {
  /** Replaces every line's registry. */
  readonly registry?: string;
  /** Replaces every line's project (the first path segment under the registry). */
  readonly project?: string;
}

/**
 * A line of the list after resolution: an image reference, a per-line error (the line goes into the failed
 * list), or an ignored line (mirror/unknown format: warn, not a failure).
 */
export type ResolvedImageLine =
  | { readonly status: "ok"; readonly line: ImageListLine; readonly reference: Reference }
  | { readonly status: "invalid"; readonly line: ImageListLine; readonly error: AirlockError }
  | { readonly status: "ignored"; readonly line: ImageListLine; readonly warning: string };

// Go's unicode.IsSpace (what strings.TrimSpace trims). Differs from JS `trim()`: U+0085 is a space, U+FEFF not.
const GO_SPACE = "\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";
const LEADING_SPACE_RE = new RegExp(`^[${GO_SPACE}]+`);
const TRAILING_SPACE_RE = new RegExp(`[${GO_SPACE}]+$`);
const INLINE_COMMENT_RE = new RegExp(`[${GO_SPACE}]#`);

/**
 * Go's `strings.TrimSpace`: removes Unicode white space (Go's definition) at both ends.
 */
export function goTrimSpace(s: string): string {
  return s.replace(LEADING_SPACE_RE, "").replace(TRAILING_SPACE_RE, "");
}

/**
 * hangar's `Detect`: three space-separated tokens (ASCII space only, empty tokens dropped) is `mirror`; at least
 * one non-empty `/`-segment without a space is `default`; otherwise `unknown`.
 *
 * @example
 * ```ts
 * classifyImageLine("nginx:1"); // "default"
 * classifyImageLine("a b c"); // "mirror"
 * classifyImageLine("a b"); // "unknown"
 * ```
 */
export function classifyImageLine(text: string): ImageLineKind {
  if (text.split(" ").filter((t) => t !== "").length === 3) return "mirror";
  if (text.split("/").some((seg) => seg !== "" && !seg.includes(" "))) return "default";
  return "unknown";
}

/**
 * Reads an image list's text into its non-comment lines, numbered and classified. Never throws: lines that are
 * not images are returned with `kind` `mirror` or `unknown` for the caller to warn about.
 *
 * @example
 * ```ts
 * parseImageList("# images\nnginx:1.25\n\nredis # cache\r\n").map((l) => [l.id, l.text]);
 * // [[1, "nginx:1.25"], [2, "redis"]]
 * ```
 */
export function parseImageList(text: string): ImageListLine[] {
  const out: ImageListLine[] = [];
  for (const raw of text.split("\n")) {
    const line = listLine(raw, out.length + 1);
    if (line) out.push(line);
  }
  return out;
}

/** One raw line of a list file (without its `\n`) as the line numbered `id`, or `undefined` for a comment. */
function listLine(raw: string, id: number): ImageListLine | undefined {
  if (raw.endsWith("\r")) raw = raw.slice(0, -1);
  const line = goTrimSpace(raw);
  if (line === "" || line.startsWith("#") || line.startsWith("//")) return undefined;
  const comment = line.search(INLINE_COMMENT_RE);
  const stripped = comment < 0 ? line : goTrimSpace(line.slice(0, comment));
  return Object.freeze({ id, line, text: stripped, kind: classifyImageLine(stripped) });
}

/**
 * Reads an image list file line by line, as {@linkcode parseImageList} reads its text, without holding the file:
 * memory stays the same whatever the number of lines.
 *
 * @throws {AirlockError} `INVALID_IMAGE_LIST` when the file cannot be read.
 */
export async function* streamImageList(path: string): AsyncGenerator<ImageListLine> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (e) {
    throw new AirlockError("INVALID_IMAGE_LIST", `failed to open ${goQuote(path)}: ${openProblem(e)}`, {
      cause: e,
    });
  }
  const decoder = new TextDecoder();
  const buf = new Uint8Array(64 * 1024);
  let rest = "";
  let id = 0;
  try {
    for (;;) {
      let n: number | null;
      try {
        n = await file.read(buf);
      } catch (e) {
        throw new AirlockError("INVALID_IMAGE_LIST", `failed to read ${goQuote(path)}: ${openProblem(e)}`, {
          cause: e,
        });
      }
      const text = n === null ? decoder.decode() : decoder.decode(buf.subarray(0, n), { stream: true });
      const parts = (rest + text).split("\n");
      rest = n === null ? "" : parts.pop()!;
      for (const raw of parts) {
        const line = listLine(raw, id + 1);
        if (line) {
          id++;
          yield line;
        }
      }
      if (n === null) return;
    }
  } finally {
    file.close();
  }
}

/**
 * What a first pass over an image list file tells before a run: how many lines name images that resolve, and how
 * many lines there are in all; `onImage` sees each image's reference. Reads the file as
 * {@linkcode streamImageList} does.
 *
 * @throws {AirlockError} `INVALID_IMAGE_LIST` when the file cannot be read, or names no image at all (the
 *   message {@linkcode loadImageList} gives).
 */
export async function surveyImageList(
  path: string,
  overrides: ImageListOverrides = {},
  onImage?: (reference: Reference) => void,
): Promise<{ readonly lines: number; readonly images: number }> {
  let lines = 0;
  let images = 0;
  let defaults = 0;
  for await (const line of streamImageList(path)) {
    lines++;
    if (line.kind !== "default") continue;
    defaults++;
    const r = resolveLine(line, overrides);
    if (r.status === "ok") {
      images++;
      onImage?.(r.reference);
    }
  }
  if (defaults === 0) throw noImages(path, lines);
  return { lines, images };
}

function looksLikeRegistry(segment: string): boolean {
  return segment.includes(".") || segment.includes(":") || segment === "localhost";
}

function beforeColon(s: string): string {
  const i = s.indexOf(":");
  return i < 0 ? s : s.slice(0, i);
}

/**
 * Decomposes a default-format line with hangar's table (spec/hangar.md §2.3), plus the digest fix.
 *
 * | segments | registry | project | name |
 * |---|---|---|---|
 * | 1 | `docker.io` | `library` | s0 |
 * | 2 | s0 if it looks like a registry, else `docker.io` | `library` if so, else s0 | s1 |
 * | 3 | s0 (always) | s1 | s2 |
 * | ≥4 | s0 if registry-like, else `docker.io` | s1 if so, else s0 | the rest joined with `/` |
 *
 * The name is cut at its first `:`. The tag is the second of the `:`-separated non-empty parts of the last
 * segment when there are exactly two, else `latest` (on a digest line: no tag unless exactly two).
 *
 * @throws {AirlockError} `INVALID_REFERENCE` when the line has no name segment at all (e.g. `@sha256:…`).
 *
 * @example
 * ```ts
 * splitImageLine("library/foo/bar"); // { registry: "library", project: "foo", name: "bar", tag: "latest" }
 * splitImageLine("nginx@sha256:" + "a".repeat(64)); // { …, name: "nginx", digest: "sha256:aaa…" } (no tag)
 * ```
 */
export function splitImageLine(text: string): ImageLineParts {
  let namePart = text;
  let digest: string | undefined;
  const at = text.indexOf("@");
  if (at >= 0) {
    namePart = text.slice(0, at);
    digest = text.slice(at + 1);
  }
  const s = namePart.split("/").filter((seg) => seg !== "");
  const l = s.length;
  if (l === 0) {
    throw new AirlockError("INVALID_REFERENCE", `invalid image ${goQuote(text)}: no image name`);
  }
  let registry: string;
  let project: string;
  let name: string;
  if (l === 1) {
    registry = "docker.io";
    project = "library";
    name = beforeColon(s[0]);
  } else if (l === 2) {
    const reg = looksLikeRegistry(s[0]);
    registry = reg ? s[0] : "docker.io";
    project = reg ? "library" : s[0];
    name = beforeColon(s[1]);
  } else if (l === 3) {
    registry = s[0];
    project = s[1];
    name = beforeColon(s[2]);
  } else {
    const reg = looksLikeRegistry(s[0]);
    registry = reg ? s[0] : "docker.io";
    project = reg ? s[1] : s[0];
    name = beforeColon((reg ? s.slice(2) : s.slice(1)).join("/"));
  }
  const tagParts = s[l - 1].split(":").filter((p) => p !== "");
  const tag = tagParts.length === 2 ? tagParts[1] : digest === undefined ? "latest" : undefined;
  const parts: { registry: string; project: string; name: string; tag?: string; digest?: string } = {
    registry,
    project,
    name,
  };
  if (tag !== undefined) parts.tag = tag;
  if (digest !== undefined) parts.digest = digest;
  return Object.freeze(parts);
}

/**
 * Turns one default-format line into a normalised reference: hangar's decomposition, then `--registry` /
 * `--project` (name and tag are never overridden), then {@linkcode parseReference} of
 * `registry/project/name[:tag][@digest]` (so `index.docker.io` becomes `docker.io`, and a registry override
 * that does not look like a host is read as a Docker Hub path, as containers/image does for hangar).
 *
 * @throws {AirlockError} `INVALID_REFERENCE` naming the line and the problem, for a line that does not make a
 *   valid reference (the caller records the line as failed); `INVALID_IMAGE_LIST` for a mirror/unknown line.
 *
 * @example
 * ```ts
 * resolveImageLine("reg.io/nginx:1"); // reg.io/library/nginx:1
 * resolveImageLine("nginx:1", { registry: "harbor.io", project: "mirror" }); // harbor.io/mirror/nginx:1
 * ```
 */
export function resolveImageLine(
  line: ImageListLine | string,
  overrides: ImageListOverrides = {},
): Reference {
  const entry = typeof line === "string" ? undefined : line;
  const original = entry ? entry.line : line as string;
  const text = entry ? entry.text : line as string;
  const kind = entry ? entry.kind : classifyImageLine(text);
  if (kind !== "default") {
    throw new AirlockError("INVALID_IMAGE_LIST", `${ignoredLineWarning(original)} (${kind} format line)`);
  }
  try {
    const p = splitImageLine(text);
    const registry = overrides.registry || p.registry;
    const project = overrides.project || p.project;
    let s = `${registry}/${project}/${p.name}`;
    if (p.tag !== undefined) s += `:${p.tag}`;
    if (p.digest !== undefined) s += `@${p.digest}`;
    return parseReference(s);
  } catch (e) {
    throw new AirlockError(
      isAirlockError(e) ? e.code : "INVALID_REFERENCE",
      `image list line ${goQuote(original)}: ${errorMessage(e)}`,
      { cause: e },
    );
  }
}

/**
 * hangar's warning for a line that is not an image: `Ignore image list line "<line>": invalid format`.
 */
export function ignoredLineWarning(line: ImageListLine | string): string {
  return `Ignore image list line ${goQuote(typeof line === "string" ? line : line.line)}: invalid format`;
}

/**
 * Resolves every line: images to references, bad image lines to per-line errors (for the failed list), and
 * mirror/unknown lines to ignored entries with hangar's warning text. Never throws; keeps list order.
 *
 * @example
 * ```ts
 * const resolved = resolveImageList(parseImageList(text), { registry: "harbor.io" });
 * const failed = resolved.filter((r) => r.status === "invalid").map((r) => r.line.line);
 * ```
 */
export function resolveImageList(
  lines: readonly ImageListLine[],
  overrides: ImageListOverrides = {},
): ResolvedImageLine[] {
  return lines.map((line) => resolveLine(line, overrides));
}

/**
 * {@linkcode resolveImageList} for lines that come one at a time ({@linkcode streamImageList}).
 */
export async function* resolveImageLines(
  lines: AsyncIterable<ImageListLine>,
  overrides: ImageListOverrides = {},
): AsyncGenerator<ResolvedImageLine> {
  for await (const line of lines) yield resolveLine(line, overrides);
}

function resolveLine(line: ImageListLine, overrides: ImageListOverrides): ResolvedImageLine {
  if (line.kind !== "default") return { status: "ignored", line, warning: ignoredLineWarning(line) };
  try {
    return { status: "ok", line, reference: resolveImageLine(line, overrides) };
  } catch (e) {
    return { status: "invalid", line, error: toAirlockError(e, "INVALID_REFERENCE") };
  }
}

/**
 * hangar's login registry set (§2.5): `[--registry]` when given, else the distinct `GetRegistryName` values of
 * the image lines, in list order, as hangar computes them (not normalised: `library/foo/bar` gives `library`).
 * Lines that have no name segment are left out.
 */
export function imageListRegistries(
  lines: readonly ImageListLine[],
  overrides: ImageListOverrides = {},
): string[] {
  if (overrides.registry) return [overrides.registry];
  const set = new Set<string>();
  for (const line of lines) {
    if (line.kind !== "default") continue;
    try {
      set.add(splitImageLine(line.text).registry);
    } catch {
      // no name segment: not an image, nothing to log in to
    }
  }
  return [...set];
}

function openProblem(e: unknown): string {
  if (e instanceof Deno.errors.NotFound) return "no such file or directory";
  if (e instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (e instanceof Deno.errors.IsADirectory) return "is a directory";
  return errorMessage(e);
}

/**
 * Reads and parses an image-list file (`--file`).
 *
 * @throws {AirlockError} `INVALID_IMAGE_LIST`: `failed to open "<file>": <reason>` when the file cannot be
 *   read, and `no images in image list "<file>"` when it has no default-format line (only comments, blank
 *   lines, or mirror/unknown lines — their count is given).
 */
export async function loadImageList(path: string): Promise<ImageListLine[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new AirlockError("INVALID_IMAGE_LIST", `failed to open ${goQuote(path)}: ${openProblem(e)}`, {
      cause: e,
    });
  }
  const lines = parseImageList(text);
  if (!lines.some((l) => l.kind === "default")) throw noImages(path, lines.length);
  return lines;
}

function noImages(path: string, ignored: number): AirlockError {
  return new AirlockError(
    "INVALID_IMAGE_LIST",
    `no images in image list ${goQuote(path)}` +
      (ignored > 0 ? ` (${ignored} line${ignored === 1 ? "" : "s"} ignored: invalid format)` : ""),
  );
}
