/**
 * containers-policy.json(5): the trust policy containers/image (skopeo, podman, hangar v1's `sign validate`)
 * evaluates before it lets an image be used. Parsed as strictly as containers/image parses it
 * (`signature/policy_config.go`, `policy_config_sigstore.go`): unknown or duplicate keys are errors, `default` is
 * mandatory, every requirement list is non-empty, and the error texts are containers/image's.
 *
 * Evaluation (`policy_eval*.go`, `policy_reference_match.go`) is per manifest: the requirements of the most
 * specific scope of transport `docker` apply (full identity `host/repo:tag` or `host/repo@digest`, then
 * `host/repo`, each parent namespace, `host`, `*.domain` wildcards, then the transport's `""`, then `default`),
 * and **all** of them must allow the image. A `sigstoreSigned` requirement accepts the image when one of its
 * sigstore signatures verifies with a trusted key, names the manifest's digest and carries an identity its
 * `signedIdentity` accepts.
 *
 * What airlock does not evaluate (yet), with a clear rejection instead of a silent pass: `signedBy` (GPG simple
 * signing), `signedBaseLayer` (containers/image has no implementation either), and `sigstoreSigned` requirements
 * with `fulcio`, `pki` or `rekorPublicKey*` (keyless and Rekor checks, planned). They are parsed and validated in
 * full, so a policy that uses them elsewhere still loads.
 *
 * @module
 */
import { AirlockError, type ErrorCode, errorMessage } from "../errors.ts";
import { formatReference, parseReference, type Reference, repositoryName } from "../reference.ts";
import { goBase64Decode } from "../encoding/base64.ts";
import { SIMPLE_SIGNING_MEDIA_TYPE } from "../signature/attachments.ts";
import { goQuote } from "../encoding/go_quote.ts";
import { goSlice, goString, goTypeError, type JsonNode, parseJsonTree } from "../encoding/go_json.ts";
import { paranoidExactFields, paranoidObject } from "../encoding/paranoid_json.ts";
import { parseSimpleSigningPayload } from "../signature/payload.ts";
import { parsePublicKeyPem, type PublicKey, verifySignature } from "../signature/public_key.ts";
import { validPolicyScope } from "./policy_scopes.ts";
import { policyConfigurationIdentity, policyConfigurationNamespaces } from "./registries_d.ts";

// ---------------------------------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------------------------------

/**
 * A `signedIdentity` (policy reference match): how the identity in a signature must relate to the image.
 *
 * @example
 * ```ts
 * const m: PolicyReferenceMatch = { type: "remapIdentity", prefix: "127.0.0.1:5000", signedPrefix: "registry.test:5000" };
 * ```
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
 *
 * @example
 * ```ts
 * const r: PolicyRequirement = { type: "sigstoreSigned", keyPath: "cosign.pub", signedIdentity: { type: "matchRepoDigestOrExact" } };
 * ```
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

// ---------------------------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------------------------

const CODE: ErrorCode = "CONFIG_INVALID";

function bad(message: string): AirlockError {
  return new AirlockError(CODE, message);
}

function str(node: JsonNode, fallback = ""): string {
  return goString(node, undefined, fallback, CODE);
}

function strList(node: JsonNode): string[] | undefined {
  return goSlice(node, undefined, "[]string", (n) => str(n), CODE);
}

/** Go `[]byte` from JSON: a base64 string (standard, padded); `null` is nil. */
function bytes(node: JsonNode): Uint8Array | undefined {
  if (node.kind === "null") return undefined;
  if (node.kind !== "string") throw goTypeError(node, "[]uint8", undefined, CODE);
  return goBase64Decode(node.value, CODE);
}

function bytesList(node: JsonNode): Uint8Array[] | undefined {
  return goSlice(node, undefined, "[][]uint8", (n) => bytes(n) ?? new Uint8Array(0), CODE);
}

/** The `type` member as Go's lenient `json.Unmarshal` into a one-field struct reads it. */
function lenientType(node: JsonNode, goType: string): string {
  if (node.kind === "null") return "";
  if (node.kind !== "object") throw goTypeError(node, goType, undefined, CODE);
  let type = "";
  for (const { key, value } of node.entries) {
    if (key.toLowerCase() !== "type") continue;
    if (value.kind === "null") continue;
    if (value.kind !== "string") throw goTypeError(value, "string", `${goType.split(".")[1]}.type`, CODE);
    type = value.value;
  }
  return type;
}

function unexpectedType(type: string): AirlockError {
  return bad(`Unexpected policy requirement type ${goQuote(type)}`);
}

/**
 * Parses a policy document as containers/image's `NewPolicyFromBytes` does.
 *
 * @throws {AirlockError} `CONFIG_INVALID` with containers/image's text, e.g. `Unknown key "x"`,
 * `Default policy is missing`, `List of verification policy requirements must not be empty`,
 * `exactly one of keyPath, keyPaths, keyData, keyDatas, fulcio, and pki must be specified`.
 *
 * @example
 * ```ts
 * const policy = parsePolicy('{"default":[{"type":"insecureAcceptAnything"}]}');
 * ```
 */
