/**
 * What a Fulcio signing certificate says about its signer: every subject alternative name (cosign reads all
 * kinds, sigstore-js only URI and email), the OIDC issuer from both Fulcio OIDs, the GitHub workflow
 * extensions. Pure DER reading; the certificate's validity is checked elsewhere (sigstore-js, against the trusted
 * root).
 *
 * @module
 */
import { AirlockError } from "../errors.ts";
import { decodePem } from "../encoding/pem.ts";
import { type DerElement, oidToString, readDer, readDerOne } from "../encoding/der.ts";

/** Fulcio certificate extension OIDs (fulcio `docs/oid-info.md`). */
export const FULCIO_OID = {
  /** OIDC issuer, raw UTF-8 (deprecated but still written; the one cosign's legacy path reads). */
  ISSUER_V1: "1.3.6.1.4.1.57264.1.1",
  GITHUB_WORKFLOW_TRIGGER: "1.3.6.1.4.1.57264.1.2",
  GITHUB_WORKFLOW_SHA: "1.3.6.1.4.1.57264.1.3",
  GITHUB_WORKFLOW_NAME: "1.3.6.1.4.1.57264.1.4",
  GITHUB_WORKFLOW_REPOSITORY: "1.3.6.1.4.1.57264.1.5",
  GITHUB_WORKFLOW_REF: "1.3.6.1.4.1.57264.1.6",
  /** otherName SAN type for username identities. */
  OTHERNAME_SAN: "1.3.6.1.4.1.57264.1.7",
  /** OIDC issuer, DER UTF8String. */
  ISSUER_V2: "1.3.6.1.4.1.57264.1.8",
} as const;

const OID_SAN = "2.5.29.17";
const FULCIO_PREFIX = "1.3.6.1.4.1.57264.1.";

/** One subject alternative name. */
export interface SubjectAlternativeName {
  /** The GeneralName kind. `otherName` is only read for Fulcio's username type (`…57264.1.7`), as cosign does. */
  readonly type: "dns" | "email" | "ip" | "uri" | "otherName";
  /** The name; IP addresses in Go's `net.IP.String()` form. */
  readonly value: string;
}

/** The signer as a Fulcio certificate describes it. */
export interface CertificateIdentity {
  /** The first SAN in cosign's order (DNS, email, IP, URI, otherName); cosign prints it as `Subject`. */
  readonly subject: string;
  /** Every SAN, in certificate order. */
  readonly subjectAlternativeNames: readonly SubjectAlternativeName[];
  /** OIDC issuer from `1.3.6.1.4.1.57264.1.1` (what cosign prints as `Issuer`). */
  readonly issuer?: string;
  /** OIDC issuer from `1.3.6.1.4.1.57264.1.8`. */
  readonly issuerV2?: string;
  /** GitHub workflow trigger, the event name such as `push` (`.1.2`), raw value. */
  readonly githubWorkflowTrigger?: string;
  /** GitHub workflow commit SHA (`.1.3`), raw value. */
  readonly githubWorkflowSha?: string;
  /** GitHub workflow name (`.1.4`), raw value. */
  readonly githubWorkflowName?: string;
  /** GitHub workflow repository, `owner/name` (`.1.5`), raw value. */
  readonly githubWorkflowRepository?: string;
  /** GitHub workflow git ref, e.g. `refs/heads/main` (`.1.6`), raw value. */
  readonly githubWorkflowRef?: string;
  /** Every Fulcio extension (`1.3.6.1.4.1.57264.1.*`) by OID: raw text for `.1.1`–`.1.6`, decoded UTF8String for `.1.8`+. */
  readonly fulcioExtensions: Readonly<Record<string, string>>;
  /** Start of the certificate's validity period. */
  readonly notBefore: Date;
  /** End of the certificate's validity period (Fulcio issues 10-minute certificates). */
  readonly notAfter: Date;
  /** The SubjectPublicKeyInfo, DER. */
  readonly spki: Uint8Array;
  /** The whole certificate, DER. */
  readonly der: Uint8Array;
}

