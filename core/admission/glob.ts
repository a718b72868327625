/**
 * `allowImages` patterns: globs over fully normalised image references (`docker.io/library/nginx:1.25`,
 * `reg.io/team/app@sha256:…`, `reg.io/team/app:1.0@sha256:…`). `*` matches any run of characters except `/`,
 * `**` any run including `/`, `?` one character other than `/`; everything else is literal. The whole reference
 * must match. A pattern without `@` is also tried on the reference without its digest, so `reg.io/pause:3.9`
 * admits `reg.io/pause:3.9@sha256:…` as well.
 *
 * @module
 */
import { AirlockError } from "../errors.ts";
import { formatReference, type Reference } from "../reference.ts";

/** A compiled pattern. */
export interface ImageGlob {
  /** The pattern as written. */
  readonly pattern: string;
  /** Whether it names a digest (then it is matched only against the full reference). */
  readonly withDigest: boolean;
  /** The compiled expression (whole reference, anchored). */
  readonly re: RegExp;
}

const PATTERN_RE = /^[A-Za-z0-9._\-/:@*?\[\]]+$/;

/**
 * Compiles a pattern.
 *
 * @throws {AirlockError} `CONFIG_INVALID` for an empty pattern, characters no reference holds, or `***`.
 */
export function compileImageGlob(pattern: string): ImageGlob {
  if (pattern === "" || !PATTERN_RE.test(pattern) || pattern.includes("***")) {
    throw new AirlockError(
      "CONFIG_INVALID",
      `invalid allowImages pattern ${JSON.stringify(pattern)}: use letters, digits, . _ - / : @ and the ` +
        `wildcards *, ** and ?`,
    );
  }
  let re = "^";
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i];
    if (ch === "*" && pattern[i + 1] === "*") {
      re += ".*";
      i++;
    } else if (ch === "*") re += "[^/]*";
    else if (ch === "?") re += "[^/]";
    else re += ch.replace(/[.\-\[\]\/]/g, "\\$&");
  }
  return { pattern, withDigest: pattern.includes("@"), re: new RegExp(re + "$") };
}

/**
 * The first pattern that matches `ref` (see the module doc), or `undefined`.
 */
export function matchImageGlobs(globs: readonly ImageGlob[], ref: Reference): ImageGlob | undefined {
  const full = formatReference(ref);
  const withoutDigest = ref.digest === undefined ? full : formatReference({ ...ref, digest: undefined });
  return globs.find((g) => g.re.test(full) || (!g.withDigest && g.re.test(withoutDigest)));
}
