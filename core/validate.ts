/**
 * The validation pipeline (`airlock sign validate`, hangar v1's `sign validate`, spec/hangar.md §6): for each image
 * of a list, the same manifests `sign` signs (list children passing the arch/os filter, by digest; a single image
 * by its tag; the index only with `requireIndexSignature`) are each checked against a containers-policy
 * ({@linkcode PolicyEvaluator}): by default hangar's in-memory policy (`sigstoreSigned` + `matchRepoDigestOrExact`,
 * {@linkcode hangarValidatePolicy}), or a policy.json. An image passes when every one of its manifests does.
 *
 * Per manifest (spec/hangar.md §6.4): signatures are read only when registries.d enables sigstore attachments
 * for the manifest's reference; every layer of the `.sig` manifest is fetched (digest-checked, ≤ 4 MiB, ≤ 1000
 * layers); each simple-signing layer is checked in containers/image's order — keys, annotation, base64, the
 * cryptographic signature, and only then the strict payload parse, the digest and the identity — and the first
 * accepted one decides. Nothing read from the registry is trusted before its signature verifies.
 *
 * Deliberate difference from containers/image: a list child's manifest is not downloaded. Its digest comes from
 * the (digest-checked) index, and a signature must name that sha256 digest (containers/image 5.29 compares the
 * payload's digest with the sha256 of the bytes only), which is the same check.
 *
 * @module
 */
import {
  attachmentsDisabledError,
  type RegistriesDConfig,
  useSigstoreAttachments,
} from "./config/registries_d.ts";
import { PolicyEvaluator, type PolicyImage, type UntrustedSignature } from "./config/policy_eval.ts";
import type { Policy } from "./config/policy_types.ts";
import { AirlockError, type ErrorCode, errorMessage, toAirlockError } from "./errors.ts";
import type { ResolvedImageLine } from "./image_list.ts";
import { imageCount, lineCollector, runListInOrder } from "./list_run.ts";
import type { LineOutput, LineResult, ListReport } from "./list_run.ts";
import { DEFAULT_ARCH_LIST, DEFAULT_OS_LIST, type PlatformFilter } from "./platform.ts";
import { formatReference, type Reference } from "./reference.ts";
import type { RegistryClient } from "./registry/client.ts";
import type { FetchedManifest } from "./registry/types.ts";
import { isIndexMediaType } from "./registry/types.ts";
import { type Logger, silentLogger } from "./report.ts";
import { readAttachmentLayers } from "./signature/signature_layers.ts";
import { selectTargets, type Target, type TargetSelection } from "./targets.ts";

export { hangarValidatePolicy } from "./config/policy_config.ts";

/** How images are validated. */
export interface ValidateOptions {
  /** The registry client (credentials, TLS). */
  readonly client: RegistryClient;
  /** registries.d: whether signatures are read at all for each manifest's reference. */
  readonly registriesD: RegistriesDConfig;
  /** The trust policy, evaluated per manifest (see {@linkcode hangarValidatePolicy} for hangar's default). */
  readonly policy: Policy | PolicyEvaluator;
  /** Which list children to check; default `amd64,arm64` / `linux`. */
  readonly platforms?: PlatformFilter;
  /** Check the index of a multi-arch image too (`--require-index-signature`); default `false`, as hangar. */
  readonly requireIndexSignature?: boolean;
  /**
   * The reference each platform manifest of a multi-arch line is judged under, for the identity rule, the policy
   * scope and the registries.d lookup alike:
   * - `digest` (default): `host/repo@<platform digest>`, as hangar v1's `sign validate` checks children;
   * - `line`: the line's own reference (its tag, or the index digest it pins), as podman, CRI-O and
   *   `skopeo copy --all docker://LINE` judge every platform of an image they pull (what `--policy` uses).
   */
  readonly platformReference?: "digest" | "line";
  /**
   * A line on which no platform manifest passes the arch/os filter is skipped with hangar's warning
   * (`--skip-unmatched`) instead of failing with `nothing validated`.
   */
  readonly skipUnmatched?: boolean;
}

/** One manifest's outcome. */
export interface ValidatedTarget extends Target {
  /** `accepted`: the policy allowed it; `rejected`: see `reason`. */
  readonly status: "accepted" | "rejected";
  /** Why it was rejected (containers/image's wording). */
  readonly reason?: string;
  /** The kind of rejection. */
  readonly code?: ErrorCode;
  /** The policy scope whose requirements applied (`default`, `docker ""`, `docker "host/repo"`…). */
  readonly scope?: string;
}

