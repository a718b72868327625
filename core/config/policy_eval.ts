/**
 * Policy evaluation (containers/image `signature/policy_eval.go`, `policy_eval_sigstore.go`), per manifest: the
 * requirements of the most specific scope of transport `docker` apply (`policy_scopes.ts`), and **all** of them
 * must allow the image. A `sigstoreSigned` requirement accepts the image when one of its sigstore signatures
 * verifies with a trusted key, names the manifest's digest and carries an identity its `signedIdentity` accepts.
 *
 * What airlock does not evaluate (yet), with a clear rejection instead of a silent pass: `signedBy` (GPG simple
 * signing), `signedBaseLayer` (containers/image has no implementation either), and `sigstoreSigned` requirements
 * with `fulcio`, `pki` or `rekorPublicKey*` (keyless and Rekor checks, planned).
 *
 * @module
 */
import { AirlockError, type ErrorCode, errorMessage } from "../errors.ts";
import { formatReference, type Reference } from "../reference.ts";
import { goBase64Decode } from "../encoding/base64.ts";
import { SIMPLE_SIGNING_MEDIA_TYPE } from "../signature/attachments.ts";
import { goQuote } from "../encoding/go_quote.ts";
import { parseSimpleSigningPayload } from "../signature/payload.ts";
import { parsePublicKeyPem, type PublicKey, verifySignature } from "../signature/public_key.ts";
import { goOpenError } from "./policy_config.ts";
import { matchesDockerReference } from "./policy_reference_match.ts";
import { requirementsFor } from "./policy_scopes.ts";
import type { Policy, PolicyRequirement, SigstoreSignedRequirement } from "./policy_types.ts";

/**
 * A signature as read from storage, not trusted yet.
 */
export type UntrustedSignature =
  | {
    /** A sigstore signature (a layer of a `.sig` attachment). */
    readonly kind: "sigstore";
    /** The layer media type; only simple-signing layers are signatures. */
    readonly mimeType: string;
    /** The payload bytes (the signed message). */
    readonly payload: Uint8Array;
    /** The layer annotations (the signature, certificates, bundles). */
    readonly annotations: Readonly<Record<string, string>>;
  }
  /** A simple-signing (GPG) signature from lookaside storage; airlock never reads these, they are only counted. */
  | { readonly kind: "simple-signing" };

/** One manifest as the evaluator sees it. Implementations should cache what they fetch. */
export interface PolicyImage {
  /** The image as named for this manifest: `host/repo:tag`, or `host/repo@digest` for list children. */
  readonly reference: Reference;
  /** The manifest's sha256 digest (`sha256:…`), already verified against the bytes. */
  readonly manifestDigest: string;
  /**
   * The signatures of the manifest: all at once, or one at a time (each call reads them again, so that a reader
   * need not hold every payload); may throw (the image is then rejected with it).
   */
  signatures(): Promise<readonly UntrustedSignature[]> | AsyncIterable<UntrustedSignature>;
}

/**
 * The outcome of evaluating a policy for one manifest.
 *
 * @example
 * ```ts
 * const d = await evaluator.isRunningImageAllowed(image);
 * if (!d.allowed) log.error(d.error.message);
 * ```
 */
export type PolicyDecision =
  | { readonly allowed: true; readonly scope: string }
  | { readonly allowed: false; readonly scope: string; readonly error: AirlockError };

/** Options of {@linkcode PolicyEvaluator}. */
export interface PolicyEvaluatorOptions {
  /** Reads key files (default `Deno.readFile`); for tests. */
  readonly readFile?: (path: string) => Promise<Uint8Array>;
}

type TrustRoot = { readonly keys: readonly PublicKey[] } | { readonly error: AirlockError };

const VERIFIER_ERROR: Readonly<Record<PublicKey["algorithm"], string>> = {
  ecdsa: "invalid signature when validating ASN.1 encoded signature",
  rsa: "crypto/rsa: verification error",
  ed25519: "failed to verify signature",
};

/** The rejection reason of one signature, with the error kind. */
function reject(code: ErrorCode, message: string): AirlockError {
  return new AirlockError(code, message);
}

/**
 * Evaluates a {@linkcode Policy} for one manifest at a time (containers/image `PolicyContext.IsRunningImageAllowed`).
 * Key material is read and parsed once per requirement and reused for every manifest of the run (containers/image
 * re-reads the key file for each signature; the outcome is the same unless the file changes during the run).
 *
 * @example
 * ```ts
 * const evaluator = new PolicyEvaluator(hangarValidatePolicy({ keyPath: "cosign.pub" }));
 * const decision = await evaluator.isRunningImageAllowed(image);
 * ```
 */
