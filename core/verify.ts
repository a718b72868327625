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
import { isImageManifestMediaType, isIndexMediaType, MediaType } from "./registry/types.ts";
import { parseImageDocument } from "./registry/manifest.ts";
import {
  ANNOTATION_BUNDLE,
  ANNOTATION_RFC3161_TIMESTAMP,
  ANNOTATION_SIGNATURE,
  type AttachmentLayer,
  listAttachmentLayers,
  parseAttachmentManifest,
} from "./signature/attachments.ts";
import { goBase64Decode } from "./encoding/base64.ts";
import { attachmentRef } from "./signature/attachment_store.ts";
import { type ReferrerBundle, referrerBundles } from "./signature/referrer_bundles.ts";
import type {
  CertificateIdentity,
  IdentityPolicy,
  InTotoStatement,
  SigstoreTrustedRoot,
} from "./keyless/mod.ts";
import {
  compareGoMapKeys,
  decodeGoStruct,
  goInt,
  goJsonString,
  goString,
  type JsonNode,
  jsonNodeToValue,
  parseJsonTree,
} from "./encoding/go_json.ts";
import { type CosignClaims, cosignClaimsMatch, parseCosignClaims } from "./signature/payload.ts";
import { goQuote } from "./encoding/go_quote.ts";
import { base64Encode } from "./encoding/base64.ts";
import { type PublicKey, verifySignature } from "./signature/public_key.ts";
import { errorMessage, isAirlockError } from "./errors.ts";
import { checkLayerCount, readPayloads } from "./signature/signature_layers.ts";

/** cosign's message when the digest has no signature at all (`ErrNoSignaturesFound`, exit code 10). */
export const NO_SIGNATURES_FOUND = "no signatures found";
/** cosign's message prefix when no signature verifies (`ErrNoMatchingSignatures`, exit code 12). */
export const NO_MATCHING_SIGNATURES = "no matching signatures";

