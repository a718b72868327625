import { AirlockError } from "../../core/errors.ts";
import {
  classifyImageLine,
  goTrimSpace,
  ignoredLineWarning,
  type ImageListOverrides,
  imageListRegistries,
  loadImageList,
  parseImageList,
  resolveImageLine,
  resolveImageList,
  splitImageLine,
} from "../../core/image_list.ts";
import { formatReference } from "../../core/reference.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes, assertThrows } from "../assert.ts";

const HEX = "abcdef0123456789".repeat(4);
const D = `sha256:${HEX}`;

function resolved(line: string, overrides?: ImageListOverrides): string {
  return formatReference(resolveImageLine(line, overrides));
}

Deno.test("parseImageList: lines, trimming, comments, ids", () => {
  const text = [
    "# header comment",
    "  nginx:1.25  ",
    "",
    "   ",
    "// another comment",
    "docker.io/a/b c/d e", // 3 space tokens: mirror, still uses an id
    "\tredis\r",
    "#nginx",
    "a b", // unknown, uses an id
    "busybox",
  ].join("\n");
  const lines = parseImageList(text);
  assertEquals(lines.map((l) => [l.id, l.line, l.kind]), [
    [1, "nginx:1.25", "default"],
    [2, "docker.io/a/b c/d e", "mirror"],
    [3, "redis", "default"],
    [4, "a b", "unknown"],
    [5, "busybox", "default"],
  ]);
});

Deno.test("parseImageList: CRLF, trailing newline, no trailing newline, Go TrimSpace", () => {
  assertEquals(parseImageList("a\r\nb\r\n").map((l) => l.line), ["a", "b"]);
  assertEquals(parseImageList("a\nb").map((l) => l.line), ["a", "b"]);
  assertEquals(parseImageList("").length, 0);
  // Go trims U+0085 (NEL) and NBSP; it does not trim U+FEFF (BOM)
  assertEquals(goTrimSpace("\u0085\u00a0nginx\u3000\v\f"), "nginx");
  assertEquals(goTrimSpace("\ufeffnginx"), "\ufeffnginx");
  assertEquals(parseImageList("\u00a0# c\n\u2003nginx\u2003\n").map((l) => l.line), ["nginx"]);
  // A "\r" inside a line is not a separator; only one trailing "\r" is dropped before trimming.
  assertEquals(parseImageList("a\rb\n").map((l) => l.line), ["a\rb"]);
});

Deno.test("classification follows hangar's Detect (spec §2.2)", () => {
  assertEquals(classifyImageLine("nginx:1"), "default");
  assertEquals(classifyImageLine("src/a:1 dst/a:1 amd64"), "mirror");
  assertEquals(classifyImageLine("a  b   c"), "mirror"); // empty tokens dropped
  assertEquals(classifyImageLine("a b c d"), "unknown"); // 4 tokens, one "/"-segment with spaces
  assertEquals(classifyImageLine("nginx:1 #c"), "unknown");
  assertEquals(classifyImageLine("reg/a b"), "default"); // "reg" survives
  assertEquals(classifyImageLine("a\tb\tc"), "default"); // tabs are not separators
  assertEquals(classifyImageLine("///"), "unknown");
});

Deno.test("mirror and unknown lines are ignored with hangar's warning, not failed", () => {
  const lines = parseImageList('a b c\nx y\nquote"d q z\n');
  const r = resolveImageList(lines);
  assertEquals(r.map((x) => x.status), ["ignored", "ignored", "ignored"]);
  assertEquals(r.map((x) => (x.status === "ignored" ? x.warning : "")), [
    'Ignore image list line "a b c": invalid format',
    'Ignore image list line "x y": invalid format',
    'Ignore image list line "quote\\"d q z": invalid format',
  ]);
  assertEquals(ignoredLineWarning("a\tb c d"), 'Ignore image list line "a\\tb c d": invalid format');
  assertThrows(() => resolveImageLine(lines[0]), AirlockError, "invalid format");
});

Deno.test("decomposition table §2.3: one segment", () => {
  assertEquals(splitImageLine("nginx:1.25"), {
    registry: "docker.io",
    project: "library",
    name: "nginx",
    tag: "1.25",
  });
  assertEquals(resolved("nginx:1.25"), "docker.io/library/nginx:1.25");
  assertEquals(resolved("nginx"), "docker.io/library/nginx:latest");
  assertEquals(resolved("nginx:"), "docker.io/library/nginx:latest");
  assertEquals(resolved("nginx:1:2"), "docker.io/library/nginx:latest");
  assertEquals(resolved("nginx::1"), "docker.io/library/nginx:1"); // empty parts dropped → 2 parts
});