export class PolicyEvaluator {
  /** The policy evaluated. */
  readonly policy: Policy;
  readonly #readFile: (path: string) => Promise<Uint8Array>;
  readonly #roots = new WeakMap<SigstoreSignedRequirement, Promise<TrustRoot>>();

  /**
   * Creates an evaluator for `policy`; nothing is read until the first evaluation.
   *
   * @param policy the policy
   * @param options how key files are read
   */
  constructor(policy: Policy, options: PolicyEvaluatorOptions = {}) {
    this.policy = policy;
    this.#readFile = options.readFile ?? ((p) => Deno.readFile(p));
  }

  /** All requirements of the image's scope must allow it; the first that does not gives the reason. */
  async isRunningImageAllowed(image: PolicyImage): Promise<PolicyDecision> {
    const { scope, requirements } = requirementsFor(this.policy, image.reference);
    if (requirements.length === 0) {
      return {
        allowed: false,
        scope,
        error: reject("CONFIG_INVALID", "List of verification policy requirements must not be empty"),
      };
    }
    for (const req of requirements) {
      const error = await this.#requirement(req, image);
      if (error) return { allowed: false, scope, error };
    }
    return { allowed: true, scope };
  }

  /** `undefined` when the requirement allows the image, else why not. */
  async #requirement(req: PolicyRequirement, image: PolicyImage): Promise<AirlockError | undefined> {
    switch (req.type) {
      case "insecureAcceptAnything":
        return undefined;
      case "reject":
        return reject(
          "POLICY_REJECTED",
          `Running image docker://${formatReference(image.reference)} is rejected by policy.`,
        );
      case "signedBy":
        return reject(
          "POLICY_UNSUPPORTED",
          `policy requirement "signedBy" (${req.keyType} simple signing) is not supported by airlock; ` +
            `use "sigstoreSigned"`,
        );
      case "signedBaseLayer":
        return reject("POLICY_UNSUPPORTED", "signedBaseLayer not implemented yet!");
      case "sigstoreSigned":
        return await this.#sigstoreSigned(req, image);
    }
  }

  async #sigstoreSigned(
    req: SigstoreSignedRequirement,
    image: PolicyImage,
  ): Promise<AirlockError | undefined> {
    // Only the code and text of each rejection are kept (an error object holds its stack: 1000 of them per manifest
    // would be megabytes).
    const rejections: { readonly code: ErrorCode; readonly message: string }[] = [];
    let nonSigstore = 0;
    let nonAttachments = 0;
    let accepted = false;
    try {
      // containers/image reads every signature before judging any: one that cannot be read rejects the image even
      // after another was accepted. Read one at a time, each payload is dropped once judged.
      for await (const sig of await image.signatures()) {
        if (accepted) continue;
        if (sig.kind !== "sigstore") {
          nonSigstore++;
          continue;
        }
        if (sig.mimeType !== SIMPLE_SIGNING_MEDIA_TYPE) {
          nonAttachments++;
          continue;
        }
        const reason = await this.#signature(req, image, sig);
        if (reason === undefined) accepted = true; // one accepted signature is enough
        else rejections.push({ code: reason.code, message: reason.message });
      }
    } catch (e) {
      return e instanceof AirlockError ? e : reject("REGISTRY_ERROR", errorMessage(e));
    }
    if (accepted) return undefined;
    if (rejections.length === 0) {
      const counters = nonSigstore === 0 && nonAttachments === 0
        ? ""
        : ` (${nonSigstore} non-sigstore signatures, ${nonAttachments} sigstore non-signature attachments)`;
      return reject("SIGNATURE_MISSING", `A signature was required, but no signature exists${counters}`);
    }
    if (rejections.length === 1) return reject(rejections[0].code, rejections[0].message);
    const code = rejections.every((r) => r.code === rejections[0].code)
      ? rejections[0].code
      : "SIGNATURE_INVALID";
    return reject(
      code,
      `None of the signatures were accepted, reasons: ${rejections.map((r) => r.message).join("; ")}`,
    );
  }

  /** One signature, in containers/image's order: keys, annotation, base64, crypto, payload, digest, identity. */
  async #signature(
    req: SigstoreSignedRequirement,
    image: PolicyImage,
    sig: Extract<UntrustedSignature, { kind: "sigstore" }>,
  ): Promise<AirlockError | undefined> {
    const root = await this.#trustRoot(req);
    if ("error" in root) return root.error;
    if (!Object.hasOwn(sig.annotations, "dev.cosignproject.cosign/signature")) {
      return reject("SIGNATURE_INVALID", "missing dev.cosignproject.cosign/signature annotation");
    }
    let signature: Uint8Array;
    try {
      signature = goBase64Decode(sig.annotations["dev.cosignproject.cosign/signature"]);
    } catch (e) {
      return reject("SIGNATURE_INVALID", `base64 decoding: ${errorMessage(e)}`);
    }
    const failures: string[] = [];
    let verified = false;
    for (const key of root.keys) {
      if (await verifySignature(key, sig.payload, signature)) {
        verified = true;
        break;
      }
      failures.push(VERIFIER_ERROR[key.algorithm]);
    }
    if (!verified) {
      return reject(
        "SIGNATURE_INVALID",
        `cryptographic signature verification failed: ${failures.join(", ")}`,
      );
    }
    let payload;
    try {
      payload = parseSimpleSigningPayload(sig.payload);
    } catch (e) {
      return reject("SIGNATURE_INVALID", errorMessage(e));
    }
    const named = payload.dockerManifestDigest;
    if (!digestMatches(image, named)) {
      return reject("SIGNATURE_INVALID", `Signature for digest ${named} does not match`);
    }
    if (!matchesDockerReference(req.signedIdentity, image.reference, payload.dockerReference)) {
      return reject(
        "IDENTITY_NOT_ACCEPTED",
        `Signature for identity ${goQuote(payload.dockerReference)} is not accepted`,
      );
    }
    return undefined;
  }

  #trustRoot(req: SigstoreSignedRequirement): Promise<TrustRoot> {
    let p = this.#roots.get(req);
    if (!p) {
      p = this.#loadTrustRoot(req);
      this.#roots.set(req, p);
    }
    return p;
  }

  async #loadTrustRoot(req: SigstoreSignedRequirement): Promise<TrustRoot> {
    if (req.fulcio || req.pki) {
      return {
        error: reject(
          "POLICY_UNSUPPORTED",
          `sigstoreSigned with "${
            req.fulcio ? "fulcio" : "pki"
          }" (keyless certificates) is not supported yet`,
        ),
      };
    }
    if (
      req.rekorPublicKeyPath || req.rekorPublicKeyPaths || req.rekorPublicKeyData || req.rekorPublicKeyDatas
    ) {
      return {
        error: reject(
          "POLICY_UNSUPPORTED",
          `sigstoreSigned with "rekorPublicKey*" (Rekor SET checks) is not supported yet`,
        ),
      };
    }
    let pems: Uint8Array[];
    try {
      if (req.keyPath) pems = [await this.#read(req.keyPath)];
      else if (req.keyPaths) pems = await Promise.all(req.keyPaths.map((p) => this.#read(p)));
      else if (req.keyData) pems = [req.keyData];
      else pems = [...(req.keyDatas ?? [])];
    } catch (e) {
      return { error: e instanceof AirlockError ? e : reject("IO_ERROR", errorMessage(e)) };
    }
    const keys: PublicKey[] = [];
    for (let i = 0; i < pems.length; i++) {
      try {
        keys.push(parsePublicKeyPem(pems[i], i + 1));
      } catch (e) {
        return { error: e instanceof AirlockError ? e : reject("KEY_INVALID", errorMessage(e)) };
      }
    }
    if (keys.length === 0) {
      return {
        error: reject(
          "CONFIG_INVALID",
          `Internal inconsistency: "keyPath", "keyPaths", "keyData" and "keyDatas" produced no public keys`,
        ),
      };
    }
    return { keys };
  }

  async #read(path: string): Promise<Uint8Array> {
    try {
      return await this.#readFile(path);
    } catch (e) {
      throw reject("IO_ERROR", goOpenError(path, e));
    }
  }
}

/**
 * containers/image 5.29 `manifest.MatchesDigest`: the payload must name the manifest's **sha256** digest; a
 * payload naming another algorithm (even a correct sha512 of the same bytes) never matches, as in cosign.
 */
function digestMatches(image: PolicyImage, named: string): boolean {
  return named.startsWith("sha256:") && named === image.manifestDigest;
}