export function parsePolicy(input: string | Uint8Array): Policy {
  const root = parseJsonTree(input, CODE);
  let def: PolicyRequirement[] | undefined;
  const transports: Record<string, Record<string, PolicyRequirement[]>> = {};
  paranoidObject(root, (key) => {
    if (key === "default") return (v) => (def = requirementList(v));
    if (key === "transports") return (v) => parseTransports(v, transports);
    return undefined;
  }, CODE);
  if (def === undefined) throw bad("Default policy is missing");
  return { default: def, transports };
}

/**
 * `transports`: an object of transport → scope → requirement list. containers/image decodes each level with its
 * own strict reader, so an explicit `null` is no "absent": `"transports": null` and `"docker": null` are not
 * objects, a `null` list is an empty one, and a scope the transport refuses is an unknown key.
 */
function parseTransports(node: JsonNode, out: Record<string, Record<string, PolicyRequirement[]>>): void {
  paranoidObject(node, (transport) => (v) => {
    const scopes: Record<string, PolicyRequirement[]> = {};
    paranoidObject(v, (scope) => {
      if (!validPolicyScope(transport, scope)) return undefined;
      return (list) => (scopes[scope] = requirementList(list));
    }, CODE);
    out[transport] = scopes;
  }, CODE);
}

/** A requirement list: an array of at least one requirement (`null` decodes as an empty list). */
function requirementList(node: JsonNode): PolicyRequirement[] {
  if (node.kind !== "null" && node.kind !== "array") {
    throw goTypeError(node, "[]json.RawMessage", undefined, CODE);
  }
  const items = node.kind === "array" ? node.items : [];
  if (items.length === 0) throw bad("List of verification policy requirements must not be empty");
  return items.map(parseRequirement);
}

function parseRequirement(node: JsonNode): PolicyRequirement {
  const type = lenientType(node, "signature.prCommon");
  switch (type) {
    case "insecureAcceptAnything":
    case "reject": {
      let t = "";
      paranoidExactFields(node, { type: (v) => (t = str(v)) }, CODE);
      if (t !== type) throw unexpectedType(t);
      return { type };
    }
    case "signedBy":
      return parseSignedBy(node);
    case "signedBaseLayer": {
      let t = "";
      let identity: JsonNode = { kind: "null" };
      paranoidExactFields(
        node,
        { type: (v) => (t = str(v)), baseLayerIdentity: (v) => (identity = v) },
        CODE,
      );
      if (t !== type) throw unexpectedType(t);
      return { type, baseLayerIdentity: parseReferenceMatch(identity) };
    }
    case "sigstoreSigned":
      return parseSigstoreSigned(node);
    default:
      throw bad(`Unknown policy requirement type ${goQuote(type)}`);
  }
}

const KEY_TYPES: readonly string[] = ["GPGKeys", "signedByGPGKeys", "X509Certificates", "signedByX509CAs"];

function parseSignedBy(node: JsonNode): SignedByRequirement {
  let t = "";
  let keyType = "";
  let keyPath = "";
  let keyPaths: string[] | undefined;
  let keyData: Uint8Array | undefined;
  let identity: JsonNode | undefined;
  const got = { keyPath: false, keyPaths: false, keyData: false };
  paranoidObject(node, (key) => {
    switch (key) {
      case "type":
        return (v) => (t = str(v));
      case "keyType":
        return (v) => {
          keyType = str(v);
          if (!KEY_TYPES.includes(keyType)) throw bad(`Unrecognized keyType value ${goQuote(keyType)}`);
        };
      case "keyPath":
        got.keyPath = true;
        return (v) => (keyPath = str(v));
      case "keyPaths":
        got.keyPaths = true;
        return (v) => (keyPaths = strList(v));
      case "keyData":
        got.keyData = true;
        return (v) => (keyData = bytes(v));
      case "signedIdentity":
        return (v) => (identity = v);
      default:
        return undefined;
    }
  }, CODE);
  if (t !== "signedBy") throw unexpectedType(t);
  const signedIdentity = signedIdentityOf(identity);
  const n = Number(got.keyPath) + Number(got.keyPaths) + Number(got.keyData);
  if (n === 0) {
    throw bad("Exactly one of keyPath, keyPaths and keyData must be specified, none of them present");
  }
  if (n > 1) {
    throw bad("Exactly one of keyPath, keyPaths and keyData must be specified, more than one present");
  }
  if (!KEY_TYPES.includes(keyType)) throw bad(`invalid keyType ${goQuote(keyType)}`);
  const sources = Number(keyPath !== "") + Number(keyPaths !== undefined) + Number(keyData !== undefined);
  if (sources !== 1) throw bad("exactly one of keyPath, keyPaths and keyData must be specified");
  return {
    type: "signedBy",
    keyType: keyType as SignedByKeyType,
    ...(keyPath !== "" ? { keyPath } : {}),
    ...(keyPaths !== undefined ? { keyPaths } : {}),
    ...(keyData !== undefined ? { keyData } : {}),
    signedIdentity,
  };
}

