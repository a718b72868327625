/**
 * The configuration containers/image reads before it lets an image be used or signed: containers-policy.json(5)
 * (types, strict parsing, scope lookup, identity matching, evaluation — split as containers/image's
 * `signature/policy_*.go`) and containers-registries.d(5) (where signatures are stored and whether sigstore
 * attachments are used).
 *
 * @module
 */
export * from "./policy_config.ts";
export * from "./policy_eval.ts";
export * from "./policy_reference_match.ts";
export * from "./policy_scopes.ts";
export * from "./policy_types.ts";
export * from "./registries_d.ts";
