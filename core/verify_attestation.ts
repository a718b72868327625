/**
 * Reading and verifying in-toto attestations attached to images, as cosign does (spec/cosign.md §3):
 *
 * - {@linkcode verifyImageAttestations} is `cosign verify-attestation --type T` (§3.4): sigstore bundles stored as
 *   OCI referrers first (cosign v3), else the layers of the legacy `sha256-<hex>.att` tag; each is verified with
 *   the key or keyless (DSSE signature, certificate chain and identity, transparency log, offline against the
 *   trusted root), its in-toto statement must have a `sha256` subject equal to the image digest, and only then
 *   are the statements filtered by predicate type;
 * - {@linkcode downloadAttestations} is `cosign download attestation [--predicate-type T] [--platform P]` (§3.3):
 *   every attestation, unverified, one JSON document per line.
 *
 * The image digest comes from the reference as cosign's `ResolveDigest` gives it: a digest reference is used as
 * it is (the image manifest is not fetched: the digest is the user's claim, and what is verified is that signed
 * statements name it); a tag is resolved by fetching the manifest and hashing its bytes.
 *
 * @module
 */
import { AirlockError, errorMessage, isAirlockError } from "./errors.ts";
import type { CertificateIdentity, InTotoStatement } from "./keyless/mod.ts";
import { formatPlatform } from "./platform.ts";
import { formatReference, type Reference } from "./reference.ts";
import type { RegistryClient } from "./registry/client.ts";
import { isIndexMediaType, MediaType } from "./registry/types.ts";
import { parseImageIndex } from "./registry/manifest.ts";
import { DSSE_ENVELOPE_MEDIA_TYPE } from "./signature/attachments.ts";
import { goJsonString } from "./encoding/go_json.ts";
import { type ReferrerBundle, referrerBundles } from "./signature/referrer_bundles.ts";
import { type AttachmentLayerRead, readAttachmentLayers } from "./signature/signature_layers.ts";
import { cosignReference, cosignReferenceName } from "./verify.ts";
import { type TrustOptions, verifyReferrerBundle } from "./signature/referrer_verify.ts";

/** cosign's `--type` shorthands and the predicate type URIs they stand for (`options/predicate.go`). */
export const PREDICATE_TYPE_SHORTHANDS: Readonly<Record<string, string>> = Object.freeze({
  custom: "https://cosign.sigstore.dev/attestation/v1",
  slsaprovenance: "https://slsa.dev/provenance/v0.2",
  slsaprovenance02: "https://slsa.dev/provenance/v0.2",
  slsaprovenance1: "https://slsa.dev/provenance/v1",
  spdx: "https://spdx.dev/Document",
  spdxjson: "https://spdx.dev/Document",
  cyclonedx: "https://cyclonedx.org/bom",
  link: "https://in-toto.io/Link/v1",
  vuln: "https://cosign.sigstore.dev/attestation/vuln/v1",
  openvex: "https://openvex.dev/ns",
});

/**
 * The predicate type URI a `--type` value names: a shorthand of {@linkcode PREDICATE_TYPE_SHORTHANDS}, or any
 * value Go's `url.ParseRequestURI` accepts (an absolute URI, or an absolute path), used as it is.
 *
 * @throws {AirlockError} `INVALID_ARGUMENT` `invalid predicate type: T`
 *
 * @example
 * ```ts
 * predicateTypeUri("slsaprovenance1"); // "https://slsa.dev/provenance/v1"
 * predicateTypeUri("https://example.com/scan/v1"); // itself
 * ```
 */
export function predicateTypeUri(type: string): string {
  if (Object.hasOwn(PREDICATE_TYPE_SHORTHANDS, type)) return PREDICATE_TYPE_SHORTHANDS[type];
  const ok = type.startsWith("/")
    ? !/[\s]/.test(type)
    : /^[A-Za-z][A-Za-z0-9+.-]*:[^\s]*$/.test(type) && URL.canParse(type);
  if (!ok || type.includes("#")) {
    throw new AirlockError("INVALID_ARGUMENT", `invalid predicate type: ${type}`);
  }
  return type;
}