function parseSigstoreSigned(node: JsonNode): SigstoreSignedRequirement {
  let t = "";
  let identity: JsonNode | undefined;
  // Each present key becomes an "option" applied in containers/image's order; the values as decoded.
  const v: {
    keyPath?: string;
    keyPaths?: string[] | null;
    keyData?: Uint8Array | null;
    keyDatas?: Uint8Array[] | null;
    fulcio?: PolicyFulcio;
    pki?: PolicyPki;
    rekorPublicKeyPath?: string;
    rekorPublicKeyPaths?: string[] | null;
    rekorPublicKeyData?: Uint8Array | null;
    rekorPublicKeyDatas?: Uint8Array[] | null;
  } = {};
  paranoidObject(node, (key) => {
    switch (key) {
      case "type":
        return (x) => (t = str(x));
      case "keyPath":
        return (x) => (v.keyPath = str(x));
      case "keyPaths":
        return (x) => (v.keyPaths = strList(x) ?? null);
      case "keyData":
        return (x) => (v.keyData = bytes(x) ?? null);
      case "keyDatas":
        return (x) => (v.keyDatas = bytesList(x) ?? null);
      case "fulcio":
        return (x) => (v.fulcio = parseFulcio(x));
      case "rekorPublicKeyPath":
        return (x) => (v.rekorPublicKeyPath = str(x));
      case "rekorPublicKeyPaths":
        return (x) => (v.rekorPublicKeyPaths = strList(x) ?? null);
      case "rekorPublicKeyData":
        return (x) => (v.rekorPublicKeyData = bytes(x) ?? null);
      case "rekorPublicKeyDatas":
        return (x) => (v.rekorPublicKeyDatas = bytesList(x) ?? null);
      case "pki":
        return (x) => (v.pki = parsePki(x));
      case "signedIdentity":
        return (x) => (identity = x);
      default:
        return undefined;
    }
  }, CODE);
  if (t !== "sigstoreSigned") throw unexpectedType(t);
  const signedIdentity = signedIdentityOf(identity);
  // containers/image's option names, spelling included.
  requireEntries(v.keyPaths, "keyPaths");
  requireEntries(v.keyDatas, "keyDatas");
  requireEntries(v.rekorPublicKeyPaths, "rekorPublickeyPaths");
  requireEntries(v.rekorPublicKeyDatas, "rekorPublickeyDatas");
  const keyPath = v.keyPath || undefined;
  const keyPaths = v.keyPaths ?? undefined;
  const keyData = v.keyData ?? undefined;
  const keyDatas = v.keyDatas ?? undefined;
  const rekorPublicKeyPath = v.rekorPublicKeyPath || undefined;
  const rekorPublicKeyPaths = v.rekorPublicKeyPaths ?? undefined;
  const rekorPublicKeyData = v.rekorPublicKeyData ?? undefined;
  const rekorPublicKeyDatas = v.rekorPublicKeyDatas ?? undefined;
  const keySources = [keyPath, keyPaths, keyData, keyDatas, v.fulcio, v.pki].filter((x) => x !== undefined)
    .length;
  if (keySources !== 1) {
    throw bad("exactly one of keyPath, keyPaths, keyData, keyDatas, fulcio, and pki must be specified");
  }
  const rekorSources = [rekorPublicKeyPath, rekorPublicKeyPaths, rekorPublicKeyData, rekorPublicKeyDatas]
    .filter((x) => x !== undefined).length;
  if (rekorSources > 1) {
    throw bad(
      "at most one of rekorPublickeyPath, rekorPublicKeyPaths, rekorPublickeyData and rekorPublicKeyDatas can be used simultaneously",
    );
  }
  if (v.fulcio !== undefined && rekorSources === 0) {
    throw bad(
      "At least one of rekorPublickeyPath, rekorPublicKeyPaths, rekorPublickeyData and rekorPublicKeyDatas must be specified if fulcio is used",
    );
  }
  if (v.pki !== undefined && rekorSources > 0) {
    throw bad(
      "rekorPublickeyPath, rekorPublicKeyPaths, rekorPublickeyData and rekorPublicKeyDatas are not supported for pki",
    );
  }
  const out: Record<string, unknown> = {
    type: "sigstoreSigned",
    keyPath,
    keyPaths,
    keyData,
    keyDatas,
    fulcio: v.fulcio,
    pki: v.pki,
    rekorPublicKeyPath,
    rekorPublicKeyPaths,
    rekorPublicKeyData,
    rekorPublicKeyDatas,
    signedIdentity,
  };
  for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k];
  return out as unknown as SigstoreSignedRequirement;
}

