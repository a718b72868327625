/**
 * Docker references: parsing and normalisation as containers/image (`docker/reference`,
 * `ParseNormalizedNamed`) and the docker CLI do it.
 *
 * Grammar (distribution/reference):
 *
 * ```
 * reference  := name [ ":" tag ] [ "@" digest ]
 * name       := [ domain "/" ] path-component { "/" path-component }
 * domain     := host [ ":" port ]         host: DNS-like components, or "[" IPv6 "]"
 * path-comp  := [a-z0-9]+ { separator [a-z0-9]+ }     separator: "." | "_" | "__" | "-"+
 * tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
 * digest     := algorithm ":" hex        (sha256: 64, sha384: 96, sha512: 128 lowercase hex digits)
 * ```
 *
 * Normalisation: the first `/`-separated component is the registry only when it contains `.` or `:` or is
 * `localhost`; otherwise the registry is `docker.io`. `index.docker.io` becomes `docker.io`, and a Docker Hub
 * repository without a `/` gets `library/` in front. No default tag is added here ({@linkcode withDefaultTag}
 * does that on request). An explicit `docker://` transport prefix, as skopeo and hangar users type it, is
 * accepted and dropped.
 *
 * @module
 */
import { AirlockError } from "./errors.ts";

/** A parsed, fully normalised image reference. */
export interface Reference {
  /** Registry host with optional port, normalised: `docker.io` for Docker Hub (`index.docker.io` too). */
  readonly registry: string;
  /** Repository path inside the registry, e.g. `library/nginx` for the official Docker Hub image. */
  readonly repository: string;
  /** Tag, when the reference names one. */
  readonly tag?: string;
  /** Digest `algorithm:hex`, when the reference names one. */
  readonly digest?: string;
}

const DEFAULT_DOMAIN = "docker.io";
const LEGACY_DEFAULT_DOMAIN = "index.docker.io";
const OFFICIAL_REPO_PREFIX = "library/";
/** distribution/reference `NameTotalLengthMax`: registry + "/" + repository. */
const NAME_TOTAL_LENGTH_MAX = 255;
const TAG_LENGTH_MAX = 128;

const PATH_COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT_RE = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const IPV6_RE = /^\[[a-fA-F0-9:]+\]$/;
const PORT_RE = /^[0-9]+$/;
const TAG_RE = /^[\w][\w.-]*$/;
const IMAGE_ID_RE = /^[a-f0-9]{64}$/;
const DIGEST_SHAPE_RE = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const DIGEST_HEX_LENGTH: Readonly<Record<string, number>> = { sha256: 64, sha384: 96, sha512: 128 };
const DOCKER_TRANSPORT_PREFIX = "docker://";

function invalid(input: string, problem: string): AirlockError {
  return new AirlockError("INVALID_REFERENCE", `invalid reference ${JSON.stringify(input)}: ${problem}`);
}

/** Returns the problem with `digest`, or `undefined` when it is a valid, supported digest. */
function digestProblem(digest: string): string | undefined {
  const colon = digest.indexOf(":");
  if (colon <= 0 || colon === digest.length - 1 || !DIGEST_SHAPE_RE.test(digest)) {
    return `invalid digest ${
      JSON.stringify(digest)
    }: expected "algorithm:hex", e.g. "sha256:<64 hex digits>"`;
  }
  const algorithm = digest.slice(0, colon);
  const hex = digest.slice(colon + 1);
  const length = DIGEST_HEX_LENGTH[algorithm];
  if (length === undefined) {
    return `unsupported digest algorithm ${JSON.stringify(algorithm)} (supported: sha256, sha384, sha512)`;
  }
  if (hex.length !== length) {
    return `invalid digest length: ${algorithm} needs ${length} hex digits, got ${hex.length}`;
  }
  if (!/^[a-f0-9]+$/.test(hex)) {
    return `invalid digest ${JSON.stringify(digest)}: the hex part must be lowercase hexadecimal`;
  }
  return undefined;
}

/** Returns the problem with `tag`, or `undefined` when it is a valid tag. */
function tagProblem(tag: string): string | undefined {
  if (tag === "") return "tag is empty";
  if (tag.length > TAG_LENGTH_MAX) {
    return `tag is longer than ${TAG_LENGTH_MAX} characters (${tag.length})`;
  }
  if (!TAG_RE.test(tag)) {
    return `invalid tag ${JSON.stringify(tag)}: a tag may contain only letters, digits, "_", "." and "-", ` +
      `and must not start with "." or "-"`;
  }
  return undefined;
}