/** The digest an image reference names, as cosign's `ResolveDigest` gives it (see the module doc). */
export async function resolveCosignDigest(
  client: RegistryClient,
  ref: Reference,
  signal?: AbortSignal,
): Promise<string> {
  if (ref.digest !== undefined) return ref.digest;
  return (await client.getManifest(ref, { signal })).digest;
}

/** Options of {@linkcode verifyImageAttestations}: exactly one of `publicKey` and `identity`. */
export interface AttestationVerifyOptions extends TrustOptions {
  /** The predicate type URI to keep (see {@linkcode predicateTypeUri}). */
  readonly predicateType: string;
  /** How the type was given (`--type`), for the "none matched" message; default `predicateType`. */
  readonly typeAsGiven?: string;
  /** Cancels the registry requests. */
  readonly signal?: AbortSignal;
}

/** One attestation that verified and has the wanted predicate type. */
export interface VerifiedAttestation {
  /** A legacy `.att` layer, or a sigstore bundle stored as an OCI referrer. */
  readonly source: "att" | "referrer";
  /** The `.att` layer digest, or the referrer manifest digest. */
  readonly digest: string;
  /** The verified in-toto statement. */
  readonly statement: InTotoStatement;
  /**
   * What cosign prints for it: the layer blob (the DSSE envelope JSON) as stored, or for a bundle
   * `json.Marshal` of its protobuf DSSE envelope.
   */
  readonly envelope: Uint8Array;
  /** Keyless: the signer the certificate names. */
  readonly signer?: CertificateIdentity;
  /** Whether a transparency-log entry verified. */
  readonly bundleVerified: boolean;
}

/** What {@linkcode verifyImageAttestations} found. */
export interface AttestationVerifyResult {
  /** cosign's `ref.Name()` of the reference. */
  readonly name: string;
  /** The image digest every accepted statement names. */
  readonly digest: string;
  /** The matching attestations (at least one). */
  readonly attestations: readonly VerifiedAttestation[];
  /** Whether a transparency-log entry verified for some accepted attestation. */
  readonly bundleVerified: boolean;
  /** Whether the attestations were verified keyless. */
  readonly keyless: boolean;
}

/** Most legacy attestation layers `download attestation` reads (cosign `maxAllowedSigsOrAtts`). */
export const MAX_DOWNLOADED_ATTESTATIONS = 100;

/**
 * Every layer of `sha256-<hex>.att` with its blob (per-layer failures as reasons), one at a time in manifest
 * order, blobs read a few at a time and a few MiB ahead at most; nothing when there is no tag.
 */
function readAttestationLayers(
  client: RegistryClient,
  repo: Reference,
  digest: string,
  signal?: AbortSignal,
  maxLayers?: number,
): AsyncGenerator<AttachmentLayerRead> {
  return readAttachmentLayers(client, repo, digest, {
    suffix: "att",
    badBlob: "reason",
    kind: "attestation manifest",
    maxLayers,
    signal,
  });
}

type Outcome = VerifiedAttestation | { readonly reason: string };

/**
 * Verifies the attestations of an image as `cosign verify-attestation` does (see the module doc).
 *
 * @throws {AirlockError} `SIGNATURE_MISSING` `no matching attestations: no attestations found` when there are
 * none; `NO_MATCHING_SIGNATURES` `no matching attestations: <reasons>` when none verifies;
 * `NO_MATCHING_SIGNATURES` `none of the attestations matched the predicate type: T, found: …` when verified
 * ones exist but none has the type; `INVALID_ARGUMENT`; registry errors.
 *
 * @example
 * ```ts
 * const r = await verifyImageAttestations(client, "registry.example/app:v1", {
 *   predicateType: predicateTypeUri("slsaprovenance1"),
 *   identity: { subject: "ci@example.com", issuer: "https://issuer.example" },
 * });
 * ```
 */