/**
 * A requirement's `signedIdentity`: `matchRepoDigestOrExact` when the key is absent. An explicit `null` is kept
 * as raw JSON by containers/image and then fails as a match of type `""`.
 */
function signedIdentityOf(identity: JsonNode | undefined): PolicyReferenceMatch {
  return identity === undefined ? { type: "matchRepoDigestOrExact" } : parseReferenceMatch(identity);
}

/** A list option that is present must have entries (`null` counts as empty). */
function requireEntries(list: readonly unknown[] | null | undefined, name: string): void {
  if (list !== undefined && (list === null || list.length === 0)) throw bad(`"${name}" contains no entries`);
}

function parseFulcio(node: JsonNode): PolicyFulcio {
  let caPath = "";
  let caData: Uint8Array | undefined;
  let oidcIssuer = "";
  let subjectEmail = "";
  paranoidObject(node, (key) => {
    switch (key) {
      case "caPath":
        return (v) => (caPath = str(v));
      case "caData":
        return (v) => (caData = bytes(v));
      case "oidcIssuer":
        return (v) => (oidcIssuer = str(v));
      case "subjectEmail":
        return (v) => (subjectEmail = str(v));
      default:
        return undefined;
    }
  }, CODE);
  if (caPath !== "" && caData !== undefined) throw bad("caPath and caData cannot be used simultaneously");
  if (caPath === "" && caData === undefined) throw bad("At least one of caPath and caData must be specified");
  if (oidcIssuer === "") throw bad("oidcIssuer not specified");
  if (subjectEmail === "") throw bad("subjectEmail not specified");
  return { ...(caPath ? { caPath } : {}), ...(caData ? { caData } : {}), oidcIssuer, subjectEmail };
}

function parsePki(node: JsonNode): PolicyPki {
  const p: {
    caRootsPath: string;
    caRootsData?: Uint8Array;
    caIntermediatesPath: string;
    caIntermediatesData?: Uint8Array;
    subjectEmail: string;
    subjectHostname: string;
  } = { caRootsPath: "", caIntermediatesPath: "", subjectEmail: "", subjectHostname: "" };
  paranoidObject(node, (key) => {
    switch (key) {
      case "caRootsPath":
        return (v) => (p.caRootsPath = str(v));
      case "caRootsData":
        return (v) => (p.caRootsData = bytes(v));
      case "caIntermediatesPath":
        return (v) => (p.caIntermediatesPath = str(v));
      case "caIntermediatesData":
        return (v) => (p.caIntermediatesData = bytes(v));
      case "subjectEmail":
        return (v) => (p.subjectEmail = str(v));
      case "subjectHostname":
        return (v) => (p.subjectHostname = str(v));
      default:
        return undefined;
    }
  }, CODE);
  if (p.caRootsPath !== "" && p.caRootsData !== undefined) {
    throw bad("caRootsPath and caRootsData cannot be used simultaneously");
  }
  if (p.caRootsPath === "" && p.caRootsData === undefined) {
    throw bad("At least one of caRootsPath and caRootsData must be specified");
  }
  if (p.caIntermediatesPath !== "" && p.caIntermediatesData !== undefined) {
    throw bad("caIntermediatesPath and caIntermediatesData cannot be used simultaneously");
  }
  if (p.subjectEmail === "" && p.subjectHostname === "") {
    throw bad("At least one of subjectEmail, subjectHostname must be specified");
  }
  const out: Record<string, unknown> = { ...p };
  for (const k of Object.keys(out)) if (out[k] === "" || out[k] === undefined) delete out[k];
  return out as PolicyPki;
}

function parseReferenceMatch(node: JsonNode): PolicyReferenceMatch {
  const type = lenientType(node, "signature.prmCommon");
  let t = "";
  switch (type) {
    case "matchExact":
    case "matchRepoDigestOrExact":
    case "matchRepository":
      paranoidExactFields(node, { type: (v) => (t = str(v)) }, CODE);
      if (t !== type) throw unexpectedType(t);
      return { type };
    case "exactReference": {
      let dockerReference = "";
      paranoidExactFields(node, {
        type: (v) => (t = str(v)),
        dockerReference: (v) => (dockerReference = str(v)),
      }, CODE);
      if (t !== type) throw unexpectedType(t);
      return newExactReference(dockerReference);
    }
    case "exactRepository": {
      let dockerRepository = "";
      paranoidExactFields(node, {
        type: (v) => (t = str(v)),
        dockerRepository: (v) => (dockerRepository = str(v)),
      }, CODE);
      if (t !== type) throw unexpectedType(t);
      return newExactRepository(dockerRepository);
    }
    case "remapIdentity": {
      let prefix = "";
      let signedPrefix = "";
      paranoidExactFields(node, {
        type: (v) => (t = str(v)),
        prefix: (v) => (prefix = str(v)),
        signedPrefix: (v) => (signedPrefix = str(v)),
      }, CODE);
      if (t !== type) throw unexpectedType(t);
      return newRemapIdentity(prefix, signedPrefix);
    }
    default:
      throw bad(`Unknown policy reference match type ${goQuote(type)}`);
  }
}

