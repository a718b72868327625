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

/** How a referrer bundle is verified: exactly one of `publicKey` and `identity`. */
export interface ReferrerBundleVerifyOptions {
  /** The key the bundle must verify with (`--key`). */
  readonly publicKey?: PublicKey;
  /** Keyless: who must have signed. */
  readonly identity?: IdentityPolicy;
  /** The sigstore trusted root; default the embedded public-good snapshot. */
  readonly trustedRoot?: SigstoreTrustedRoot;
  /** `--insecure-ignore-tlog`: no transparency-log entry is required. */
  readonly ignoreTlog?: boolean;
  /** `--insecure-ignore-sct` (keyless): no embedded SCT is required. */
  readonly ignoreSct?: boolean;
  /** `-a k=v`: the matching subject's annotations must hold every value. */
  readonly annotations?: Readonly<Record<string, string>>;
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
  opts: ReferrerBundleVerifyOptions,
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
