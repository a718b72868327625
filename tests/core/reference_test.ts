import { AirlockError } from "../../core/errors.ts";
import {
  digestHex,
  formatReference,
  isDigest,
  parseReference,
  type Reference,
  registryApiHost,
  repositoryName,
  withDefaultTag,
  withDigest,
  withTag,
} from "../../core/reference.ts";
import { assert, assertEquals, assertStringIncludes, assertThrows } from "../assert.ts";

const HEX = "0123456789abcdef".repeat(4);
const D = `sha256:${HEX}`;

Deno.test("parseReference: docker hub short names get docker.io and library/", () => {
  const cases: [string, Reference][] = [
    ["nginx", { registry: "docker.io", repository: "library/nginx" }],
    ["nginx:1.25", { registry: "docker.io", repository: "library/nginx", tag: "1.25" }],
    ["library/nginx", { registry: "docker.io", repository: "library/nginx" }],
    ["docker.io/nginx", { registry: "docker.io", repository: "library/nginx" }],
    ["docker.io/library/nginx:latest", { registry: "docker.io", repository: "library/nginx", tag: "latest" }],
    ["index.docker.io/nginx", { registry: "docker.io", repository: "library/nginx" }],
    ["index.docker.io/bitnami/redis:7", { registry: "docker.io", repository: "bitnami/redis", tag: "7" }],
    ["bitnami/redis", { registry: "docker.io", repository: "bitnami/redis" }],
    ["a/b/c/d", { registry: "docker.io", repository: "a/b/c/d" }],
    // Only index.docker.io is an alias; registry-1.docker.io is a host like any other (containers/image).
    ["registry-1.docker.io/nginx", { registry: "registry-1.docker.io", repository: "nginx" }],
    // No slash: "localhost:5000" is a repository with a tag, as docker reads it.
    ["localhost:5000", { registry: "docker.io", repository: "library/localhost", tag: "5000" }],
  ];
  for (const [input, want] of cases) assertEquals(parseReference(input), want, input);
});

Deno.test("parseReference: registries with host, port, localhost, IPv6", () => {
  const cases: [string, Reference][] = [
    ["localhost/repo", { registry: "localhost", repository: "repo" }],
    ["localhost:5000/a/b:tag", { registry: "localhost:5000", repository: "a/b", tag: "tag" }],
    ["reg.example.com/ns/app", { registry: "reg.example.com", repository: "ns/app" }],
    ["host:5000/a/b@" + D, { registry: "host:5000", repository: "a/b", digest: D }],
    ["Registry.Example.COM/app", { registry: "Registry.Example.COM", repository: "app" }],
    ["[::1]:5000/app:v1", { registry: "[::1]:5000", repository: "app", tag: "v1" }],
    ["10.0.0.1:443/x", { registry: "10.0.0.1:443", repository: "x" }],
  ];
  for (const [input, want] of cases) assertEquals(parseReference(input), want, input);
});

Deno.test("parseReference: tag, digest, tag+digest, docker:// prefix", () => {
  assertEquals(parseReference(`nginx@${D}`), {
    registry: "docker.io",
    repository: "library/nginx",
    digest: D,
  });
  assertEquals(parseReference(`nginx:1.25@${D}`), {
    registry: "docker.io",
    repository: "library/nginx",
    tag: "1.25",
    digest: D,
  });
  assertEquals(parseReference("docker://nginx:1"), {
    registry: "docker.io",
    repository: "library/nginx",
    tag: "1",
  });
  assertEquals(parseReference("docker://reg.io/a/b"), { registry: "reg.io", repository: "a/b" });
  assertEquals(parseReference(`nginx@sha512:${"a".repeat(128)}`).digest, `sha512:${"a".repeat(128)}`);
  // separators in path components
  assertEquals(parseReference("a_b/c__d/e-f/g---h/i.j:T_a.g-1").repository, "a_b/c__d/e-f/g---h/i.j");
  assertEquals(parseReference("a_b/c__d/e-f/g---h/i.j:T_a.g-1").tag, "T_a.g-1");
  // tags: exactly 128 characters is fine
  assertEquals(parseReference(`nginx:${"t".repeat(128)}`).tag, "t".repeat(128));
  // name exactly 255 characters: "docker.io/library/" is 18
  assertEquals(parseReference("a".repeat(237)).repository.length, 245);
});

function rejects(input: string, problem: string): void {
  const e = assertThrows(() => parseReference(input), AirlockError, problem);
  assertEquals(e.code, "INVALID_REFERENCE", input);
  assertStringIncludes(e.message, JSON.stringify(input));
}

