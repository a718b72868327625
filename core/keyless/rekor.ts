/**
 * Rekor evidence as cosign stores it, checked offline: the `dev.sigstore.cosign/bundle` annotation (a signed entry
 * timestamp, SET), the SET signature against the trusted root's log keys, and the entry body against what was
 * signed (cosign `VerifyBundle`: `compareSigs`, `comparePublicKey`, `bundleHash`; spec/cosign.md §1.5, §2.3–2.5).
 *
 * sigstore-js checks the body's signature and digest but never its public key or certificate, and it reads
 * neither `rekord` nor `intoto` v0.0.1 bodies; {@linkcode checkRekorBody} covers all of them.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import nodeCrypto from "node:crypto";
import { AirlockError, errorMessage } from "../errors.ts";
import { base64Decode } from "../encoding/base64.ts";
import { decodePem } from "../encoding/pem.ts";
import { parsePublicKeyPem } from "../signature/public_key.ts";
import { parseCertificateIdentity } from "./certificate.ts";
import type { SigstoreTrustedRoot } from "./trusted_root.ts";

/** The `dev.sigstore.cosign/bundle` annotation (cosign `pkg/cosign/bundle/rekor.go`). */
export interface RekorBundleAnnotation {
  /** Base64 DER signature of the log over the entry (`SignedEntryTimestamp`). */
  readonly signedEntryTimestamp: string;
  /** Base64 of the canonicalized entry body, exactly as stored (never re-encoded). */
  readonly body: string;
  /** Seconds since the epoch. */
  readonly integratedTime: number;
  readonly logIndex: number;
  /** Lowercase hex SHA-256 of the log's public key (DER SPKI). */
  readonly logId: string;
}

/** A verified log entry. */
export interface RekorEntryInfo {
  /** The entry's index in the log. */
  readonly logIndex: number;
  /** When the log integrated the entry (its `integratedTime`, whole seconds). */
  readonly integratedTime: Date;
  /** Lowercase hex log ID. */
  readonly logId: string;
  /** Entry kind and version, from the body (`hashedrekord` / `0.0.1`, `dsse`, `intoto`, `rekord`). */
  readonly kind: string;
  /** Entry `apiVersion`, from the body (e.g. `0.0.1`). */
  readonly version: string;
}

/** What the entry body must agree with (each check runs only when its field is given). */
export interface RekorBodyExpectations {
  /** The raw signature (not base64): must be the body's signature. */
  readonly signature?: Uint8Array;
  /** SubjectPublicKeyInfo (DER) of the signing key: the body's key, or its certificate's key, must be this one. */
  readonly spki?: Uint8Array;
  /** The signing certificate (DER): when the body holds a certificate it must be this one. */
  readonly certificate?: Uint8Array;
  /** Hex SHA-256 of the signed artifact (`hashedrekord`/`rekord` `data.hash`). */
  readonly artifactSha256?: string;
  /** Hex SHA-256 of the DSSE payload (`dsse`/`intoto` `payloadHash`). */
  readonly payloadSha256?: string;
  /** Hex SHA-256 of the envelope bytes as stored in the layer (`dsse` `envelopeHash`, `intoto` `content.hash`). */
  readonly envelopeSha256?: string;
}

function tlogError(detail: string, cause?: unknown): AirlockError {
  return new AirlockError("TLOG_INVALID", detail, { cause });
}

