/**
 * Sigstore bundles from what registries hold:
 * - a legacy cosign layer (`.sig` simple-signing payload, or `.att` DSSE envelope, with the cosign annotations)
 *   becomes a bundle **v0.1** exactly as spec/cosign.md §5.2 maps it: v0.1 requires an inclusion promise (the
 *   SET cosign stores) and no inclusion proof (which cosign annotations never have);
 * - a cosign v3 OCI referrer layer holds a bundle **v0.3** (spec/cosign.md §2.8), parsed as it is.
 *
 * The `dev.sigstore.cosign/chain` annotation is not used: intermediates come from the trusted root, as in cosign
 * with a trusted root.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { Bundle, SerializedBundle } from "@sigstore/bundle";
import { AirlockError, errorMessage } from "../errors.ts";
import {
  ANNOTATION_BUNDLE,
  ANNOTATION_CERTIFICATE,
  ANNOTATION_RFC3161_TIMESTAMP,
  ANNOTATION_SIGNATURE,
  DSSE_ENVELOPE_MEDIA_TYPE,
} from "../signature/attachments.ts";
import { base64Decode } from "../encoding/base64.ts";
import { decodePem } from "../encoding/pem.ts";
import { parseRekorBundleAnnotation, sha256Hex } from "./rekor.ts";
import { loadSigstore } from "./sigstore.ts";

/** The bundle media type legacy layers are converted to. */
export const BUNDLE_V01_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle+json;version=0.1";

/** A cosign attachment layer with its blob (`FetchedLayer` from `signature_layers.ts` is one). */
export interface CosignLayer {
  /** `application/vnd.dev.cosign.simplesigning.v1+json`, or `application/vnd.dsse.envelope.v1+json` (attestation). */
  readonly mediaType: string;
  /** The blob: the signed payload, or the DSSE envelope JSON. */
  readonly payload: Uint8Array;
  /** The layer annotations (`dev.cosignproject.cosign/signature`, `dev.sigstore.cosign/certificate`, …). */
  readonly annotations: Readonly<Record<string, string>>;
}

/** A DSSE envelope as JSON (`payload` and `sig` base64). */
export interface DsseEnvelopeJson {
  /** Media type of the payload, e.g. `application/vnd.in-toto+json`; part of what is signed (PAE). */
  readonly payloadType: string;
  /** The payload bytes (for attestations an in-toto statement), base64. */
  readonly payload: string;
  /** The signatures over the PAE of type and payload: `sig` base64, `keyid` an optional key hint. */
  readonly signatures: readonly { readonly keyid?: string; readonly sig: string }[];
}

/** Options of {@linkcode cosignLayerToBundleJson}. */
export interface LayerToBundleOptions {
  /**
   * Key mode: use `publicKey: {hint}` verification material (the key comes from the caller) instead of the
   * certificate annotation.
   */
  readonly publicKeyHint?: string;
  /** Leave the Rekor entry out (`--insecure-ignore-tlog`). Default: included when the annotation exists. */
  readonly omitTlog?: boolean;
  /** Leave the RFC 3161 timestamp out. Default: included when the annotation exists. */
  readonly omitTimestamp?: boolean;
}

function bundleError(detail: string, cause?: unknown): AirlockError {
  return new AirlockError("BUNDLE_INVALID", detail, { cause });
}

/**
 * Tells whether a layer is a legacy attestation (DSSE envelope) layer.
 */
export function isDsseLayer(layer: Pick<CosignLayer, "mediaType">): boolean {
  return layer.mediaType === DSSE_ENVELOPE_MEDIA_TYPE;
}

/**
 * Parses a DSSE envelope (cosign v2 and v3 both write JSON; parsed as JSON, never by byte layout).
 *
 * @throws {AirlockError} `BUNDLE_INVALID`
 *
 * @example
 * ```ts
 * const env = parseDsseEnvelope(layer.payload);
 * env.payloadType; // "application/vnd.in-toto+json"
 * ```
 */
