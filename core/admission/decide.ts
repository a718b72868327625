/**
 * The admission decision for one review, as a pure function of the request, the operator's rules and a verdict
 * source ({@linkcode decideReview}):
 *
 * 1. only CREATE and UPDATE are checked; requests in an exempt namespace are allowed;
 * 2. the object's kind must hold a pod (Pod or a pod template holder), else it is allowed with a warning;
 * 3. its images (containers, init containers, ephemeral containers, image volumes) are listed; on UPDATE only
 *    images the old object did not have are checked;
 * 4. each distinct image is parsed as the kubelet reads it (`nginx` is `docker.io/library/nginx:latest`); an
 *    `allowImages` pattern admits it; otherwise its verdict is asked for, all at once, and the review waits at
 *    most `timeoutMs` for them — an image without a verdict by then is denied (fail-closed);
 * 5. the review is allowed when every image is; a denial names each refused image, where it is, and why;
 * 6. the mutating endpoint also returns a JSON Patch pinning every verified `repo:tag` to `repo:tag@digest`, the
 *    digest that was verified, so the pod runs exactly that.
 *
 * @module
 */
import { AirlockError, errorMessage } from "../errors.ts";
import { parseReference, type Reference, withDefaultTag } from "../reference.ts";
import { type ImageGlob, matchImageGlobs } from "./glob.ts";
import { changedImages, type ImageSlot, podImages, podSpecPath } from "./pod_images.ts";
import type { AdmissionAnswer, AdmissionRequest, JsonPatchOperation } from "./review.ts";
import type { CheckedVerdict } from "./verdicts.ts";

/** Why an image was allowed or denied, in a word (for metrics). */
export type DecisionCategory =
  | "verified"
  | "allowlisted"
  | "rejected"
  | "error"
  | "timeout"
  | "invalid";

/** The outcome for one distinct image of a review. */
export interface ImageDecision {
  /** The image as written. */
  readonly image: string;
  /** Where it appears (the first slot; `slots` lists all). */
  readonly slots: readonly ImageSlot[];
  /** Whether it may run. */
  readonly allowed: boolean;
  /** In a word. */
  readonly category: DecisionCategory;
  /** What was accepted, or why not. */
  readonly reason: string;
  /** The digest judged, when known. */
  readonly digest?: string;
  /** Whether the verdict came from the cache. */
  readonly cached: boolean;
  /** The pinned image written by the mutating endpoint. */
  readonly pinned?: string;
}

/** A review's decision. */
export interface ReviewDecision {
  /** The answer for the API server. */
  readonly answer: AdmissionAnswer;
  /** One entry per distinct image checked (empty when nothing needed checking). */
  readonly images: readonly ImageDecision[];
  /** Why nothing was checked (exempt namespace, unknown kind, no changed image, operation), when so. */
  readonly note?: string;
}

/** The operator's rules a decision needs. */
export interface DecisionRules {
  /** Namespaces never checked. */
  readonly exemptNamespaces: readonly string[];
  /** Images admitted without a verdict. */
  readonly allowImages: readonly ImageGlob[];
  /** How long the review waits for verdicts, in ms. */
  readonly timeoutMs: number;
}

/** Where verdicts come from (the cache in production). */
export type VerdictSource = (ref: Reference) => Promise<CheckedVerdict>;

/** Options of {@linkcode decideReview}. */
export interface DecideOptions {
  /** Build a JSON Patch pinning verified tags (the mutating endpoint). */
  readonly mutate: boolean;
  /** Starts a timer (default `setTimeout`); returns a canceller. For tests. */
  readonly timer?: (ms: number, fire: () => void) => () => void;
}

/** The longest reason kept per image in a denial message. */
const MAX_REASON = 1000;

function defaultTimer(ms: number, fire: () => void): () => void {
  const id = setTimeout(fire, ms);
  return () => clearTimeout(id);
}

function describeSlot(slot: ImageSlot): string {
  const what = slot.field === "volumes"
    ? "image volume"
    : slot.field === "containers"
    ? "container"
    : slot.field === "initContainers"
    ? "init container"
    : "ephemeral container";
  return `${what} ${JSON.stringify(slot.container)}`;
}

function clip(s: string): string {
  return s.length <= MAX_REASON ? s : s.slice(0, MAX_REASON) + "…";
}

/**
 * Decides one review (see the module doc).
 *
 * @example
 * ```ts
 * const d = await decideReview(request, rules, (ref) => cache.check(ref), { mutate: false });
 * return admissionResponse(request.uid, d.answer);
 * ```
 */
