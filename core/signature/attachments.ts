/**
 * The sigstore attachment layout (spec/hangar.md §5.5, spec/cosign.md §1.1–1.3, §3.1): the `sha256-<hex>.sig` /
 * `.att` tags, the cosign annotations, and the append algorithm containers/image uses, reproduced byte for byte
 * (the manifest and config codec is `attachment_manifest.ts`):
 *
 * - new signature layers are appended after every existing layer (foreign ones included) unless an identical layer
 *   (same media type, size, digest and annotations) is already there;
 * - config and manifest are re-serialised in Go struct order, compact.
 *
 * Everything here is pure: the caller fetches and uploads.
 *
 * @module
 */
import { goBase64Decode } from "../encoding/base64.ts";
import { AirlockError } from "../errors.ts";
import { type Descriptor, MediaType } from "../registry/types.ts";
import { digestError, sha256Digest } from "../encoding/digest.ts";
import { goQuote } from "../encoding/go_quote.ts";
import { parseSimpleSigningPayload, payloadAnnotations, type SimpleSigningPayload } from "./payload.ts";
import {
  type AttachmentConfig,
  type AttachmentManifest,
  type AttachmentState,
  freshAttachmentState,
  serializeAttachmentConfig,
  serializeAttachmentManifest,
} from "./attachment_manifest.ts";

// ---------------------------------------------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------------------------------------------

/** Layer annotation: base64 (std, padded) of the signature over the payload bytes. */
export const ANNOTATION_SIGNATURE = "dev.cosignproject.cosign/signature";
/** Layer annotation: PEM leaf certificate (keyless or `--cert`). */
export const ANNOTATION_CERTIFICATE = "dev.sigstore.cosign/certificate";
/** Layer annotation: PEM intermediates/root, concatenated (may be `""`). */
export const ANNOTATION_CHAIN = "dev.sigstore.cosign/chain";
/** Layer annotation: the Rekor bundle (SET) JSON. */
export const ANNOTATION_BUNDLE = "dev.sigstore.cosign/bundle";
/** Layer annotation: `{"SignedRFC3161Timestamp":"<base64 DER>"}`. */
export const ANNOTATION_RFC3161_TIMESTAMP = "dev.sigstore.cosign/rfc3161timestamp";
/** Layer annotation on attestation layers: the in-toto predicate type. */
export const ANNOTATION_PREDICATE_TYPE = "predicateType";

/** Tag suffix of signature attachments. */
export const SIGNATURE_TAG_SUFFIX = "sig";
/** Tag suffix of attestation attachments. */
export const ATTESTATION_TAG_SUFFIX = "att";

/** Media type of a signature layer (the simple-signing payload). */
export const SIMPLE_SIGNING_MEDIA_TYPE: string = MediaType.cosignSimpleSigning;
/** Media type of an attestation layer (a DSSE envelope). */
export const DSSE_ENVELOPE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json";
/** DSSE payload type of in-toto statements. */
export const IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json";

// ---------------------------------------------------------------------------------------------------------------
// DSSE (attestation layers, and what keyless verification checks)
// ---------------------------------------------------------------------------------------------------------------

/**
 * The DSSE pre-authentication encoding: `"DSSEv1" SP len(type) SP type SP len(payload) SP payload`.
 */
