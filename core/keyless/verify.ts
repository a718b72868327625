/**
 * Offline sigstore verification of one signed entity: a legacy cosign layer (`.sig` or `.att`) or a sigstore
 * bundle (cosign v3 referrer), keyless (Fulcio certificate + Rekor against a trusted root) or with a key.
 *
 * sigstore-js does the cryptography (timestamps, certificate chain at the signing time, SCTs, SET or inclusion
 * proof, signature). This module adds what it leaves out (spec/cosign.md §5.6):
 * - the log entry body is checked against the signing certificate or key (cosign `comparePublicKey`), and for
 *   legacy attestation layers against the stored envelope bytes;
 * - a bundle's claimed message digest is checked against the artifact;
 * - identity policy with cosign's semantics: `subject` is an **exact** match (sigstore-js would treat a string as
 *   an unanchored pattern), the `-regexp` forms are Go RE2, unanchored; every SAN kind is considered; an issuer
 *   (exact or regexp) is required, as cosign requires it;
 * - the digest claim stays with the caller: the verified payload is returned.
 *
 * The certificate-chain ("chain") annotation is never used; intermediates come from the trusted root.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import nodeCrypto from "node:crypto";
import type { Bundle } from "@sigstore/bundle";
import type { SignedEntity } from "@sigstore/verify";
import { AirlockError, errorMessage } from "../errors.ts";
import { ANNOTATION_BUNDLE, ANNOTATION_SIGNATURE, dssePae } from "../signature/attachments.ts";
import { base64Decode } from "../encoding/base64.ts";
import { parsePublicKeyPem, type PublicKey, verifySignature } from "../signature/public_key.ts";
import {
  type CosignLayer,
  cosignLayerToBundle,
  type DsseEnvelopeJson,
  isDsseLayer,
  parseDsseEnvelope,
  parseSigstoreBundle,
} from "./bundle.ts";
import {
  type CertificateIdentity,
  isSelfSigned,
  parseCertificateIdentity,
  sigstoreGoSubject,
} from "./certificate.ts";
import { compileGoRegExp, goRegExpMatches } from "./regexp.ts";
import { checkRekorBody, type RekorEntryInfo, sha256Hex, verifyRekorBundle } from "./rekor.ts";
import { loadSigstore } from "./sigstore.ts";
import { publicGoodTrustedRoot, type SigstoreTrustedRoot, trustMaterialFor } from "./trusted_root.ts";

/** A sigstore bundle to verify, with the artifact it signs when it is a message signature. */
export interface BundleEntity {
  /** The bundle: JSON text, bytes (a referrer layer blob) or parsed JSON. */
  readonly bundle: Uint8Array | string | Readonly<Record<string, unknown>>;
  /** The signed bytes, required for message-signature bundles (DSSE bundles carry their payload). */
  readonly artifact?: Uint8Array;
}

/** What can be verified: a legacy cosign layer or a bundle. */
export type SignedEntityInput = CosignLayer | BundleEntity;

/**
 * Who must have signed (cosign `--certificate-identity[-regexp]`, `--certificate-oidc-issuer[-regexp]`,
 * `--certificate-github-workflow-*`). One of `subject`/`subjectRegExp` and one of `issuer`/`issuerRegExp` are
 * required. When both forms of a pair are given, both must match.
 */
export interface IdentityPolicy {
  /** Exact SAN (email, URI, DNS name, IP address or username otherName). */
  readonly subject?: string;
  /** Go RE2 pattern, unanchored, tested against the SANs. */
  readonly subjectRegExp?: string;
  /** Exact OIDC issuer. */
  readonly issuer?: string;
  /** Go RE2 pattern, unanchored, tested against the OIDC issuer. */
  readonly issuerRegExp?: string;
  /** Exact workflow trigger (`1.3.6.1.4.1.57264.1.2`, `--certificate-github-workflow-trigger`). */
  readonly githubWorkflowTrigger?: string;
  /** Exact workflow commit SHA (`.1.3`, `--certificate-github-workflow-sha`). */
  readonly githubWorkflowSha?: string;
  /** Exact workflow name (`.1.4`, `--certificate-github-workflow-name`). */
  readonly githubWorkflowName?: string;
  /** Exact workflow repository (`.1.5`, `--certificate-github-workflow-repository`). */
  readonly githubWorkflowRepository?: string;
  /** Exact workflow git ref (`.1.6`, `--certificate-github-workflow-ref`). */
  readonly githubWorkflowRef?: string;
}

