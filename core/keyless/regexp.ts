/**
 * cosign's `--certificate-identity-regexp` / `--certificate-oidc-issuer-regexp` semantics in JavaScript: the
 * pattern is Go RE2 syntax and matching is Go's `MatchString`, i.e. **unanchored** (a match anywhere in the
 * string; write `^…$` to match the whole value).
 *
 * The pattern is translated into an equivalent JavaScript `RegExp` (compiled with the `v` flag, so matching is by
 * code point and class syntax is strict). What is accepted:
 * - everything RE2 shares with JavaScript: literals, `.`, `^`, `$`, `|`, groups `(…)`, `(?:…)`, named groups
 *   `(?P<n>…)` and `(?<n>…)`, classes `[…]` with ranges and negation, quantifiers `* + ? {n} {n,} {n,m}` and
 *   their lazy forms, `\d \D \w \W \b \B` (ASCII, as in Go);
 * - RE2-only syntax, translated: leading flags `(?i)`, `(?s)`, `(?m)` (and combinations); scoped flags
 *   `(?i:…)`; `\A` and `\z`; `\Q…\E` literal text; POSIX classes `[[:alpha:]]`, `[[:^digit:]]`; `\pL`,
 *   `\p{Greek}`, `\PL`; `\x{10FFFF}`; octal `\123`; `\a`; escaped punctuation such as `\-` or `\@`; RE2's
 *   `\s` (exactly `[\t\n\f\r ]`, where JavaScript's `\s` also matches Unicode spaces); a `{` that does not start
 *   a repetition, or a `]` first in a class, as literals;
 * - Go's repetition limit (1000).
 *
 * What is rejected (`INVALID_ARGUMENT`), as Go's `regexp.Compile` rejects it, or because JavaScript cannot
 * express it: lookaround `(?=` `(?!` `(?<=` `(?<!`, backreferences `\1`, `(?U)` (ungreedy), flags in the middle
 * of a pattern such as `a(?i)b` (use `a(?i:b)`), `\C`, `\Z`, unknown escapes (`\y`), and anything the translated
 * pattern makes JavaScript refuse.
 *
 * Known differences left: with `(?m)`, JavaScript's `^`/`$` also break lines at `\r`, U+2028 and U+2029 (Go only
 * at `\n`); case folding under `(?i)` follows JavaScript's Unicode simple case folding.
 *
 * @module
 */
import { AirlockError } from "../errors.ts";

const POSIX_CLASSES: Readonly<Record<string, string>> = {
  alnum: "0-9A-Za-z",
  alpha: "A-Za-z",
  ascii: "\\x00-\\x7f",
  blank: "\\t ",
  cntrl: "\\x00-\\x1f\\x7f",
  digit: "0-9",
  graph: "!-~",
  lower: "a-z",
  print: " -~",
  punct: "!-\\u{2f}:-@\\u{5b}-\\u{60}\\u{7b}-~",
  space: "\\t\\n\\v\\f\\r ",
  upper: "A-Z",
  word: "0-9A-Za-z_",
  xdigit: "0-9A-Fa-f",
};

const RE2_SPACE = "\\t\\n\\f\\r ";

const CONTROL_ESCAPES: Readonly<Record<string, number>> = {
  "\\t": 9,
  "\\n": 10,
  "\\v": 11,
  "\\f": 12,
  "\\r": 13,
  "\\x07": 7,
};

/** Unicode general categories (JavaScript needs `Script=` for everything else Go's `\p{…}` names). */
const GENERAL_CATEGORIES = new Set([
  "C",
  "Cc",
  "Cf",
  "Co",
  "Cs",
  "L",
  "Ll",
  "Lm",
  "Lo",
  "Lt",
  "Lu",
  "M",
  "Mc",
  "Me",
  "Mn",
  "N",
  "Nd",
  "Nl",
  "No",
  "P",
  "Pc",
  "Pd",
  "Pe",
  "Pf",
  "Pi",
  "Po",
  "Ps",
  "S",
  "Sc",
  "Sk",
  "Sm",
  "So",
  "Z",
  "Zl",
  "Zp",
  "Zs",
]);

class Unsupported extends Error {}

/** A code point written so that it is literal anywhere in a `v`-flag pattern, inside a class or not. */
function literal(cp: number): string {
  const ch = String.fromCodePoint(cp);
  if (/[0-9A-Za-z]/.test(ch) || cp > 0x7f) return ch;
  return `\\u{${cp.toString(16)}}`;
}

function unicodeProperty(name: string, negated: boolean): string {
  let neg = negated;
  let n = name;
  if (n.startsWith("^")) {
    neg = !neg;
    n = n.slice(1);
  }
  if (!/^[A-Za-z_]+$/.test(n)) throw new Unsupported(`invalid character class range: \\p{${name}}`);
  const body = n === "Any" ? "Any" : GENERAL_CATEGORIES.has(n) ? n : `Script=${n}`;
  return `${neg ? "\\P" : "\\p"}{${body}}`;
}

