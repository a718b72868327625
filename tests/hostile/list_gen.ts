/**
 * Hostile image lists for the hostile-input suite: lines of random text drawn from what breaks parsers — control
 * characters, NUL, CR, tabs and Unicode spaces, `@`, `:`, `/` in every place, very long names and tags, upper
 * case, comments, mirror-format triples — seeded; and the lines of the long lists (`list_memory_test.ts`,
 * `bench/list_bench.ts`).
 *
 * @module
 */
import type { Rng } from "./rng.ts";

/** One line in `LONG_LIST_REAL_EVERY` of a long list names the real, signed image. */
export const LONG_LIST_REAL_EVERY = 10_000;

/**
 * Line `i` of a long image list on the registry at `host`: `real` every {@linkcode LONG_LIST_REAL_EVERY} lines
 * (from line 0), every 50th an image the registry does not hold (one request, `404`), the rest invalid references
 * (upper case: failed without a request).
 *
 * @example
 * ```ts
 * const lines = Array.from({ length: 100_000 }, (_, i) => longListLine(i, reg.host, real));
 * ```
 */
export function longListLine(i: number, host: string, real: string): string {
  return i % LONG_LIST_REAL_EVERY === 0
    ? real
    : i % 50 === 0
    ? `${host}/long/img${i}:v1`
    : `${host}/long/Img${i}:v1`;
}

const PIECES = [
  "a",
  "nginx",
  "reg.io",
  "localhost:5000",
  "Proj",
  "library",
  "/",
  "//",
  ":",
  "::",
  "@",
  "@sha256:",
  "sha256:",
  "0123456789abcdef",
  " ",
  "\t",
  "\r",
  "\u0000",
  "\u0085",
  "\u00a0",
  "\u2028",
  "\ufeff",
  "#",
  "//x",
  ".",
  "..",
  "-",
  "_",
  "__",
  "é",
  "😀",
  "\u001b[31m",
  "%2F",
  "latest",
  "1.25",
];

/** A list of 1 to 40 random lines (the text of a file). */
export function randomList(rng: Rng): string {
  const lines: string[] = [];
  for (let i = 0, n = 1 + rng.int(40); i < n; i++) {
    const kind = rng.int(6);
    if (kind === 0) lines.push("x".repeat(rng.pick([255, 256, 4096, 70_000])) + "/a:b");
    else if (kind === 1) lines.push(`${rng.text(5)} ${rng.text(5)} ${rng.text(3)}`);
    else if (kind === 2) {
      lines.push(
        `reg.io/p/n:${rng.text(1 + rng.int(200), "abc-_.")}@sha256:${
          rng.text(rng.pick([63, 64, 65]), "0123456789abcdef")
        }`,
      );
    } else {
      let line = "";
      for (let j = 0, m = 1 + rng.int(12); j < m; j++) line += rng.pick(PIECES);
      lines.push(line);
    }
  }
  return lines.join(rng.pick(["\n", "\r\n", "\n\n"]));
}