export function parseDsseEnvelope(bytes: Uint8Array | string): DsseEnvelopeJson {
  let j: unknown;
  try {
    j = JSON.parse(typeof bytes === "string" ? bytes : new TextDecoder().decode(bytes));
  } catch (e) {
    throw bundleError(`DSSE envelope is not JSON: ${errorMessage(e)}`, e);
  }
  const o = j as Record<string, unknown> | null;
  if (!o || typeof o !== "object" || Array.isArray(o)) {
    throw bundleError("DSSE envelope is not a JSON object");
  }
  if (typeof o.payloadType !== "string") throw bundleError("DSSE envelope has no payloadType");
  if (typeof o.payload !== "string" || !base64Decode(o.payload)) {
    throw bundleError("DSSE payload is not base64");
  }
  if (!Array.isArray(o.signatures)) throw bundleError("DSSE envelope has no signatures");
  const signatures = o.signatures.map((s: unknown) => {
    const x = s as Record<string, unknown> | null;
    if (!x || typeof x.sig !== "string" || !base64Decode(x.sig)) {
      throw bundleError("DSSE signature is not base64");
    }
    return { keyid: typeof x.keyid === "string" ? x.keyid : "", sig: x.sig };
  });
  return { payloadType: o.payloadType, payload: o.payload, signatures };
}

/**
 * The first certificate of a PEM text, as DER.
 *
 * @throws {AirlockError} `BUNDLE_INVALID` when there is no certificate
 */
export function firstCertificateDer(pem: string): Uint8Array {
  const m = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem);
  const block = m ? decodePem(m[0]) : undefined;
  if (!block) throw bundleError(`${ANNOTATION_CERTIFICATE} annotation holds no PEM certificate`);
  return block.bytes;
}

function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64");
}

/**
 * Converts a legacy cosign layer into the JSON of a sigstore bundle v0.1 (spec/cosign.md §5.2): message
 * signature (digest computed here from the payload, never taken from the log) or DSSE envelope; the certificate
 * annotation (or a key hint); the Rekor SET as an inclusion promise with the body unchanged; the RFC 3161 token.
 *
 * @throws {AirlockError} `BUNDLE_INVALID` / `SIGNATURE_MISSING` when the annotations are unusable
 *
 * @example
 * ```ts
 * const json = cosignLayerToBundleJson(layer);
 * json.mediaType; // "application/vnd.dev.sigstore.bundle+json;version=0.1"
 * ```
 */
