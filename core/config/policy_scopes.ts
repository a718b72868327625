/**
 * Policy scopes: which requirements apply to an image ({@linkcode requirementsFor}, containers/image
 * `requirementsForImageRef`), and which scope keys each transport of a containers-policy.json accepts: containers/image's
 * `ValidatePolicyConfigurationScope` of every transport skopeo 1.14.5 (containers/image 5.29) registers. The
 * policy parser treats a key its transport refuses as an unknown key, so containers/image refuses the whole file
 * (`Unknown key "<scope>"`); airlock does the same. The transport default `""` is always accepted, and so is any
 * scope of a transport containers/image does not know (or only stubs, such as `ostree` in skopeo's build).
 *
 * @module
 */
import { digestError } from "../encoding/digest.ts";
import { goQuote } from "../encoding/go_quote.ts";
import type { Reference } from "../reference.ts";
import type { Policy, PolicyRequirement } from "./policy_types.ts";
import { policyConfigurationIdentity, policyConfigurationNamespaces } from "./registries_d.ts";

/** The requirements that apply to an image, and the scope they came from. */
export interface ScopedRequirements {
  /** `docker "<scope>"` (`""` for the transport default) or `default`. */
  readonly scope: string;
  /** The requirements of that scope, all of which must allow the image. */
  readonly requirements: readonly PolicyRequirement[];
}

/**
 * The requirements for a docker image reference, as containers/image's `requirementsForImageRef` picks them: the
 * full identity, then each namespace from most to least specific (including `*.domain` wildcards), then the
 * transport's `""`, then the global `default`.
 */
export function requirementsFor(policy: Policy, ref: Reference): ScopedRequirements {
  const scopes = Object.hasOwn(policy.transports, "docker") ? policy.transports.docker : undefined;
  if (scopes) {
    for (const name of [policyConfigurationIdentity(ref), ...policyConfigurationNamespaces(ref)]) {
      if (Object.hasOwn(scopes, name)) {
        return { scope: `docker ${goQuote(name)}`, requirements: scopes[name] };
      }
    }
    if (Object.hasOwn(scopes, "")) return { scope: 'docker ""', requirements: scopes[""] };
  }
  return { scope: "default", requirements: policy.default };
}

/**
 * Whether containers/image accepts `scope` as a key under `transport` in a policy's `transports` object.
 *
 * @example
 * ```ts
 * validPolicyScope("oci", "/var/images");   // true
 * validPolicyScope("oci", "relative/path"); // false: containers/image says `Unknown key "relative/path"`
 * validPolicyScope("docker", "anything");   // true
 * ```
 */
export function validPolicyScope(transport: string, scope: string): boolean {
  if (scope === "") return true;
  switch (transport) {
    case "dir":
    case "sif":
    case "oci":
    case "oci-archive":
      // An absolute path, not "/" (it would shadow ""), in canonical form (filepath.Clean leaves it unchanged).
      return scope.startsWith("/") && scope !== "/" && goCleanPath(scope) === scope;
    case "docker-archive":
    case "tarball":
      return false; // "does not support any scopes except the default "" one"
    case "docker-daemon":
      return digestError(scope) !== undefined; // an algo:digest value cannot be a namespace
    case "atomic":
      return ATOMIC_SCOPE.test(scope);
    case "containers-storage":
      return validStorageScope(scope);
    default:
      return true; // docker accepts any string; unknown and stub transports are not validated
  }
}

/** The openshift (`atomic:`) transport's scope pattern. */
const ATOMIC_SCOPE = /^[^/]*(\/[^:/]*(\/[^:/]*(:[^:/]*)?)?)?$/;

/** containers/image `storageTransport.ValidatePolicyConfigurationScope`: `[driver@/root]name[:tag][@digest][@id]`. */
function validStorageScope(scope: string): boolean {
  if (scope[0] !== "[") return false;
  const close = scope.indexOf("]");
  if (close < 1) return false;
  const store = splitN(scope.slice(1, close), "@", 2);
  const rest = scope.slice(close + 1);
  if (store.length === 1 && store[0] !== "") {
    if (!store[0].startsWith("/")) return false;
  } else if (store.length === 2 && store[0] !== "" && store[1] !== "") {
    if (!store[1].startsWith("/")) return false;
  } else {
    return false;
  }
  if (rest === "") return true;
  const fields = splitN(rest, "@", 3);
  const validId = (id: string) => digestError(`sha256:${id}`) === undefined;
  if (fields.length === 2) return validId(fields[1]) || digestError(fields[1]) === undefined;
  if (fields.length === 3) return digestError(fields[1]) === undefined && validId(fields[2]);
  return true;
}

/** Go `strings.SplitN(s, sep, n)` for n > 0. */
function splitN(s: string, sep: string, n: number): string[] {
  const out: string[] = [];
  let rest = s;
  while (out.length < n - 1) {
    const i = rest.indexOf(sep);
    if (i === -1) break;
    out.push(rest.slice(0, i));
    rest = rest.slice(i + sep.length);
  }
  out.push(rest);
  return out;
}

/**
 * Go `path/filepath.Clean` on a Unix path: repeated slashes collapse, `.` elements go, `..` elements eat their
 * parent (at the root they vanish), no trailing slash except for `/`; `""` becomes `.`.
 */
export function goCleanPath(p: string): string {
  if (p === "") return ".";
  const rooted = p.startsWith("/");
  const out: string[] = [];
  for (const part of p.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
      else if (!rooted) out.push("..");
      continue;
    }
    out.push(part);
  }
  const joined = out.join("/");
  if (rooted) return "/" + joined;
  return joined === "" ? "." : joined;
}