/** Options of {@linkcode verifyKeyless}. */
export interface VerifyKeylessOptions {
  /** The trusted root; default the embedded public-good snapshot. */
  readonly trustedRoot?: SigstoreTrustedRoot;
  /** Who must have signed (certificate SAN, OIDC issuer, GitHub workflow values). */
  readonly identity: IdentityPolicy;
  /**
   * `--insecure-ignore-tlog`: no transparency-log entry is required (entries present are still verified). The
   * certificate must then be proven valid at signing time by an RFC 3161 timestamp: without any verified time,
   * verification fails (cosign would check against the current time, which a 10-minute Fulcio certificate fails).
   */
  readonly ignoreTlog?: boolean;
  /** `--insecure-ignore-sct`: no embedded SCT is required. */
  readonly ignoreSct?: boolean;
}

/** Options of {@linkcode verifyWithKey}. */
export interface VerifyWithKeyOptions {
  /** The public key: PEM text, or a key parsed by `parsePublicKeyPem`. */
  readonly publicKey: string | PublicKey;
  /** For the Rekor checks; default the embedded public-good snapshot. */
  readonly trustedRoot?: SigstoreTrustedRoot;
  /** `--insecure-ignore-tlog`: no Rekor bundle is required, and none is checked. */
  readonly ignoreTlog?: boolean;
}

/** What was signed, verified. */
export type VerifiedContent =
  | {
    readonly kind: "message";
    /** The signed bytes (the simple-signing payload of a `.sig` layer, or the bundle's artifact). */
    readonly payload: Uint8Array;
  }
  | {
    readonly kind: "dsse";
    readonly payloadType: string;
    /** The decoded envelope payload (an in-toto statement for attestations). */
    readonly payload: Uint8Array;
    readonly envelope: DsseEnvelopeJson;
  };

/** The outcome of a successful verification. */
export interface VerificationResult {
  /** What was signed: a message payload or a DSSE envelope with its payload. */
  readonly content: VerifiedContent;
  /** The certificate's signer (keyless only). */
  readonly signer?: CertificateIdentity;
  /** The transparency-log entries that were verified. */
  readonly tlogEntries: readonly RekorEntryInfo[];
  /** Every verified time: log integration times (with a SET) and RFC 3161 times. */
  readonly timestamps: readonly Date[];
}

const VERIFY_ERROR_CODES: Readonly<Record<string, AirlockError["code"]>> = {
  TLOG_ERROR: "TLOG_INVALID",
  TLOG_INCLUSION_PROOF_ERROR: "TLOG_INVALID",
  TLOG_INCLUSION_PROMISE_ERROR: "TLOG_INVALID",
  TLOG_MISSING_INCLUSION_ERROR: "TLOG_INVALID",
  TLOG_BODY_ERROR: "TLOG_INVALID",
  CERTIFICATE_ERROR: "CERTIFICATE_INVALID",
  PUBLIC_KEY_ERROR: "SIGNATURE_INVALID",
  SIGNATURE_ERROR: "SIGNATURE_INVALID",
  TIMESTAMP_ERROR: "TIMESTAMP_INVALID",
  NOT_IMPLEMENTED_ERROR: "BUNDLE_INVALID",
  UNTRUSTED_SIGNER_ERROR: "IDENTITY_NOT_ACCEPTED",
};