Deno.test("parseReference: each error names the problem", () => {
  rejects("", "empty");
  rejects("docker://", "empty");
  rejects("NGINX", "must be lowercase");
  rejects("Foo/bar", "must be lowercase");
  rejects("reg.io/Team/app", "must be lowercase");
  rejects("nginx:", "tag is empty");
  rejects("nginx:bad!tag", "invalid tag");
  rejects("nginx:.hidden", "invalid tag");
  rejects("nginx:-x", "invalid tag");
  rejects(`nginx:${"t".repeat(129)}`, "longer than 128 characters");
  rejects("nginx@sha256:abc", "digest length");
  rejects(`nginx@sha256:${HEX.toUpperCase()}`, "lowercase");
  rejects(`nginx@md5:${"a".repeat(32)}`, "unsupported digest algorithm");
  rejects("nginx@latest", "invalid digest");
  rejects("nginx@", "digest is empty");
  rejects(`nginx@${D}@${D}`, "invalid digest");
  rejects(HEX + HEX.slice(0, 0), "image ID");
  rejects("a".repeat(238), "255 characters");
  rejects(`reg.io/${"a".repeat(249)}`, "255 characters");
  rejects("a//b", "empty path component");
  rejects("-a/b", "invalid repository name component");
  rejects("a_/b", "invalid repository name component");
  rejects("a..b", "invalid repository name component");
  rejects(" nginx", "invalid repository name component");
  rejects("reg.io/", "repository name is empty");
  rejects("@" + D, "repository name is empty");
  rejects("my_host.com/repo", "invalid registry host");
  rejects("-host.com/repo", "invalid registry host");
  rejects("host.com:abc/repo", "invalid registry port");
  rejects("host.com:/repo", "invalid registry port");
  rejects("[::1/repo", "IPv6");
});

Deno.test("formatReference and repositoryName print the fully normalised form", () => {
  assertEquals(formatReference(parseReference("nginx:1.25")), "docker.io/library/nginx:1.25");
  assertEquals(formatReference(parseReference("nginx")), "docker.io/library/nginx");
  assertEquals(formatReference(parseReference(`host:5000/a/b@${D}`)), `host:5000/a/b@${D}`);
  assertEquals(formatReference(parseReference(`repo:tag@${D}`)), `docker.io/library/repo:tag@${D}`);
  assertEquals(formatReference(parseReference("index.docker.io/x/y:1")), "docker.io/x/y:1");
  assertEquals(repositoryName(parseReference("nginx:1.25")), "docker.io/library/nginx");
  assertEquals(repositoryName(parseReference(`localhost:5000/a/b:1@${D}`)), "localhost:5000/a/b");
  // round trip
  for (const s of ["docker.io/library/nginx:1", `reg.io/a/b/c@${D}`, "[::1]:5000/app:v1"]) {
    assertEquals(formatReference(parseReference(s)), s);
  }
});

Deno.test("withTag / withDigest / withDefaultTag", () => {
  const base = parseReference("nginx");
  assertEquals(formatReference(withTag(base, "1.25")), "docker.io/library/nginx:1.25");
  assertEquals(formatReference(withTag(parseReference(`nginx@${D}`), "x")), `docker.io/library/nginx:x@${D}`);
  assertEquals(withTag(base, "v1"), { registry: "docker.io", repository: "library/nginx", tag: "v1" });
  assertThrows(() => withTag(base, "bad tag"), AirlockError, "invalid tag");
  assertThrows(() => withTag(base, "x".repeat(129)), AirlockError, "128");

  const d = withDigest(parseReference("nginx:1.25"), D);
  assertEquals(d, { registry: "docker.io", repository: "library/nginx", digest: D });
  assertEquals(formatReference(d), `docker.io/library/nginx@${D}`);
  assertThrows(() => withDigest(base, "sha256:xyz"), AirlockError, "digest");

  assertEquals(formatReference(withDefaultTag(base)), "docker.io/library/nginx:latest");
  assertEquals(formatReference(withDefaultTag(parseReference("nginx:1"))), "docker.io/library/nginx:1");
  assertEquals(formatReference(withDefaultTag(parseReference(`nginx@${D}`))), `docker.io/library/nginx@${D}`);
  // inputs are not mutated
  assertEquals(base, { registry: "docker.io", repository: "library/nginx" });
});

Deno.test("registryApiHost, isDigest, digestHex", () => {
  assertEquals(registryApiHost("docker.io"), "registry-1.docker.io");
  assertEquals(registryApiHost("localhost:5000"), "localhost:5000");
  assertEquals(registryApiHost("quay.io"), "quay.io");
  assert(isDigest(D));
  assert(isDigest(`sha384:${"b".repeat(96)}`));
  assert(!isDigest("latest"));
  assert(!isDigest(`sha256:${HEX.slice(1)}`));
  assert(!isDigest(`sha256:${HEX.toUpperCase()}`));
  assert(!isDigest(`sha1:${"a".repeat(40)}`));
  assertEquals(digestHex(D), HEX);
  assertThrows(() => digestHex("sha256-" + HEX), AirlockError, "invalid digest");
});
