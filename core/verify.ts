/**
 * `verify`: cosign's key-based image signature check (`cosign verify --key K IMAGE`, spec/cosign.md §1.5), on the
 * legacy `sha256-<hex>.sig` layout. The pipeline, as {@linkcode verifyImage} runs it:
 *
 * 1. resolve the reference to the digest it names (a tag gives the digest of the top manifest, an index for a
 *    multi-arch tag; a digest reference is checked to exist and to match);
 * 2. look for OCI referrer bundles first, as cosign v3 does; verifying them is not supported yet, so finding one
 *    is an error rather than a silent fallback;
 * 3. read every layer of `sha256-<hex>.sig` (count and sizes limited, every blob digest-checked);
 * 4. accept each simple-signing layer whose signature verifies with the key over the exact stored payload bytes,
 *    whose `docker-manifest-digest` equals the digest, whose `optional` holds every wanted annotation (string
 *    equality) and, unless the transparency log is ignored, whose Rekor bundle verifies.
 *
 * The identity (`docker-reference`) is not checked, as in cosign. Nothing here prints.
 *
 * **Never trusting the registry.** The `.sig` manifest is refused as a whole when it has more than
 * {@linkcode MAX_ATTACHMENT_LAYERS} layers (as cosign does). Blobs are read per layer, as cosign's `Payload()` is
 * called per signature: a layer whose declared size is over {@linkcode MAX_PAYLOAD_BYTES} (4 MiB; cosign allows
 * 128 MiB) is not fetched, a blob is read up to that limit and checked against its digest and size, and a missing,
 * oversized or mismatched blob makes that one layer fail with a reason, so a bad layer appended by someone with
 * push rights cannot hide a good one. Network and authorization errors end the verification (exit 1), never
 * turn into "no matching signatures". (`fetchSignatureLayers` fails the whole manifest on the first bad blob, so it
 * is not used here.)
 *
 * **Payload parsing.** cosign reads payloads with Go's lenient `json.Unmarshal`. airlock reads them the same way
 * (unknown members ignored, `null` leaves a field empty, wrong kinds fail) with three refusals a legitimate signer
 * never triggers and that would otherwise let two JSON readers disagree about a signed payload: a duplicate key in
 * any object, a struct member that only case-folds to a field name (`"Critical"`, `"doc\u212Aer-reference"`),
 * and a number Go cannot hold in a float64. The payload is parsed only after its signature verified.
 *
 * @module
 */
import { AirlockError } from "./errors.ts";
import { formatReference, parseReference, type Reference, withDefaultTag } from "./reference.ts";
import type { RegistryClient } from "./registry/client.ts";
import { isManifestUnknown } from "./registry/errors.ts";
import { type Descriptor, MediaType } from "./registry/types.ts";
import { runPool } from "./pool.ts";
import {
  ANNOTATION_BUNDLE,
  ANNOTATION_RFC3161_TIMESTAMP,
  ANNOTATION_SIGNATURE,
  type AttachmentLayer,
  goBase64Decode,
  listAttachmentLayers,
  parseAttachmentManifest,
} from "./signature/attachments.ts";
import { attachmentRef } from "./signature/attachment_store.ts";
import {
  compareGoMapKeys,
  type CosignClaims,
  cosignClaimsMatch,
  decodeGoStruct,
  goInt,
  goJsonString,
  goQuote,
  goString,
  type JsonNode,
  jsonNodeToValue,
  parseCosignClaims,
  parseJsonTree,
} from "./signature/payload.ts";
import { base64Encode, type PublicKey, verifySignature } from "./signature/public_key.ts";
import { MAX_ATTACHMENT_LAYERS, MAX_PAYLOAD_BYTES } from "./signature/signature_layers.ts";

/** cosign's message when the digest has no signature at all (`ErrNoSignaturesFound`, exit code 10). */
export const NO_SIGNATURES_FOUND = "no signatures found";
/** cosign's message prefix when no signature verifies (`ErrNoMatchingSignatures`, exit code 12). */
export const NO_MATCHING_SIGNATURES = "no matching signatures";
/** Prefix of the artifact types of sigstore bundles stored as OCI referrers (cosign v3, spec/cosign.md §2.8). */
export const SIGSTORE_BUNDLE_ARTIFACT_PREFIX = "application/vnd.dev.sigstore.bundle";