/**
 * containers/image `reference.ParseNormalizedNamed`: a docker reference, normalised (`nginx` →
 * `docker.io/library/nginx`); unlike airlock's {@linkcode parseReference} no `docker://` prefix is accepted.
 *
 * @throws {AirlockError} `INVALID_REFERENCE`
 *
 * @example
 * ```ts
 * formatReference(parseNormalizedNamed("nginx:1")); // "docker.io/library/nginx:1"
 * ```
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

/**
 * Builds an `exactRepository` match as containers/image's `NewPRMExactRepository` does (the value must parse as
 * a docker reference; a tag or digest is allowed and ignored).
 *
 * @throws {AirlockError} `CONFIG_INVALID`: `Invalid format of dockerRepository "<v>": <reason>`
 *
 * @example
 * ```ts
 * newExactRepository("registry.example.com/library/nginx");
 * ```
 */
export function newExactRepository(dockerRepository: string): PolicyReferenceMatch {
  try {
    parseNormalizedNamed(dockerRepository);
  } catch (e) {
    throw bad(`Invalid format of dockerRepository ${goQuote(dockerRepository)}: ${errorMessage(e)}`);
  }
  return { type: "exactRepository", dockerRepository };
}

function newExactReference(dockerReference: string): PolicyReferenceMatch {
  let ref: Reference;
  try {
    ref = parseNormalizedNamed(dockerReference);
  } catch (e) {
    throw bad(`Invalid format of dockerReference ${goQuote(dockerReference)}: ${errorMessage(e)}`);
  }
  if (isNameOnly(ref)) {
    throw bad(`dockerReference ${goQuote(dockerReference)} contains neither a tag nor digest`);
  }
  return { type: "exactReference", dockerReference };
}

// distribution/reference regular expressions (domain: DNS components or [IPv6], optional port).
const DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const DOMAIN = `(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?`;
const PATH_COMPONENT = "[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*";
const NAME = `(?:${DOMAIN}/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*`;
const DOMAIN_RE = new RegExp(`^${DOMAIN}$`);
const DOMAIN_PREFIX_RE = new RegExp(`^${DOMAIN}/`);
const NAME_RE = new RegExp(`^${NAME}$`);

function validRemapPrefix(s: string): boolean {
  return DOMAIN_RE.test(s) || (NAME_RE.test(s) && DOMAIN_PREFIX_RE.test(s));
}

/**
 * Builds a `remapIdentity` match: both prefixes must be a host (`host[:port]`) or a repository namespace
 * (`host[:port]/path`), as containers/image validates them.
 *
 * @throws {AirlockError} `CONFIG_INVALID`: `prefix "<p>" is not valid`
 *
 * @example
 * ```ts
 * newRemapIdentity("127.0.0.1:5000", "registry.test:5000");
 * ```
 */
export function newRemapIdentity(prefix: string, signedPrefix: string): PolicyReferenceMatch {
  if (!validRemapPrefix(prefix)) throw bad(`prefix ${goQuote(prefix)} is not valid`);
  if (!validRemapPrefix(signedPrefix)) throw bad(`prefix ${goQuote(signedPrefix)} is not valid`);
  return { type: "remapIdentity", prefix, signedPrefix };
}

/**
 * Reads and parses a policy file.
 *
 * @throws {AirlockError} `IO_ERROR` when the file cannot be read; `CONFIG_INVALID`:
 * `invalid policy in "<file>": <reason>`.
 *
 * @example
 * ```ts
 * const policy = await loadPolicyFile("/etc/containers/policy.json");
 * ```
 */
export async function loadPolicyFile(path: string): Promise<Policy> {
  let data: Uint8Array;
  try {
    data = await Deno.readFile(path);
  } catch (e) {
    throw new AirlockError("IO_ERROR", goOpenError(path, e), { cause: e });
  }
  try {
    return parsePolicy(data);
  } catch (e) {
    throw new AirlockError(CODE, `invalid policy in ${goQuote(path)}: ${errorMessage(e)}`, { cause: e });
  }
}

/** Go's `os.ReadFile` error text. */
function goOpenError(path: string, e: unknown): string {
  if (e instanceof Deno.errors.NotFound) return `open ${path}: no such file or directory`;
  if (e instanceof Deno.errors.PermissionDenied) return `open ${path}: permission denied`;
  if (e instanceof Deno.errors.IsADirectory) return `read ${path}: is a directory`;
  return `open ${path}: ${errorMessage(e)}`;
}

