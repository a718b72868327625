/**
 * DSSE envelopes and the in-toto statements they carry (cosign attestations, cosign v3 signatures): the
 * statement checks sigstore-js leaves to the caller (payload type, subject digest; spec/cosign.md §3, §5.6). The
 * pre-authentication encoding that is signed, `dssePae`, is in `../signature/attachments.ts`, shared with `attest`.
 *
 * @module
 */
import { AirlockError, errorMessage } from "../errors.ts";
import { IN_TOTO_PAYLOAD_TYPE } from "../signature/attachments.ts";

/** An in-toto statement (v0.1 or v1), as far as airlock reads it. */
export interface InTotoStatement {
  /** The statement type URI, e.g. `https://in-toto.io/Statement/v1`. */
  readonly _type: string;
  /** The artifacts the statement is about: optional name, digests by algorithm (`{ sha256: hex }`). */
  readonly subject: readonly {
    readonly name?: string;
    readonly digest: Readonly<Record<string, string>>;
    readonly annotations?: Readonly<Record<string, unknown>>;
  }[];
  /** URI naming the kind of predicate, e.g. `https://slsa.dev/provenance/v1`. */
  readonly predicateType: string;
  /** The predicate itself, as parsed JSON; its shape depends on `predicateType`. */
  readonly predicate?: unknown;
}

/**
 * Parses a verified DSSE payload as an in-toto statement. cosign requires the payload type
 * `application/vnd.in-toto+json`.
 *
 * @throws {AirlockError} `SIGNATURE_INVALID` for another payload type or a malformed statement
 *
 * @example
 * ```ts
 * const st = parseInTotoStatement(result.content.payloadType, result.content.payload);
 * st.predicateType; // "https://slsa.dev/provenance/v1"
 * ```
 */
export function parseInTotoStatement(payloadType: string, payload: Uint8Array): InTotoStatement {
  if (payloadType !== IN_TOTO_PAYLOAD_TYPE) {
    throw new AirlockError(
      "SIGNATURE_INVALID",
      `DSSE payload type ${payloadType}, not ${IN_TOTO_PAYLOAD_TYPE}`,
    );
  }
  let j: unknown;
  try {
    j = JSON.parse(new TextDecoder().decode(payload));
  } catch (e) {
    throw new AirlockError("SIGNATURE_INVALID", `in-toto statement is not JSON: ${errorMessage(e)}`, {
      cause: e,
    });
  }
  const o = j as Record<string, unknown> | null;
  if (!o || typeof o !== "object" || typeof o._type !== "string" || typeof o.predicateType !== "string") {
    throw new AirlockError("SIGNATURE_INVALID", "in-toto statement has no _type or predicateType");
  }
  const subject = Array.isArray(o.subject) ? o.subject : [];
  for (const s of subject) {
    if (!s || typeof s !== "object" || !s.digest || typeof s.digest !== "object") {
      throw new AirlockError("SIGNATURE_INVALID", "in-toto statement subject without digest");
    }
  }
  return o as unknown as InTotoStatement;
}

/**
 * Tells whether some subject of the statement has the digest (cosign `IntotoSubjectClaimVerifier`: a `sha256`
 * subject digest equal to the image digest). `digest` is `sha256:<hex>` or `<hex>` (then SHA-256).
 */
export function inTotoSubjectMatches(statement: InTotoStatement, digest: string): boolean {
  const i = digest.indexOf(":");
  const [alg, hex] = i < 0 ? ["sha256", digest] : [digest.slice(0, i), digest.slice(i + 1)];
  return statement.subject.some((s) => s.digest[alg] === hex);
}

/**
 * cosign's subject check of a verified attestation: some subject must carry the image's SHA-256 digest, and each
 * wanted annotation (`--annotations k=v`) must be on that subject with an equal value.
 *
 * @param digest the image digest, `sha256:<hex>`
 * @throws {AirlockError} `SIGNATURE_INVALID` `no matching subject digest found` or
 * `missing or incorrect annotation`.
 */
export function checkInTotoSubject(
  statement: InTotoStatement,
  digest: string,
  annotations?: Readonly<Record<string, string>>,
): void {
  const hex = digest.slice(digest.indexOf(":") + 1);
  const subject = statement.subject.find((s) => s.digest.sha256 === hex);
  if (subject === undefined) throw new AirlockError("SIGNATURE_INVALID", "no matching subject digest found");
  if (annotations === undefined) return;
  const have = subject.annotations ?? {};
  for (const [key, v] of Object.entries(annotations)) {
    if (!Object.hasOwn(have, key) || have[key] !== v) {
      throw new AirlockError("SIGNATURE_INVALID", "missing or incorrect annotation");
    }
  }
}