/** Options of {@linkcode verifyImage}. */
export interface VerifyOptions {
  /** The key every accepted signature must verify with (`--key`). */
  readonly publicKey: PublicKey;
  /**
   * `-a k=v`: every key must be in the payload's `optional` with exactly this string value. `undefined` (no `-a`)
   * checks nothing.
   */
  readonly annotations?: Readonly<Record<string, string>>;
  /** `--insecure-ignore-tlog`: accept signatures without a verified Rekor bundle. */
  readonly ignoreTlog?: boolean;
  /** Cancels the registry requests. */
  readonly signal?: AbortSignal;
}

/** One layer that passed every check. */
export interface VerifiedSignature {
  /** Position of the layer in the `.sig` manifest. */
  readonly index: number;
  /** The layer (payload blob) digest. */
  readonly layerDigest: string;
  /** The payload bytes exactly as stored and signed. */
  readonly payload: Uint8Array;
  /** The payload as cosign's `SimpleClaimVerifier` reads it. */
  readonly claims: CosignClaims;
  /** The layer's annotations (signature, bundle, …). */
  readonly annotations: Readonly<Record<string, string>>;
  /** Whether a Rekor SET verified for this layer (always `false` until trusted roots are supported). */
  readonly bundleVerified: boolean;
}

/** What {@linkcode verifyImage} found for an image whose verification succeeded. */
export interface VerifyResult {
  /** The reference verified (a default `latest` tag added when it had neither tag nor digest). */
  readonly reference: Reference;
  /** cosign's `ref.Name()` of it: `index.docker.io/library/x:latest`, `host/repo@sha256:…`. */
  readonly name: string;
  /** The digest the reference names: every accepted payload names it. */
  readonly digest: string;
  /** The media type of the manifest at that digest (an index for a multi-arch tag). */
  readonly mediaType: string;
  /** The layers that passed, in manifest order (at least one). */
  readonly signatures: readonly VerifiedSignature[];
  /** The layers that did not pass, with cosign's reason for each. */
  readonly rejected: readonly { readonly index: number; readonly reason: string }[];
  /** Whether a transparency log entry was verified offline for some accepted layer. */
  readonly bundleVerified: boolean;
}

/**
 * Verifies an image the way `cosign verify --key` does (see the module doc).
 *
 * @throws {AirlockError} `SIGNATURE_MISSING` `no signatures found` when the digest has no `.sig` tag (or an empty
 * one); `NO_MATCHING_SIGNATURES` `no matching signatures:\n<reason>\n  <reason>…` when no layer passes;
 * `UNSUPPORTED_MEDIA_TYPE` when sigstore bundles are attached as OCI referrers (not supported yet);
 * `TOO_LARGE` for a `.sig` manifest with more than {@linkcode MAX_ATTACHMENT_LAYERS} layers; registry errors
 * (`NOT_FOUND`, `DIGEST_MISMATCH`, `UNAUTHORIZED`, …) as the client raises them.
 *
 * @example
 * ```ts
 * const publicKey = parsePublicKeyPem(await Deno.readTextFile("cosign.pub"));
 * const r = await verifyImage(client, "registry.example/app:v1", { publicKey, ignoreTlog: true });
 * console.log(r.digest, r.signatures.length);
 * ```
 */
export async function verifyImage(
  client: RegistryClient,
  reference: Reference | string,
  opts: VerifyOptions,
): Promise<VerifyResult> {
  const ref = withDefaultTag(typeof reference === "string" ? parseReference(reference) : reference);
  // 1. The digest the reference names, read (and hash-checked) from the registry.
  const { digest, mediaType } = await resolveDigest(client, ref, opts.signal);
  // 2. cosign v3 looks at referrer bundles first; airlock cannot verify them yet, so it says so.
  await refuseReferrerBundles(client, ref, digest, opts.signal);
  // 3. Every layer of sha256-<hex>.sig, blobs fetched per layer (a broken layer is one more reason, not a crash).
  const layers = await readSignatureLayers(client, ref, digest, opts.signal);
  // 4. Each layer checked as cosign's verifyInternal does: signature, claims, transparency log.
  const outcomes = await Promise.all(layers.map((l) => checkLayer(l, digest, opts)));
  const signatures = outcomes.filter((o): o is VerifiedSignature => !("reason" in o));
  const rejected = outcomes.filter((o): o is Rejection => "reason" in o);
  if (signatures.length === 0) {
    throw new AirlockError(
      "NO_MATCHING_SIGNATURES",
      `${NO_MATCHING_SIGNATURES}:\n${rejected.map((r) => r.reason).join("\n  ")}`,
    );
  }
  return {
    reference: ref,
    name: cosignReferenceName(ref),
    digest,
    mediaType,
    signatures,
    rejected,
    bundleVerified: signatures.some((s) => s.bundleVerified),
  };
}