function certError(detail: string): AirlockError {
  return new AirlockError("CERTIFICATE_INVALID", `signing certificate: ${detail}`);
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

function text(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch {
    return new TextDecoder("latin1").decode(bytes);
  }
}

function parseTime(el: DerElement): Date {
  const s = new TextDecoder("latin1").decode(el.value);
  // UTCTime YYMMDDHHMMSSZ; GeneralizedTime YYYYMMDDHHMMSS[.f]Z
  const m = el.tag === 0x17
    ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s)
    : /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.\d+)?Z$/.exec(s);
  if (!m) throw new Error(`bad time ${s}`);
  let year = Number(m[1]);
  if (el.tag === 0x17) year += year < 50 ? 2000 : 1900;
  return new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
}

/** Go's `net.IP.String()`: dotted quad, or RFC 5952 IPv6 (longest run of zero groups, ≥2, becomes `::`). */
function formatIp(b: Uint8Array): string {
  if (b.length === 4) return [...b].join(".");
  if (b.length !== 16) return "?" + [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  const isV4Mapped = b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
  if (isV4Mapped) return [...b.subarray(12)].join(".");
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b[i] * 256 + b[i + 1]);
  let bestStart = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) [bestStart, bestLen] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  return hex.slice(0, bestStart).join(":") + "::" + hex.slice(bestStart + bestLen).join(":");
}

function parseSans(extnValue: Uint8Array): SubjectAlternativeName[] {
  const out: SubjectAlternativeName[] = [];
  for (const gn of readDer(readDerOne(extnValue, 0x30).value)) {
    switch (gn.tag) {
      case 0x81:
        out.push({ type: "email", value: text(gn.value) });
        break;
      case 0x82:
        out.push({ type: "dns", value: text(gn.value) });
        break;
      case 0x86:
        out.push({ type: "uri", value: text(gn.value) });
        break;
      case 0x87:
        out.push({ type: "ip", value: formatIp(gn.value) });
        break;
      case 0xa0: {
        // otherName ::= SEQUENCE { type-id OID, value [0] EXPLICIT ANY } (IMPLICIT tag on the SEQUENCE)
        const [typeId, value] = readDer(gn.value);
        if (typeId?.tag !== 0x06 || value?.tag !== 0xa0) break;
        if (oidToString(typeId.value) !== FULCIO_OID.OTHERNAME_SAN) break;
        const inner = readDer(value.value)[0];
        if (inner?.tag === 0x0c) out.push({ type: "otherName", value: text(inner.value) });
        break;
      }
    }
  }
  return out;
}

const COSIGN_SAN_ORDER: readonly SubjectAlternativeName["type"][] = [
  "dns",
  "email",
  "ip",
  "uri",
  "otherName",
];

/**
 * The SAN cosign prints as `Subject`: the first DNS name, else email, else IP, else URI, else otherName
 * (sigstore `cryptoutils.GetSubjectAlternateNames` order). `""` when there is none.
 */
export function cosignSubject(sans: readonly SubjectAlternativeName[]): string {
  for (const t of COSIGN_SAN_ORDER) {
    const s = sans.find((x) => x.type === t);
    if (s) return s.value;
  }
  return "";
}

/**
 * The SAN sigstore-go (cosign's new-bundle path) matches identities against: the first URI, else email, else
 * otherName. DNS and IP names are not considered. `undefined` when there is none.
 */
export function sigstoreGoSubject(sans: readonly SubjectAlternativeName[]): string | undefined {
  for (const t of ["uri", "email", "otherName"] as const) {
    const s = sans.find((x) => x.type === t);
    if (s) return s.value;
  }
  return undefined;
}

/**
 * Tells whether a certificate (DER) names itself as its issuer (a root or other self-issued certificate).
 * `false` for bytes that are not a certificate.
 */