/** Where the keys of {@linkcode hangarValidatePolicy} come from. */
export interface HangarPolicyOptions {
  /** `--sigstore-pubkey FILE`: the requirement's `keyPath`. */
  readonly keyPath?: string;
  /** The public key PEM of `--key REF`: the requirement's `keyData`. */
  readonly keyData?: Uint8Array;
  /** `--exact-repository`: `exactRepository` instead of `matchRepoDigestOrExact`. */
  readonly exactRepository?: string;
}

/**
 * The in-memory policy hangar v1's `sign validate` builds (spec/hangar.md §6.4 step 1):
 * `{default: [R], transports: {docker: {"": [R]}}}` with `R = sigstoreSigned{keyPath, signedIdentity}` and the
 * identity `matchRepoDigestOrExact`, or `exactRepository` with `--exact-repository`.
 *
 * @throws {AirlockError} `CONFIG_INVALID` for an invalid `exactRepository`, or when not exactly one key is given.
 *
 * @example
 * ```ts
 * const policy = hangarValidatePolicy({ keyPath: "sigstore.pub" });
 * ```
 */
export function hangarValidatePolicy(opts: HangarPolicyOptions): Policy {
  const signedIdentity: PolicyReferenceMatch = opts.exactRepository
    ? newExactRepository(opts.exactRepository)
    : { type: "matchRepoDigestOrExact" };
  if ((opts.keyPath ? 1 : 0) + (opts.keyData ? 1 : 0) !== 1) {
    throw bad("exactly one of keyPath, keyPaths, keyData, keyDatas, fulcio, and pki must be specified");
  }
  const requirement: SigstoreSignedRequirement = {
    type: "sigstoreSigned",
    ...(opts.keyPath ? { keyPath: opts.keyPath } : { keyData: opts.keyData }),
    signedIdentity,
  };
  return { default: [requirement], transports: { docker: { "": [requirement] } } };
}

// ---------------------------------------------------------------------------------------------------------------
// Scope resolution and identity matching
// ---------------------------------------------------------------------------------------------------------------

/** The requirements that apply to an image, and the scope they came from. */
export interface ScopedRequirements {
  /** `docker "<scope>"` (`""` for the transport default) or `default`. */
  readonly scope: string;
  readonly requirements: readonly PolicyRequirement[];
}

/**
 * The requirements for a docker image reference, as containers/image's `requirementsForImageRef` picks them: the
 * full identity, then each namespace from most to least specific (including `*.domain` wildcards), then the
 * transport's `""`, then the global `default`.
 *
 * @example
 * ```ts
 * requirementsFor(policy, parseReference("reg.io/team/app:1")).scope; // 'docker "reg.io/team"'
 * ```
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

function isNameOnly(ref: Reference): boolean {
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
 *
 * @example
 * ```ts
 * matchesDockerReference({ type: "matchRepoDigestOrExact" }, parseReference("reg.io/a@sha256:…"), "reg.io/a:v1"); // true
 * ```
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

// ---------------------------------------------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------------------------------------------

/**
 * A signature as read from storage, not trusted yet.
 *
 * @example
 * ```ts
 * const sig: UntrustedSignature = { kind: "sigstore", mimeType, payload, annotations };
 * ```
 */
export type UntrustedSignature =
  | {
    /** A sigstore signature (a layer of a `.sig` attachment). */
    readonly kind: "sigstore";
    /** The layer media type; only simple-signing layers are signatures. */
    readonly mimeType: string;
    /** The payload bytes (the signed message). */
    readonly payload: Uint8Array;
    /** The layer annotations (the signature, certificates, bundles). */
    readonly annotations: Readonly<Record<string, string>>;
  }
  /** A simple-signing (GPG) signature from lookaside storage; airlock never reads these, they are only counted. */
  | { readonly kind: "simple-signing" };

/** One manifest as the evaluator sees it. Implementations should cache what they fetch. */
export interface PolicyImage {
  /** The image as named for this manifest: `host/repo:tag`, or `host/repo@digest` for list children. */
  readonly reference: Reference;
  /** The manifest's sha256 digest (`sha256:…`), already verified against the bytes. */
  readonly manifestDigest: string;
  /**
   * The signatures of the manifest: all at once, or one at a time (each call reads them again, so that a reader
   * need not hold every payload); may throw (the image is then rejected with it).
   */
  signatures(): Promise<readonly UntrustedSignature[]> | AsyncIterable<UntrustedSignature>;
}

/**
 * The outcome of evaluating a policy for one manifest.
 *
 * @example
 * ```ts
 * const d = await evaluator.isRunningImageAllowed(image);
 * if (!d.allowed) log.error(d.error.message);
 * ```
 */
export type PolicyDecision =
  | { readonly allowed: true; readonly scope: string }
  | { readonly allowed: false; readonly scope: string; readonly error: AirlockError };

/** Options of {@linkcode PolicyEvaluator}. */
export interface PolicyEvaluatorOptions {
  /** Reads key files (default `Deno.readFile`); for tests. */
  readonly readFile?: (path: string) => Promise<Uint8Array>;
}