/**
 * go-containerregistry's `ref.Name()`, as cosign prints it: `index.docker.io` for Docker Hub; the digest when the
 * reference has one (a tag beside it is dropped), else the tag (`latest` by default).
 *
 * @example
 * ```ts
 * cosignReferenceName(parseReference("alpine")); // "index.docker.io/library/alpine:latest"
 * ```
 */
export function cosignReferenceName(ref: Reference): string {
  const registry = ref.registry === "docker.io" ? "index.docker.io" : ref.registry;
  const base = `${registry}/${ref.repository}`;
  return ref.digest !== undefined ? `${base}@${ref.digest}` : `${base}:${ref.tag ?? "latest"}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Steps
// ---------------------------------------------------------------------------------------------------------------

async function resolveDigest(
  client: RegistryClient,
  ref: Reference,
  signal?: AbortSignal,
): Promise<{ digest: string; mediaType: string }> {
  // For a digest reference the client checks the bytes against it; for a tag the digest is computed from the
  // bytes (never taken from a header).
  const target: Reference = ref.digest !== undefined ? { ...ref, tag: undefined } : ref;
  const m = await client.getManifest(target, { signal });
  return { digest: m.digest, mediaType: m.mediaType };
}

async function refuseReferrerBundles(
  client: RegistryClient,
  ref: Reference,
  digest: string,
  signal?: AbortSignal,
): Promise<void> {
  let referrers: Descriptor[] | undefined;
  try {
    referrers = await client.referrers(ref, digest, { signal });
  } catch (e) {
    // cosign falls back to the .sig tag when the lookup fails; a cancellation still ends the run.
    if (signal?.aborted) throw e;
    return;
  }
  const bundles = (referrers ?? []).filter((d) =>
    typeof d.artifactType === "string" && d.artifactType.startsWith(SIGSTORE_BUNDLE_ARTIFACT_PREFIX)
  );
  if (bundles.length === 0) return;
  throw new AirlockError(
    "UNSUPPORTED_MEDIA_TYPE",
    `${
      formatReference({ ...ref, tag: undefined, digest })
    } has ${bundles.length} sigstore bundle(s) attached ` +
      `as OCI referrers (${goQuote(bundles[0].artifactType!)}); cosign v3 verifies those instead of the ` +
      `.sig tag, and airlock cannot verify referrer bundles yet`,
  );
}

/** A `.sig` layer with its payload, or the reason the payload could not be read. */
interface ReadLayer {
  readonly layer: AttachmentLayer;
  readonly payload?: Uint8Array;
  readonly error?: string;
}

interface Rejection {
  readonly index: number;
  readonly reason: string;
}

/** Registry errors that are about one layer's content (a reason), not about reaching the registry (an abort). */
const LAYER_CONTENT_ERRORS = new Set(["DIGEST_MISMATCH", "TOO_LARGE", "NOT_FOUND"]);

async function readSignatureLayers(
  client: RegistryClient,
  repo: Reference,
  digest: string,
  signal?: AbortSignal,
): Promise<ReadLayer[]> {
  const sigRef = attachmentRef(repo, digest);
  let fetched;
  try {
    fetched = await client.getManifest(sigRef, {
      accept: [MediaType.ociManifest, MediaType.dockerManifest],
      signal,
    });
  } catch (e) {
    if (isManifestUnknown(e)) throw new AirlockError("SIGNATURE_MISSING", NO_SIGNATURES_FOUND, { cause: e });
    throw e;
  }
  // cosign writes OCI manifests, or Docker schema 2 ones with COSIGN_DOCKER_MEDIA_TYPES=1; both have the same shape.
  if (fetched.mediaType !== MediaType.ociManifest && fetched.mediaType !== MediaType.dockerManifest) {
    throw new AirlockError(
      "UNSUPPORTED_MEDIA_TYPE",
      `unexpected MIME type for signature manifest ${sigRef.repository}:${sigRef.tag}: ${
        goQuote(fetched.mediaType)
      }`,
    );
  }
  const manifest = parseAttachmentManifest(fetched.bytes, {
    contentType: MediaType.ociManifest,
    tag: sigRef.tag,
  });
  const layers = listAttachmentLayers(manifest);
  if (layers.length === 0) throw new AirlockError("SIGNATURE_MISSING", NO_SIGNATURES_FOUND);
  if (layers.length > MAX_ATTACHMENT_LAYERS) {
    throw new AirlockError(
      "TOO_LARGE",
      `signature manifest ${sigRef.repository}:${sigRef.tag} has ${layers.length} layers, more than the ` +
        `${MAX_ATTACHMENT_LAYERS} accepted`,
    );
  }
  const results = await runPool(layers, 4, async (layer, itemSignal): Promise<ReadLayer> => {
    if (!layer.isSignature) return { layer };
    if (!Number.isSafeInteger(layer.size) || layer.size < 0 || layer.size > MAX_PAYLOAD_BYTES) {
      return {
        layer,
        error: `payload ${layer.digest} is ${layer.size} bytes, more than the ${MAX_PAYLOAD_BYTES} accepted`,
      };
    }
    try {
      const payload = await client.getBlob(sigRef, layer.digest, {
        maxBytes: MAX_PAYLOAD_BYTES,
        signal: itemSignal,
      });
      if (payload.length !== layer.size) {
        return {
          layer,
          error: `payload ${layer.digest}: ${payload.length} bytes read, the manifest says ${layer.size}`,
        };
      }
      return { layer, payload };
    } catch (e) {
      if (e instanceof AirlockError && LAYER_CONTENT_ERRORS.has(e.code)) return { layer, error: e.message };
      throw e;
    }
  }, { signal });
  return results.map((r) => {
    if (!r.ok) throw r.error;
    return r.value;
  });
}

const SIGNATURE_FAILURE: Readonly<Record<PublicKey["algorithm"], string>> = {
  // sigstore's verifiers' texts (pkg/signature/{ecdsa,rsapkcs1v15,ed25519}.go)
  ecdsa: "invalid signature when validating ASN.1 encoded signature",
  rsa: "crypto/rsa: verification error",
  ed25519: "failed to verify signature",
};

async function checkLayer(
  read: ReadLayer,
  digest: string,
  opts: VerifyOptions,
): Promise<VerifiedSignature | Rejection> {
  const { layer } = read;
  const reject = (reason: string): Rejection => ({ index: layer.index, reason });
  if (!layer.isSignature) {
    return reject(
      `layer ${layer.index} is not a simple-signing signature (media type ${goQuote(layer.mediaType)})`,
    );
  }
  // Signature first (cosign's verifyOCISignature: annotation, base64, payload, key).
  if (layer.signature === undefined) {
    return reject(`signature layer ${layer.digest} is missing ${goQuote(ANNOTATION_SIGNATURE)} annotation`);
  }
  let signature: Uint8Array;
  try {
    signature = goBase64Decode(layer.signature);
  } catch (e) {
    return reject((e as Error).message);
  }
  if (read.payload === undefined) return reject(read.error ?? `payload ${layer.digest} was not read`);
  const payload = read.payload;
  if (!(await verifySignature(opts.publicKey, payload, signature))) {
    return reject(SIGNATURE_FAILURE[opts.publicKey.algorithm]);
  }
  // Claims (SimpleClaimVerifier), on the verified bytes only.
  let claims: CosignClaims;
  try {
    claims = readClaims(payload);
  } catch (e) {
    return reject((e as Error).message);
  }
  if (claims.dockerManifestDigest !== digest) {
    return reject(`invalid or missing digest in claim: ${claims.dockerManifestDigest}`);
  }
  if (opts.annotations !== undefined && !cosignClaimsMatch(claims, digest, opts.annotations)) {
    return reject("missing or incorrect annotation");
  }
  // Transparency log.
  if (!opts.ignoreTlog) {
    if (layer.bundle === undefined) {
      return reject(
        "signature not found in transparency log: the layer has no Rekor bundle and airlock never searches " +
          "Rekor online (use --insecure-ignore-tlog to verify signatures made without a transparency log)",
      );
    }
    return reject(
      "verifying the Rekor bundle (SET) offline needs a trusted root, which airlock does not support yet " +
        "(use --insecure-ignore-tlog to skip the transparency log check)",
    );
  }
  return {
    index: layer.index,
    layerDigest: layer.digest,
    payload,
    claims,
    annotations: layer.annotations,
    bundleVerified: false,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Payload reading (see the module doc for what is refused)
// ---------------------------------------------------------------------------------------------------------------

/** Go's struct field matching folds case with Unicode simple folding; these are the non-ASCII folds to ASCII. */
function goFold(s: string): string {
  return s.replace(/\u017f/g, "s").replace(/\u212a/g, "k").replace(/[A-Z]/g, (c) => c.toLowerCase());
}

const STRUCT_FIELDS: Readonly<Record<string, Readonly<Record<string, readonly string[] | null>>>> = {
  // level → field → sub-level fields (null: a leaf or the free-form `optional`)
  root: { critical: ["critical"], optional: null },
  critical: { identity: ["identity"], image: ["image"], type: null },
  identity: { "docker-reference": null },
  image: { "docker-manifest-digest": null },
};

function refuse(message: string): never {
  throw new AirlockError("SIGNATURE_INVALID", message);
}

/** Rejects duplicate keys anywhere and numbers a float64 cannot hold. */
function checkTree(node: JsonNode, what: string): void {
  if (node.kind === "number") {
    if (!Number.isFinite(Number(node.raw))) {
      refuse(`json: cannot unmarshal number ${node.raw} into Go value of type float64`);
    }
  } else if (node.kind === "array") {
    for (const n of node.items) checkTree(n, what);
  } else if (node.kind === "object") {
    const seen = new Set<string>();
    for (const { key, value } of node.entries) {
      if (seen.has(key)) refuse(`${what}: duplicate key ${goQuote(key)}`);
      seen.add(key);
      checkTree(value, what);
    }
  }
}

/** Rejects struct members that only case-fold to a field name, and two members that fold to the same field. */
function checkStruct(node: JsonNode, level: string, path: string): void {
  if (node.kind !== "object") return; // null or a type error, reported by the decoder
  const fields = STRUCT_FIELDS[level];
  const folded = new Map(Object.keys(fields).map((f) => [goFold(f), f]));
  const seen = new Set<string>();
  for (const { key, value } of node.entries) {
    const field = folded.get(goFold(key));
    if (field === undefined) continue; // unknown members are ignored, as cosign does
    if (key !== field) refuse(`${path}: key ${goQuote(key)} is not spelled ${goQuote(field)}`);
    if (seen.has(field)) refuse(`${path}: duplicate key ${goQuote(field)}`);
    seen.add(field);
    const sub = fields[field];
    if (sub !== null) checkStruct(value, sub[0], `${path}.${field}`);
  }
}

function readClaims(payload: Uint8Array): CosignClaims {
  const tree = parseJsonTree(payload, "SIGNATURE_INVALID");
  checkTree(tree, "payload");
  checkStruct(tree, "root", "payload");
  return parseCosignClaims(payload);
}

// ---------------------------------------------------------------------------------------------------------------
// Output (cosign's PrintVerification)
// ---------------------------------------------------------------------------------------------------------------

/** Go `encoding/json` of a float64 (`strconv.FormatFloat` 'f'/'e' shortest, as `floatEncoder` picks). */
function goFloat(n: number): string {
  if (Object.is(n, -0)) return "-0";
  // JavaScript's Number#toString switches to exponent form at the same bounds (1e-6, 1e21) and writes the same
  // shortest digits and the same exponent form after Go's clean-up (e-07 → e-7).
  return String(n);
}

/** Go `json.Marshal` of a value decoded into `interface{}` (maps with sorted keys, float64 numbers). */
function goMarshalAny(v: unknown): string {
  if (v === null || v === undefined) return "null";
  if (typeof v === "string") return goJsonString(v);
  if (typeof v === "number") return goFloat(v);
  if (typeof v === "boolean") return v ? "true" : "false";
  if (Array.isArray(v)) return "[" + v.map(goMarshalAny).join(",") + "]";
  if (v instanceof RawJson) return v.json;
  const o = v as Record<string, unknown>;
  return "{" +
    Object.keys(o).sort(compareGoMapKeys).map((k) => goJsonString(k) + ":" + goMarshalAny(o[k])).join(",") +
    "}";
}

/** A value already encoded as Go would encode it (a struct in field order). */
class RawJson {
  constructor(readonly json: string) {}
}

/**
 * cosign's `bundle.RekorBundle` read from the annotation with Go's lenient decoder and written back in struct
 * order; `undefined` when Go would fail to decode it (cosign then prints no `Bundle`).
 */
function rekorBundleJson(annotation: string): RawJson | undefined {
  try {
    const tree = parseJsonTree(annotation, "SIGNATURE_INVALID");
    let set: Uint8Array = new Uint8Array();
    let body: unknown = null;
    let integratedTime = 0;
    let logIndex = 0;
    let logID = "";
    const code = "SIGNATURE_INVALID" as const;
    decodeGoStruct(tree, "bundle.RekorBundle", "RekorBundle", {
      SignedEntryTimestamp: (v) => {
        if (v.kind !== "null") set = goBase64Decode(goString(v, undefined, "", code));
      },
      Payload: (v, p) =>
        decodeGoStruct(v, "bundle.RekorPayload", p, {
          body: (b) => (body = jsonNodeToValue(b)),
          integratedTime: (n, q) => (integratedTime = goInt(n, q, integratedTime, code)),
          logIndex: (n, q) => (logIndex = goInt(n, q, logIndex, code)),
          logID: (n, q) => (logID = goString(n, q, logID, code)),
        }, code),
    }, code);
    checkTree(tree, "bundle");
    return new RawJson(
      `{"SignedEntryTimestamp":${goJsonString(base64Encode(set))},"Payload":{"body":${goMarshalAny(body)},` +
        `"integratedTime":${integratedTime},"logIndex":${logIndex},"logID":${goJsonString(logID)}}}`,
    );
  } catch {
    return undefined;
  }
}

/** cosign's `bundle.RFC3161Timestamp` (`{"SignedRFC3161Timestamp": base64}`), or `undefined` if Go would fail. */
function rfc3161Json(annotation: string): RawJson | undefined {
  try {
    const tree = parseJsonTree(annotation, "SIGNATURE_INVALID");
    let token: Uint8Array = new Uint8Array();
    decodeGoStruct(tree, "bundle.RFC3161Timestamp", "RFC3161Timestamp", {
      SignedRFC3161Timestamp: (v) => {
        if (v.kind !== "null") token = goBase64Decode(goString(v, undefined, "", "SIGNATURE_INVALID"));
      },
    }, "SIGNATURE_INVALID");
    return new RawJson(`{"SignedRFC3161Timestamp":${goJsonString(base64Encode(token))}}`);
  } catch {
    return undefined;
  }
}

/**
 * What `cosign verify -o json` (the default) prints on stdout for the accepted layers: `json.Marshal` of a
 * `[]payload.SimpleContainerImage`, each payload re-marshalled by Go (`critical` in struct order
 * `identity, image, type`; `optional` a map with sorted keys, `null` when absent; `<`, `>`, `&` escaped), with
 * `Bundle` / `RFC3161Timestamp` added to `optional` for layers that carry those annotations. No newlines: cosign
 * prints `"\n" + this + "\n"`. `null` for no signatures.
 *
 * @example
 * ```ts
 * writeStdout("\n" + cosignJsonOutput(result.signatures) + "\n");
 * ```
 */
export function cosignJsonOutput(signatures: readonly VerifiedSignature[]): string {
  if (signatures.length === 0) return "null";
  return "[" + signatures.map((s) => {
    const c = s.claims;
    let optional: Record<string, unknown> | null = c.optional === null ? null : { ...c.optional };
    const bundle = s.annotations[ANNOTATION_BUNDLE];
    if (bundle !== undefined) {
      const json = rekorBundleJson(bundle);
      if (json) (optional ??= {}).Bundle = json;
    }
    const ts = s.annotations[ANNOTATION_RFC3161_TIMESTAMP];
    if (ts !== undefined) {
      const json = rfc3161Json(ts);
      if (json) (optional ??= {}).RFC3161Timestamp = json;
    }
    return `{"critical":{"identity":{"docker-reference":${goJsonString(c.dockerReference)}},` +
      `"image":{"docker-manifest-digest":${goJsonString(c.dockerManifestDigest)}},` +
      `"type":${goJsonString(c.type)}},"optional":${goMarshalAny(optional)}}`;
  }).join(",") + "]";
}
