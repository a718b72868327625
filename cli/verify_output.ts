/**
 * cosign's verification output (`PrintVerification`, `pkg/cosign/cli/verify/verify.go`): the `-o json` document
 * of `verify` and the certificate lines `verify` and `verify-attestation` print with `-o text`.
 *
 * @module
 */
import type { CertificateIdentity } from "../core/keyless/mod.ts";
import { base64Encode, goBase64Decode } from "../core/encoding/base64.ts";
import {
  decodeGoStruct,
  goInt,
  goJsonString,
  goString,
  jsonNodeToValue,
  parseJsonTree,
} from "../core/encoding/go_json.ts";
import { goMarshalAny, GoRawJson } from "../core/encoding/go_marshal.ts";
import { ANNOTATION_BUNDLE, ANNOTATION_RFC3161_TIMESTAMP } from "../core/signature/attachments.ts";
import { checkTree, claimsJson } from "../core/signature/cosign_claims.ts";
import type { VerifiedSignature } from "../core/verify.ts";

/**
 * cosign's `bundle.RekorBundle` read from the annotation with Go's lenient decoder and written back in struct
 * order; `undefined` when Go would fail to decode it (cosign then prints no `Bundle`).
 */
function rekorBundleJson(annotation: string): GoRawJson | undefined {
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
    return new GoRawJson(
      `{"SignedEntryTimestamp":${goJsonString(base64Encode(set))},"Payload":{"body":${goMarshalAny(body)},` +
        `"integratedTime":${integratedTime},"logIndex":${logIndex},"logID":${goJsonString(logID)}}}`,
    );
  } catch {
    return undefined;
  }
}

/** cosign's `bundle.RFC3161Timestamp` (`{"SignedRFC3161Timestamp": base64}`), or `undefined` if Go would fail. */
function rfc3161Json(annotation: string): GoRawJson | undefined {
  try {
    const tree = parseJsonTree(annotation, "SIGNATURE_INVALID");
    let token: Uint8Array = new Uint8Array();
    decodeGoStruct(tree, "bundle.RFC3161Timestamp", "RFC3161Timestamp", {
      SignedRFC3161Timestamp: (v) => {
        if (v.kind !== "null") token = goBase64Decode(goString(v, undefined, "", "SIGNATURE_INVALID"));
      },
    }, "SIGNATURE_INVALID");
    return new GoRawJson(`{"SignedRFC3161Timestamp":${goJsonString(base64Encode(token))}}`);
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