export async function verifyImageAttestations(
  client: RegistryClient,
  reference: Reference | string,
  opts: AttestationVerifyOptions,
): Promise<AttestationVerifyResult> {
  const ref = cosignReference(reference);
  if ((opts.publicKey === undefined) === (opts.identity === undefined)) {
    throw new AirlockError(
      "INVALID_ARGUMENT",
      "give --key, or --certificate-identity[-regexp] and --certificate-oidc-issuer[-regexp] (keyless)",
    );
  }
  // 1. The digest (a digest reference as it is, a tag resolved).
  const digest = await resolveCosignDigest(client, ref, opts.signal);
  // 2. Referrer bundles first (cosign v3), else the legacy .att layers.
  // Each bundle or layer is checked as it is read, and only what verified is kept.
  const outcomes: Outcome[] = [];
  for await (const b of referrerBundles(client, ref, digest, { signal: opts.signal }).bundles) {
    outcomes.push(await checkBundle(b, digest, opts));
  }
  if (outcomes.length === 0) {
    for await (const l of readAttestationLayers(client, ref, digest, opts.signal)) {
      outcomes.push(await checkAttLayer(l, digest, opts));
    }
  }
  if (outcomes.length === 0) {
    throw new AirlockError("SIGNATURE_MISSING", "no matching attestations: no attestations found");
  }
  const verified = outcomes.filter((o): o is VerifiedAttestation => !("reason" in o));
  if (verified.length === 0) {
    const reasons = outcomes.map((o) => (o as { reason: string }).reason);
    throw new AirlockError("NO_MATCHING_SIGNATURES", `no matching attestations: ${reasons.join("\n ")}`);
  }
  // 3. Only then the predicate type filter (cosign filters after verifying).
  const matching = verified.filter((a) => a.statement.predicateType === opts.predicateType);
  if (matching.length === 0) {
    throw new AirlockError(
      "NO_MATCHING_SIGNATURES",
      `none of the attestations matched the predicate type: ${
        opts.typeAsGiven ?? opts.predicateType
      }, found: ${verified.map((a) => a.statement.predicateType).join(",")}`,
    );
  }
  return {
    name: cosignReferenceName(ref),
    digest,
    attestations: matching,
    bundleVerified: matching.some((a) => a.bundleVerified),
    keyless: opts.identity !== undefined,
  };
}

async function checkBundle(
  b: ReferrerBundle,
  digest: string,
  opts: AttestationVerifyOptions,
): Promise<Outcome> {
  if (b.bundle === undefined) return { reason: b.error ?? `referrer ${b.manifestDigest} could not be read` };
  try {
    const v = await verifyReferrerBundle(b.bundle, digest, opts);
    return {
      source: "referrer",
      digest: b.manifestDigest,
      statement: v.statement,
      envelope: new TextEncoder().encode(protoEnvelopeJson(v.envelope)),
      signer: v.signer,
      bundleVerified: v.tlogVerified,
    };
  } catch (e) {
    if (!isAirlockError(e)) throw e;
    return { reason: `referrer ${b.manifestDigest}: ${e.message}` };
  }
}

/** `json.Marshal` of the protobuf `DsseEnvelope` (struct order payload, payloadType, signatures{sig, keyid}). */
function protoEnvelopeJson(env: VerifiedBundleEnvelope): string {
  const sigs = env.signatures.map((s) =>
    `{"sig":${goJsonString(s.sig)}${s.keyid ? `,"keyid":${goJsonString(s.keyid)}` : ""}}`
  );
  return `{"payload":${goJsonString(env.payload)},"payloadType":${goJsonString(env.payloadType)},` +
    `"signatures":[${sigs.join(",")}]}`;
}

type VerifiedBundleEnvelope = Awaited<ReturnType<typeof verifyReferrerBundle>>["envelope"];

