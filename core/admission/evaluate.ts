/**
 * The one place where an image meets the operator's trust rules: {@linkcode evaluateImage} runs the containers
 * policy exactly as `sign validate --policy` does ({@linkcode validateImage}: the platform manifests the nodes
 * run, each against the policy, for the reference the kubelet pulls), or cosign verification exactly as
 * `airlock verify` does ({@linkcode verifyImage}, for the digest the reference names), and turns the outcome into a
 * {@linkcode Verdict}.
 *
 * A verdict says whether it may be remembered: `rejected` (the signatures say no) and `verified` can be cached;
 * `error` (the registry failed, the image is missing, the check was cancelled) never is.
 *
 * @module
 */
import type { RegistriesDConfig } from "../config/registries_d.ts";
import { PolicyEvaluator } from "../config/policy_eval.ts";
import { requirementsFor } from "../config/policy_scopes.ts";
import { AirlockError, type ErrorCode, errorMessage } from "../errors.ts";
import { formatReference, type Reference } from "../reference.ts";
import type { RegistryClient } from "../registry/client.ts";
import { validateImage } from "../validate.ts";
import { verifyImage } from "../verify.ts";
import type { AdmissionMode } from "./config.ts";

/** What the trust rules say about one image. */
export interface Verdict {
  /** Whether the image may run. */
  readonly allowed: boolean;
  /** The digest judged (the one a tag resolved to), when known. */
  readonly digest?: string;
  /** For people: what was accepted, or why not. */
  readonly reason: string;
  /**
   * `verified`: accepted; `rejected`: the signatures (or the policy) refuse it; `error`: no verdict could be
   * reached (registry error, image missing, cancelled); `timeout`: not within the admission timeout.
   */
  readonly kind: "verified" | "rejected" | "error" | "timeout";
  /** The error kind of a refusal. */
  readonly code?: ErrorCode;
}

/** Error kinds that are the signatures' (or the policy's) answer, not a failure to get one. */
const DEFINITIVE: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  "SIGNATURE_MISSING",
  "SIGNATURE_INVALID",
  "NO_MATCHING_SIGNATURES",
  "IDENTITY_NOT_ACCEPTED",
  "NOTHING_VALIDATED",
  "POLICY_REJECTED",
  "POLICY_UNSUPPORTED",
  "CONFIG_INVALID",
  "KEY_INVALID",
  "UNSUPPORTED_MEDIA_TYPE",
  "ATTACHMENTS_DISABLED",
  "CERTIFICATE_INVALID",
  "TLOG_INVALID",
  "BUNDLE_INVALID",
  "TIMESTAMP_INVALID",
]);

/** What {@linkcode evaluateImage} works with. */
export interface EvaluateContext {
  /** The registry client (the service's credentials and TLS settings). */
  readonly client: RegistryClient;
  /** registries.d: whether signatures are read for a reference (policy mode). */
  readonly registriesD: RegistriesDConfig;
  /** The operator's trust rules. */
  readonly mode: AdmissionMode;
  /** The policy evaluator (policy mode), shared so that keys are read once. */
  readonly evaluator?: PolicyEvaluator;
}

/**
 * Builds the context once per service (the policy evaluator keeps the parsed keys).
 */
export function evaluateContext(
  client: RegistryClient,
  registriesD: RegistriesDConfig,
  mode: AdmissionMode,
): EvaluateContext {
  return {
    client,
    registriesD,
    mode,
    evaluator: mode.kind === "policy" ? new PolicyEvaluator(mode.policy) : undefined,
  };
}

function failure(e: unknown, digest?: string): Verdict {
  const code = e instanceof AirlockError ? e.code : "REGISTRY_ERROR";
  return {
    allowed: false,
    digest,
    reason: errorMessage(e),
    kind: DEFINITIVE.has(code) ? "rejected" : "error",
    code,
  };
}

/**
 * Judges one image. `ref` is the reference as the kubelet pulls it: a tag (the policy sees the tag; cosign checks
 * `digest`, the digest the tag was just resolved to) or a digest alone (a `repo:tag@digest` image is pulled by its
 * digest, so it comes here without its tag). Never throws: failures are `error` verdicts.
 */
export async function evaluateImage(
  ctx: EvaluateContext,
  ref: Reference,
  digest: string | undefined,
  signal?: AbortSignal,
): Promise<Verdict> {
  try {
    return ctx.mode.kind === "policy"
      ? await byPolicy(ctx, ref, signal)
      : await byCosign(ctx, digest === undefined ? ref : { ...ref, tag: undefined, digest }, signal);
  } catch (e) {
    return failure(e, digest ?? ref.digest);
  }
}