/** Returns the problem with a `host[:port]` registry, or `undefined` when it is valid. */
function registryProblem(registry: string): string | undefined {
  let host = registry;
  let port: string | undefined;
  if (registry.startsWith("[")) {
    const close = registry.indexOf("]");
    if (close < 0) return `invalid registry host ${JSON.stringify(registry)}: unterminated IPv6 address`;
    host = registry.slice(0, close + 1);
    const rest = registry.slice(close + 1);
    if (rest !== "") {
      if (!rest.startsWith(":")) return `invalid registry host ${JSON.stringify(registry)}`;
      port = rest.slice(1);
    }
    if (!IPV6_RE.test(host)) return `invalid registry host ${JSON.stringify(registry)}: bad IPv6 address`;
  } else {
    const colon = registry.indexOf(":");
    if (colon >= 0) {
      host = registry.slice(0, colon);
      port = registry.slice(colon + 1);
    }
    if (host === "" || !host.split(".").every((c) => DOMAIN_COMPONENT_RE.test(c))) {
      return `invalid registry host ${JSON.stringify(host)}: ` +
        `expected DNS name components of letters, digits and inner "-", separated by "."`;
    }
  }
  if (port !== undefined && !PORT_RE.test(port)) {
    return `invalid registry port ${JSON.stringify(port)}: must be a decimal number`;
  }
  return undefined;
}

/** Returns the problem with a repository path, or `undefined` when it is valid. */
function repositoryProblem(repository: string): string | undefined {
  if (repository === "") return "repository name is empty";
  if (repository.toLowerCase() !== repository) return "repository name must be lowercase";
  for (const component of repository.split("/")) {
    if (component === "") {
      return `invalid repository name ${JSON.stringify(repository)}: empty path component`;
    }
    if (!PATH_COMPONENT_RE.test(component)) {
      return `invalid repository name component ${JSON.stringify(component)}: ` +
        `use lowercase letters and digits, separated by ".", "_", "__" or "-"`;
    }
  }
  return undefined;
}

/**
 * Whether `s` is a registry (`host[:port]`, `[IPv6][:port]`) or a repository namespace under one
 * (`host[:port]/path`) in distribution/reference's grammar: what containers/image accepts as a `remapIdentity`
 * prefix.
 */
export function isRegistryNamespace(s: string): boolean {
  if (registryProblem(s) === undefined) return true;
  const slash = s.indexOf("/");
  return slash > 0 && registryProblem(s.slice(0, slash)) === undefined &&
    repositoryProblem(s.slice(slash + 1)) === undefined;
}

/** distribution/reference `splitDockerDomain` in the containers/image flavour. */
function splitDockerDomain(name: string): { registry: string; remainder: string } {
  const slash = name.indexOf("/");
  let registry: string;
  let remainder: string;
  const first = slash < 0 ? "" : name.slice(0, slash);
  if (slash < 0 || (!/[.:]/.test(first) && first !== "localhost")) {
    registry = DEFAULT_DOMAIN;
    remainder = name;
  } else {
    registry = first;
    remainder = name.slice(slash + 1);
  }
  if (registry === LEGACY_DEFAULT_DOMAIN) registry = DEFAULT_DOMAIN;
  if (registry === DEFAULT_DOMAIN && !remainder.includes("/")) remainder = OFFICIAL_REPO_PREFIX + remainder;
  return { registry, remainder };
}

function makeReference(registry: string, repository: string, tag?: string, digest?: string): Reference {
  const ref: { registry: string; repository: string; tag?: string; digest?: string } = {
    registry,
    repository,
  };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return Object.freeze(ref);
}

/**
 * Parses a docker reference and normalises it (`nginx` → `docker.io/library/nginx`). Tag and digest are
 * optional and never defaulted. A leading `docker://` is dropped.
 *
 * @throws {AirlockError} `INVALID_REFERENCE`, with a message naming the problem (empty, uppercase repository,
 *   bad tag, tag over 128 characters, bad or unsupported digest, name over 255 characters, bad registry host…).
 *
 * @example
 * ```ts
 * parseReference("nginx:1.25"); // { registry: "docker.io", repository: "library/nginx", tag: "1.25" }
 * parseReference("localhost:5000/a/b@sha256:" + "0".repeat(64)); // digest reference, no tag
 * ```
 */
