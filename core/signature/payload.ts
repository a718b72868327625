/**
 * The simple-signing payload of a sigstore ("cosign") image signature: building it byte for byte as
 * containers/image (skopeo, hangar v1) and cosign write it, and reading it back the way each of them reads it.
 *
 * - {@linkcode buildSimpleSigningPayload}: containers/image's form, Go `json.Marshal` of nested maps (compact,
 *   keys sorted at every level, `<`, `>`, `&`, U+2028, U+2029 escaped).
 * - {@linkcode buildCosignPayload}: cosign's struct-ordered form with `"optional":null` when there are no annotations.
 * - {@linkcode parseSimpleSigningPayload}: containers/image's strict parse (spec/hangar.md §6.4f), with its error texts.
 * - {@linkcode parseCosignClaims}: cosign's lenient `SimpleClaimVerifier` read (spec/cosign.md §1.5).
 *
 * The Go `encoding/json` emulation it relies on is in `../encoding/go_json.ts`, digests in
 * `../encoding/digest.ts`.
 *
 * @module
 */
import { AirlockError, type ErrorCode } from "../errors.ts";
import { digestError } from "../encoding/digest.ts";
import {
  decodeGoStruct,
  goJsonInt,
  goJsonMap,
  goJsonString,
  goString,
  goTypeError,
  type JsonNode,
  jsonNodeToValue,
  parseJsonTree,
} from "../encoding/go_json.ts";
import { goQuote } from "../encoding/go_quote.ts";
import { type JsonSink, paranoidExactFields, paranoidObject } from "../encoding/paranoid_json.ts";
import { VERSION } from "../version.ts";

/** The `critical.type` every simple-signing payload carries. */
export const SIMPLE_SIGNING_TYPE = "cosign container image signature";

/** The default `optional.creator` airlock writes: `airlock <version>`. */
export const DEFAULT_CREATOR = `airlock ${VERSION}`;

/** Keys of the `optional` object that airlock fills itself; `--annotation` may not use them. */
export const RESERVED_OPTIONAL_KEYS: readonly string[] = ["creator", "timestamp"];

// ---------------------------------------------------------------------------------------------------------------
// Building payloads
// ---------------------------------------------------------------------------------------------------------------

/** What goes into a containers/image-style payload. */
export interface SimpleSigningPayloadInput {
  /** `critical.identity.docker-reference`: the fully normalised reference (`host/repo:tag` or `host/repo@digest`). */
  readonly dockerReference: string;
  /** `critical.image.docker-manifest-digest`: `sha256:<hex>` of the signed manifest bytes. */
  readonly manifestDigest: string;
  /** `optional.creator`; `undefined` = {@linkcode DEFAULT_CREATOR}, `null` = left out. */
  readonly creator?: string | null;
  /** `optional.timestamp`, integer unix seconds; `undefined` = now, `null` = left out. */
  readonly timestamp?: number | null;
  /**
   * User annotations (`--annotation k=v`), written as string members of `optional`. The keys `creator` and
   * `timestamp` are reserved ({@linkcode RESERVED_OPTIONAL_KEYS}) and rejected with `INVALID_ARGUMENT`:
   * containers/image verifiers require `creator` to be a string and `timestamp` an integer, and airlock always
   * writes its own creator and timestamp, so a user value could only shadow or break them.
   */
  readonly annotations?: Readonly<Record<string, string>>;
}

const encoder = new TextEncoder();

function checkDigestArgument(d: string): void {
  const err = digestError(d);
  if (err !== undefined) {
    throw new AirlockError("INVALID_ARGUMENT", `invalid manifest digest ${goQuote(d)}: ${err}`);
  }
}

/**
 * Builds the simple-signing payload exactly as containers/image writes it (hangar v1, skopeo): Go `json.Marshal`
 * of nested maps, so keys are sorted at every level and the output is compact, with no trailing newline.
 * `optional` is always an object (`{}` when empty).
 *
 * @throws {AirlockError} `INVALID_ARGUMENT` for an empty reference (`Unexpected empty signature content`), a bad
 * digest, a non-integer timestamp or a reserved annotation key.
 *
 * @example
 * ```ts
 * const payload = buildSimpleSigningPayload({
 *   dockerReference: "docker.io/library/nginx:1.25",
 *   manifestDigest: "sha256:25fd…",
 *   timestamp: 1700000000,
 * });
 * ```
 */