/** Turns a sigstore-js error into an AirlockError with its cause chain in the message. */
function fromSigstore(e: unknown, what: string): AirlockError {
  if (e instanceof AirlockError) return e;
  // An error without a sigstore-js code is a crash on malformed input (e.g. an inclusion proof without checkpoint).
  const code = VERIFY_ERROR_CODES[(e as { code?: string })?.code ?? ""] ?? "BUNDLE_INVALID";
  let message = errorMessage(e);
  for (
    let c = (e as { cause?: unknown })?.cause, n = 0;
    c && n < 3;
    c = (c as { cause?: unknown }).cause, n++
  ) {
    message += `: ${errorMessage(c)}`;
  }
  return new AirlockError(code, `${what}: ${message}`, { cause: e });
}

function isLayer(e: SignedEntityInput): e is CosignLayer {
  return "annotations" in e && "payload" in e;
}

/** Compiled identity policy. */
interface IdentityMatcher {
  subject?: string;
  subjectRe?: RegExp;
  issuer?: string;
  issuerRe?: RegExp;
  github: [keyof CertificateIdentity, string, string][];
}

function compileIdentity(p: IdentityPolicy): IdentityMatcher {
  if (p.subject === undefined && p.subjectRegExp === undefined) {
    throw new AirlockError(
      "INVALID_ARGUMENT",
      "keyless verification needs --certificate-identity or --certificate-identity-regexp",
    );
  }
  if (p.issuer === undefined && p.issuerRegExp === undefined) {
    throw new AirlockError(
      "INVALID_ARGUMENT",
      "keyless verification needs --certificate-oidc-issuer or --certificate-oidc-issuer-regexp",
    );
  }
  const github: IdentityMatcher["github"] = [];
  for (
    const [k, flag] of [
      ["githubWorkflowTrigger", "trigger"],
      ["githubWorkflowSha", "sha"],
      ["githubWorkflowName", "name"],
      ["githubWorkflowRepository", "repository"],
      ["githubWorkflowRef", "ref"],
    ] as const
  ) {
    if (p[k] !== undefined) github.push([k, `--certificate-github-workflow-${flag}`, p[k]!]);
  }
  return {
    subject: p.subject,
    subjectRe: p.subjectRegExp === undefined
      ? undefined
      : compileGoRegExp(p.subjectRegExp, "--certificate-identity-regexp"),
    issuer: p.issuer,
    issuerRe: p.issuerRegExp === undefined
      ? undefined
      : compileGoRegExp(p.issuerRegExp, "--certificate-oidc-issuer-regexp"),
    github,
  };
}

/**
 * Applies the identity policy. Legacy layers follow cosign's legacy path (every SAN is a candidate); bundles follow
 * sigstore-go (cosign's new-bundle path: the first URI, else email, else otherName SAN). The issuer must match
 * every issuer extension the certificate has (`.1.1`, which cosign's legacy path reads, and `.1.8`, which
 * sigstore-go prefers; Fulcio writes the same value in both).
 */
function matchIdentity(id: CertificateIdentity, m: IdentityMatcher, legacy: boolean): void {
  const candidates = legacy
    ? id.subjectAlternativeNames.map((s) => s.value)
    : [sigstoreGoSubject(id.subjectAlternativeNames)].filter((s): s is string => s !== undefined);
  const shown = candidates.length ? candidates.join(", ") : "(none)";
  if (m.subject !== undefined && !candidates.includes(m.subject)) {
    throw new AirlockError(
      "IDENTITY_NOT_ACCEPTED",
      `none of the expected identities matched what was in the certificate: expected subject ${
        JSON.stringify(m.subject)
      }, got ${shown}`,
    );
  }
  if (m.subjectRe !== undefined && !candidates.some((s) => goRegExpMatches(m.subjectRe!, s))) {
    throw new AirlockError(
      "IDENTITY_NOT_ACCEPTED",
      `none of the expected identities matched what was in the certificate: expected subject matching ${
        JSON.stringify(m.subjectRe.source)
      }, got ${shown}`,
    );
  }
  const issuers = [id.issuer, id.issuerV2].filter((s): s is string => s !== undefined);
  if (issuers.length === 0) {
    throw new AirlockError("IDENTITY_NOT_ACCEPTED", "the certificate has no OIDC issuer extension");
  }
  for (const got of issuers) {
    if (m.issuer !== undefined && got !== m.issuer) {
      throw new AirlockError(
        "IDENTITY_NOT_ACCEPTED",
        `expected OIDC issuer ${JSON.stringify(m.issuer)}, the certificate says ${JSON.stringify(got)}`,
      );
    }
    if (m.issuerRe !== undefined && !goRegExpMatches(m.issuerRe, got)) {
      throw new AirlockError(
        "IDENTITY_NOT_ACCEPTED",
        `OIDC issuer ${JSON.stringify(got)} does not match the expected pattern`,
      );
    }
  }
  for (const [k, flag, want] of m.github) {
    if (id[k] !== want) {
      throw new AirlockError(
        "IDENTITY_NOT_ACCEPTED",
        `${flag}: expected ${JSON.stringify(want)}, the certificate says ${JSON.stringify(id[k] ?? "")}`,
      );
    }
  }
}

