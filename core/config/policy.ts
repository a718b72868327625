/**
 * containers-policy.json(5), the trust policy containers/image (skopeo, podman, hangar v1's `sign validate`)
 * evaluates before it lets an image be used: the names of `policy_types.ts`, `policy_config.ts` (parsing),
 * `policy_scopes.ts` (which requirements apply), `policy_reference_match.ts` (identity matching) and
 * `policy_eval.ts` (requirement evaluation) in one place.
 *
 * @module
 */
export type * from "./policy_types.ts";
export {
  hangarValidatePolicy,
  loadPolicyFile,
  newExactRepository,
  newRemapIdentity,
  parsePolicy,
} from "./policy_config.ts";
export type { HangarPolicyOptions } from "./policy_config.ts";
export { requirementsFor, type ScopedRequirements } from "./policy_scopes.ts";
export { matchesDockerReference, parseNormalizedNamed } from "./policy_reference_match.ts";
export {
  type PolicyDecision,
  PolicyEvaluator,
  type PolicyEvaluatorOptions,
  type PolicyImage,
  type UntrustedSignature,
} from "./policy_eval.ts";
