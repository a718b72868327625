/**
 * Verifying a sigstore bundle stored as an OCI referrer (cosign v3's layout, `referrer_bundles.ts` reads them):
 * the bundle with the key or keyless, then cosign's `IntotoSubjectClaimVerifier`. The sigstore engine
 * (`core/keyless/`) is loaded on first use, so importing this module stays cheap.
 *
 * @module
 */
import { AirlockError } from "../errors.ts";
import type {
  CertificateIdentity,
  IdentityPolicy,
  InTotoStatement,
  SigstoreTrustedRoot,
} from "../keyless/mod.ts";
import type { PublicKey } from "./public_key.ts";

/**
 * Who and what a signature must be trusted by, for `verify`, `verify-attestation` and referrer bundles alike:
 * exactly one of `publicKey` and `identity`.
 */
export interface TrustOptions {
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
   * `-a k=v`: every key must be in the payload's `optional` (or the matching subject's annotations) with exactly
   * this string value. `undefined` (no `-a`) checks nothing.
   */
  readonly annotations?: Readonly<Record<string, string>>;
  /** `--insecure-ignore-tlog`: accept signatures without a verified transparency-log entry. */
  readonly ignoreTlog?: boolean;
}

/** What verifying a referrer bundle (any predicate type) yields. */
export interface VerifiedBundle {
  /** The in-toto statement the envelope holds (its subject names the digest). */
  readonly statement: InTotoStatement;
  /** The verified in-toto statement bytes. */
  readonly payload: Uint8Array;
  /** The verified DSSE envelope. */
  readonly envelope: {
    payloadType: string;
    payload: string;
    signatures: readonly { keyid?: string; sig: string }[];
  };
  /** Keyless: the signer the certificate names. */
  readonly signer?: CertificateIdentity;
  /** Whether a transparency-log entry verified (never with `ignoreTlog`). */
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
  opts: TrustOptions,
): Promise<VerifiedBundle> {
  const k = await import("../keyless/mod.ts");
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