/**
 * The verdict when the rules give it without looking at the image: a policy scope that rejects outright
 * (`reject`) is answered before the registry is asked anything — whatever it would serve, the answer is the same,
 * and an image naming any host cannot make the webhook connect there. `undefined` otherwise.
 */
export function verdictWithoutRegistry(ctx: EvaluateContext, ref: Reference): Verdict | undefined {
  if (ctx.mode.kind !== "policy") return undefined;
  if (!requirementsFor(ctx.mode.policy, ref).requirements.some((q) => q.type === "reject")) return undefined;
  return {
    allowed: false,
    digest: ref.digest,
    reason: `Running image docker://${formatReference(ref)} is rejected by policy.`,
    kind: "rejected",
    code: "POLICY_REJECTED",
  };
}

/** `sign validate --policy`: every platform manifest the nodes run must be accepted. */
async function byPolicy(ctx: EvaluateContext, ref: Reference, signal?: AbortSignal): Promise<Verdict> {
  if (ctx.mode.kind !== "policy" || !ctx.evaluator) throw new Error("policy mode without a policy");
  const early = verdictWithoutRegistry(ctx, ref);
  if (early) return early;
  // Exactly `sign validate --policy`: each platform manifest the nodes run, judged under the pulled reference.
  const r = await validateImage(ref, {
    client: ctx.client,
    registriesD: ctx.registriesD,
    policy: ctx.evaluator,
    platforms: ctx.mode.platforms,
    platformReference: "line",
  }, signal);
  if (r.status === "passed") {
    const scopes = [...new Set(r.targets.map((t) => t.scope).filter((s) => s !== undefined))];
    return {
      allowed: true,
      digest: r.digest,
      reason: `accepted by policy ${JSON.stringify(ctx.mode.path)} (${r.targets.length} manifest` +
        `${r.targets.length === 1 ? "" : "s"}; scope ${scopes.join(", ")})`,
      kind: "verified",
    };
  }
  if (r.error?.code === "NOTHING_VALIDATED") {
    // No platform manifest the nodes run: the pull would fail on every node.
    const p = ctx.mode.platforms;
    return {
      allowed: false,
      digest: r.digest,
      reason: `no manifest for the nodes' platforms (os ${p.os.join(",")}, arch ${p.arch.join(",")})`,
      kind: "rejected",
      code: "NOTHING_VALIDATED",
    };
  }
  const rejected = r.targets.filter((t) => t.status === "rejected");
  // A list child is named by its platform (or digest); a single image needs no name.
  const reasons = rejected.map((t) =>
    t.kind === "image" && t.digest !== r.digest ? `${t.platform ?? t.digest}: ${t.reason}` : t.reason ?? ""
  );
  const codes = rejected.map((t) => t.code ?? "SIGNATURE_INVALID");
  const message = reasons.length > 0 ? reasons.join("; ") : r.error?.message ?? "rejected by policy";
  const code: ErrorCode = codes.find((c) => !DEFINITIVE.has(c)) ?? codes[0] ?? r.error?.code ??
    "SIGNATURE_INVALID";
  return {
    allowed: false,
    digest: r.digest,
    reason: message,
    kind: DEFINITIVE.has(code) ? "rejected" : "error",
    code,
  };
}

/** `airlock verify`: some signature on the digest verifies with the key or the keyless identity. */
async function byCosign(ctx: EvaluateContext, ref: Reference, signal?: AbortSignal): Promise<Verdict> {
  if (ctx.mode.kind !== "cosign") throw new Error("cosign mode without cosign settings");
  const m = ctx.mode;
  const r = await verifyImage(ctx.client, ref, {
    publicKey: m.publicKey,
    identity: m.identity,
    trustedRoot: m.trustedRoot,
    ignoreTlog: m.ignoreTlog,
    ignoreSct: m.ignoreSct,
    annotations: m.annotations,
    signal,
  });
  const signer = r.signatures.find((s) => s.signer !== undefined)?.signer;
  return {
    allowed: true,
    digest: r.digest,
    reason: `${r.signatures.length} signature${r.signatures.length === 1 ? "" : "s"} verified` +
      (signer ? ` (keyless)` : " with the key") + ` on ${formatReference(ref)}`,
    kind: "verified",
  };
}