/** One image's outcome. */
export interface ImageValidateResult {
  /** The image, fully normalised. */
  readonly reference: string;
  /** The digest of its top-level manifest. */
  readonly digest: string;
  /**
   * `passed`: every manifest accepted; `failed`: some rejected, or no platform manifest matched the filter
   * (`NOTHING_VALIDATED`); `skipped`: nothing matched the filter and `skipUnmatched` was asked for.
   */
  readonly status: "passed" | "failed" | "skipped";
  /** Every manifest checked, children first, then the index. */
  readonly targets: readonly ValidatedTarget[];
  /**
   * For `failed`: hangar's error chain, `failed to validate signature [docker://<ref>]: …` with one
   * `sign validate: <reason>` per rejected manifest.
   */
  readonly error?: AirlockError;
}

/**
 * Validates the signatures of one image.
 *
 * @throws {AirlockError} when the image itself cannot be read (registry errors, unsupported manifest types).
 *
 * @example
 * ```ts
 * const r = await validateImage(parseReference("reg.io/a/b:v1"), {
 *   client, registriesD, policy: hangarValidatePolicy({ keyPath: "cosign.pub" }),
 * });
 * if (r.status === "failed") console.error(r.error!.message);
 * ```
 */
export async function validateImage(
  ref: Reference,
  o: ValidateOptions,
  signal?: AbortSignal,
): Promise<ImageValidateResult> {
  const filter = o.platforms ?? { arch: DEFAULT_ARCH_LIST, os: DEFAULT_OS_LIST, variant: [] };
  // 1. Which manifests: the same set `sign` signs.
  const selection = await selectTargets(o.client, ref, {
    filter,
    includeIndex: o.requireIndexSignature ?? false,
    signal,
  });
  return await judgeSelection(ref, selection, filter, o, signal);
}

/** Options of {@linkcode evaluatePull}. */
export interface PullOptions {
  /** The registry client (credentials, TLS). */
  readonly client: RegistryClient;
  /** registries.d: whether signatures are read at all for the reference. */
  readonly registriesD: RegistriesDConfig;
  /** The node's trust policy (its `/etc/containers/policy.json`). */
  readonly policy: Policy | PolicyEvaluator;
  /**
   * The node's platform: the platform manifests of an index that match it are judged. Without it every platform
   * manifest is judged, as `skopeo copy --all` does. A single-arch image is judged whatever its platform.
   */
  readonly platform?: { readonly os: string; readonly architecture: string; readonly variant?: string };
}

/**
 * Decides whether podman or CRI-O (containers/image 5.29) would let `ref` be pulled under `policy`: the
 * reference is judged exactly as written (a tag stays a tag), and so is each platform manifest of a multi-arch
 * image — the identity rule, the policy scope and the registries.d lookup all see the pulled reference. An index
 * none of whose platform manifests matches `platform` is refused (`NOTHING_VALIDATED`), as the pull would fail.
 *
 * @throws {AirlockError} when the image itself cannot be read (registry errors, unsupported manifest types).
 *
 * @example
 * ```ts
 * const r = await evaluatePull(parseReference("reg.io/app:1.0"), {
 *   client, registriesD, policy: await loadPolicyFile("/etc/containers/policy.json"),
 *   platform: { os: "linux", architecture: "amd64" },
 * });
 * if (r.status !== "passed") deny(r.error!.message);
 * ```
 */
export async function evaluatePull(
  ref: Reference,
  o: PullOptions,
  signal?: AbortSignal,
): Promise<ImageValidateResult> {
  const p = o.platform;
  const filter: PlatformFilter = p
    ? { arch: [p.architecture], os: [p.os], variant: p.variant ? [p.variant] : [] }
    : { arch: [], os: [], variant: [] };
  const selection = await selectTargets(o.client, ref, {
    filter,
    includeIndex: false,
    filterSingleImage: false,
    signal,
  });
  return await judgeSelection(ref, selection, filter, { ...o, platformReference: "line" }, signal);
}