const DIGEST_ALGORITHMS: Readonly<Record<string, string>> = {
  SHA2_256: "sha256",
  SHA2_384: "sha384",
  SHA2_512: "sha512",
  HASH_ALGORITHM_UNSPECIFIED: "sha256",
};

/** A prepared entity: the bundle, the bytes, and what the tlog body checks need. */
interface Prepared {
  bundle: Bundle;
  artifact?: Uint8Array;
  legacy: boolean;
  /** Hex SHA-256 of the layer blob, for DSSE layers (Rekor `envelopeHash`). */
  envelopeSha256?: string;
  content: VerifiedContent;
}

async function prepare(entity: SignedEntityInput, publicKeyHint?: string): Promise<Prepared> {
  if (isLayer(entity)) {
    const bundle = await cosignLayerToBundle(entity, { publicKeyHint });
    return {
      bundle,
      artifact: isDsseLayer(entity) ? undefined : entity.payload,
      legacy: true,
      envelopeSha256: isDsseLayer(entity) ? sha256Hex(entity.payload) : undefined,
      content: contentOf(bundle, entity.payload),
    };
  }
  const bundle = await parseSigstoreBundle(entity.bundle);
  const vm = bundle.verificationMaterial.content;
  if (
    vm.$case === "x509CertificateChain" &&
    vm.x509CertificateChain.certificates.some((c) => isSelfSigned(c.rawBytes))
  ) {
    // sigstore-go and sigstore-python refuse this; the root must come from the trusted root only.
    throw new AirlockError("BUNDLE_INVALID", "bundle: the certificate chain contains a root certificate");
  }
  if (bundle.content.$case === "messageSignature") {
    if (entity.artifact === undefined) {
      throw new AirlockError("INVALID_ARGUMENT", "a message-signature bundle needs the artifact it signs");
    }
    const md = bundle.content.messageSignature.messageDigest;
    const alg = DIGEST_ALGORITHMS[String(md?.algorithm)] ??
      DIGEST_ALGORITHMS[
        ["HASH_ALGORITHM_UNSPECIFIED", "SHA2_256", "SHA2_384", "SHA2_512"][Number(md?.algorithm)]
      ];
    if (!alg || !md) throw new AirlockError("BUNDLE_INVALID", "bundle: unsupported message digest algorithm");
    const actual = nodeCrypto.createHash(alg).update(entity.artifact).digest();
    if (!Buffer.from(md.digest).equals(actual)) {
      throw new AirlockError("SIGNATURE_INVALID", "bundle: the message digest is not the artifact's digest");
    }
  }
  return { bundle, artifact: entity.artifact, legacy: false, content: contentOf(bundle, entity.artifact) };
}

function contentOf(bundle: Bundle, bytes: Uint8Array | undefined): VerifiedContent {
  if (bundle.content.$case === "dsseEnvelope") {
    const env = bundle.content.dsseEnvelope;
    const envelope: DsseEnvelopeJson = {
      payloadType: env.payloadType,
      payload: Buffer.from(env.payload).toString("base64"),
      signatures: env.signatures.map((s) => ({ keyid: s.keyid, sig: Buffer.from(s.sig).toString("base64") })),
    };
    return { kind: "dsse", payloadType: env.payloadType, payload: new Uint8Array(env.payload), envelope };
  }
  return { kind: "message", payload: bytes ?? new Uint8Array() };
}