export function isSelfSigned(der: Uint8Array): boolean {
  try {
    const tbs = readDer(readDerOne(der, 0x30).value)[0];
    const fields = readDer(tbs.value);
    const i = fields[0]?.tag === 0xa0 ? 1 : 0;
    const issuer = fields[i + 2].raw, subject = fields[i + 4].raw;
    return issuer.length === subject.length && issuer.every((b, k) => b === subject[k]);
  } catch {
    return false;
  }
}

/**
 * Reads the signer identity out of a certificate (DER, or PEM whose first block is the certificate).
 *
 * @throws {AirlockError} `CERTIFICATE_INVALID` when the certificate cannot be parsed
 *
 * @example
 * ```ts
 * const id = parseCertificateIdentity(layer.annotations["dev.sigstore.cosign/certificate"]);
 * id.subject; // "mitr@redhat.com"
 * ```
 */
export function parseCertificateIdentity(cert: Uint8Array | string): CertificateIdentity {
  let der: Uint8Array;
  if (typeof cert === "string") {
    const block = decodePem(cert);
    if (!block || block.type !== "CERTIFICATE") throw certError("not a PEM certificate");
    der = block.bytes;
  } else der = cert;
  try {
    const certSeq = readDerOne(der, 0x30);
    const tbs = readDer(certSeq.value)[0];
    if (tbs?.tag !== 0x30) throw new Error("no TBSCertificate");
    const fields = readDer(tbs.value);
    let i = fields[0]?.tag === 0xa0 ? 1 : 0; // [0] version
    i += 3; // serialNumber, signature, issuer
    const validity = readDer(fields[i++].value);
    i++; // subject
    const spki = fields[i++];
    if (spki?.tag !== 0x30) throw new Error("no SubjectPublicKeyInfo");
    const extsField = fields.slice(i).find((f) => f.tag === 0xa3);
    const sans: SubjectAlternativeName[] = [];
    const fulcio: Record<string, string> = {};
    if (extsField) {
      for (const ext of readDer(readDerOne(extsField.value, 0x30).value)) {
        const parts = readDer(ext.value);
        const oid = oidToString(parts[0].value);
        const value = parts[parts.length - 1];
        if (value.tag !== 0x04) throw new Error(`extension ${oid}: no extnValue`);
        if (oid === OID_SAN) sans.push(...parseSans(value.value));
        else if (oid.startsWith(FULCIO_PREFIX)) {
          const arc = Number(oid.slice(FULCIO_PREFIX.length));
          if (arc >= 8) {
            const inner = readDer(value.value)[0];
            fulcio[oid] = inner?.tag === 0x0c ? text(inner.value) : text(value.value);
          } else fulcio[oid] = text(value.value);
        }
      }
    }
    return {
      subject: cosignSubject(sans),
      subjectAlternativeNames: sans,
      issuer: fulcio[FULCIO_OID.ISSUER_V1],
      issuerV2: fulcio[FULCIO_OID.ISSUER_V2],
      githubWorkflowTrigger: fulcio[FULCIO_OID.GITHUB_WORKFLOW_TRIGGER],
      githubWorkflowSha: fulcio[FULCIO_OID.GITHUB_WORKFLOW_SHA],
      githubWorkflowName: fulcio[FULCIO_OID.GITHUB_WORKFLOW_NAME],
      githubWorkflowRepository: fulcio[FULCIO_OID.GITHUB_WORKFLOW_REPOSITORY],
      githubWorkflowRef: fulcio[FULCIO_OID.GITHUB_WORKFLOW_REF],
      fulcioExtensions: fulcio,
      notBefore: parseTime(validity[0]),
      notAfter: parseTime(validity[1]),
      spki: spki.raw,
      der,
    };
  } catch (e) {
    if (e instanceof AirlockError) throw e;
    throw certError(`cannot parse: ${(e as Error).message}`);
  }
}