type TrustRoot = { readonly keys: readonly PublicKey[] } | { readonly error: AirlockError };

const VERIFIER_ERROR: Readonly<Record<PublicKey["algorithm"], string>> = {
  ecdsa: "invalid signature when validating ASN.1 encoded signature",
  rsa: "crypto/rsa: verification error",
  ed25519: "failed to verify signature",
};

/** The rejection reason of one signature, with the error kind. */
function reject(code: ErrorCode, message: string): AirlockError {
  return new AirlockError(code, message);
}

/**
 * Evaluates a {@linkcode Policy} for one manifest at a time (containers/image `PolicyContext.IsRunningImageAllowed`).
 * Key material is read and parsed once per requirement and reused for every manifest of the run (containers/image
 * re-reads the key file for each signature; the outcome is the same unless the file changes during the run).
 *
 * @example
 * ```ts
 * const evaluator = new PolicyEvaluator(hangarValidatePolicy({ keyPath: "cosign.pub" }));
 * const decision = await evaluator.isRunningImageAllowed(image);
 * ```
 */
export class PolicyEvaluator {
  /** The policy evaluated. */
  readonly policy: Policy;
  readonly #readFile: (path: string) => Promise<Uint8Array>;
  readonly #roots = new WeakMap<SigstoreSignedRequirement, Promise<TrustRoot>>();

  /**
   * Creates an evaluator for `policy`; nothing is read until the first evaluation.
   *
   * @param policy the policy
   * @param options how key files are read
   */
  constructor(policy: Policy, options: PolicyEvaluatorOptions = {}) {
    this.policy = policy;
    this.#readFile = options.readFile ?? ((p) => Deno.readFile(p));
  }

  /** All requirements of the image's scope must allow it; the first that does not gives the reason. */
  async isRunningImageAllowed(image: PolicyImage): Promise<PolicyDecision> {
    const { scope, requirements } = requirementsFor(this.policy, image.reference);
    if (requirements.length === 0) {
      return {
        allowed: false,
        scope,
        error: reject("CONFIG_INVALID", "List of verification policy requirements must not be empty"),
      };
    }
    for (const req of requirements) {
      const error = await this.#requirement(req, image);
      if (error) return { allowed: false, scope, error };
    }
    return { allowed: true, scope };
  }