export function buildSimpleSigningPayload(input: SimpleSigningPayloadInput): Uint8Array {
  const { dockerReference, manifestDigest } = input;
  if (dockerReference === "" || manifestDigest === "") {
    throw new AirlockError("INVALID_ARGUMENT", "Unexpected empty signature content");
  }
  checkDigestArgument(manifestDigest);
  const optional: Record<string, string> = {};
  for (const [k, v] of Object.entries(input.annotations ?? {})) {
    if (RESERVED_OPTIONAL_KEYS.includes(k)) {
      throw new AirlockError("INVALID_ARGUMENT", `annotation key ${goQuote(k)} is reserved for the signer`);
    }
    if (typeof v !== "string") {
      throw new AirlockError("INVALID_ARGUMENT", `annotation ${goQuote(k)} must be a string`);
    }
    optional[k] = goJsonString(v);
  }
  const creator = input.creator === undefined ? DEFAULT_CREATOR : input.creator;
  if (creator !== null) optional.creator = goJsonString(creator);
  const timestamp = input.timestamp === undefined ? Math.floor(Date.now() / 1000) : input.timestamp;
  if (timestamp !== null) {
    if (!Number.isSafeInteger(timestamp)) {
      throw new AirlockError(
        "INVALID_ARGUMENT",
        `timestamp must be an integer number of seconds, got ${timestamp}`,
      );
    }
    optional.timestamp = goJsonInt(timestamp);
  }
  // Keys at each level sorted: critical{identity,image,type}, optional{…sorted…}.
  const json = '{"critical":{"identity":{"docker-reference":' + goJsonString(dockerReference) + "}," +
    '"image":{"docker-manifest-digest":' + goJsonString(manifestDigest) + "}," +
    '"type":' + goJsonString(SIMPLE_SIGNING_TYPE) + "}," +
    '"optional":' + goJsonMap(optional, (raw) => raw) + "}";
  return encoder.encode(json);
}

/**
 * Builds the payload as cosign writes it (sigstore `payload.Cosign` marshalled by `encoding/json`): struct field
 * order, `"optional":null` when there are no annotations (cosign's CLI gives `null` for none, never `{}`),
 * otherwise the annotations as a sorted map.
 *
 * @example
 * ```ts
 * buildCosignPayload("192.168.64.2:5000/cosign-signed/key-1", "sha256:0489…");
 * // {"critical":{…},"optional":null}
 * ```
 */
export function buildCosignPayload(
  dockerReference: string,
  digest: string,
  annotations?: Readonly<Record<string, string>>,
): Uint8Array {
  checkDigestArgument(digest);
  const optional = annotations === undefined || Object.keys(annotations).length === 0
    ? "null"
    : goJsonMap(annotations, (v) => goJsonString(v));
  const json = '{"critical":{"identity":{"docker-reference":' + goJsonString(dockerReference) + "}," +
    '"image":{"docker-manifest-digest":' + goJsonString(digest) + "}," +
    '"type":' + goJsonString(SIMPLE_SIGNING_TYPE) + "}," +
    '"optional":' + optional + "}";
  return encoder.encode(json);
}

// ---------------------------------------------------------------------------------------------------------------
// Strict parse (containers/image)
// ---------------------------------------------------------------------------------------------------------------

/** A payload read by {@linkcode parseSimpleSigningPayload}. Untrusted until its signature has been verified. */
export interface SimpleSigningPayload {
  /** `critical.image.docker-manifest-digest` (a valid digest). */
  readonly dockerManifestDigest: string;
  /** `critical.identity.docker-reference` (not parsed; may be `""` when the payload said `null`). */
  readonly dockerReference: string;
  /** `optional.creator` when present. */
  readonly creator?: string;
  /** `optional.timestamp` when present (integer seconds). */
  readonly timestamp?: number;
  /** The whole `optional` object as decoded into Go `any` (`null` for cosign's `"optional":null`). */
  readonly optional: Readonly<Record<string, unknown>> | null;
}

