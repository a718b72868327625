/**
 * The arch/os/variant filter that decides which manifests of an image get signed or verified, exactly as
 * hangar v1 applies it (`pkg/image/types/types.go`), and the pflag `StringSlice` parsing of `--arch`/`--os`.
 *
 * @module
 */
import { AirlockError } from "./errors.ts";
import type { Platform } from "./registry/types.ts";

/**
 * The configured platform sets. An empty set accepts everything for that part.
 */
export interface PlatformFilter {
  /** Accepted architectures (`--arch`); empty = any. */
  readonly arch: readonly string[];
  /** Accepted operating systems (`--os`); empty = any. */
  readonly os: readonly string[];
  /** Accepted variants; hangar has no flag for it, so it is empty (any) unless a caller sets it. */
  readonly variant: readonly string[];
}

/** The platform fields the filter looks at; every field may be missing. */
export type PlatformLike = Readonly<Partial<Pick<Platform, "architecture" | "os" | "variant">>>;

/**
 * hangar's default `--arch` list.
 */
export const DEFAULT_ARCH_LIST: readonly string[] = Object.freeze(["amd64", "arm64"]);

/**
 * hangar's default `--os` list.
 */
export const DEFAULT_OS_LIST: readonly string[] = Object.freeze(["linux"]);

function allowsPart(set: readonly string[], value: string): boolean {
  return set.length === 0 || value === "" || set.includes(value);
}

/**
 * hangar's `Allow(arch, os, variant)`: each part passes when its set is empty, when the manifest's value is the
 * empty string, or when the value is in the set (exact, case-sensitive); all three parts must pass.
 *
 * An index entry without `platform` (pass `undefined`) counts as `("", "", "")` and is therefore allowed.
 * hangar dereferences the missing platform and panics (exit 2); airlock signs such entries instead.
 *
 * @example
 * ```ts
 * const f = { arch: ["amd64", "arm64"], os: ["linux"], variant: [] };
 * allowsPlatform(f, { architecture: "arm64", os: "linux", variant: "v8" }); // true
 * allowsPlatform(f, { architecture: "unknown", os: "unknown" }); // false (attestation entries)
 * ```
 */
export function allowsPlatform(filter: PlatformFilter, platform?: PlatformLike): boolean {
  return allowsPart(filter.arch, platform?.architecture ?? "") &&
    allowsPart(filter.os, platform?.os ?? "") &&
    allowsPart(filter.variant, platform?.variant ?? "");
}

/**
 * Formats a platform as `os/arch[/variant]`, e.g. `linux/arm64/v8`. Missing `os`/`architecture` show as empty.
 *
 * @example
 * ```ts
 * formatPlatform({ architecture: "arm64", os: "linux", variant: "v8" }); // "linux/arm64/v8"
 * formatPlatform({ architecture: "amd64", os: "linux" }); // "linux/amd64"
 * ```
 */
export function formatPlatform(p: PlatformLike): string {
  const base = `${p.os ?? ""}/${p.architecture ?? ""}`;
  return p.variant ? `${base}/${p.variant}` : base;
}

/**
 * Parses the values of a repeated pflag `StringSlice` flag (`--arch`, `--os`) the way pflag does: no use →
 * `defaults`; the first use replaces the defaults and later uses append; each value is one CSV record (Go
 * `encoding/csv`: `"…"` quoting with `""` escapes, no whitespace trimming, a bare `"` inside an unquoted field
 * is an error); an empty value yields no elements, so `--arch=""` gives `[]` (no filtering).
 *
 * @param values the raw flag values in command-line order
 * @param defaults the flag's default list
 * @param flag the flag name for error messages, e.g. `--arch`
 * @throws {AirlockError} `INVALID_ARGUMENT` for a value that is not a valid CSV record.
 *
 * @example
 * ```ts
 * parseCsvList([], ["amd64", "arm64"]); // ["amd64", "arm64"]
 * parseCsvList(["amd64", "s390x,ppc64le"], ["amd64", "arm64"]); // ["amd64", "s390x", "ppc64le"]
 * parseCsvList([""], ["amd64", "arm64"]); // []
 * parseCsvList(["amd64, arm64"], []); // ["amd64", " arm64"]
 * ```
 */
export function parseCsvList(
  values: readonly string[],
  defaults: readonly string[],
  flag = "value",
): string[] {
  if (values.length === 0) return [...defaults];
  const out: string[] = [];
  for (const value of values) {
    if (value === "") continue;
    try {
      out.push(...readCsvRecord(value));
    } catch (e) {
      throw new AirlockError(
        "INVALID_ARGUMENT",
        `invalid argument ${JSON.stringify(value)} for ${flag}: ${(e as Error).message}`,
      );
    }
  }
  return out;
}

/** Reads the first record of `text` as Go's `csv.Reader.Read` does with its default settings. */
function readCsvRecord(text: string): string[] {
  // Split into physical lines (keeping "\n"), normalising "\r\n" to "\n" as Go's readLine does.
  const lines: string[] = [];
  let start = 0;
  while (start < text.length) {
    const nl = text.indexOf("\n", start);
    let line = nl < 0 ? text.slice(start) : text.slice(start, nl + 1);
    start = nl < 0 ? text.length : nl + 1;
    if (line.endsWith("\r\n")) line = line.slice(0, -2) + "\n";
    else if (nl < 0 && line.endsWith("\r")) line = line.slice(0, -1);
    lines.push(line);
  }
  let li = 0;
  while (li < lines.length && (lines[li] === "\n" || lines[li] === "")) li++;
  if (li >= lines.length) throw new Error("no CSV record found");
  const lineNo = li + 1;

  const fields: string[] = [];
  let line = lines[li];
  let pos = 0;
  const atEndOfLine = () => pos >= line.length || (line[pos] === "\n" && pos === line.length - 1);
  for (;;) {
    if (line[pos] !== '"') {
      // Unquoted field: up to the next comma or the end of the line.
      let end = line.indexOf(",", pos);
      if (end < 0) end = line.endsWith("\n") ? line.length - 1 : line.length;
      const field = line.slice(pos, end);
      const quote = field.indexOf('"');
      if (quote >= 0) {
        throw new Error(
          `parse error on line ${lineNo}, column ${pos + quote + 1}: bare " in non-quoted-field`,
        );
      }
      fields.push(field);
      pos = end;
      if (line[pos] === ",") {
        pos++;
        continue;
      }
      return fields;
    }
    // Quoted field: may span lines; "" is a literal quote.
    pos++;
    let field = "";
    for (;;) {
      const q = line.indexOf('"', pos);
      if (q >= 0) {
        field += line.slice(pos, q);
        pos = q + 1;
        if (line[pos] === '"') {
          field += '"';
          pos++;
        } else if (line[pos] === ",") {
          pos++;
          fields.push(field);
          break;
        } else if (atEndOfLine()) {
          fields.push(field);
          return fields;
        } else {
          throw new Error(
            `parse error on line ${lineNo}, column ${pos + 1}: extraneous or missing " in quoted-field`,
          );
        }
      } else if (li + 1 < lines.length) {
        field += line.slice(pos);
        li++;
        line = lines[li];
        pos = 0;
      } else {
        throw new Error(
          `parse error on line ${lineNo}, column ${line.length + 1}: extraneous or missing " in quoted-field`,
        );
      }
    }
  }
}