  /** `undefined` when the requirement allows the image, else why not. */
  async #requirement(req: PolicyRequirement, image: PolicyImage): Promise<AirlockError | undefined> {
    switch (req.type) {
      case "insecureAcceptAnything":
        return undefined;
      case "reject":
        return reject(
          "POLICY_REJECTED",
          `Running image docker://${formatReference(image.reference)} is rejected by policy.`,
        );
      case "signedBy":
        return reject(
          "POLICY_UNSUPPORTED",
          `policy requirement "signedBy" (${req.keyType} simple signing) is not supported by airlock; ` +
            `use "sigstoreSigned"`,
        );
      case "signedBaseLayer":
        return reject("POLICY_UNSUPPORTED", "signedBaseLayer not implemented yet!");
      case "sigstoreSigned":
        return await this.#sigstoreSigned(req, image);
    }
  }

  async #sigstoreSigned(
    req: SigstoreSignedRequirement,
    image: PolicyImage,
  ): Promise<AirlockError | undefined> {
    // Only the code and text of each rejection are kept (an error object holds its stack: 1000 of them per manifest
    // would be megabytes).
    const rejections: { readonly code: ErrorCode; readonly message: string }[] = [];
    let nonSigstore = 0;
    let nonAttachments = 0;
    let accepted = false;
    try {
      // containers/image reads every signature before judging any: one that cannot be read rejects the image even
      // after another was accepted. Read one at a time, each payload is dropped once judged.
      for await (const sig of await image.signatures()) {
        if (accepted) continue;
        if (sig.kind !== "sigstore") {
          nonSigstore++;
          continue;
        }
        if (sig.mimeType !== SIMPLE_SIGNING_MEDIA_TYPE) {
          nonAttachments++;
          continue;
        }
        const reason = await this.#signature(req, image, sig);
        if (reason === undefined) accepted = true; // one accepted signature is enough
        else rejections.push({ code: reason.code, message: reason.message });
      }
    } catch (e) {
      return e instanceof AirlockError ? e : reject("REGISTRY_ERROR", errorMessage(e));
    }
    if (accepted) return undefined;
    if (rejections.length === 0) {
      const counters = nonSigstore === 0 && nonAttachments === 0
        ? ""
        : ` (${nonSigstore} non-sigstore signatures, ${nonAttachments} sigstore non-signature attachments)`;
      return reject("SIGNATURE_MISSING", `A signature was required, but no signature exists${counters}`);
    }
    if (rejections.length === 1) return reject(rejections[0].code, rejections[0].message);
    const code = rejections.every((r) => r.code === rejections[0].code)
      ? rejections[0].code
      : "SIGNATURE_INVALID";
    return reject(
      code,
      `None of the signatures were accepted, reasons: ${rejections.map((r) => r.message).join("; ")}`,
    );
  }

  /** One signature, in containers/image's order: keys, annotation, base64, crypto, payload, digest, identity. */
  async #signature(
    req: SigstoreSignedRequirement,
    image: PolicyImage,
    sig: Extract<UntrustedSignature, { kind: "sigstore" }>,
  ): Promise<AirlockError | undefined> {
    const root = await this.#trustRoot(req);
    if ("error" in root) return root.error;
    if (!Object.hasOwn(sig.annotations, "dev.cosignproject.cosign/signature")) {
      return reject("SIGNATURE_INVALID", "missing dev.cosignproject.cosign/signature annotation");
    }
    let signature: Uint8Array;
    try {
      signature = goBase64Decode(sig.annotations["dev.cosignproject.cosign/signature"]);
    } catch (e) {
      return reject("SIGNATURE_INVALID", `base64 decoding: ${errorMessage(e)}`);
    }
    const failures: string[] = [];
    let verified = false;
    for (const key of root.keys) {
      if (await verifySignature(key, sig.payload, signature)) {
        verified = true;
        break;
      }
      failures.push(VERIFIER_ERROR[key.algorithm]);
    }
    if (!verified) {
      return reject(
        "SIGNATURE_INVALID",
        `cryptographic signature verification failed: ${failures.join(", ")}`,
      );
    }
    let payload;
    try {
      payload = parseSimpleSigningPayload(sig.payload);
    } catch (e) {
      return reject("SIGNATURE_INVALID", errorMessage(e));
    }
    const named = payload.dockerManifestDigest;
    if (!digestMatches(image, named)) {
      return reject("SIGNATURE_INVALID", `Signature for digest ${named} does not match`);
    }
    if (!matchesDockerReference(req.signedIdentity, image.reference, payload.dockerReference)) {
      return reject(
        "IDENTITY_NOT_ACCEPTED",
        `Signature for identity ${goQuote(payload.dockerReference)} is not accepted`,
      );
    }
    return undefined;
  }

  #trustRoot(req: SigstoreSignedRequirement): Promise<TrustRoot> {
    let p = this.#roots.get(req);
    if (!p) {
      p = this.#loadTrustRoot(req);
      this.#roots.set(req, p);
    }
    return p;
  }

  async #loadTrustRoot(req: SigstoreSignedRequirement): Promise<TrustRoot> {
    if (req.fulcio || req.pki) {
      return {
        error: reject(
          "POLICY_UNSUPPORTED",
          `sigstoreSigned with "${
            req.fulcio ? "fulcio" : "pki"
          }" (keyless certificates) is not supported yet`,
        ),
      };
    }
    if (
      req.rekorPublicKeyPath || req.rekorPublicKeyPaths || req.rekorPublicKeyData || req.rekorPublicKeyDatas
    ) {
      return {
        error: reject(
          "POLICY_UNSUPPORTED",
          `sigstoreSigned with "rekorPublicKey*" (Rekor SET checks) is not supported yet`,
        ),
      };
    }
    let pems: Uint8Array[];
    try {
      if (req.keyPath) pems = [await this.#read(req.keyPath)];
      else if (req.keyPaths) pems = await Promise.all(req.keyPaths.map((p) => this.#read(p)));
      else if (req.keyData) pems = [req.keyData];
      else pems = [...(req.keyDatas ?? [])];
    } catch (e) {
      return { error: e instanceof AirlockError ? e : reject("IO_ERROR", errorMessage(e)) };
    }
    const keys: PublicKey[] = [];
    for (let i = 0; i < pems.length; i++) {
      try {
        keys.push(parsePublicKeyPem(pems[i], i + 1));
      } catch (e) {
        return { error: e instanceof AirlockError ? e : reject("KEY_INVALID", errorMessage(e)) };
      }
    }
    if (keys.length === 0) {
      return {
        error: reject(
          "CONFIG_INVALID",
          `Internal inconsistency: "keyPath", "keyPaths", "keyData" and "keyDatas" produced no public keys`,
        ),
      };
    }
    return { keys };
  }

  async #read(path: string): Promise<Uint8Array> {
    try {
      return await this.#readFile(path);
    } catch (e) {
      throw reject("IO_ERROR", goOpenError(path, e));
    }
  }
}

/**
 * containers/image 5.29 `manifest.MatchesDigest`: the payload must name the manifest's **sha256** digest; a
 * payload naming another algorithm (even a correct sha512 of the same bytes) never matches, as in cosign.
 */
function digestMatches(image: PolicyImage, named: string): boolean {
  return named.startsWith("sha256:") && named === image.manifestDigest;
}