const CODE: ErrorCode = "SIGNATURE_INVALID";

function invalid(message: string): AirlockError {
  return new AirlockError(CODE, message);
}

type Sink = JsonSink;

function goFloat64(node: JsonNode): number {
  if (node.kind === "null") return 0;
  if (node.kind !== "number") throw goTypeError(node, "float64", undefined, CODE);
  const v = Number(node.raw);
  if (!Number.isFinite(v)) throw goTypeError(`number ${node.raw}`, "float64", undefined, CODE);
  return v;
}

const TWO_POW_63 = 9223372036854775808;

/**
 * Parses a simple-signing payload as strictly as containers/image does (spec/hangar.md §6.4f): the top level has
 * exactly `critical` and `optional`; `critical` exactly `type`, `image`, `identity`; `type` is
 * `cosign container image signature`; `image` exactly a parseable `docker-manifest-digest`; `identity` exactly
 * `docker-reference`; `optional` is `null` or an object whose `creator` (if present) is a string and whose
 * `timestamp` (if present) is a number with an integer value; duplicate keys are rejected at every level checked.
 * Checks run in containers/image's order, so the first error reported is the one it would report.
 * Call it only on payloads whose signature has been verified.
 *
 * @throws {AirlockError} `SIGNATURE_INVALID` with containers/image's text: `Unknown key "<k>"`,
 * `Key "<k>" missing in a JSON object`, `Duplicate key "<k>"`, `Unrecognized signature type <t>`,
 * `Field optional.timestamp is not an integer`, `invalid docker-manifest-digest value "<v>": <reason>`,
 * `JSON object expected, got <token>`, `json: cannot unmarshal …`, or a JSON syntax error.
 *
 * @example
 * ```ts
 * const p = parseSimpleSigningPayload(payloadBytes);
 * if (p.dockerManifestDigest !== manifestDigest) throw …;
 * ```
 */
export function parseSimpleSigningPayload(bytes: Uint8Array | string): SimpleSigningPayload {
  const root = parseJsonTree(bytes, CODE);
  let critical: JsonNode = { kind: "null" };
  let optional: JsonNode = { kind: "null" };
  paranoidExactFields(root, { critical: (v) => (critical = v), optional: (v) => (optional = v) }, CODE);

  let creator: string | undefined;
  let timestampFloat: number | undefined;
  let optionalValue: Record<string, unknown> | null = null;
  if (optional.kind !== "null") {
    const ignored: Sink = () => {};
    paranoidObject(optional, (key) => {
      if (key === "creator") return (v) => (creator = goString(v, undefined, "", CODE));
      if (key === "timestamp") return (v) => (timestampFloat = goFloat64(v));
      return ignored;
    }, CODE);
    optionalValue = jsonNodeToValue(optional) as Record<string, unknown>;
  }
  let timestamp: number | undefined;
  if (timestampFloat !== undefined) {
    // Go: int64(timestamp) must convert back to the same float64.
    if (!Number.isInteger(timestampFloat) || timestampFloat < -TWO_POW_63 || timestampFloat >= TWO_POW_63) {
      throw invalid("Field optional.timestamp is not an integer");
    }
    timestamp = timestampFloat + 0; // -0 reads as 0, as int64 does
  }

  let type = "";
  let image: JsonNode = { kind: "null" };
  let identity: JsonNode = { kind: "null" };
  paranoidExactFields(critical, {
    type: (v) => (type = goString(v, undefined, "", CODE)),
    image: (v) => (image = v),
    identity: (v) => (identity = v),
  }, CODE);
  if (type !== SIMPLE_SIGNING_TYPE) throw invalid(`Unrecognized signature type ${type}`);

  let digest = "";
  paranoidExactFields(
    image,
    { "docker-manifest-digest": (v) => (digest = goString(v, undefined, "", CODE)) },
    CODE,
  );
  const digestErr = digestError(digest);
  if (digestErr !== undefined) {
    throw invalid(`invalid docker-manifest-digest value ${goQuote(digest)}: ${digestErr}`);
  }

  let dockerReference = "";
  paranoidExactFields(identity, {
    "docker-reference": (v) => (dockerReference = goString(v, undefined, "", CODE)),
  }, CODE);

  return {
    dockerManifestDigest: digest,
    dockerReference,
    ...(creator !== undefined ? { creator } : {}),
    ...(timestamp !== undefined ? { timestamp } : {}),
    optional: optionalValue,
  };
}

