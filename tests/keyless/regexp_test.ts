/**
 * Go RE2 semantics of the `-regexp` flags: unanchored matching, RE2-only syntax translated, JavaScript-only or
 * unsupported syntax rejected. Expected results are Go's `regexp.MatchString` behaviour as documented in the RE2
 * syntax reference.
 */
import { isAirlockError } from "../../core/errors.ts";
import { compileGoRegExp, goRegExpMatches } from "../../core/keyless/regexp.ts";
import { assert, assertEquals } from "../assert.ts";

const MATCHES: [string, string, boolean][] = [
  // unanchored unless the pattern anchors itself
  ["redhat", "mitr@redhat.com", true],
  ["^redhat", "mitr@redhat.com", false],
  ["^mitr@redhat\\.co$", "mitr@redhat.com", false],
  ["mitr@redhat.co", "mitr@redhat.com", true],
  ["^a$", "a\n", false],
  // flags
  ["(?i)^MITR@", "mitr@redhat.com", true],
  ["(?s)a.b", "a\nb", true],
  ["a.b", "a\nb", false],
  ["a(?i:b)c", "aBc", true],
  // RE2-only syntax
  ["\\Amitr\\z", "mitr", true],
  ["\\Amitr\\z", "xmitr", false],
  ["a\\Q.*\\Eb", "a.*b", true],
  ["a\\Q.*\\Eb", "axxb", false],
  ["[[:alpha:]]+@", "mitr@", true],
  ["^[[:^digit:]]+$", "abc1", false],
  ["[[:punct:]]", "`", true],
  ["^\\pL+$", "héllo", true],
  ["^\\p{Greek}+$", "αβγ", true],
  ["\\x{41}", "A", true],
  ["\\101", "A", true],
  ["a\\-b\\@c", "a-b@c", true],
  ["(?P<who>mitr)@", "mitr@", true],
  // RE2's \s is [\t\n\f\r ] only
  ["\\s", "\u00a0", false],
  ["\\s", " ", true],
  ["[\\S]", " ", false],
  // literal braces and brackets where they cannot be syntax
  ["a{,3}", "a{,3}", true],
  ["a{2}", "aa", true],
  ["[]a]", "]", true],
  ["[^]a]", "b", true],
  ["a]", "a]", true],
  ["[a-z-]", "-", true],
  ["[\\x{1F600}-\\x{1F64F}]", "😀", true],
  [
    "https://github.com/sigstore/.*",
    "https://github.com/sigstore/cosign/.github/workflows/x.yml@refs/heads/main",
    true,
  ],
];

Deno.test("Go RE2 patterns match as Go's MatchString does", () => {
  const wrong: string[] = [];
  for (const [pattern, s, want] of MATCHES) {
    const got = goRegExpMatches(compileGoRegExp(pattern), s);
    if (got !== want) wrong.push(`${pattern} on ${JSON.stringify(s)}: ${got}`);
  }
  assertEquals(wrong, []);
});

Deno.test("syntax Go rejects, or that cannot be translated, is INVALID_ARGUMENT", () => {
  for (
    const p of [
      "(?=a)",
      "(?!a)",
      "(?<=a)b",
      "(?<!a)b",
      "(a)\\1",
      "a(?i)b",
      "(?U)a+",
      "\\y",
      "a{1001}",
      "[\\d-z]",
      "a**",
      "\\C",
      "[a",
    ]
  ) {
    let err: unknown;
    try {
      compileGoRegExp(p, "--certificate-identity-regexp");
    } catch (e) {
      err = e;
    }
    assert(isAirlockError(err, "INVALID_ARGUMENT"), `${p} was accepted`);
    assert((err as Error).message.includes("--certificate-identity-regexp"));
  }
});