export function dssePae(payloadType: string, payload: Uint8Array): Uint8Array {
  const enc = new TextEncoder();
  const type = enc.encode(payloadType);
  const head = enc.encode(`DSSEv1 ${type.length} ${payloadType} ${payload.length} `);
  const out = new Uint8Array(head.length + payload.length);
  out.set(head);
  out.set(payload, head.length);
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Tags
// ---------------------------------------------------------------------------------------------------------------

/**
 * The attachment tag of a manifest digest: `sha256:<hex>` becomes `sha256-<hex>.<suffix>` (`.sig` by default),
 * in the same repository.
 *
 * @throws {AirlockError} `INVALID_ARGUMENT` when `digest` is not a valid digest
 */
export function signatureTag(digest: string, suffix: string = SIGNATURE_TAG_SUFFIX): string {
  const err = digestError(digest);
  if (err !== undefined) {
    throw new AirlockError("INVALID_ARGUMENT", `invalid digest ${goQuote(digest)}: ${err}`);
  }
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(suffix)) {
    throw new AirlockError("INVALID_ARGUMENT", `invalid attachment tag suffix ${goQuote(suffix)}`);
  }
  return digest.replace(":", "-") + "." + suffix;
}

/**
 * The attestation tag of a manifest digest: `sha256-<hex>.att`.
 */
export function attestationTag(digest: string): string {
  return signatureTag(digest, ATTESTATION_TAG_SUFFIX);
}

/**
 * Reads an attachment tag back: `sha256-<hex>.sig` gives `{digest: "sha256:<hex>", suffix: "sig"}`; anything that
 * is not such a tag gives `undefined`.
 */