/** Checks the selected manifests; the image passes when every one does and at least one platform was checked. */
async function judgeSelection(
  ref: Reference,
  { top, targets, entryErrors }: TargetSelection,
  filter: PlatformFilter,
  o: ValidateOptions,
  signal?: AbortSignal,
): Promise<ImageValidateResult> {
  const evaluator = o.policy instanceof PolicyEvaluator ? o.policy : new PolicyEvaluator(o.policy);
  const reference = formatReference(ref);
  // 2. A gate with no hole: a line on which no platform manifest was checked fails (or is skipped, on request).
  if (!targets.some((t) => t.kind === "image") && entryErrors.length === 0) {
    if (o.skipUnmatched) return { reference, digest: top.digest, status: "skipped", targets: [] };
    return {
      reference,
      digest: top.digest,
      status: "failed",
      targets: [],
      error: new AirlockError("NOTHING_VALIDATED", nothingValidated(reference, filter)),
    };
  }
  // 3. Each manifest against the policy (independent tags, so at once).
  const checked = await Promise.all(targets.map((t) => checkTarget(ref, top, t, o, evaluator, signal)));
  // 4. The image passes when every manifest does.
  const rejected = checked.filter((t) => t.status === "rejected");
  if (rejected.length === 0 && entryErrors.length === 0) {
    return { reference, digest: top.digest, status: "passed", targets: checked };
  }
  return {
    reference,
    digest: top.digest,
    status: "failed",
    targets: checked,
    error: imageError(reference, isIndexMediaType(top.mediaType), rejected, entryErrors),
  };
}

/**
 * `nothing validated: no manifest of <ref> matches --arch <list> --os <list>`.
 */
export function nothingValidated(reference: string, filter: PlatformFilter): string {
  const list = (l: readonly string[]) => (l.length === 0 ? '""' : l.join(","));
  return `nothing validated: no manifest of ${reference} matches --arch ${list(filter.arch)} --os ${
    list(filter.os)
  }`;
}

/**
 * The reference a manifest is evaluated under: the top-level manifest as named; a platform manifest by its
 * digest (hangar) or, with `platformReference: "line"`, as named too (podman, CRI-O).
 */
function targetReference(ref: Reference, top: FetchedManifest, t: Target, o: ValidateOptions): Reference {
  if (t.digest === top.digest || o.platformReference === "line") return ref;
  return { registry: ref.registry, repository: ref.repository, digest: t.digest };
}

async function checkTarget(
  ref: Reference,
  top: FetchedManifest,
  target: Target,
  o: ValidateOptions,
  evaluator: PolicyEvaluator,
  signal?: AbortSignal,
): Promise<ValidatedTarget> {
  if (!target.digest.startsWith("sha256:")) {
    // containers/image 5.29 checks a manifest fetched by digest with sha256 only, so it refuses to read one named
    // by another algorithm, whatever the policy says.
    return {
      ...target,
      status: "rejected",
      reason: `Manifest does not match provided manifest digest ${target.digest}`,
      code: "DIGEST_MISMATCH",
    };
  }
  const image = policyImage(targetReference(ref, top, target, o), target.digest, o, signal);
  const d = await evaluator.isRunningImageAllowed(image);
  if (d.allowed) return { ...target, status: "accepted", scope: d.scope };
  return { ...target, status: "rejected", reason: d.error.message, code: d.error.code, scope: d.scope };
}

/** One manifest as the policy evaluator reads it: signatures from the `.sig` tag when registries.d allows. */
function policyImage(
  reference: Reference,
  digest: string,
  o: ValidateOptions,
  signal?: AbortSignal,
): PolicyImage {
  return {
    reference,
    manifestDigest: digest,
    signatures: () => readSignatures(reference, digest, o, signal),
  };
}

/**
 * The signatures of a manifest, one at a time: every layer of its `.sig` tag with its blob, as containers/image
 * reads them (any unreadable layer fails the whole), fetched a few at a time so that only a few MiB are held.
 */
async function* readSignatures(
  reference: Reference,
  digest: string,
  o: ValidateOptions,
  signal?: AbortSignal,
): AsyncGenerator<UntrustedSignature> {
  // Lookaside (GPG) signatures are never read; sigstore attachments only when registries.d enables them, and
  // when it does not, the rejection says so (containers/image would only say that no signature exists).
  const decision = useSigstoreAttachments(o.registriesD, reference);
  if (!decision.value) {
    throw attachmentsDisabledError(o.registriesD, formatReference(reference), decision, "reading");
  }
  const layers = readAttachmentLayers(o.client, reference, digest, {
    badBlob: "error",
    kind: "attachment manifest",
    signal,
  });
  for await (const r of layers) {
    yield {
      kind: "sigstore",
      mimeType: r.layer.mediaType,
      payload: r.payload!,
      annotations: r.layer.annotations,
    };
  }
}

