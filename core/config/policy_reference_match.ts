/**
 * Identity matching (containers/image `signature/policy_reference_match.go`): whether the `docker-reference` a
 * signature claims is acceptable for the image being pulled, under a requirement's `signedIdentity`.
 *
 * @module
 */
import { AirlockError } from "../errors.ts";
import { formatReference, parseReference, type Reference, repositoryName } from "../reference.ts";
import type { PolicyReferenceMatch } from "./policy_types.ts";

/**
 * containers/image `reference.ParseNormalizedNamed`: a docker reference, normalised (`nginx` →
 * `docker.io/library/nginx`); unlike airlock's {@linkcode parseReference} no `docker://` prefix is accepted.
 *
 * @throws {AirlockError} `INVALID_REFERENCE`
 */
export function parseNormalizedNamed(s: string): Reference {
  if (s.startsWith("docker://")) {
    throw new AirlockError(
      "INVALID_REFERENCE",
      `invalid reference ${JSON.stringify(s)}: invalid reference format`,
    );
  }
  return parseReference(s);
}

/** Whether `ref` names neither a tag nor a digest. */
export function isNameOnly(ref: Reference): boolean {
  return ref.tag === undefined && ref.digest === undefined;
}

/** containers/image `matchRepoDigestOrExactReferenceValues`. */
function matchRepoDigestOrExact(intended: Reference, signature: Reference): boolean {
  if (isNameOnly(signature)) return false;
  if (intended.tag !== undefined) return formatReference(signature) === formatReference(intended);
  if (intended.digest !== undefined) return repositoryName(signature) === repositoryName(intended);
  return false;
}

/** `remapIdentity`: rewrites `ref` when its name starts with `prefix` (whole components); else returns it. */
function remap(prefix: string, signedPrefix: string, ref: Reference): Reference {
  const name = repositoryName(ref);
  const matches = name.length === prefix.length
    ? name === prefix
    : name.length > prefix.length && name.startsWith(prefix) && name[prefix.length] === "/";
  if (!matches) return ref;
  const s = formatReference(ref);
  const rewritten = s.replace(prefix, signedPrefix);
  const parsed = parseNormalizedNamed(rewritten);
  // reference.ParseNamed: the rewritten text must already be in canonical (normalised) form.
  if (formatReference(parsed) !== rewritten) {
    throw new AirlockError("INVALID_REFERENCE", `error rewriting reference from "${s}" to "${rewritten}"`);
  }
  return parsed;
}

/**
 * Whether a signature's `docker-reference` is acceptable for the image `image` under `match` (containers/image
 * `matchesDockerReference`). Unparseable references never match.
 */
export function matchesDockerReference(
  match: PolicyReferenceMatch,
  image: Reference,
  signatureReference: string,
): boolean {
  try {
    switch (match.type) {
      case "matchExact": {
        const sig = parseNormalizedNamed(signatureReference);
        if (isNameOnly(image) || isNameOnly(sig)) return false;
        return formatReference(sig) === formatReference(image);
      }
      case "matchRepoDigestOrExact":
        return matchRepoDigestOrExact(image, parseNormalizedNamed(signatureReference));
      case "matchRepository":
        return repositoryName(parseNormalizedNamed(signatureReference)) === repositoryName(image);
      case "exactReference": {
        const intended = parseNormalizedNamed(match.dockerReference);
        const sig = parseNormalizedNamed(signatureReference);
        if (isNameOnly(intended) || isNameOnly(sig)) return false;
        return formatReference(sig) === formatReference(intended);
      }
      case "exactRepository": {
        const intended = parseNormalizedNamed(match.dockerRepository);
        return repositoryName(parseNormalizedNamed(signatureReference)) === repositoryName(intended);
      }
      case "remapIdentity": {
        const sig = parseNormalizedNamed(signatureReference);
        return matchRepoDigestOrExact(remap(match.prefix, match.signedPrefix, image), sig);
      }
    }
  } catch {
    return false;
  }
}
