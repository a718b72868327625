/**
 * `verify`: cosign's image signature check (`cosign verify --key K IMAGE`, spec/cosign.md §1.5, and keyless
 * `cosign verify --certificate-identity … --certificate-oidc-issuer …`, §2), offline. The pipeline, as
 * {@linkcode verifyImage} runs it:
 *
 * 1. resolve the reference to the digest it names (a tag gives the digest of the top manifest, an index for a
 *    multi-arch tag; a digest reference is checked to exist and to match);
 * 2. look for sigstore bundles stored as OCI referrers first, as cosign v3 does (referrers API, else the
 *    `sha256-<hex>` referrers tag); when there are any, they are what is verified (signature, certificate or key,
 *    transparency log, then some in-toto subject must name the digest) and the `.sig` tag is not read;
 * 3. otherwise read every layer of `sha256-<hex>.sig` (count and sizes limited, every blob digest-checked);
 * 4. accept each simple-signing layer whose signature verifies — with the key over the exact stored payload
 *    bytes, or keyless: a Fulcio certificate chaining to the trusted root at the signing time, its SCT, and the
 *    identity policy — whose `docker-manifest-digest` equals the digest, whose `optional` holds every wanted
 *    annotation (string equality) and, unless the transparency log is ignored, whose Rekor bundle verifies
 *    offline against the trusted root (the embedded public-good root by default).
 *
 * The sigstore engine (`core/keyless/`) is loaded only when a check needs it, so that importing this module (and
 * starting the CLI) stays cheap.
 *
 * The identity (`docker-reference`) is not checked, as in cosign. Nothing here prints.
 *
 * **Never trusting the registry.** The `.sig` manifest is refused as a whole when it has more than 1000 layers
 * (as cosign does), or when its layers announce more than 64 MiB in all (`signature_layers.ts`). Blobs are read
 * per layer, as cosign's `Payload()` is called per signature, a few at a time and at most a few MiB ahead of the
 * checks: a layer whose declared size is over 4 MiB (cosign allows 128 MiB) is not fetched, a blob is read up to
 * its declared size and checked against its digest, and a missing, oversized or mismatched blob makes that one
 * layer fail with a reason, so a bad layer appended by someone with push rights cannot hide a good one. Network
 * and authorization errors end the verification (exit 1), never turn into "no matching signatures".
 *
 * **Payload parsing** is strict where two JSON readers could disagree (`signature/cosign_claims.ts`); cosign's
 * output format is the command's (`cli/verify_output.ts`).
 *
 * @module
 */
import { AirlockError, errorMessage, isAirlockError } from "./errors.ts";
import { formatReference, parseReference, type Reference, withDefaultTag } from "./reference.ts";
import type { RegistryClient } from "./registry/client.ts";
import { isImageManifestMediaType, isIndexMediaType } from "./registry/types.ts";
import { parseImageDocument } from "./registry/manifest.ts";
import { ANNOTATION_SIGNATURE } from "./signature/attachments.ts";
import { goBase64Decode } from "./encoding/base64.ts";
import { goQuote } from "./encoding/go_quote.ts";
import { type ReferrerBundle, referrerBundles } from "./signature/referrer_bundles.ts";
import { type TrustOptions, type VerifiedBundle, verifyReferrerBundle } from "./signature/referrer_verify.ts";
import type { CertificateIdentity, IdentityPolicy } from "./keyless/mod.ts";
import { type CosignClaims, cosignClaimsMatch } from "./signature/payload.ts";
import { claimsJson, readClaims } from "./signature/cosign_claims.ts";
import { type PublicKey, verifySignature } from "./signature/public_key.ts";
import { type AttachmentLayerRead, readAttachmentLayers } from "./signature/signature_layers.ts";

/** cosign's message when the digest has no signature at all (`ErrNoSignaturesFound`, exit code 10). */
export const NO_SIGNATURES_FOUND = "no signatures found";
/** cosign's message prefix when no signature verifies (`ErrNoMatchingSignatures`, exit code 12). */
export const NO_MATCHING_SIGNATURES = "no matching signatures";