export function parseAttachmentTag(tag: string): { digest: string; suffix: string } | undefined {
  const m = /^([a-z0-9]+)-([a-f0-9]+)\.([A-Za-z0-9_.-]+)$/.exec(tag);
  if (!m) return undefined;
  const digest = `${m[1]}:${m[2]}`;
  return digestError(digest) === undefined ? { digest, suffix: m[3] } : undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Appending
// ---------------------------------------------------------------------------------------------------------------

/** One signature (or other attachment) to add as a layer. */
export interface NewAttachmentLayer {
  /** The blob: the payload bytes for a signature. */
  readonly payload: Uint8Array;
  /** The layer annotations (`dev.cosignproject.cosign/signature`, …). */
  readonly annotations?: Readonly<Record<string, string>>;
  /** Default {@linkcode SIMPLE_SIGNING_MEDIA_TYPE}. */
  readonly mediaType?: string;
}

/** What {@linkcode appendSignatureLayers} produced: the new state, its bytes, and the blobs to upload first. */
export interface AppendResult {
  /** The new manifest. */
  readonly manifest: AttachmentManifest;
  /** The new config. */
  readonly config: AttachmentConfig;
  /** The manifest to PUT at the `.sig` tag. */
  readonly manifestBytes: Uint8Array;
  /** `sha256:<hex>` of `manifestBytes`. */
  readonly manifestDigest: string;
  /** The config blob to upload (always, even when nothing was added, as containers/image does). */
  readonly configBytes: Uint8Array;
  /** `sha256:<hex>` of `configBytes`. */
  readonly configDigest: string;
  /** Payload blobs of the added layers, each once, in order. */
  readonly layersToUpload: readonly { readonly digest: string; readonly bytes: Uint8Array }[];
  /** How many layers were added (0 when every one was already there). */
  readonly added: number;
}

function sameAnnotations(
  a: Readonly<Record<string, string>> | undefined,
  b: Readonly<Record<string, string>> | undefined,
): boolean {
  const ka = Object.keys(a ?? {});
  const kb = Object.keys(b ?? {});
  if (ka.length !== kb.length) return false;
  return ka.every((k) => b !== undefined && Object.hasOwn(b, k) && b[k] === a![k]);
}

/**
 * containers/image's `layerMatchesSigstoreSignature`: the layer has the same media type, `size == len(payload)`,
 * `digest == sha256(payload)` and an identical annotations map (absent and empty maps are equal).
 */
export function layerMatchesSignature(
  layer: Descriptor,
  mediaType: string,
  payload: Uint8Array,
  annotations: Readonly<Record<string, string>> | undefined,
  payloadDigest: string = sha256Digest(payload),
): boolean {
  return layer.mediaType === mediaType && layer.size === payload.length && layer.digest === payloadDigest &&
    sameAnnotations(layer.annotations, annotations);
}

function cloneDescriptor(d: Descriptor): Descriptor {
  return structuredClone(d);
}

/**
 * Appends signature layers to a `.sig` tag's content exactly as containers/image does
 * (`putSignaturesToSigstoreAttachments`, spec/hangar.md §5.5 steps 3–6):
 *
 * 1. start from `existing` (parsed manifest + config) or from {@linkcode freshAttachmentState};
 * 2. for each new layer, skip it when some current layer (existing or just added) matches it
 *    ({@linkcode layerMatchesSignature}); otherwise append the layer `{mediaType, digest, size, annotations}` and
 *    its digest to `rootfs.diff_ids`;
 * 3. serialise the config, point `manifest.config` at it (`{mediaType: OCI config, digest, size}`, replacing
 *    whatever descriptor was there), serialise the manifest.
 *
 * Existing layers, foreign ones included, are kept in order. Inputs are not modified.
 *
 * @example
 * ```ts
 * const r = appendSignatureLayers(undefined, [{ payload, annotations: { [ANNOTATION_SIGNATURE]: b64 } }]);
 * // r.configBytes.length === 153; upload r.layersToUpload, then the config, then PUT r.manifestBytes
 * ```
 */
export function appendSignatureLayers(
  existing: AttachmentState | undefined,
  newLayers: readonly NewAttachmentLayer[],
): AppendResult {
  const base = existing ?? freshAttachmentState();
  const manifest: AttachmentManifest = {
    ...base.manifest,
    config: cloneDescriptor(base.manifest.config),
    layers: base.manifest.layers === null ? null : base.manifest.layers.map(cloneDescriptor),
    ...(base.manifest.subject ? { subject: cloneDescriptor(base.manifest.subject) } : {}),
    ...(base.manifest.annotations ? { annotations: { ...base.manifest.annotations } } : {}),
  };
  const config: AttachmentConfig = structuredClone(base.config);
  const uploads = new Map<string, Uint8Array>();
  let added = 0;
  for (const layer of newLayers) {
    const mediaType = layer.mediaType ?? SIMPLE_SIGNING_MEDIA_TYPE;
    const digest = sha256Digest(layer.payload);
    if (
      (manifest.layers ?? []).some((l) =>
        layerMatchesSignature(l, mediaType, layer.payload, layer.annotations, digest)
      )
    ) {
      continue;
    }
    const desc: Descriptor = { mediaType, digest, size: layer.payload.length };
    if (layer.annotations && Object.keys(layer.annotations).length > 0) {
      desc.annotations = { ...layer.annotations };
    }
    manifest.layers = [...(manifest.layers ?? []), desc];
    config.rootfs.diff_ids = [...(config.rootfs.diff_ids ?? []), digest];
    if (!uploads.has(digest)) uploads.set(digest, layer.payload);
    added++;
  }
  const configBytes = serializeAttachmentConfig(config);
  const configDigest = sha256Digest(configBytes);
  manifest.config = { mediaType: MediaType.ociConfig, digest: configDigest, size: configBytes.length };
  const manifestBytes = serializeAttachmentManifest(manifest);
  return {
    manifest,
    config,
    manifestBytes,
    manifestDigest: sha256Digest(manifestBytes),
    configBytes,
    configDigest,
    layersToUpload: [...uploads].map(([digest, bytes]) => ({ digest, bytes })),
    added,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Reading signatures out of a manifest
// ---------------------------------------------------------------------------------------------------------------

/** One layer of an attachment manifest, with the cosign annotations picked out. */
export interface AttachmentLayer {
  /** Position in the manifest's `layers`. */
  readonly index: number;
  /**
   * {@linkcode SIMPLE_SIGNING_MEDIA_TYPE} for signatures, {@linkcode DSSE_ENVELOPE_MEDIA_TYPE} for attestations,
   * anything else for other attachments.
   */
  readonly mediaType: string;
  /** `algorithm:hex` digest of the layer blob, as the descriptor states it. */
  readonly digest: string;
  /** Size of the layer blob in bytes, as the descriptor states it. */
  readonly size: number;
  /** Every layer annotation (a copy; `{}` when there are none). */
  readonly annotations: Readonly<Record<string, string>>;
  /**
   * `true` when the media type is {@linkcode SIMPLE_SIGNING_MEDIA_TYPE}: containers/image evaluates only these;
   * every other layer counts as a "sigstore non-signature attachment" (spec/hangar.md §6.4b).
   */
  readonly isSignature: boolean;
  /** {@linkcode ANNOTATION_SIGNATURE}, base64 (may be `""` on attestation layers). */
  readonly signature?: string;
  /** {@linkcode ANNOTATION_CERTIFICATE} (PEM). */
  readonly certificate?: string;
  /** {@linkcode ANNOTATION_CHAIN} (PEM). */
  readonly chain?: string;
  /** {@linkcode ANNOTATION_BUNDLE} (JSON). */
  readonly bundle?: string;
  /** {@linkcode ANNOTATION_RFC3161_TIMESTAMP} (JSON). */
  readonly rfc3161Timestamp?: string;
  /** {@linkcode ANNOTATION_PREDICATE_TYPE}. */
  readonly predicateType?: string;
}

/**
 * Lists the layers of an attachment manifest in order, with their cosign annotations and the containers/image
 * classification (`isSignature`).
 */
export function listAttachmentLayers(manifest: AttachmentManifest): AttachmentLayer[] {
  return (manifest.layers ?? []).map((d, index) => {
    const a = d.annotations ?? {};
    const pick = (k: string) => (Object.hasOwn(a, k) ? a[k] : undefined);
    const layer: AttachmentLayer = {
      index,
      mediaType: d.mediaType,
      digest: d.digest,
      size: d.size,
      annotations: { ...a },
      isSignature: d.mediaType === SIMPLE_SIGNING_MEDIA_TYPE,
      signature: pick(ANNOTATION_SIGNATURE),
      certificate: pick(ANNOTATION_CERTIFICATE),
      chain: pick(ANNOTATION_CHAIN),
      bundle: pick(ANNOTATION_BUNDLE),
      rfc3161Timestamp: pick(ANNOTATION_RFC3161_TIMESTAMP),
      predicateType: pick(ANNOTATION_PREDICATE_TYPE),
    };
    for (const k of Object.keys(layer) as (keyof AttachmentLayer)[]) {
      if (layer[k] === undefined) delete (layer as unknown as Record<string, unknown>)[k];
    }
    return layer;
  });
}

/**
 * Splits layers as containers/image's policy evaluation does: signature layers to evaluate, in order, and the
 * count of other layers (reported as `… sigstore non-signature attachments` when nothing was accepted).
 */
export function classifyAttachmentLayers(
  layers: readonly AttachmentLayer[],
): { signatures: AttachmentLayer[]; nonSignatureAttachments: number } {
  const signatures = layers.filter((l) => l.isSignature);
  return { signatures, nonSignatureAttachments: layers.length - signatures.length };
}

/**
 * Decodes a layer's signature annotation as containers/image does.
 *
 * @throws {AirlockError} `SIGNATURE_INVALID`: `missing dev.cosignproject.cosign/signature annotation` or
 * `base64 decoding: illegal base64 data at input byte <n>`
 */
export function decodeSignatureAnnotation(
  annotations: Readonly<Record<string, string>> | undefined,
): Uint8Array {
  if (annotations === undefined || !Object.hasOwn(annotations, ANNOTATION_SIGNATURE)) {
    throw new AirlockError("SIGNATURE_INVALID", `missing ${ANNOTATION_SIGNATURE} annotation`);
  }
  try {
    return goBase64Decode(annotations[ANNOTATION_SIGNATURE]);
  } catch (e) {
    throw new AirlockError("SIGNATURE_INVALID", `base64 decoding: ${(e as Error).message}`, { cause: e });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Idempotency
// ---------------------------------------------------------------------------------------------------------------

/** A layer with its blob fetched (and digest-checked) by the caller. */
export interface DecodedAttachmentLayer {
  /** The layer media type. */
  readonly mediaType: string;
  /** The layer digest; when given, the payload must hash to it. */
  readonly digest?: string;
  /** The layer annotations (the signature among them). */
  readonly annotations?: Readonly<Record<string, string>>;
  /** The blob. */
  readonly payload: Uint8Array;
}

/** What {@linkcode findEquivalentSignature} looks for. */
export interface EquivalentSignatureQuery {
  /** The digest the new signature would name. */
  readonly manifestDigest: string;
  /** The identity the new signature would carry. */
  readonly dockerReference: string;
  /** The user annotations the new signature would carry (besides `creator`/`timestamp`); default none. */
  readonly annotations?: Readonly<Record<string, string>>;
  /**
   * Tells whether `signature` over `payload` verifies with the signing key (for keyless: the identity in the
   * layer's certificate). A throw counts as "no".
   */
  verify(
    payload: Uint8Array,
    signature: Uint8Array,
    layer: DecodedAttachmentLayer,
  ): boolean | Promise<boolean>;
}

/** The equivalent signature found. */
export interface EquivalentSignature {
  /** Index in the `layers` given. */
  readonly index: number;
  /** Its payload, parsed. */
  readonly payload: SimpleSigningPayload;
}

/**
 * airlock's idempotency rule: is there already a signature by the same key for the same digest and identity?
 * A layer is equivalent when it is a simple-signing layer, its payload hashes to its digest (when given), its
 * signature annotation decodes and verifies (`query.verify`), its payload passes the strict parse, names
 * `manifestDigest` and `dockerReference` exactly, and its user annotations (the `optional` members other than
 * `creator` and `timestamp`) equal `query.annotations` exactly (string values; none means none). Creator and
 * timestamp do not matter. The signature is checked before the payload is parsed, as in verification.
 *
 * @returns the first equivalent layer, or `undefined` (then a new layer is due)
 *
 * @example
 * ```ts
 * const found = await findEquivalentSignature(decoded, {
 *   manifestDigest, dockerReference, verify: (p, s) => verifyWithKey(publicKey, p, s),
 * });
 * if (found && !force) return "already signed";
 * ```
 */
export async function findEquivalentSignature(
  layers: readonly DecodedAttachmentLayer[],
  query: EquivalentSignatureQuery,
): Promise<EquivalentSignature | undefined> {
  const wanted = query.annotations ?? {};
  for (let index = 0; index < layers.length; index++) {
    const layer = layers[index];
    if (layer.mediaType !== SIMPLE_SIGNING_MEDIA_TYPE) continue;
    if (layer.digest !== undefined && layer.digest !== sha256Digest(layer.payload)) continue;
    let signature: Uint8Array;
    try {
      signature = decodeSignatureAnnotation(layer.annotations);
    } catch {
      continue;
    }
    let ok = false;
    try {
      ok = await query.verify(layer.payload, signature, layer);
    } catch {
      ok = false;
    }
    if (!ok) continue;
    let payload: SimpleSigningPayload;
    try {
      payload = parseSimpleSigningPayload(layer.payload);
    } catch {
      continue;
    }
    if (payload.dockerManifestDigest !== query.manifestDigest) continue;
    if (payload.dockerReference !== query.dockerReference) continue;
    const have = payloadAnnotations(payload);
    const keys = Object.keys(have);
    if (keys.length !== Object.keys(wanted).length) continue;
    if (!keys.every((k) => Object.hasOwn(wanted, k) && have[k] === wanted[k])) continue;
    return { index, payload };
  }
  return undefined;
}
