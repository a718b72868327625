/**
 * containers-policy.json(5) as a value: the requirements and identity matches containers/image reads
 * (`signature/policy_types.go`). Parsed by `policy_config.ts`, matched by `policy_reference_match.ts`, evaluated
 * by `policy_eval.ts`.
 *
 * @module
 */

/**
 * A `signedIdentity` (policy reference match): how the identity in a signature must relate to the image.
 */
export type PolicyReferenceMatch =
  | { readonly type: "matchExact" }
  | { readonly type: "matchRepoDigestOrExact" }
  | { readonly type: "matchRepository" }
  | { readonly type: "exactReference"; readonly dockerReference: string }
  | { readonly type: "exactRepository"; readonly dockerRepository: string }
  | { readonly type: "remapIdentity"; readonly prefix: string; readonly signedPrefix: string };

/** `signedBy` key types (containers/image `sbKeyType`). */
export type SignedByKeyType = "GPGKeys" | "signedByGPGKeys" | "X509Certificates" | "signedByX509CAs";

/** `sigstoreSigned.fulcio` (keyless with Fulcio certificates; parsed, not evaluated yet). */
export interface PolicyFulcio {
  /** A file of accepted Fulcio CA certificates (PEM). Exactly one of `caPath` and `caData` is set. */
  readonly caPath?: string;
  /** Accepted Fulcio CA certificates, PEM (in policy.json: base64 of the PEM). */
  readonly caData?: Uint8Array;
  /** The OIDC issuer Fulcio must have recorded in the signing certificate. */
  readonly oidcIssuer: string;
  /** The email address Fulcio must have recorded as the certificate's subject (SAN). */
  readonly subjectEmail: string;
}

/** `sigstoreSigned.pki` (certificates from a private CA; parsed, not evaluated yet). */
export interface PolicyPki {
  /** A file of accepted root CA certificates (PEM). Exactly one of `caRootsPath` and `caRootsData` is set. */
  readonly caRootsPath?: string;
  /** Accepted root CA certificates, PEM (in policy.json: base64 of the PEM). */
  readonly caRootsData?: Uint8Array;
  /** A file of intermediate CA certificates (PEM) for chain building; at most one of the two is set. */
  readonly caIntermediatesPath?: string;
  /** Intermediate CA certificates, PEM (in policy.json: base64 of the PEM). */
  readonly caIntermediatesData?: Uint8Array;
  /** The email SAN the signing certificate must carry. At least one of this and `subjectHostname` is set. */
  readonly subjectEmail?: string;
  /** The DNS-name SAN the signing certificate must carry. */
  readonly subjectHostname?: string;
}

/** A `sigstoreSigned` requirement. Exactly one of the key sources, `fulcio` and `pki` is set. */
export interface SigstoreSignedRequirement {
  /** The requirement kind (policy.json `type`). */
  readonly type: "sigstoreSigned";
  /** A public key file, read when a signature is evaluated. */
  readonly keyPath?: string;
  /** Several public key files; a signature by any of them is accepted. */
  readonly keyPaths?: readonly string[];
  /** A public key PEM (in policy.json: base64 of the PEM). */
  readonly keyData?: Uint8Array;
  /** Several public key PEMs. */
  readonly keyDatas?: readonly Uint8Array[];
  /** Keyless: accept Fulcio certificates with this issuer and email. Needs a `rekorPublicKey*` field. */
  readonly fulcio?: PolicyFulcio;
  /** Accept certificates issued by a private CA; no `rekorPublicKey*` field may be set. */
  readonly pki?: PolicyPki;
  /** A Rekor public key file: the signature must carry a Rekor SET signed by this key. */
  readonly rekorPublicKeyPath?: string;
  /** Several Rekor public key files; a SET signed by any of them is accepted. */
  readonly rekorPublicKeyPaths?: readonly string[];
  /** A Rekor public key PEM (in policy.json: base64 of the PEM). */
  readonly rekorPublicKeyData?: Uint8Array;
  /** Several Rekor public key PEMs. */
  readonly rekorPublicKeyDatas?: readonly Uint8Array[];
  /** Defaults to `matchRepoDigestOrExact`. */
  readonly signedIdentity: PolicyReferenceMatch;
}

/** A `signedBy` (GPG / X.509 simple signing) requirement: parsed, refused when evaluated. */
export interface SignedByRequirement {
  /** The requirement kind (policy.json `type`). */
  readonly type: "signedBy";
  /** What the key source holds; containers/image only implements `GPGKeys`. */
  readonly keyType: SignedByKeyType;
  /** A file of accepted public keys (a GPG keyring). Exactly one of `keyPath`, `keyPaths`, `keyData`. */
  readonly keyPath?: string;
  /** Several key files; a signature by a key in any of them is accepted. */
  readonly keyPaths?: readonly string[];
  /** The accepted public keys themselves (in policy.json: base64). */
  readonly keyData?: Uint8Array;
  /** How the identity in the signature must match the image. Defaults to `matchRepoDigestOrExact`. */
  readonly signedIdentity: PolicyReferenceMatch;
}

/**
 * One policy requirement.
 */
export type PolicyRequirement =
  | { readonly type: "insecureAcceptAnything" }
  | { readonly type: "reject" }
  | SignedByRequirement
  | { readonly type: "signedBaseLayer"; readonly baseLayerIdentity: PolicyReferenceMatch }
  | SigstoreSignedRequirement;

/** A parsed policy: the global default and per-transport scopes (`docker` → `"host/repo"` → requirements). */
export interface Policy {
  /** The requirements used when no transport scope matches. Never empty. */
  readonly default: readonly PolicyRequirement[];
  /** Transport name → scope → requirements. */
  readonly transports: Readonly<Record<string, Readonly<Record<string, readonly PolicyRequirement[]>>>>;
}