/** Options of {@linkcode verifyImage}: exactly one of `publicKey` and `identity`. */
export interface VerifyOptions extends TrustOptions {
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
  /** The layer's annotations (signature, bundle, …); `{}` for referrer bundles. */
  readonly annotations: Readonly<Record<string, string>>;
  /** Whether a transparency-log entry (Rekor SET or inclusion proof) verified for this signature. */
  readonly bundleVerified: boolean;
  /** Keyless: the signer the certificate names. */
  readonly signer?: CertificateIdentity;
  /**
   * Where the signature came from: a `.sig` layer, or a sigstore bundle stored as an OCI referrer (then `claims`
   * and `payload` are what cosign synthesises from the in-toto statement, and `index` is the referrer's position).
   */
  readonly source: "sig" | "referrer";
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
  /** Whether signatures were verified keyless (certificates against the trusted root). */
  readonly keyless: boolean;
}

/**
 * Verifies an image the way `cosign verify --key` does (see the module doc).
 *
 * @throws {AirlockError} `SIGNATURE_MISSING` `no signatures found` when the digest has no `.sig` tag (or an empty
 * one) and no referrer bundle; `NO_MATCHING_SIGNATURES` `no matching signatures:\n<reason>\n  <reason>…` when no
 * layer (or referrer bundle) passes; `INVALID_ARGUMENT` for options that are not exactly one of key and identity;
 * `TOO_LARGE` for a `.sig` manifest with more than 1000 layers or 64 MiB of payloads; registry errors
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
  const ref = cosignReference(reference);
  checkMode(opts);
  const { digest, mediaType } = await resolveDigest(client, ref, opts.signal);
  const name = cosignReferenceName(ref);
  let outcomes = await checkReferrerBundles(client, ref, digest, name, opts);
  if (outcomes.length === 0) outcomes = await checkSignatureLayers(client, ref, digest, opts);
  const { signatures, rejected } = verdict(outcomes);
  return {
    reference: ref,
    name,
    digest,
    mediaType,
    signatures,
    rejected,
    bundleVerified: signatures.some((s) => s.bundleVerified),
    keyless: opts.identity !== undefined,
  };
}

/**
 * A reference as cosign takes it: a missing tag becomes `latest`, and a digest must be sha256 (go-containerregistry
 * parses no other algorithm, so cosign never verifies an image named by a sha512 digest).
 *
 * @throws {AirlockError} `INVALID_REFERENCE` for an unparseable reference or a digest of another algorithm.
 */
export function cosignReference(reference: Reference | string): Reference {
  const ref = withDefaultTag(typeof reference === "string" ? parseReference(reference) : reference);
  if (ref.digest !== undefined && !ref.digest.startsWith("sha256:")) {
    throw new AirlockError(
      "INVALID_REFERENCE",
      `could not parse reference: ${typeof reference === "string" ? reference : ref.digest}: ` +
        `only sha256 digests name images for cosign`,
    );
  }
  return ref;
}

/** Exactly one of key and identity. */
function checkMode(opts: { publicKey?: PublicKey; identity?: IdentityPolicy }): void {
  if (opts.publicKey !== undefined && opts.identity !== undefined) {
    throw new AirlockError(
      "INVALID_ARGUMENT",
      "a public key and a certificate identity are mutually exclusive: give --key or the --certificate-* flags",
    );
  }
  if (opts.publicKey === undefined && opts.identity === undefined) {
    throw new AirlockError(
      "INVALID_ARGUMENT",
      "give --key, or --certificate-identity[-regexp] and --certificate-oidc-issuer[-regexp] (keyless)",
    );
  }
}

/**
 * go-containerregistry's `ref.Name()`, as cosign prints it: `index.docker.io` for Docker Hub; the digest when the
 * reference has one (a tag beside it is dropped), else the tag (`latest` by default).
 */
