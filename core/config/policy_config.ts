/**
 * containers-policy.json(5) parsing, as strict as containers/image (`signature/policy_config.go`,
 * `policy_config_sigstore.go`): unknown or duplicate keys are errors, `default` is mandatory, every requirement
 * list is non-empty, and the error texts are containers/image's. `signedBy`, `signedBaseLayer` and keyless
 * `sigstoreSigned` requirements are parsed and validated in full (so a policy that uses them elsewhere still
 * loads); `policy_eval.ts` refuses them when it meets them.
 *
 * @module
 */
import { AirlockError, type ErrorCode, errorMessage } from "../errors.ts";
import { isRegistryNamespace, type Reference } from "../reference.ts";
import { goBase64Decode } from "../encoding/base64.ts";
import { goQuote } from "../encoding/go_quote.ts";
import { goSlice, goString, goTypeError, type JsonNode, parseJsonTree } from "../encoding/go_json.ts";
import { paranoidExactFields, paranoidObject } from "../encoding/paranoid_json.ts";
import { validPolicyScope } from "./policy_scopes.ts";
import { isNameOnly, parseNormalizedNamed } from "./policy_reference_match.ts";
import type {
  Policy,
  PolicyFulcio,
  PolicyPki,
  PolicyReferenceMatch,
  PolicyRequirement,
  SignedByKeyType,
  SignedByRequirement,
  SigstoreSignedRequirement,
} from "./policy_types.ts";

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
 * Builds an `exactRepository` match as containers/image's `NewPRMExactRepository` does (the value must parse as
 * a docker reference; a tag or digest is allowed and ignored).
 *
 * @throws {AirlockError} `CONFIG_INVALID`: `Invalid format of dockerRepository "<v>": <reason>`
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

/**
 * Builds a `remapIdentity` match: both prefixes must be a host (`host[:port]`) or a repository namespace
 * (`host[:port]/path`), as containers/image validates them.
 *
 * @throws {AirlockError} `CONFIG_INVALID`: `prefix "<p>" is not valid`
 */
export function newRemapIdentity(prefix: string, signedPrefix: string): PolicyReferenceMatch {
  if (!isRegistryNamespace(prefix)) throw bad(`prefix ${goQuote(prefix)} is not valid`);
  if (!isRegistryNamespace(signedPrefix)) throw bad(`prefix ${goQuote(signedPrefix)} is not valid`);
  return { type: "remapIdentity", prefix, signedPrefix };
}

/**
 * Reads and parses a policy file.
 *
 * @throws {AirlockError} `IO_ERROR` when the file cannot be read; `CONFIG_INVALID`:
 * `invalid policy in "<file>": <reason>`.
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

/** Go's `os.ReadFile` error text for `path` (containers/image quotes it when a policy or key file cannot be read). */
export function goOpenError(path: string, e: unknown): string {
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