export function cosignLayerToBundleJson(
  layer: CosignLayer,
  options: LayerToBundleOptions = {},
): SerializedBundle {
  const a = layer.annotations;
  const tlogEntries: SerializedBundle["verificationMaterial"]["tlogEntries"] = [];
  if (!options.omitTlog && Object.hasOwn(a, ANNOTATION_BUNDLE)) {
    const rk = parseRekorBundleAnnotation(a[ANNOTATION_BUNDLE]);
    let body: { kind?: unknown; apiVersion?: unknown };
    try {
      body = JSON.parse(new TextDecoder().decode(base64Decode(rk.body)));
    } catch (e) {
      throw bundleError(`${ANNOTATION_BUNDLE} annotation: the entry body is not JSON`, e);
    }
    tlogEntries.push({
      logIndex: String(rk.logIndex),
      logId: { keyId: b64(Uint8Array.from(rk.logId.match(/../g)!.map((h) => parseInt(h, 16)))) },
      kindVersion: { kind: String(body.kind ?? ""), version: String(body.apiVersion ?? "") },
      integratedTime: String(rk.integratedTime),
      inclusionPromise: { signedEntryTimestamp: rk.signedEntryTimestamp },
      inclusionProof: undefined,
      canonicalizedBody: rk.body,
    });
  }
  const rfc3161Timestamps: { signedTimestamp: string }[] = [];
  if (!options.omitTimestamp && Object.hasOwn(a, ANNOTATION_RFC3161_TIMESTAMP)) {
    let token: unknown;
    try {
      token = JSON.parse(a[ANNOTATION_RFC3161_TIMESTAMP])?.SignedRFC3161Timestamp;
    } catch (e) {
      throw bundleError(`${ANNOTATION_RFC3161_TIMESTAMP} annotation is not JSON`, e);
    }
    if (typeof token !== "string" || !base64Decode(token)) {
      throw bundleError(`${ANNOTATION_RFC3161_TIMESTAMP} annotation has no base64 SignedRFC3161Timestamp`);
    }
    rfc3161Timestamps.push({ signedTimestamp: token });
  }

  let material: { publicKey: { hint: string } } | {
    x509CertificateChain: { certificates: { rawBytes: string }[] };
  };
  if (options.publicKeyHint !== undefined) material = { publicKey: { hint: options.publicKeyHint } };
  else {
    if (!Object.hasOwn(a, ANNOTATION_CERTIFICATE) || a[ANNOTATION_CERTIFICATE] === "") {
      throw new AirlockError(
        "SIGNATURE_MISSING",
        `layer has no ${ANNOTATION_CERTIFICATE} annotation (not keyless)`,
      );
    }
    material = {
      x509CertificateChain: {
        certificates: [{ rawBytes: b64(firstCertificateDer(a[ANNOTATION_CERTIFICATE])) }],
      },
    };
  }
  const verificationMaterial = {
    ...material,
    tlogEntries,
    timestampVerificationData: { rfc3161Timestamps },
  } as SerializedBundle["verificationMaterial"];

  if (isDsseLayer(layer)) {
    const env = parseDsseEnvelope(layer.payload);
    return {
      mediaType: BUNDLE_V01_MEDIA_TYPE,
      verificationMaterial,
      dsseEnvelope: {
        payload: env.payload,
        payloadType: env.payloadType,
        signatures: env.signatures.map((s) => ({ sig: s.sig, keyid: s.keyid ?? "" })),
      },
    } as SerializedBundle;
  }
  if (!Object.hasOwn(a, ANNOTATION_SIGNATURE)) {
    throw new AirlockError("SIGNATURE_MISSING", `missing ${ANNOTATION_SIGNATURE} annotation`);
  }
  if (!base64Decode(a[ANNOTATION_SIGNATURE]) || a[ANNOTATION_SIGNATURE] === "") {
    throw new AirlockError("SIGNATURE_INVALID", `${ANNOTATION_SIGNATURE} annotation is not base64`);
  }
  return {
    mediaType: BUNDLE_V01_MEDIA_TYPE,
    verificationMaterial,
    messageSignature: {
      messageDigest: {
        algorithm: "SHA2_256",
        digest: Buffer.from(sha256Hex(layer.payload), "hex").toString("base64"),
      },
      signature: a[ANNOTATION_SIGNATURE],
    },
  } as SerializedBundle;
}

/**
 * {@linkcode cosignLayerToBundleJson}, then parsed and validated by `@sigstore/bundle` (v0.1 rules).
 *
 * @throws {AirlockError} `BUNDLE_INVALID`
 */
export async function cosignLayerToBundle(
  layer: CosignLayer,
  options: LayerToBundleOptions = {},
): Promise<Bundle> {
  return await parseSigstoreBundle(cosignLayerToBundleJson(layer, options), "converted cosign layer");
}

/**
 * Parses and validates a sigstore bundle (JSON text, bytes, or parsed JSON), any version `@sigstore/bundle` knows
 * (v0.1, v0.2, v0.3; v0.3 is what cosign v3 stores as an OCI referrer). The validation follows the bundle's media
 * type: v0.2+ require an inclusion proof, v0.3 forbids a certificate chain.
 *
 * @throws {AirlockError} `BUNDLE_INVALID`
 */
export async function parseSigstoreBundle(
  input: Uint8Array | string | Readonly<Record<string, unknown>>,
  source = "bundle",
): Promise<Bundle> {
  let json: unknown = input;
  if (typeof input === "string" || input instanceof Uint8Array) {
    try {
      json = JSON.parse(typeof input === "string" ? input : new TextDecoder().decode(input));
    } catch (e) {
      throw bundleError(`${source}: not JSON: ${errorMessage(e)}`, e);
    }
  }
  const { bundle } = await loadSigstore();
  try {
    return bundle.bundleFromJSON(json);
  } catch (e) {
    const fields = (e as { fields?: string[] }).fields;
    throw bundleError(`${source}: ${errorMessage(e)}${fields?.length ? ` (${fields.join(", ")})` : ""}`, e);
  }
}