/** Translates Go RE2 syntax into a JavaScript `v`-mode pattern and flags. */
function translate(pattern: string): { source: string; flags: string } {
  const cps = [...pattern].map((c) => c.codePointAt(0)!);
  let i = 0;
  const peek = (k = 0) => (i + k < cps.length ? String.fromCodePoint(cps[i + k]) : "");
  let out = "";
  const flags = new Set<string>();

  // leading (?flags)
  while (peek() === "(" && peek(1) === "?") {
    const m = /^\(\?([imsU-]+)\)/.exec(String.fromCodePoint(...cps.slice(i, i + 12)));
    if (!m) break;
    let on = true;
    for (const f of m[1]) {
      if (f === "-") on = false;
      else if (f === "U") throw new Unsupported("the ungreedy flag (?U) is not supported");
      else if (on) flags.add(f);
      else flags.delete(f);
    }
    i += m[0].length;
  }

  /** Reads one escape after a backslash; `inClass` selects the class form of multi-character results. */
  const escape = (inClass: boolean): string => {
    const c = peek();
    if (c === "") throw new Unsupported("trailing backslash at end of expression");
    i++;
    if ("dDwWbB".includes(c)) {
      if (inClass && (c === "b" || c === "B")) throw new Unsupported(`invalid escape sequence: \\${c}`);
      return `\\${c}`;
    }
    if (c === "s") return inClass ? RE2_SPACE : `[${RE2_SPACE}]`;
    if (c === "S") return `[^${RE2_SPACE}]`;
    if (c === "A" && !inClass) return "(?<![\\s\\S])";
    if (c === "z" && !inClass) return "(?![\\s\\S])";
    if (c === "a") return "\\x07";
    if ("fnrtv".includes(c)) return `\\${c}`;
    if (c === "p" || c === "P") {
      if (peek() === "{") {
        const end = cps.indexOf(0x7d, i);
        if (end < 0) throw new Unsupported(`invalid character class range: \\${c}{`);
        const name = String.fromCodePoint(...cps.slice(i + 1, end));
        i = end + 1;
        return unicodeProperty(name, c === "P");
      }
      const name = peek();
      if (!name) throw new Unsupported(`invalid character class range: \\${c}`);
      i++;
      return unicodeProperty(name, c === "P");
    }
    if (c === "x") {
      if (peek() === "{") {
        const end = cps.indexOf(0x7d, i);
        const hex = end < 0 ? "" : String.fromCodePoint(...cps.slice(i + 1, end));
        if (!/^[0-9A-Fa-f]{1,6}$/.test(hex) || parseInt(hex, 16) > 0x10ffff) {
          throw new Unsupported("invalid escape sequence: \\x{");
        }
        i = end + 1;
        return literal(parseInt(hex, 16));
      }
      const hex = peek() + peek(1);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) throw new Unsupported("invalid escape sequence: \\x");
      i += 2;
      return literal(parseInt(hex, 16));
    }
    if (/[0-7]/.test(c)) {
      // Go: a single non-zero digit is a backreference (unsupported); otherwise up to three octal digits.
      if (c !== "0" && !/[0-7]/.test(peek())) {
        throw new Unsupported(`backreferences are not supported: \\${c}`);
      }
      let oct = c;
      while (oct.length < 3 && /[0-7]/.test(peek())) oct += String.fromCodePoint(cps[i++]);
      return literal(parseInt(oct, 8));
    }
    if (c === "8" || c === "9") throw new Unsupported(`backreferences are not supported: \\${c}`);
    if (c === "Q" && !inClass) {
      let lit = "";
      while (i < cps.length && !(peek() === "\\" && peek(1) === "E")) lit += literal(cps[i++]);
      if (i < cps.length) i += 2;
      return lit === "" ? "" : `(?:${lit})`;
    }
    const cp = c.codePointAt(0)!;
    if (cp < 0x80 && /[!-/:-@[-`{-~]/.test(c)) return literal(cp); // escaped punctuation is literal
    throw new Unsupported(`invalid escape sequence: \\${c}`);
  };

  /** Reads one class member: a single code point (`cp` set) or a set such as `\\d`, `\\pL` or `[:alpha:]`. */
  const classAtom = (): { text: string; cp?: number } => {
    const c = peek();
    if (c === "[" && peek(1) === ":") {
      const m = /^\[:(\^?)([a-z]+):\]/.exec(String.fromCodePoint(...cps.slice(i, i + 12)));
      if (m) {
        const set = POSIX_CLASSES[m[2]];
        if (!set) throw new Unsupported(`invalid character class range: [:${m[2]}:]`);
        i += m[0].length;
        return { text: m[1] ? `[^${set}]` : `[${set}]` };
      }
    }
    i++;
    if (c !== "\\") return { text: literal(c.codePointAt(0)!), cp: c.codePointAt(0)! };
    const e = escape(true);
    if (e === RE2_SPACE) return { text: `[${RE2_SPACE}]` };
    const u = /^\\u\{([0-9a-f]+)\}$/.exec(e);
    if (u) return { text: e, cp: parseInt(u[1], 16) };
    if (e in CONTROL_ESCAPES) return { text: e, cp: CONTROL_ESCAPES[e] };
    if ([...e].length === 1) return { text: e, cp: e.codePointAt(0)! };
    return { text: e };
  };

  const charClass = (): string => {
    // the "[" is consumed
    let body = "";
    const negated = peek() === "^";
    if (negated) i++;
    let first = true;
    while (true) {
      const c = peek();
      if (c === "") throw new Unsupported("missing closing ]");
      if (c === "]" && !first) {
        i++;
        break;
      }
      first = false;
      const lo = classAtom();
      if (peek() === "-" && peek(1) !== "]" && peek(1) !== "") {
        i++;
        const hi = classAtom();
        if (lo.cp === undefined || hi.cp === undefined || hi.cp < lo.cp) {
          throw new Unsupported("invalid character class range");
        }
        body += `${lo.text}-${hi.text}`;
      } else body += lo.text;
    }
    return `[${negated ? "^" : ""}${body}]`;
  };

  while (i < cps.length) {
    const c = peek();
    i++;
    switch (c) {
      case "\\":
        out += escape(false);
        break;
      case "[":
        out += charClass();
        break;
      case "(": {
        if (peek() !== "?") {
          out += "(";
          break;
        }
        const rest = String.fromCodePoint(...cps.slice(i, i + 40));
        let m: RegExpExecArray | null;
        if (rest.startsWith("?:")) {
          out += "(?:";
          i += 2;
        } else if ((m = /^\?P?<([A-Za-z_][A-Za-z0-9_]*)>/.exec(rest))) {
          out += `(?<${m[1]}>`;
          i += m[0].length;
        } else if (/^\?(=|!|<=|<!)/.test(rest)) {
          throw new Unsupported("lookaround assertions are not supported");
        } else if ((m = /^\?([imsU]*)(?:-([imsU]*))?:/.exec(rest))) {
          if ((m[1] + (m[2] ?? "")).includes("U")) {
            throw new Unsupported("the ungreedy flag (?U) is not supported");
          }
          out += `(?${m[1]}${m[2] ? "-" + m[2] : ""}:`;
          i += m[0].length;
        } else if (/^\?[imsU-]+\)/.test(rest)) {
          throw new Unsupported("flags are only supported at the start of the pattern, or scoped as (?i:…)");
        } else throw new Unsupported("invalid or unsupported Perl syntax: (?");
        break;
      }
      case "{": {
        const rest = String.fromCodePoint(...cps.slice(i, i + 24));
        const m = /^(\d+)(,(\d*))?\}/.exec(rest);
        if (!m) {
          out += "\\{";
          break;
        }
        const lo = Number(m[1]);
        const hi = m[3] ? Number(m[3]) : lo;
        if (lo > 1000 || hi > 1000) throw new Unsupported(`invalid repeat count: {${m[0]}`);
        if (m[3] && hi < lo) throw new Unsupported(`invalid repeat count: {${m[0]}`);
        out += `{${m[0]}`;
        i += m[0].length;
        break;
      }
      case "}":
        out += "\\}";
        break;
      case "]":
        out += "\\]";
        break;
      case ".":
      case "^":
      case "$":
      case "|":
      case "*":
      case "+":
      case "?":
      case ")":
        out += c;
        break;
      default:
        out += literal(c.codePointAt(0)!);
    }
  }
  return { source: out, flags: [...flags].sort().join("") };
}

/**
 * Compiles a Go RE2 pattern (cosign's `-regexp` flags) into a JavaScript `RegExp` with the same matches; test
 * with {@linkcode goRegExpMatches} (unanchored, like Go's `MatchString`).
 *
 * @param pattern the pattern as the user wrote it
 * @param what names the flag in error messages
 * @throws {AirlockError} `INVALID_ARGUMENT` for syntax Go rejects or airlock cannot translate
 *
 * @example
 * ```ts
 * const re = compileGoRegExp("(?i)^https://github\\.com/acme/.*$");
 * goRegExpMatches(re, "https://GitHub.com/acme/app/.github/workflows/release.yml@refs/tags/v1"); // true
 * ```
 */
export function compileGoRegExp(pattern: string, what = "regular expression"): RegExp {
  try {
    const { source, flags } = translate(pattern);
    return new RegExp(source, flags + "v");
  } catch (e) {
    const detail = e instanceof Unsupported
      ? e.message
      : (e as Error).message.replace(/^Invalid regular expression: /, "");
    throw new AirlockError("INVALID_ARGUMENT", `invalid ${what} ${JSON.stringify(pattern)}: ${detail}`, {
      cause: e,
    });
  }
}

/**
 * Go's `regexp.MatchString`: true when the pattern matches anywhere in `s`.
 */
export function goRegExpMatches(re: RegExp, s: string): boolean {
  re.lastIndex = 0;
  return re.test(s);
}