/** hangar's error chain for an image with rejected manifests (spec/hangar.md §6.4 step 4). */
function imageError(
  reference: string,
  isList: boolean,
  rejected: readonly ValidatedTarget[],
  entryErrors: readonly AirlockError[],
): AirlockError {
  // One line per distinct reason: two platforms without a signature are one error, not the same line twice.
  const reasons = [
    ...new Set([
      ...rejected.map((t) => `sign validate: ${t.reason}`),
      ...entryErrors.map((e) => e.message),
    ]),
  ];
  const code: ErrorCode = rejected[0]?.code ?? entryErrors[0]?.code ?? "SIGNATURE_INVALID";
  const head = `failed to validate signature [docker://${reference}]: `;
  const message = isList
    ? `${head}error occurred when validate image [docker://${reference}]: ${reasons.join("\n")}`
    : `${head}${reasons.join("\n")}`;
  return new AirlockError(code, message);
}

/** Options of {@linkcode validateImages}. */
export interface ValidateRunOptions extends ValidateOptions, LineOutput<LineValidateResult> {
  /** Images validated at once (1–20). */
  readonly jobs: number;
  /** Deadline per image, covering all of its work; 0 = none. */
  readonly timeoutMs: number;
  /** Stops scheduling new images. */
  readonly signal?: AbortSignal;
  /** Log lines (hangar's); default none. */
  readonly logger?: Logger;
  /** Called as each image finishes. */
  readonly onProgress?: (done: number, total: number) => void;
}

/** One list line's outcome (its `error` is the message logged after `error occurred on [IMG: n] [<ref>]: `). */
export type LineValidateResult = LineResult<"passed" | "failed" | "skipped" | "ignored", ImageValidateResult>;

/** The outcome of a run. */
export type ValidateReport = ListReport<LineValidateResult>;

/**
 * Validates every image of a resolved image list with a worker pool; results come back in list order. Logs
 * hangar's lines: `[IMG:n] PASS: [<ref>]`, the skip warning, and
 * `error occurred on [IMG: n] [<ref>]: failed to validate signature [docker://<ref>]: …`.
 *
 * @example
 * ```ts
 * const report = await validateImages(resolveImageList(lines), {
 *   client, registriesD, policy: hangarValidatePolicy({ keyPath: "cosign.pub" }), jobs: 4, timeoutMs: 600_000,
 * });
 * ```
 */
export async function validateImages(
  images: Iterable<ResolvedImageLine> | AsyncIterable<ResolvedImageLine>,
  o: ValidateRunOptions,
): Promise<ValidateReport> {
  const log = o.logger ?? silentLogger();
  const options: ValidateRunOptions = o.policy instanceof PolicyEvaluator
    ? o
    : { ...o, policy: new PolicyEvaluator(o.policy) };
  const total = imageCount(images, o.total);
  const out = lineCollector<LineValidateResult>(o);
  let done = 0;
  await runListInOrder<ImageValidateResult, LineValidateResult>(images, o, {
    work: (item, signal) => {
      const ref = item.reference;
      log.debug(`Validating [${formatReference(ref)}]`, { IMG: item.line.id });
      return validateImage(ref, options, signal);
    },
    settled: (item, r) => {
      const ref = formatReference(item.reference);
      if (!r.ok) {
        log.error(`error occurred on [IMG: ${item.line.id}] [${ref}]: ${errorMessage(r.error)}`);
      } else if (r.value.status === "failed") {
        log.error(`error occurred on [IMG: ${item.line.id}] [${ref}]: ${r.value.error!.message}`);
      } else if (r.value.status === "skipped") {
        log.warn(
          `Skip validate image signature [${ref}]: no available image for specified arch and os`,
          { IMG: item.line.id },
        );
      } else {
        log.info(`PASS: [${ref}]`, { IMG: item.line.id });
      }
      o.onProgress?.(++done, total);
    },
    finish: (item, r) => {
      const base = { id: item.line.id, line: item.line.line };
      if (!r.ok) return { ...base, status: "failed", error: toAirlockError(r.error) };
      return {
        ...base,
        status: r.value.status,
        result: r.value,
        ...(r.value.error ? { error: r.value.error } : {}),
      };
    },
    unresolved: (r) => {
      if (r.status === "ignored") {
        log.warn(r.warning);
        return { id: r.line.id, line: r.line.line, status: "ignored" };
      }
      log.error(`error occurred on [IMG: ${r.line.id}] [${r.line.line}]: ${r.error.message}`);
      return { id: r.line.id, line: r.line.line, status: "failed", error: r.error };
    },
    emit: (line) => out.add(line as LineValidateResult),
  });
  return out.report();
}
