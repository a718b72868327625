/**
 * Checks of the names the distribution API puts in URLs — registry hosts, repositories, tags, digests — made
 * before any request, so that nothing malformed (or crafted to escape the path) reaches a registry.
 *
 * @module
 */

import { AirlockError } from "../errors.ts";
import type { Reference } from "../reference.ts";

const hostRe = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::\d{1,5})?$/;
const repositoryRe = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const tagRe = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/** A digest the client accepts: sha256 or sha512, lowercase hex. */
export const digestRe: RegExp = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

/**
 * The API host of a registry (Docker Hub's is `registry-1.docker.io`); INVALID_REFERENCE for a malformed name.
 *
 * @example
 * ```ts
 * apiHost("docker.io"); // "registry-1.docker.io"
 * apiHost("127.0.0.1:5000"); // "127.0.0.1:5000"
 * ```
 */
export function apiHost(registry: string): string {
  if (!hostRe.test(registry)) {
    throw new AirlockError("INVALID_REFERENCE", `invalid registry host "${registry}"`);
  }
  return registry === "docker.io" || registry === "index.docker.io" ? "registry-1.docker.io" : registry;
}

/**
 * The certs.d directory name for an API host (containers/image uses `docker.io` for Docker Hub).
 */
export function certsName(host: string): string {
  return host === "registry-1.docker.io" ? "docker.io" : host;
}

/**
 * A repository name, checked against the distribution grammar (INVALID_REFERENCE otherwise).
 */
export function repositoryPath(repository: string): string {
  if (!repositoryRe.test(repository)) {
    throw new AirlockError("INVALID_REFERENCE", `invalid repository name "${repository}"`);
  }
  return repository;
}

/**
 * `registry/repository`, for messages.
 */
export function refName(ref: Pick<Reference, "registry" | "repository">): string {
  return `${ref.registry}/${ref.repository}`;
}

/**
 * Refuses (INVALID_ARGUMENT) a digest other than sha256 or sha512 in lowercase hex.
 */
export function validateDigest(digest: string): void {
  if (!digestRe.test(digest)) {
    throw new AirlockError("INVALID_ARGUMENT", `unsupported or malformed digest "${digest}"`);
  }
}

/**
 * A tag, checked against the distribution grammar (INVALID_REFERENCE otherwise).
 */
export function validateTag(tag: string): string {
  if (!tagRe.test(tag)) throw new AirlockError("INVALID_REFERENCE", `invalid tag "${tag}"`);
  return tag;
}

/**
 * `ref.digest ?? ref.tag`, validated: what names a manifest in its URL.
 */
export function manifestReference(ref: Reference): string {
  if (ref.digest !== undefined) {
    validateDigest(ref.digest);
    return ref.digest;
  }
  if (ref.tag !== undefined) return validateTag(ref.tag);
  throw new AirlockError(
    "INVALID_REFERENCE",
    `${refName(ref)}: the reference names neither a tag nor a digest`,
  );
}

/**
 * The reference a manifest is pushed to: `ref.tag` when there is one (`ref.digest` is then only checked against the
 * bytes), else `ref.digest`; both validated.
 */
export function pushReference(ref: Reference): string {
  if (ref.tag !== undefined) validateTag(ref.tag);
  if (ref.digest !== undefined) validateDigest(ref.digest);
  const reference = ref.tag ?? ref.digest;
  if (reference === undefined) {
    throw new AirlockError(
      "INVALID_REFERENCE",
      `${refName(ref)}: a tag or digest is needed to push a manifest`,
    );
  }
  return reference;
}
