// The committed default. `deno task compile` (scripts/compile.sh) rewrites this file with the git commit being
// built (scripts/gen_build_info.ts) and restores it afterwards; keep the default "unknown".
/**
 * Facts fixed when airlock is built: the source commit. `deno run` from a checkout reports `"unknown"`;
 * binaries made by `deno task compile` carry the commit they were built from.
 *
 * @module
 */

/**
 * The git commit airlock was built from (`<40 hex>`, with `-dirty` when the tree had uncommitted changes), or
 * `"unknown"` when not built by `deno task compile` from a git checkout.
 */
export const BUILD_COMMIT: string = "unknown";