/** Options of {@linkcode verifyImage}: exactly one of `publicKey` and `identity`. */
export interface VerifyOptions {
  /** The key every accepted signature must verify with (`--key`). */
  readonly publicKey?: PublicKey;
  /**
   * Keyless verification: who must have signed (`--certificate-identity[-regexp]`,
   * `--certificate-oidc-issuer[-regexp]`, `--certificate-github-workflow-*`).
   */
  readonly identity?: IdentityPolicy;
  /**
   * The sigstore trusted root (`--trusted-root`): Fulcio CAs, Rekor and CT log keys, TSAs. Default: the embedded
   * public-good snapshot, loaded only when needed.
   */
  readonly trustedRoot?: SigstoreTrustedRoot;
  /** `--insecure-ignore-sct` (keyless): no embedded SCT is required. */
  readonly ignoreSct?: boolean;
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
  // 1. The digest the reference names, read (and hash-checked) from the registry.
  const { digest, mediaType } = await resolveDigest(client, ref, opts.signal);
  const name = cosignReferenceName(ref);
  // 2. cosign v3 verifies sigstore bundles stored as OCI referrers when there are any.
  // Each bundle is checked as it is read, and only what verified is kept.
  let outcomes: (VerifiedSignature | Rejection)[] = [];
  for await (const b of referrerBundles(client, ref, digest, { signal: opts.signal }).bundles) {
    outcomes.push(await checkReferrerBundle(b, outcomes.length, digest, name, opts));
  }
  if (outcomes.length === 0) {
    // 3. Every layer of sha256-<hex>.sig, blobs read in turn (a broken layer is one more reason, not a crash),
    // 4. each checked as cosign's verifyInternal does: signature, claims, transparency log.
    outcomes = await checkSignatureLayers(client, ref, digest, opts);
  }
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
 *
 * @example
 * ```ts
 * cosignReference("registry.example/app"); // registry.example/app:latest
 * ```
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

/** What verifying a referrer bundle (any predicate type) yields. */
export interface VerifiedBundle {
  readonly statement: InTotoStatement;
  /** The verified in-toto statement bytes. */
  readonly payload: Uint8Array;
  /** The verified DSSE envelope. */
  readonly envelope: {
    payloadType: string;
    payload: string;
    signatures: readonly { keyid?: string; sig: string }[];
  };
  readonly signer?: CertificateIdentity;
  readonly tlogVerified: boolean;
}

/**
 * Verifies a referrer bundle with the key or keyless, then cosign's `IntotoSubjectClaimVerifier`: the bundle
 * holds a DSSE in-toto statement, some `sha256` subject digest equals the image digest, and (with `-a`) that
 * subject's annotations hold every wanted value.
 *
 * @throws {AirlockError} why the bundle is not accepted
 */
export async function verifyReferrerBundle(
  bundle: Uint8Array,
  digest: string,
  opts: Pick<
    VerifyOptions,
    "publicKey" | "identity" | "trustedRoot" | "ignoreTlog" | "ignoreSct" | "annotations"
  >,
): Promise<VerifiedBundle> {
  const k = await engine();
  const r = opts.publicKey !== undefined
    ? await k.verifyWithKey({ bundle }, {
      publicKey: opts.publicKey,
      trustedRoot: opts.trustedRoot,
      ignoreTlog: opts.ignoreTlog,
    })
    : await k.verifyKeyless({ bundle }, {
      identity: opts.identity!,
      trustedRoot: opts.trustedRoot,
      ignoreTlog: opts.ignoreTlog,
      ignoreSct: opts.ignoreSct,
    });
  if (r.content.kind !== "dsse") {
    throw new AirlockError("SIGNATURE_INVALID", "the bundle holds a message signature, not a DSSE envelope");
  }
  const statement = k.parseInTotoStatement(r.content.payloadType, r.content.payload);
  k.checkInTotoSubject(statement, digest, opts.annotations);
  return {
    statement,
    payload: r.content.payload,
    envelope: r.content.envelope,
    signer: r.signer,
    tlogVerified: !opts.ignoreTlog && r.tlogEntries.length > 0,
  };
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

/**
 * Every layer of the `.sig` tag of `digest`, checked in order: payload blobs are read a few at a time (at most a
 * few MiB ahead) and each is dropped once checked unless it verified. A layer whose blob is missing, too large or
 * damaged is one more reason, not a failure of the whole.
 */
async function checkSignatureLayers(
  client: RegistryClient,
  repo: Reference,
  digest: string,
  opts: VerifyOptions,
): Promise<(VerifiedSignature | Rejection)[]> {
  const sigRef = attachmentRef(repo, digest);
  let fetched;
  try {
    fetched = await client.getManifest(sigRef, {
      accept: [MediaType.ociManifest, MediaType.dockerManifest],
      signal: opts.signal,
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
  const name = `signature manifest ${sigRef.repository}:${sigRef.tag}`;
  checkLayerCount(layers.length, name);
  const reads = readPayloads(client, sigRef, layers.filter((l) => l.isSignature), {
    signal: opts.signal,
    name,
    what: "payload",
  })[Symbol.asyncIterator]();
  const outcomes: (VerifiedSignature | Rejection)[] = [];
  try {
    for (const layer of layers) {
      if (!layer.isSignature) {
        outcomes.push(await checkLayer({ layer }, digest, opts));
        continue;
      }
      const { value: r } = await reads.next();
      if (!r) throw new AirlockError("REGISTRY_ERROR", `payload ${layer.digest} was not read`);
      outcomes.push(await checkLayer({ layer, payload: r.payload, error: r.error?.message }, digest, opts));
    }
  } finally {
    await reads.return(undefined);
  }
  return outcomes;
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

/**
 * Go `json.Marshal` of a value decoded into `interface{}` (maps with sorted keys, float64 numbers, `<>&` escaped).
 *
 * @example
 * ```ts
 * goMarshalAny(JSON.parse('{"b":1,"a":"<"}')); // '{"a":"\\u003c","b":1}'
 * ```
 */
export function goMarshalAny(v: unknown): string {
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
    if (s.signer !== undefined && s.source === "sig") {
      optional = { ...optional, ...certificateFields(s.signer) };
    }
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
    return claimsJson(c, optional);
  }).join(",") + "]";
}

/** `json.Marshal` of a `payload.SimpleContainerImage` with the given `optional`. */
function claimsJson(c: CosignClaims, optional: Readonly<Record<string, unknown>> | null): string {
  return `{"critical":{"identity":{"docker-reference":${goJsonString(c.dockerReference)}},` +
    `"image":{"docker-manifest-digest":${goJsonString(c.dockerManifestDigest)}},` +
    `"type":${goJsonString(c.type)}},"optional":${goMarshalAny(optional)}}`;
}

/** Fulcio OIDs of the GitHub workflow extensions, with cosign's friendly names (`pkg/cosign/certextensions.go`). */
const GITHUB_FIELDS: readonly (readonly [keyof CertificateIdentity, string, string, string])[] = [
  ["githubWorkflowTrigger", "1.3.6.1.4.1.57264.1.2", "githubWorkflowTrigger", "GitHub Workflow Trigger"],
  ["githubWorkflowSha", "1.3.6.1.4.1.57264.1.3", "githubWorkflowSha", "GitHub Workflow SHA"],
  ["githubWorkflowName", "1.3.6.1.4.1.57264.1.4", "githubWorkflowName", "GitHub Workflow Name"],
  [
    "githubWorkflowRepository",
    "1.3.6.1.4.1.57264.1.5",
    "githubWorkflowRepository",
    "GitHub Workflow Repository",
  ],
  ["githubWorkflowRef", "1.3.6.1.4.1.57264.1.6", "githubWorkflowRef", "GitHub Workflow Ref"],
];

/**
 * What cosign's `PrintVerification` adds to `optional` for a signature with a certificate: `Subject` (the first
 * SAN in cosign's order), `Issuer` and `1.3.6.1.4.1.57264.1.1` (the v1 issuer OID only), and each GitHub workflow
 * extension present under its OID and its friendly name.
 *
 * @example
 * ```ts
 * certificateFields(signer); // { Subject: "mitr@redhat.com", Issuer: "https://github.com/login/oauth", … }
 * ```
 */
export function certificateFields(signer: CertificateIdentity): Record<string, string> {
  const out: Record<string, string> = { Subject: signer.subject };
  if (signer.issuer) {
    out.Issuer = signer.issuer;
    out["1.3.6.1.4.1.57264.1.1"] = signer.issuer;
  }
  for (const [k, oid, friendly] of GITHUB_FIELDS) {
    const v = signer[k];
    if (typeof v === "string" && v !== "") {
      out[oid] = v;
      out[friendly] = v;
    }
  }
  return out;
}

/**
 * cosign's `-o text` certificate lines (stderr) for a signature with a certificate: `Certificate subject: …`,
 * `Certificate issuer URL: …` and the GitHub workflow lines present.
 *
 * @example
 * ```ts
 * stderr(certificateTextLines(signer).map((l) => l + "\n").join(""));
 * ```
 */
export function certificateTextLines(signer: CertificateIdentity): string[] {
  const out = [`Certificate subject: ${signer.subject}`];
  if (signer.issuer) out.push(`Certificate issuer URL: ${signer.issuer}`);
  for (const [k, , , label] of GITHUB_FIELDS) {
    const v = signer[k];
    if (typeof v === "string" && v !== "") out.push(`${label}: ${v}`);
  }
  return out;
}