function tlogInfo(entity: SignedEntity, kinds: { kind: string; version: string }[]): RekorEntryInfo[] {
  return entity.tlogEntries.map((e, i) => ({
    logIndex: Number(e.logIndex),
    integratedTime: new Date(Number(e.integratedTime) * 1000),
    logId: Buffer.from(e.logId!.keyId).toString("hex"),
    kind: kinds[i]?.kind ?? e.kindVersion?.kind ?? "",
    version: kinds[i]?.version ?? e.kindVersion?.version ?? "",
  }));
}

function verifiedTimes(entity: SignedEntity): Date[] {
  const out: Date[] = [];
  for (const t of entity.timestamps) {
    if (t.$case === "transparency-log") {
      if (t.tlogEntry.inclusionPromise) out.push(new Date(Number(t.tlogEntry.integratedTime) * 1000));
    } else out.push(t.timestamp.signingTime);
  }
  return out;
}

/** Runs sigstore-js and the body checks; returns the signed entity and the body kinds. */
async function runVerifier(
  p: Prepared,
  options: { tlogThreshold: number; ctlogThreshold: number; timestampThreshold: number },
  root: SigstoreTrustedRoot,
  key: { spki: Uint8Array; certificate?: Uint8Array; keyObject?: nodeCrypto.KeyObject },
  what: string,
): Promise<{ entity: SignedEntity; kinds: { kind: string; version: string }[] }> {
  const s = await loadSigstore();
  let entity: SignedEntity;
  try {
    entity = s.verify.toSignedEntity(
      p.bundle,
      p.artifact === undefined ? undefined : Buffer.from(p.artifact),
    );
  } catch (e) {
    throw fromSigstore(e, `${what}: malformed bundle`);
  }
  const material = key.keyObject === undefined
    ? await trustMaterialFor(root)
    : s.verify.toTrustMaterial(root.root, () => ({ publicKey: key.keyObject!, validFor: () => true }));
  try {
    new s.verify.Verifier(material, options).verify(entity);
  } catch (e) {
    throw fromSigstore(e, what);
  }
  const sig = p.bundle.content.$case === "dsseEnvelope"
    ? p.bundle.content.dsseEnvelope.signatures[0]?.sig
    : p.bundle.content.messageSignature.signature;
  const kinds = entity.tlogEntries.map((e) =>
    checkRekorBody(new Uint8Array(e.canonicalizedBody), {
      signature: sig ? new Uint8Array(sig) : undefined,
      spki: key.spki,
      certificate: key.certificate,
      envelopeSha256: p.envelopeSha256,
    })
  );
  return { entity, kinds };
}

/**
 * Verifies a keyless signature: a legacy cosign layer (`.sig` payload or `.att` envelope with the certificate and
 * Rekor bundle annotations) or a sigstore bundle with a certificate, against the trusted root and the identity
 * policy. Fully offline.
 *
 * Checks, in order: the identity policy is well-formed; the RFC 3161 timestamps and the SETs (which give the
 * signing times); the certificate chains to a trusted Fulcio CA and every certificate of the path was valid at
 * each signing time; an SCT from a trusted CT log; every log entry (SET or inclusion proof, body vs signature,
 * digest, and certificate); the signature over the payload (or DSSE PAE); the identity.
 *
 * @returns the verified content and signer; the caller still checks what the content claims (the image digest)
 * @throws {AirlockError} `INVALID_ARGUMENT` (policy), `BUNDLE_INVALID`, `SIGNATURE_MISSING`, `SIGNATURE_INVALID`,
 * `CERTIFICATE_INVALID`, `TLOG_INVALID`, `TIMESTAMP_INVALID`, `IDENTITY_NOT_ACCEPTED`
 *
 * @example
 * ```ts
 * const r = await verifyKeyless(layer, {
 *   trustedRoot: await loadTrustedRoot("trusted_root.json"),
 *   identity: { subject: "mitr@redhat.com", issuer: "https://github.com/login/oauth" },
 * });
 * r.signer?.subject; // "mitr@redhat.com"
 * ```
 */