Deno.test("decomposition table §2.3: two segments", () => {
  // s0 looks like a registry (".", ":" or localhost): project is always "library"
  assertEquals(splitImageLine("reg.io/nginx:1"), {
    registry: "reg.io",
    project: "library",
    name: "nginx",
    tag: "1",
  });
  assertEquals(resolved("reg.io/nginx:1"), "reg.io/library/nginx:1");
  assertEquals(resolved("localhost/nginx"), "localhost/library/nginx:latest");
  assertEquals(resolved("localhost:5000/nginx:2"), "localhost:5000/library/nginx:2");
  assertEquals(resolved("myreg:5000/app"), "myreg:5000/library/app:latest");
  // otherwise docker.io with s0 as the project
  assertEquals(splitImageLine("bitnami/redis:7"), {
    registry: "docker.io",
    project: "bitnami",
    name: "redis",
    tag: "7",
  });
  assertEquals(resolved("bitnami/redis:7"), "docker.io/bitnami/redis:7");
  assertEquals(resolved("library/nginx"), "docker.io/library/nginx:latest");
  // empty segments are dropped
  assertEquals(resolved("reg.io//nginx:1"), "reg.io/library/nginx:1");
});

Deno.test("decomposition table §2.3: three segments always take s0 as registry", () => {
  assertEquals(resolved("reg.io/proj/nginx:1"), "reg.io/proj/nginx:1");
  assertEquals(resolved("localhost:5000/proj/app"), "localhost:5000/proj/app:latest");
  assertEquals(splitImageLine("library/foo/bar"), {
    registry: "library",
    project: "foo",
    name: "bar",
    tag: "latest",
  });
  // "library" as a registry is read as a Docker Hub path by the reference parser, as containers/image does
  assertEquals(resolved("library/foo/bar"), "docker.io/library/foo/bar:latest");
  assertEquals(splitImageLine("a/b/c:1").registry, "a");
  assertEquals(resolved("a/b/c:1"), "docker.io/a/b/c:1");
});

Deno.test("decomposition table §2.3: four or more segments", () => {
  assertEquals(splitImageLine("reg.io/proj/a/b:1"), {
    registry: "reg.io",
    project: "proj",
    name: "a/b",
    tag: "1",
  });
  assertEquals(resolved("reg.io/proj/a/b:1"), "reg.io/proj/a/b:1");
  assertEquals(resolved("reg.io:5000/p/a/b/c:v1"), "reg.io:5000/p/a/b/c:v1");
  assertEquals(splitImageLine("a/b/c/d:1"), { registry: "docker.io", project: "a", name: "b/c/d", tag: "1" });
  assertEquals(resolved("a/b/c/d:1"), "docker.io/a/b/c/d:1");
  // the joined name is cut at its first ":", the tag comes from the last segment
  assertEquals(splitImageLine("reg.io/p/a:x/b:1"), { registry: "reg.io", project: "p", name: "a", tag: "1" });
});

Deno.test("default-format lines that fail to parse are per-line errors", () => {
  const lines = parseImageList(`NGINX:1\nreg/a b\na\tb\tc\nnginx:1#c\nnginx:ok\n${"a".repeat(300)}\n@${D}\n`);
  const r = resolveImageList(lines);
  assertEquals(r.map((x) => x.status), [
    "invalid",
    "invalid",
    "invalid",
    "invalid",
    "ok",
    "invalid",
    "invalid",
  ]);
  const msg = (i: number) => {
    const x = r[i];
    assert(x.status === "invalid");
    assertEquals(x.error.code, "INVALID_REFERENCE");
    return x.error.message;
  };
  assertStringIncludes(msg(0), '"NGINX:1"');
  assertStringIncludes(msg(0), "lowercase");
  assertStringIncludes(msg(1), '"reg/a b"');
  assertStringIncludes(msg(3), "invalid tag");
  assertStringIncludes(msg(5), "255");
  assertStringIncludes(msg(6), "no image name");
  assertThrows(() => resolveImageLine("NGINX"), AirlockError, "lowercase");
});

Deno.test("fix §11.2: digest-pinned lines become digest references", () => {
  const r = resolveImageLine(`docker.io/library/nginx@${D}`);
  assertEquals(r, { registry: "docker.io", repository: "library/nginx", digest: D });
  assertEquals(resolved(`nginx@${D}`), `docker.io/library/nginx@${D}`);
  assertEquals(resolved(`nginx:1.25@${D}`), `docker.io/library/nginx:1.25@${D}`);
  assertEquals(resolved(`reg.io/proj/a/b@${D}`), `reg.io/proj/a/b@${D}`);
  assertEquals(resolved(`reg.io/app@${D}`), `reg.io/library/app@${D}`); // project still inserted
  assertEquals(splitImageLine(`nginx@${D}`), {
    registry: "docker.io",
    project: "library",
    name: "nginx",
    digest: D,
  });
  assertEquals(resolved(`nginx@${D}`, { registry: "harbor.io", project: "m" }), `harbor.io/m/nginx@${D}`);
  assertThrows(() => resolveImageLine("nginx@sha256:123"), AirlockError, "digest length");
  assertThrows(() => resolveImageLine(`reg.io/a@${D}/b`), AirlockError, "invalid digest");
});