/**
 * The user annotations of a parsed payload: the `optional` members other than `creator` and `timestamp`.
 * Values are as decoded (cosign-made payloads may carry non-strings).
 */
export function payloadAnnotations(
  payload: { readonly optional: Readonly<Record<string, unknown>> | null },
): Record<
  string,
  unknown
> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(payload.optional ?? {})) {
    if (!RESERVED_OPTIONAL_KEYS.includes(k)) out[k] = v;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Lenient parse (cosign SimpleClaimVerifier)
// ---------------------------------------------------------------------------------------------------------------

/** A payload as cosign's `SimpleClaimVerifier` reads it (sigstore `payload.SimpleContainerImage`). */
export interface CosignClaims {
  /** `critical.image.docker-manifest-digest` (not validated; compared as a string). */
  readonly dockerManifestDigest: string;
  /** `critical.identity.docker-reference` (cosign ignores it). */
  readonly dockerReference: string;
  /** `critical.type` (cosign ignores it). */
  readonly type: string;
  /** `optional`, `null` when absent or `null`. */
  readonly optional: Readonly<Record<string, unknown>> | null;
}

/**
 * Reads a payload the lenient way cosign does (`json.Unmarshal` into `SimpleContainerImage`): unknown members are
 * ignored, field names match case-insensitively, a later duplicate wins, `null` leaves a field empty. Only a JSON
 * syntax error or a member of the wrong kind fails.
 *
 * @throws {AirlockError} `SIGNATURE_INVALID`
 *
 * @example
 * ```ts
 * const c = parseCosignClaims(payload);
 * cosignClaimsMatch(c, "sha256:…", { env: "prod" });
 * ```
 */
export function parseCosignClaims(bytes: Uint8Array | string): CosignClaims {
  const root = parseJsonTree(bytes, CODE);
  let dockerManifestDigest = "";
  let dockerReference = "";
  let type = "";
  let optional: Record<string, unknown> | null = null;
  const S = "SimpleContainerImage";
  decodeGoStruct(root, S, S, {
    critical: (v, p) =>
      decodeGoStruct(v, "payload.Critical", p, {
        identity: (v2, p2) =>
          decodeGoStruct(v2, "payload.Identity", p2, {
            "docker-reference": (v3, p3) => (dockerReference = goString(v3, p3, dockerReference, CODE)),
          }, CODE),
        image: (v2, p2) =>
          decodeGoStruct(v2, "payload.Image", p2, {
            "docker-manifest-digest": (
              v3,
              p3,
            ) => (dockerManifestDigest = goString(v3, p3, dockerManifestDigest, CODE)),
          }, CODE),
        type: (v2, p2) => (type = goString(v2, p2, type, CODE)),
      }, CODE),
    optional: (v, p) => {
      if (v.kind === "null") optional = null;
      else if (v.kind !== "object") throw goTypeError(v, "map[string]interface {}", p, CODE);
      else optional = { ...(optional ?? {}), ...(jsonNodeToValue(v) as Record<string, unknown>) };
    },
  }, CODE);
  return { dockerManifestDigest, dockerReference, type, optional };
}

/**
 * cosign's claim check (`SimpleClaimVerifier` + `correctAnnotations`): the digest must equal the image digest
 * exactly, and every wanted annotation must be present in `optional` with an equal string value.
 */
export function cosignClaimsMatch(
  claims: CosignClaims,
  digest: string,
  annotations?: Readonly<Record<string, string>>,
): boolean {
  if (claims.dockerManifestDigest !== digest) return false;
  for (const [k, v] of Object.entries(annotations ?? {})) {
    if (claims.optional === null || !Object.hasOwn(claims.optional, k) || claims.optional[k] !== v) {
      return false;
    }
  }
  return true;
}