export async function decideReview(
  request: AdmissionRequest,
  rules: DecisionRules,
  verdictOf: VerdictSource,
  options: DecideOptions,
): Promise<ReviewDecision> {
  // 1. What is checked at all.
  if (request.operation !== "CREATE" && request.operation !== "UPDATE") {
    return { answer: { allowed: true }, images: [], note: `operation ${request.operation} is not checked` };
  }
  if (request.namespace !== "" && rules.exemptNamespaces.includes(request.namespace)) {
    return { answer: { allowed: true }, images: [], note: `namespace ${request.namespace} is exempt` };
  }
  const kind = request.kind;
  if (podSpecPath(kind) === undefined) {
    const name = `${kind.group === "" ? "" : kind.group + "/"}${kind.version}/${kind.kind}`;
    return {
      answer: {
        allowed: true,
        warnings: [`airlock: ${name} holds no pod template airlock knows; not checked`],
      },
      images: [],
      note: `kind ${name} is not checked`,
    };
  }
  // 2. Which images: all on CREATE, the new ones on UPDATE.
  let slots: ImageSlot[];
  try {
    const current = podImages(request.object, kind);
    slots = request.operation === "UPDATE"
      ? changedImages(current, podImages(request.oldObject, kind))
      : current;
  } catch (e) {
    const message = `airlock cannot read the images of this ${kind.kind}: ${errorMessage(e)}`;
    return { answer: { allowed: false, message, code: 400 }, images: [], note: message };
  }
  if (slots.length === 0) {
    return { answer: { allowed: true }, images: [], note: "no new or changed image" };
  }
  const byImage = new Map<string, ImageSlot[]>();
  for (const s of slots) byImage.set(s.image, [...(byImage.get(s.image) ?? []), s]);

  // 3. A verdict for each distinct image, all at once, within the timeout.
  const timer = options.timer ?? defaultTimer;
  let cancel: () => void = () => {};
  const expired = new Promise<"timeout">((resolve) =>
    cancel = timer(rules.timeoutMs, () => resolve("timeout"))
  );
  let decisions: ImageDecision[];
  try {
    decisions = await Promise.all(
      [...byImage].map(([image, where]) => decideImage(image, where, rules, verdictOf, expired)),
    );
  } finally {
    cancel();
  }

  // 4. The answer.
  const denied = decisions.filter((d) => !d.allowed);
  if (denied.length > 0) {
    const message = denied.map((d) =>
      `image ${JSON.stringify(d.image)} (${describeSlot(d.slots[0])}${
        d.slots.length > 1 ? ` and ${d.slots.length - 1} more` : ""
      }) denied: ${clip(d.reason)}`
    ).join("; ");
    return { answer: { allowed: false, message: `airlock: ${message}`, code: 403 }, images: decisions };
  }
  if (!options.mutate) return { answer: { allowed: true }, images: decisions };
  const patch: JsonPatchOperation[] = [];
  const pinnedDecisions = decisions.map((d) => {
    if (d.category !== "verified" || d.digest === undefined || d.image.includes("@")) return d;
    const pinned = `${d.image}@${d.digest}`;
    for (const s of d.slots) patch.push({ op: "replace", path: s.path, value: pinned });
    return { ...d, pinned };
  });
  patch.sort((a, b) => a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
  return { answer: { allowed: true, patch }, images: pinnedDecisions };
}

async function decideImage(
  image: string,
  slots: ImageSlot[],
  rules: DecisionRules,
  verdictOf: VerdictSource,
  expired: Promise<"timeout">,
): Promise<ImageDecision> {
  const base = { image, slots, cached: false };
  let ref: Reference;
  try {
    ref = withDefaultTag(parseReference(image));
    if (image.startsWith("docker://")) {
      throw new AirlockError("INVALID_REFERENCE", "a transport prefix is not an image name");
    }
  } catch (e) {
    return { ...base, allowed: false, category: "invalid", reason: errorMessage(e) };
  }
  const glob = matchImageGlobs(rules.allowImages, ref);
  if (glob !== undefined) {
    return {
      ...base,
      allowed: true,
      category: "allowlisted",
      reason: `allowImages ${JSON.stringify(glob.pattern)}`,
    };
  }
  const v = await Promise.race([verdictOf(ref), expired]);
  if (v === "timeout") {
    return {
      ...base,
      allowed: false,
      category: "timeout",
      reason: `no verdict within ${rules.timeoutMs / 1000}s (the registry is slow or unreachable); ` +
        "denied until it can be checked",
    };
  }
  return {
    ...base,
    allowed: v.allowed,
    category: v.allowed
      ? "verified"
      : v.kind === "rejected"
      ? "rejected"
      : v.kind === "timeout"
      ? "timeout"
      : "error",
    reason: v.reason,
    digest: v.digest,
    cached: v.cached,
  };
}