export function parseReference(input: string): Reference {
  let s = input;
  if (s.startsWith(DOCKER_TRANSPORT_PREFIX)) s = s.slice(DOCKER_TRANSPORT_PREFIX.length);
  if (s === "") throw invalid(input, "reference is empty");
  if (IMAGE_ID_RE.test(s)) {
    throw invalid(input, "a 64-character hexadecimal string is an image ID, not a repository name");
  }

  let namePart = s;
  let digest: string | undefined;
  const at = s.indexOf("@");
  if (at >= 0) {
    namePart = s.slice(0, at);
    digest = s.slice(at + 1);
    if (digest === "") throw invalid(input, `digest is empty after "@"`);
    const problem = digestProblem(digest);
    if (problem) throw invalid(input, problem);
  }
  if (namePart === "") throw invalid(input, "repository name is empty");

  const { registry, remainder } = splitDockerDomain(namePart);
  let repository = remainder;
  let tag: string | undefined;
  const colon = remainder.indexOf(":");
  if (colon >= 0) {
    repository = remainder.slice(0, colon);
    tag = remainder.slice(colon + 1);
  }

  const registryIssue = registryProblem(registry);
  if (registryIssue) throw invalid(input, registryIssue);
  const repoIssue = repositoryProblem(repository);
  if (repoIssue) throw invalid(input, repoIssue);
  const nameLength = registry.length + 1 + repository.length;
  if (nameLength > NAME_TOTAL_LENGTH_MAX) {
    throw invalid(
      input,
      `repository name must not be more than ${NAME_TOTAL_LENGTH_MAX} characters (registry/repository is ${nameLength})`,
    );
  }
  if (tag !== undefined) {
    const tagIssue = tagProblem(tag);
    if (tagIssue) throw invalid(input, tagIssue);
  }
  return makeReference(registry, repository, tag, digest);
}

/**
 * Formats a reference in its fully normalised form: `registry/repository[:tag][@digest]`.
 */
export function formatReference(ref: Reference): string {
  let s = repositoryName(ref);
  if (ref.tag !== undefined) s += `:${ref.tag}`;
  if (ref.digest !== undefined) s += `@${ref.digest}`;
  return s;
}

/**
 * The repository with its registry, without tag or digest: `host/repo`.
 */
export function repositoryName(ref: Reference): string {
  return `${ref.registry}/${ref.repository}`;
}

/**
 * The same repository with `tag` (an existing digest is kept, as distribution's `WithTag` does).
 *
 * @throws {AirlockError} `INVALID_REFERENCE` when `tag` is not a valid tag.
 */
export function withTag(ref: Reference, tag: string): Reference {
  const problem = tagProblem(tag);
  if (problem) throw invalid(`${repositoryName(ref)}:${tag}`, problem);
  return makeReference(ref.registry, ref.repository, tag, ref.digest);
}

/**
 * The same repository pinned to `digest`; any tag is dropped.
 *
 * @throws {AirlockError} `INVALID_REFERENCE` when `digest` is not a valid, supported digest.
 */
export function withDigest(ref: Reference, digest: string): Reference {
  const problem = digestProblem(digest);
  if (problem) throw invalid(`${repositoryName(ref)}@${digest}`, problem);
  return makeReference(ref.registry, ref.repository, undefined, digest);
}

/**
 * Adds the tag `latest` when the reference has neither tag nor digest; otherwise returns it unchanged.
 */
export function withDefaultTag(ref: Reference): Reference {
  if (ref.tag !== undefined || ref.digest !== undefined) return ref;
  return makeReference(ref.registry, ref.repository, "latest", undefined);
}

/**
 * The host to send distribution API requests to: `registry-1.docker.io` for Docker Hub, the registry itself
 * otherwise.
 *
 * @example
 * ```ts
 * registryApiHost("docker.io"); // "registry-1.docker.io"
 * registryApiHost("localhost:5000"); // "localhost:5000"
 * ```
 */
export function registryApiHost(registry: string): string {
  return registry === DEFAULT_DOMAIN ? "registry-1.docker.io" : registry;
}

/**
 * Tells whether `s` is a valid digest of a supported algorithm (`sha256:` + 64 lowercase hex digits,
 * sha384, sha512).
 *
 * @example
 * ```ts
 * isDigest("sha256:" + "0".repeat(64)); // true
 * isDigest("latest"); // false
 * ```
 */
export function isDigest(s: string): boolean {
  return digestProblem(s) === undefined;
}

/**
 * The hex part of a digest (`sha256:abc…` → `abc…`).
 *
 * @throws {AirlockError} `INVALID_REFERENCE` when `d` is not a valid digest.
 */
export function digestHex(d: string): string {
  const problem = digestProblem(d);
  if (problem) throw new AirlockError("INVALID_REFERENCE", problem);
  return d.slice(d.indexOf(":") + 1);
}