const NOT_IN_TLOG =
  "attestation not found in transparency log: the layer has no Rekor bundle and airlock never " +
  "searches Rekor online (use --insecure-ignore-tlog to verify attestations made without a transparency log)";

async function checkAttLayer(
  read: AttachmentLayerRead,
  digest: string,
  opts: AttestationVerifyOptions,
): Promise<Outcome> {
  const l = read.layer;
  const where = `layer ${l.index} (${l.digest})`;
  if (l.mediaType !== DSSE_ENVELOPE_MEDIA_TYPE) {
    return { reason: `${where} is not a DSSE attestation (media type ${JSON.stringify(l.mediaType)})` };
  }
  if (read.payload === undefined) return { reason: read.error?.message ?? `${where} was not read` };
  const layer = { mediaType: l.mediaType, payload: read.payload, annotations: l.annotations };
  try {
    const k = await import("./keyless/mod.ts");
    if (!opts.ignoreTlog && !Object.hasOwn(l.annotations, "dev.sigstore.cosign/bundle")) {
      return { reason: `${where}: ${NOT_IN_TLOG}` };
    }
    const r = opts.publicKey !== undefined
      ? await k.verifyWithKey(layer, {
        publicKey: opts.publicKey,
        trustedRoot: opts.trustedRoot,
        ignoreTlog: opts.ignoreTlog,
      })
      : await k.verifyKeyless(layer, {
        identity: opts.identity!,
        trustedRoot: opts.trustedRoot,
        ignoreTlog: opts.ignoreTlog,
        ignoreSct: opts.ignoreSct,
      });
    if (r.content.kind !== "dsse") throw new AirlockError("SIGNATURE_INVALID", "not a DSSE envelope");
    const statement = k.parseInTotoStatement(r.content.payloadType, r.content.payload);
    k.checkInTotoSubject(statement, digest, opts.annotations);
    return {
      source: "att",
      digest: l.digest,
      statement,
      envelope: read.payload,
      signer: r.signer,
      bundleVerified: !opts.ignoreTlog && r.tlogEntries.length > 0,
    };
  } catch (e) {
    if (!isAirlockError(e)) throw e;
    return { reason: `${where}: ${e.message}` };
  }
}

/** Options of {@linkcode downloadAttestations}. */
export interface DownloadAttestationOptions {
  /** Keep only statements of this predicate type URI. */
  readonly predicateType?: string;
  /** `os/arch[/variant]`: read the legacy `.att` of that child of the index (not applied to referrers). */
  readonly platform?: string;
  /** Cancels the registry requests. */
  readonly signal?: AbortSignal;
}

/**
 * Lists the attestations of an image as `cosign download attestation` does (nothing is verified): each referrer
 * bundle as compact JSON, then each legacy `.att` layer as `{"payloadType","payload","signatures":[{"keyid",
 * "sig"}]}`, one document per string (print each on its own line).
 *
 * @throws {AirlockError} `NOT_FOUND` `no attestations with predicate type '<URI>' found` (or `found no
 * attestations`); `INVALID_ARGUMENT` for a bad platform or a platform on a single image; `TOO_LARGE` for more
 * than {@linkcode MAX_DOWNLOADED_ATTESTATIONS} legacy layers; registry errors.
 */