Deno.test("fix §11.4: inline comments are stripped before classification", () => {
  const lines = parseImageList("nginx:1 # web server\nredis\t#cache\nbusybox#notacomment\na b c # mirror\n");
  assertEquals(lines.map((l) => [l.line, l.text, l.kind]), [
    ["nginx:1 # web server", "nginx:1", "default"],
    ["redis\t#cache", "redis", "default"],
    ["busybox#notacomment", "busybox#notacomment", "default"],
    ["a b c # mirror", "a b c", "mirror"],
  ]);
  const r = resolveImageList(lines);
  assertEquals(r[0].status === "ok" && formatReference(r[0].reference), "docker.io/library/nginx:1");
  assertEquals(r[1].status === "ok" && formatReference(r[1].reference), "docker.io/library/redis:latest");
  assertEquals(r[2].status, "invalid");
  assertEquals(r[3].status, "ignored");
});

Deno.test("fix §11.5: lines over 64 KiB do not end the list", () => {
  const long = "a".repeat(70 * 1024);
  const lines = parseImageList(`nginx\n${long}\nredis\n`);
  assertEquals(lines.length, 3);
  assertEquals(lines.map((l) => l.id), [1, 2, 3]);
  const r = resolveImageList(lines);
  assertEquals(r.map((x) => x.status), ["ok", "invalid", "ok"]);
});

Deno.test("--registry / --project overrides (§2.4); the failed list keeps the original line", () => {
  assertEquals(resolved("nginx:1", { registry: "harbor.io" }), "harbor.io/library/nginx:1");
  assertEquals(resolved("nginx:1", { project: "mirror" }), "docker.io/mirror/nginx:1");
  assertEquals(resolved("nginx:1", { registry: "harbor.io", project: "mirror" }), "harbor.io/mirror/nginx:1");
  assertEquals(resolved("reg.io/proj/a/b:1", { project: "x" }), "reg.io/x/a/b:1");
  assertEquals(resolved("reg.io/proj/nginx:1", { registry: "other.io:5000" }), "other.io:5000/proj/nginx:1");
  assertEquals(resolved("library/foo/bar", { project: "x" }), "docker.io/library/x/bar:latest");
  assertEquals(resolved("nginx", { registry: "index.docker.io" }), "docker.io/library/nginx:latest");
  assertEquals(resolved("nginx:1", { registry: "", project: "" }), "docker.io/library/nginx:1");
  const r = resolveImageList(parseImageList("  nginx:1 # c \nBAD:1\n"), { registry: "harbor.io" });
  assertEquals(r[0].status === "ok" && formatReference(r[0].reference), "harbor.io/library/nginx:1");
  assertEquals(r[1].status, "invalid");
  assertEquals(r[0].line.line, "nginx:1 # c");
  assertEquals(r[1].line.line, "BAD:1");
});

Deno.test("imageListRegistries: hangar's login set (§2.5)", () => {
  const lines = parseImageList("nginx\nreg.io/a/b\nlibrary/foo/bar\nx y z\nreg.io/c\n");
  assertEquals(imageListRegistries(lines), ["docker.io", "reg.io", "library"]);
  assertEquals(imageListRegistries(lines, { registry: "harbor.io" }), ["harbor.io"]);
});

Deno.test("loadImageList: reads a file; clear errors for a missing or empty list", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const ok = `${dir}/images.txt`;
    await Deno.writeTextFile(ok, "# list\nnginx:1\n");
    assertEquals((await loadImageList(ok)).map((l) => l.text), ["nginx:1"]);

    const missing = `${dir}/nope.txt`;
    const e1 = await assertRejects(
      () => loadImageList(missing),
      AirlockError,
      `failed to open "${missing}": `,
    );
    assertEquals(e1.code, "INVALID_IMAGE_LIST");
    assertStringIncludes(e1.message, "no such file or directory");

    const empty = `${dir}/empty.txt`;
    await Deno.writeTextFile(empty, "# nothing\n\n// here\n");
    const e2 = await assertRejects(
      () => loadImageList(empty),
      AirlockError,
      `no images in image list "${empty}"`,
    );
    assertEquals(e2.code, "INVALID_IMAGE_LIST");

    const mirrors = `${dir}/mirrors.txt`;
    await Deno.writeTextFile(mirrors, "a b c\nd e f\n");
    await assertRejects(() => loadImageList(mirrors), AirlockError, "2 lines ignored");

    // one bad image line does not fail the whole list
    const mixed = `${dir}/mixed.txt`;
    await Deno.writeTextFile(mixed, "BAD\nnginx\n");
    assertEquals((await loadImageList(mixed)).length, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