export async function verifyKeyless(
  entity: SignedEntityInput,
  options: VerifyKeylessOptions,
): Promise<VerificationResult> {
  const matcher = compileIdentity(options.identity);
  const root = options.trustedRoot ?? await publicGoodTrustedRoot();
  const p = await prepare(entity);
  const vm = p.bundle.verificationMaterial.content;
  const leafDer = vm.$case === "x509CertificateChain"
    ? vm.x509CertificateChain.certificates[0]?.rawBytes
    : vm.$case === "certificate"
    ? vm.certificate.rawBytes
    : undefined;
  if (!leafDer) {
    throw new AirlockError("SIGNATURE_INVALID", "the signature has no certificate (it was made with a key)");
  }
  const signer = parseCertificateIdentity(new Uint8Array(leafDer));
  const { entity: verified, kinds } = await runVerifier(
    p,
    {
      tlogThreshold: options.ignoreTlog ? 0 : 1,
      ctlogThreshold: options.ignoreSct ? 0 : 1,
      timestampThreshold: 1,
    },
    root,
    { spki: signer.spki, certificate: signer.der },
    "keyless verification failed",
  );
  matchIdentity(signer, matcher, p.legacy);
  return {
    content: p.content,
    signer,
    tlogEntries: tlogInfo(verified, kinds),
    timestamps: verifiedTimes(verified),
  };
}

function keyOf(k: string | PublicKey): PublicKey {
  return typeof k === "string" ? parsePublicKeyPem(k) : k;
}

function keyObjectOf(key: PublicKey): nodeCrypto.KeyObject {
  try {
    return nodeCrypto.createPublicKey({ key: Buffer.from(key.spki), format: "der", type: "spki" });
  } catch (e) {
    throw new AirlockError("KEY_INVALID", `public key cannot be used: ${errorMessage(e)}`, { cause: e });
  }
}

/**
 * Checks a key-signed legacy layer's Rekor bundle offline, as cosign's key-based `verify` does without
 * `--insecure-ignore-tlog`: the `dev.sigstore.cosign/bundle` annotation must exist; its SET must verify with a
 * log key of the trusted root valid at its integrated time; its body must hold the layer's signature, the given
 * public key (DER compare) and sha256(payload) (for attestation layers: the envelope and payload hashes). The
 * layer's signature itself is not verified here.
 *
 * Supports `hashedrekord`, `rekord`, `dsse` and `intoto` (v0.0.1, v0.0.2) bodies.
 *
 * @throws {AirlockError} `TLOG_INVALID` (also when the annotation is missing), `BUNDLE_INVALID`, `KEY_INVALID`
 *
 * @example
 * ```ts
 * const entry = await verifyRekorBundleForKey(layer, await Deno.readTextFile("cosign.pub"), root);
 * entry.integratedTime; // 2023-01-20T…
 * ```
 */