export function cosignReferenceName(ref: Reference): string {
  const registry = ref.registry === "docker.io" ? "index.docker.io" : ref.registry;
  const base = `${registry}/${ref.repository}`;
  return ref.digest !== undefined ? `${base}@${ref.digest}` : `${base}:${ref.tag ?? "latest"}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Steps
// ---------------------------------------------------------------------------------------------------------------

/** Step 1: the digest the reference names, read (and hash-checked) from the registry. */
async function resolveDigest(
  client: RegistryClient,
  ref: Reference,
  signal?: AbortSignal,
): Promise<{ digest: string; mediaType: string }> {
  // For a digest reference the client checks the bytes against it; for a tag the digest is computed from the
  // bytes (never taken from a header).
  const target: Reference = ref.digest !== undefined ? { ...ref, tag: undefined } : ref;
  const m = await client.getManifest(target, { signal });
  // An image or index must be one (cosign would not parse it; what is not one is never reported verified).
  if (isIndexMediaType(m.mediaType) || isImageManifestMediaType(m.mediaType)) {
    parseImageDocument(m, formatReference(target));
  }
  return { digest: m.digest, mediaType: m.mediaType };
}

/** The sigstore engine, loaded on first use (it is not part of the start-up path). */
function engine(): Promise<typeof import("./keyless/mod.ts")> {
  return import("./keyless/mod.ts");
}

/**
 * Step 2: cosign v3 verifies sigstore bundles stored as OCI referrers when there are any. Each bundle is checked
 * as it is read, and only what verified is kept; none means the `.sig` layout is read instead.
 */
async function checkReferrerBundles(
  client: RegistryClient,
  ref: Reference,
  digest: string,
  name: string,
  opts: VerifyOptions,
): Promise<(VerifiedSignature | Rejection)[]> {
  const outcomes: (VerifiedSignature | Rejection)[] = [];
  for await (const b of referrerBundles(client, ref, digest, { signal: opts.signal }).bundles) {
    outcomes.push(await checkReferrerBundle(b, outcomes.length, digest, name, opts));
  }
  return outcomes;
}

/** Last step: at least one signature passed, else cosign's `no matching signatures` with every reason. */
function verdict(outcomes: readonly (VerifiedSignature | Rejection)[]): {
  signatures: VerifiedSignature[];
  rejected: Rejection[];
} {
  const signatures = outcomes.filter((o): o is VerifiedSignature => !("reason" in o));
  const rejected = outcomes.filter((o): o is Rejection => "reason" in o);
  if (signatures.length === 0) {
    throw new AirlockError(
      "NO_MATCHING_SIGNATURES",
      `${NO_MATCHING_SIGNATURES}:\n${rejected.map((r) => r.reason).join("\n  ")}`,
    );
  }
  return { signatures, rejected };
}

async function checkReferrerBundle(
  b: ReferrerBundle,
  index: number,
  digest: string,
  name: string,
  opts: VerifyOptions,
): Promise<VerifiedSignature | Rejection> {
  const reject = (reason: string): Rejection => ({ index, reason });
  if (b.bundle === undefined) return reject(b.error ?? `referrer ${b.manifestDigest} could not be read`);
  let v: VerifiedBundle;
  try {
    v = await verifyReferrerBundle(b.bundle, digest, opts);
  } catch (e) {
    if (opts.signal?.aborted) throw e;
    return reject(`referrer ${b.manifestDigest}: ${errorMessage(e)}`);
  }
  // cosign's transformOutput: a SimpleContainerImage synthesised from the statement's first subject.
  const first = v.statement.subject[0];
  const [alg, hex] = Object.entries(first?.digest ?? {}).at(-1) ?? ["", ""];
  const claims: CosignClaims = {
    dockerReference: name,
    dockerManifestDigest: alg === "" ? "" : `${alg}:${hex}`,
    type: v.statement.predicateType,
    optional: { ...(first?.annotations ?? {}) },
  };
  return {
    index,
    layerDigest: b.manifestDigest,
    payload: new TextEncoder().encode(claimsJson(claims, claims.optional)),
    claims,
    annotations: {},
    bundleVerified: v.tlogVerified,
    signer: v.signer,
    source: "referrer",
  };
}

interface Rejection {
  readonly index: number;
  readonly reason: string;
}

/**
 * Steps 3 and 4: every layer of the `.sig` tag of `digest`, checked in order as cosign's `verifyInternal` does
 * (signature, claims, transparency log): payload blobs are read a few at a time (at most a
 * few MiB ahead) and each is dropped once checked unless it verified. A layer whose blob is missing, too large or
 * damaged is one more reason, not a failure of the whole.
 */
async function checkSignatureLayers(
  client: RegistryClient,
  repo: Reference,
  digest: string,
  opts: VerifyOptions,
): Promise<(VerifiedSignature | Rejection)[]> {
  const outcomes: (VerifiedSignature | Rejection)[] = [];
  const layers = readAttachmentLayers(client, repo, digest, {
    badBlob: "reason",
    kind: "signature manifest",
    what: "payload",
    fetch: (l) => l.isSignature,
    cosign: true,
    signal: opts.signal,
  });
  for await (const read of layers) outcomes.push(await checkLayer(read, digest, opts));
  if (outcomes.length === 0) throw new AirlockError("SIGNATURE_MISSING", NO_SIGNATURES_FOUND);
  return outcomes;
}

const SIGNATURE_FAILURE: Readonly<Record<PublicKey["algorithm"], string>> = {
  // sigstore's verifiers' texts (pkg/signature/{ecdsa,rsapkcs1v15,ed25519}.go)
  ecdsa: "invalid signature when validating ASN.1 encoded signature",
  rsa: "crypto/rsa: verification error",
  ed25519: "failed to verify signature",
};

async function checkLayer(
  read: AttachmentLayerRead,
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
  if (read.payload === undefined) {
    return reject(read.error?.message ?? `payload ${layer.digest} was not read`);
  }
  const payload = read.payload;
  const cosignLayer = { mediaType: layer.mediaType, payload, annotations: layer.annotations };
  let signer: CertificateIdentity | undefined;
  let bundleVerified = false;
  if (opts.publicKey !== undefined) {
    if (!(await verifySignature(opts.publicKey, payload, signature))) {
      return reject(SIGNATURE_FAILURE[opts.publicKey.algorithm]);
    }
  } else {
    // Keyless: the certificate, its chain to the trusted root at the signing time, the SCT, the Rekor bundle
    // (SET and body), the signature and the identity, all in the engine.
    if (layer.certificate === undefined || layer.certificate === "") {
      return reject("no certificate found on signature");
    }
    if (!opts.ignoreTlog && layer.bundle === undefined) return reject(NOT_IN_TLOG);
    try {
      const r = await (await engine()).verifyKeyless(cosignLayer, {
        identity: opts.identity!,
        trustedRoot: opts.trustedRoot,
        ignoreTlog: opts.ignoreTlog,
        ignoreSct: opts.ignoreSct,
      });
      signer = r.signer;
      bundleVerified = !opts.ignoreTlog && r.tlogEntries.length > 0;
    } catch (e) {
      if (!isAirlockError(e)) throw e;
      return reject(e.message);
    }
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
  // Transparency log, key mode: the layer's Rekor bundle, verified offline (SET, body vs signature, key, hash).
  if (!opts.ignoreTlog && opts.publicKey !== undefined) {
    if (layer.bundle === undefined) return reject(NOT_IN_TLOG);
    try {
      await (await engine()).verifyRekorBundleForKey(cosignLayer, opts.publicKey, opts.trustedRoot);
    } catch (e) {
      if (!isAirlockError(e)) throw e;
      return reject(e.message);
    }
    bundleVerified = true;
  }
  return {
    index: layer.index,
    layerDigest: layer.digest,
    payload,
    claims,
    annotations: layer.annotations,
    bundleVerified,
    signer,
    source: "sig",
  };
}

const NOT_IN_TLOG =
  "signature not found in transparency log: the layer has no Rekor bundle and airlock never " +
  "searches Rekor online (use --insecure-ignore-tlog to verify signatures made without a transparency log)";