export async function downloadAttestations(
  client: RegistryClient,
  reference: Reference | string,
  opts: DownloadAttestationOptions = {},
): Promise<string[]> {
  const ref = cosignReference(reference);
  const platform = opts.platform === undefined ? undefined : parsePlatformArg(opts.platform);
  const digest = await resolveCosignDigest(client, ref, opts.signal);
  const want = opts.predicateType;
  const lines: string[] = [];
  // 1. Referrer bundles (the reference as given: --platform does not apply).
  for await (const b of referrerBundles(client, ref, digest, { signal: opts.signal }).bundles) {
    if (b.bundle === undefined) continue;
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(new TextDecoder().decode(b.bundle));
    } catch {
      continue;
    }
    if (want !== undefined && statementType(json?.dsseEnvelope) !== want) continue;
    lines.push(JSON.stringify(json));
  }
  // 2. The legacy .att tag, of the platform's child when --platform is given.
  const attDigest = platform ? await platformChild(client, ref, platform, opts.signal) : digest;
  const layers = readAttestationLayers(client, ref, attDigest, opts.signal, MAX_DOWNLOADED_ATTESTATIONS);
  for await (const { layer: l, payload, error } of layers) {
    if (payload === undefined) {
      throw new AirlockError("REGISTRY_ERROR", error?.message ?? `layer ${l.digest} not read`);
    }
    let env: { payloadType?: unknown; payload?: unknown; signatures?: unknown };
    try {
      env = JSON.parse(new TextDecoder().decode(payload));
    } catch (e) {
      throw new AirlockError("ATTACHMENT_INVALID", `attestation layer ${l.digest}: ${errorMessage(e)}`);
    }
    if (want !== undefined && statementType(env) !== want) continue;
    const sigs = Array.isArray(env.signatures) ? env.signatures as { keyid?: unknown; sig?: unknown }[] : [];
    lines.push(
      `{"payloadType":${goJsonString(String(env.payloadType ?? ""))},"payload":${
        goJsonString(String(env.payload ?? ""))
      },"signatures":[${
        sigs.map((s) =>
          `{"keyid":${goJsonString(typeof s?.keyid === "string" ? s.keyid : "")},"sig":${
            goJsonString(typeof s?.sig === "string" ? s.sig : "")
          }}`
        ).join(",")
      }]}`,
    );
  }
  if (lines.length === 0) {
    throw new AirlockError(
      "NOT_FOUND",
      want !== undefined ? `no attestations with predicate type '${want}' found` : "found no attestations",
    );
  }
  return lines;
}

/** The predicate type of the statement in a DSSE envelope JSON (`undefined` when unreadable). */
function statementType(env: unknown): string | undefined {
  const payload = (env as { payload?: unknown } | undefined)?.payload;
  if (typeof payload !== "string") return undefined;
  try {
    const bin = atob(payload);
    const st = JSON.parse(new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0))));
    return typeof st?.predicateType === "string" ? st.predicateType : undefined;
  } catch {
    return undefined;
  }
}

/** `os/arch[/variant]`. */
function parsePlatformArg(p: string): { os: string; architecture: string; variant?: string } {
  const parts = p.split("/");
  if (parts.length < 2 || parts.length > 3 || parts.some((x) => x === "")) {
    throw new AirlockError(
      "INVALID_ARGUMENT",
      `invalid platform ${JSON.stringify(p)}: expected os/arch[/variant]`,
    );
  }
  return { os: parts[0], architecture: parts[1], variant: parts[2] };
}

/** The digest of the index child matching the platform. */
async function platformChild(
  client: RegistryClient,
  ref: Reference,
  p: { os: string; architecture: string; variant?: string },
  signal?: AbortSignal,
): Promise<string> {
  const m = await client.getManifest(ref.digest !== undefined ? { ...ref, tag: undefined } : ref, {
    accept: [
      MediaType.ociIndex,
      MediaType.dockerManifestList,
      MediaType.ociManifest,
      MediaType.dockerManifest,
    ],
    signal,
  });
  if (!isIndexMediaType(m.mediaType)) {
    throw new AirlockError("INVALID_ARGUMENT", "specified reference is not a multiarch image");
  }
  const index = parseImageIndex(m.bytes, `index ${formatReference(ref)}`, m.mediaType);
  const child = index.manifests.find((d) =>
    d.platform?.os === p.os && d.platform?.architecture === p.architecture &&
    (p.variant === undefined || d.platform?.variant === p.variant)
  );
  if (!child) {
    throw new AirlockError("NOT_FOUND", `no image in the index matches platform ${formatPlatform(p)}`);
  }
  return child.digest;
}