export async function verifyRekorBundleForKey(
  layer: CosignLayer,
  publicKey: string | PublicKey,
  trustedRoot?: SigstoreTrustedRoot,
): Promise<RekorEntryInfo> {
  const key = keyOf(publicKey);
  const root = trustedRoot ?? await publicGoodTrustedRoot();
  const a = layer.annotations;
  if (!Object.hasOwn(a, ANNOTATION_BUNDLE)) {
    throw new AirlockError(
      "TLOG_INVALID",
      `no ${ANNOTATION_BUNDLE} annotation: the transparency log cannot be checked offline ` +
        "(use --insecure-ignore-tlog to skip it)",
    );
  }
  if (isDsseLayer(layer)) {
    const env = parseDsseEnvelope(layer.payload);
    return verifyRekorBundle(a[ANNOTATION_BUNDLE], root, {
      signature: env.signatures.length === 1 ? base64Decode(env.signatures[0].sig) : undefined,
      spki: key.spki,
      payloadSha256: sha256Hex(base64Decode(env.payload)!),
      envelopeSha256: sha256Hex(layer.payload),
    });
  }
  const sig = Object.hasOwn(a, ANNOTATION_SIGNATURE) ? base64Decode(a[ANNOTATION_SIGNATURE]) : undefined;
  if (!sig) {
    throw new AirlockError("SIGNATURE_INVALID", `missing or malformed ${ANNOTATION_SIGNATURE} annotation`);
  }
  return verifyRekorBundle(a[ANNOTATION_BUNDLE], root, {
    signature: sig,
    spki: key.spki,
    artifactSha256: sha256Hex(layer.payload),
  });
}

/**
 * Verifies a signature made with a key (cosign `--key`): a legacy layer (`.sig` payload, or `.att` DSSE envelope)
 * or a sigstore bundle with `publicKey` material. The signature is checked with SHA-256 (ECDSA DER or raw, RSA
 * PKCS#1 v1.5, Ed25519); unless `ignoreTlog`, the Rekor evidence is required and checked offline
 * ({@linkcode verifyRekorBundleForKey} for layers; SET or inclusion proof plus body checks for bundles).
 *
 * @throws {AirlockError} `SIGNATURE_INVALID`, `TLOG_INVALID`, `BUNDLE_INVALID`, `KEY_INVALID`
 *
 * @example
 * ```ts
 * const r = await verifyWithKey(layer, { publicKey: pem, trustedRoot: root });
 * r.content.payload; // the simple-signing payload, for the digest claim
 * ```
 */
export async function verifyWithKey(
  entity: SignedEntityInput,
  options: VerifyWithKeyOptions,
): Promise<VerificationResult> {
  const key = keyOf(options.publicKey);
  if (isLayer(entity)) {
    let content: VerifiedContent;
    let ok = false;
    if (isDsseLayer(entity)) {
      const env = parseDsseEnvelope(entity.payload);
      const payload = base64Decode(env.payload)!;
      const pae = dssePae(env.payloadType, payload);
      for (const s of env.signatures) {
        if (await verifySignature(key, pae, base64Decode(s.sig)!)) ok = true;
      }
      content = { kind: "dsse", payloadType: env.payloadType, payload, envelope: env };
    } else {
      const sig = Object.hasOwn(entity.annotations, ANNOTATION_SIGNATURE)
        ? base64Decode(entity.annotations[ANNOTATION_SIGNATURE])
        : undefined;
      if (!sig) {
        throw new AirlockError(
          "SIGNATURE_INVALID",
          `missing or malformed ${ANNOTATION_SIGNATURE} annotation`,
        );
      }
      ok = await verifySignature(key, entity.payload, sig);
      content = { kind: "message", payload: entity.payload };
    }
    if (!ok) throw new AirlockError("SIGNATURE_INVALID", "the signature does not verify with the given key");
    const tlogEntries = options.ignoreTlog
      ? []
      : [await verifyRekorBundleForKey(entity, key, options.trustedRoot)];
    return { content, tlogEntries, timestamps: tlogEntries.map((e) => e.integratedTime) };
  }
  const root = options.trustedRoot ?? await publicGoodTrustedRoot();
  const p = await prepare(entity);
  if (p.bundle.verificationMaterial.content.$case !== "publicKey") {
    throw new AirlockError("SIGNATURE_INVALID", "the bundle is signed with a certificate, not a key");
  }
  const { entity: verified, kinds } = await runVerifier(
    p,
    { tlogThreshold: options.ignoreTlog ? 0 : 1, ctlogThreshold: 0, timestampThreshold: 0 },
    root,
    { spki: key.spki, keyObject: keyObjectOf(key) },
    "verification with the key failed",
  );
  return { content: p.content, tlogEntries: tlogInfo(verified, kinds), timestamps: verifiedTimes(verified) };
}