function hex(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Lowercase hex SHA-256 of `bytes`.
 */
export function sha256Hex(bytes: Uint8Array): string {
  return nodeCrypto.createHash("sha256").update(bytes).digest("hex");
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * Parses a `dev.sigstore.cosign/bundle` annotation.
 *
 * @throws {AirlockError} `BUNDLE_INVALID` when it is not the JSON cosign writes
 *
 * @example
 * ```ts
 * const rk = parseRekorBundleAnnotation(layer.annotations["dev.sigstore.cosign/bundle"]);
 * rk.logIndex; // 11605770
 * ```
 */
export function parseRekorBundleAnnotation(text: string): RekorBundleAnnotation {
  const fail = (d: string) =>
    new AirlockError("BUNDLE_INVALID", `dev.sigstore.cosign/bundle annotation: ${d}`);
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (e) {
    throw fail(`not JSON: ${errorMessage(e)}`);
  }
  const o = j as { SignedEntryTimestamp?: unknown; Payload?: Record<string, unknown> } | null;
  const p = o?.Payload;
  if (!o || typeof o !== "object" || !p || typeof p !== "object") throw fail("no Payload");
  if (typeof o.SignedEntryTimestamp !== "string" || !base64Decode(o.SignedEntryTimestamp)) {
    throw fail("SignedEntryTimestamp is not base64");
  }
  if (typeof p.body !== "string" || !base64Decode(p.body)) throw fail("Payload.body is not base64");
  for (const k of ["integratedTime", "logIndex"]) {
    if (typeof p[k] !== "number" || !Number.isSafeInteger(p[k]) || (p[k] as number) < 0) {
      throw fail(`Payload.${k} is not a non-negative integer`);
    }
  }
  if (typeof p.logID !== "string" || !/^[0-9a-f]{64}$/.test(p.logID)) {
    throw fail("Payload.logID is not hex SHA-256");
  }
  return {
    signedEntryTimestamp: o.SignedEntryTimestamp,
    body: p.body,
    integratedTime: p.integratedTime as number,
    logIndex: p.logIndex as number,
    logId: p.logID,
  };
}

/**
 * Verifies a SET offline: the JCS-canonical `{body, integratedTime, logID, logIndex}` must be signed by a log of
 * the trusted root whose log ID matches and whose key was valid at `integratedTime` (sigstore-go
 * `tlog.VerifySET`). Uses an explicit digest, so it does not depend on the crypto shim.
 *
 * @throws {AirlockError} `TLOG_INVALID`
 */
export function verifyRekorSet(rk: RekorBundleAnnotation, root: SigstoreTrustedRoot): void {
  const when = new Date(rk.integratedTime * 1000);
  const logs = root.root.tlogs.filter((t) => t.logId && hex(t.logId.keyId) === rk.logId);
  if (logs.length === 0) {
    throw tlogError(
      `Rekor entry ${rk.logIndex}: log ${rk.logId} is not in the trusted root (${root.source})`,
    );
  }
  const valid = logs.filter((t) => {
    const v = t.publicKey?.validFor;
    return v?.start !== undefined && v.start <= when && (v.end === undefined || when <= v.end);
  });
  if (valid.length === 0) {
    throw tlogError(
      `Rekor entry ${rk.logIndex}: the log key was not valid at its integrated time ${when.toISOString()}`,
    );
  }
  // JCS canonical form: keys sorted, compact; the values are a base64 string, integers and a hex string.
  const data = Buffer.from(
    JSON.stringify({
      body: rk.body,
      integratedTime: rk.integratedTime,
      logID: rk.logId,
      logIndex: rk.logIndex,
    }),
  );
  const sig = Buffer.from(base64Decode(rk.signedEntryTimestamp)!);
  const ok = valid.some((t) => {
    try {
      // PublicKeyDetails 1 and 2 are PKCS#1 RSA keys; every other kind is a PKIX SubjectPublicKeyInfo.
      const pkcs1 = (t.publicKey!.keyDetails as number) === 1 || (t.publicKey!.keyDetails as number) === 2;
      const key = nodeCrypto.createPublicKey({
        key: Buffer.from(t.publicKey!.rawBytes!),
        format: "der",
        type: pkcs1 ? "pkcs1" : "spki",
      });
      return nodeCrypto.verify(key.asymmetricKeyType === "ed25519" ? null : "sha256", data, key, sig);
    } catch {
      return false;
    }
  });
  if (!ok) throw tlogError(`Rekor entry ${rk.logIndex}: the signed entry timestamp does not verify`);
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (v && typeof v === "object" && !Array.isArray(v) ? v as Json : {});
const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);

/** What a body says, whatever its kind. */
interface BodyClaims {
  kind: string;
  version: string;
  signatures: Uint8Array[];
  /** PEM texts (v0.0.1 kinds) or DER (Rekor v2 kinds) of the verifying key or certificate. */
  materials: { pem?: string; der?: Uint8Array; isCertificate?: boolean }[];
  artifactHash?: { algorithm: string; hex: string };
  payloadHash?: { algorithm: string; hex: string };
  envelopeHash?: { algorithm: string; hex: string };
}

function b64(s: unknown, what: string): Uint8Array {
  const v = typeof s === "string" ? base64Decode(s) : undefined;
  if (!v) throw tlogError(`Rekor entry body: ${what} is not base64`);
  return v;
}

function pemOf(s: unknown, what: string): { pem: string } {
  return { pem: new TextDecoder().decode(b64(s, what)) };
}

function hashOf(h: unknown): { algorithm: string; hex: string } | undefined {
  const o = obj(h);
  const algorithm = str(o.algorithm);
  if (algorithm === undefined) return undefined;
  if (typeof o.value === "string") return { algorithm: algorithm.toLowerCase(), hex: o.value.toLowerCase() };
  if (typeof o.digest === "string") {
    const alg = algorithm === "SHA2_256" ? "sha256" : algorithm.toLowerCase();
    return { algorithm: alg, hex: hex(b64(o.digest, "digest")) };
  }
  return undefined;
}

function v2Material(verifier: unknown): { der?: Uint8Array; isCertificate?: boolean } {
  const v = obj(verifier);
  if (v.x509Certificate) {
    return { der: b64(obj(v.x509Certificate).rawBytes, "certificate"), isCertificate: true };
  }
  if (v.publicKey) return { der: b64(obj(v.publicKey).rawBytes, "public key"), isCertificate: false };
  return {};
}

function readBody(body: Uint8Array): BodyClaims {
  let j: Json;
  try {
    j = obj(JSON.parse(new TextDecoder().decode(body)));
  } catch (e) {
    throw tlogError(`Rekor entry body is not JSON: ${errorMessage(e)}`);
  }
  const kind = str(j.kind) ?? "";
  const version = str(j.apiVersion) ?? "";
  const spec = obj(j.spec);
  const c: BodyClaims = { kind, version, signatures: [], materials: [] };
  const key = `${kind}/${version}`;
  switch (key) {
    case "hashedrekord/0.0.1":
    case "rekord/0.0.1": {
      const sig = obj(spec.signature);
      c.signatures.push(b64(sig.content, "signature"));
      c.materials.push(pemOf(obj(sig.publicKey).content, "public key"));
      c.artifactHash = hashOf(obj(spec.data).hash);
      break;
    }
    case "dsse/0.0.1": {
      for (const s of Array.isArray(spec.signatures) ? spec.signatures : []) {
        c.signatures.push(b64(obj(s).signature, "signature"));
        c.materials.push(pemOf(obj(s).verifier, "verifier"));
      }
      c.payloadHash = hashOf(spec.payloadHash);
      c.envelopeHash = hashOf(spec.envelopeHash);
      break;
    }
    case "intoto/0.0.1": {
      c.materials.push(pemOf(spec.publicKey, "public key"));
      c.envelopeHash = hashOf(obj(spec.content).hash);
      c.payloadHash = hashOf(obj(spec.content).payloadHash);
      break;
    }
    case "intoto/0.0.2": {
      const content = obj(spec.content);
      for (
        const s of Array.isArray(obj(content.envelope).signatures)
          ? obj(content.envelope).signatures as []
          : []
      ) {
        // intoto v0.0.2 stores base64(base64(signature))
        const once = b64(obj(s).sig, "signature");
        const twice = base64Decode(new TextDecoder().decode(once));
        c.signatures.push(twice ?? once);
        c.materials.push(pemOf(obj(s).publicKey, "public key"));
      }
      c.envelopeHash = hashOf(content.hash);
      c.payloadHash = hashOf(content.payloadHash);
      break;
    }
    case "hashedrekord/0.0.2": {
      const h = obj(spec.hashedRekordV002);
      const sig = obj(h.signature);
      c.signatures.push(b64(sig.content, "signature"));
      c.materials.push(v2Material(sig.verifier));
      c.artifactHash = hashOf(h.data);
      break;
    }
    case "dsse/0.0.2": {
      const d = obj(spec.dsseV002);
      for (const s of Array.isArray(d.signatures) ? d.signatures : []) {
        c.signatures.push(b64(obj(s).content, "signature"));
        c.materials.push(v2Material(obj(s).verifier));
      }
      c.payloadHash = hashOf(d.payloadHash);
      break;
    }
    default:
      throw tlogError(`Rekor entry body: unsupported kind ${key}`);
  }
  return c;
}

/** The SPKI of a body's key material, and the certificate DER when it is one. */
function materialKey(m: BodyClaims["materials"][number]): { spki: Uint8Array; certificate?: Uint8Array } {
  if (m.pem !== undefined) {
    const block = decodePem(m.pem);
    if (block?.type === "CERTIFICATE") {
      return { spki: parseCertificateIdentity(block.bytes).spki, certificate: block.bytes };
    }
    return { spki: parsePublicKeyPem(m.pem).spki };
  }
  if (m.der !== undefined) {
    if (m.isCertificate) return { spki: parseCertificateIdentity(m.der).spki, certificate: m.der };
    return { spki: m.der };
  }
  throw new Error("no key");
}

/**
 * Checks a Rekor entry body (the decoded canonicalized body) against what was signed, as cosign does: the body
 * must be a supported kind; its signature must be the signature; its public key must be the signing key (PEM →
 * DER compare; for a certificate, the same certificate); its hashes must match. `hashedrekord`/`rekord` hashes
 * must be SHA-256, as cosign requires.
 *
 * @returns the body's kind and version
 * @throws {AirlockError} `TLOG_INVALID` naming the first mismatch
 */
export function checkRekorBody(
  body: Uint8Array,
  expect: RekorBodyExpectations,
): { kind: string; version: string } {
  const c = readBody(body);
  const where = `Rekor entry body (${c.kind} ${c.version})`;
  let index = 0;
  if (expect.signature !== undefined) {
    index = c.signatures.findIndex((s) => equalBytes(s, expect.signature!));
    if (c.signatures.length > 0 && index < 0) throw tlogError(`${where}: the signature does not match`);
    index = Math.max(index, 0);
  }
  if (expect.spki !== undefined || expect.certificate !== undefined) {
    const m = c.materials[index];
    let key: { spki: Uint8Array; certificate?: Uint8Array };
    try {
      if (!m) throw new Error("no key in the entry");
      key = materialKey(m);
    } catch (e) {
      throw tlogError(`${where}: cannot read its public key: ${errorMessage(e)}`, e);
    }
    if (expect.certificate !== undefined && key.certificate !== undefined) {
      if (!equalBytes(key.certificate, expect.certificate)) {
        throw tlogError(`${where}: its certificate is not the signing certificate`);
      }
    } else if (expect.spki !== undefined && !equalBytes(key.spki, expect.spki)) {
      throw tlogError(`${where}: its public key is not the signing key`);
    }
  }
  const hashCheck = (h: BodyClaims["artifactHash"], want: string | undefined, what: string) => {
    if (want === undefined || h === undefined) {
      if (want !== undefined && h === undefined && what === "artifact") {
        throw tlogError(`${where}: no ${what} hash`);
      }
      return;
    }
    if (h.algorithm !== "sha256") {
      throw tlogError(`${where}: ${what} hash algorithm ${h.algorithm}, not sha256`);
    }
    if (h.hex !== want.toLowerCase()) throw tlogError(`${where}: the ${what} hash does not match`);
  };
  hashCheck(c.artifactHash, expect.artifactSha256, "artifact");
  hashCheck(c.payloadHash, expect.payloadSha256, "payload");
  hashCheck(c.envelopeHash, expect.envelopeSha256, "envelope");
  return { kind: c.kind, version: c.version };
}

/**
 * Everything cosign checks about a layer's Rekor bundle, offline: the SET against the trusted root, then the
 * body against the layer ({@linkcode checkRekorBody}).
 *
 * @throws {AirlockError} `BUNDLE_INVALID` (malformed annotation), `TLOG_INVALID`
 */
export function verifyRekorBundle(
  annotation: string,
  root: SigstoreTrustedRoot,
  expect: RekorBodyExpectations,
): RekorEntryInfo {
  const rk = parseRekorBundleAnnotation(annotation);
  verifyRekorSet(rk, root);
  const { kind, version } = checkRekorBody(base64Decode(rk.body)!, expect);
  return {
    logIndex: rk.logIndex,
    integratedTime: new Date(rk.integratedTime * 1000),
    logId: rk.logId,
    kind,
    version,
  };
}
