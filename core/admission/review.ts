/**
 * `admission.k8s.io/v1` `AdmissionReview`: what the Kubernetes API server sends to a webhook and what it accepts
 * back (kubernetes `staging/src/k8s.io/api/admission/v1/types.go`, checked by the API server's
 * `VerifyAdmissionResponse`: `apiVersion`/`kind` must be `admission.k8s.io/v1` `AdmissionReview`, `response.uid`
 * must echo `request.uid`, a validating webhook must not return a patch, a mutating one returns `patch` (base64 of
 * a JSON Patch, RFC 6902) together with `patchType: JSONPatch`).
 *
 * Parsing is strict about what the decision reads (the review's type, `uid`, `kind`, `operation`, `object`,
 * `oldObject`, `dryRun`, `namespace`, `name`, `subResource`) and ignores the rest (`userInfo`, `options`, …), as
 * the API server adds fields over time.
 *
 * @module
 */
import { AirlockError } from "../errors.ts";
import { base64Encode } from "../encoding/base64.ts";

/** The API group and version of the reviews airlock speaks. */
export const ADMISSION_API_VERSION = "admission.k8s.io/v1";

/** A JSON object as parsed. */
export type JsonObject = { readonly [key: string]: unknown };

/** `metav1.GroupVersionKind` of the object under review. */
export interface GroupVersionKind {
  /** `""` for the core group, `apps`, `batch`, … */
  readonly group: string;
  /** `v1`, … */
  readonly version: string;
  /** `Pod`, `Deployment`, … */
  readonly kind: string;
}

/** The operations a review can be about. */
export type AdmissionOperation = "CREATE" | "UPDATE" | "DELETE" | "CONNECT";

/** The parts of an `AdmissionRequest` the decision uses. */
export interface AdmissionRequest {
  /** Echoed in the response. */
  readonly uid: string;
  /** The object's kind (after conversion to the version the webhook registered). */
  readonly kind: GroupVersionKind;
  /** `ephemeralcontainers` for `kubectl debug`, `status`, …; `""` for the object itself. */
  readonly subResource: string;
  /** The object's name (`""` when the server generates it). */
  readonly name: string;
  /** The namespace (`""` for cluster-scoped objects). */
  readonly namespace: string;
  /** What is being done. */
  readonly operation: AdmissionOperation;
  /** The object as it will be stored (CREATE, UPDATE). */
  readonly object?: JsonObject;
  /** The object as stored before (UPDATE, DELETE). */
  readonly oldObject?: JsonObject;
  /** Nothing will be persisted (`kubectl apply --dry-run=server`). */
  readonly dryRun: boolean;
}

/** One JSON Patch (RFC 6902) operation, as the mutating endpoint returns them. */
export interface JsonPatchOperation {
  /** Only `replace` is produced. */
  readonly op: "replace";
  /** A JSON Pointer (RFC 6901). */
  readonly path: string;
  /** The new value. */
  readonly value: string;
}

/** What the webhook answers (before it is wrapped into a review). */
export interface AdmissionAnswer {
  /** Whether the request may proceed. */
  readonly allowed: boolean;
  /** Why not (`status.message`); also set for some allowed answers (not consulted by the API server). */
  readonly message?: string;
  /** `status.code` of a denial (403). */
  readonly code?: number;
  /** Warnings shown to the client (kubectl prints them). */
  readonly warnings?: readonly string[];
  /** The JSON Patch of a mutating answer (omitted when empty). */
  readonly patch?: readonly JsonPatchOperation[];
}

const OPERATIONS: ReadonlySet<string> = new Set(["CREATE", "UPDATE", "DELETE", "CONNECT"]);

function invalid(message: string): AirlockError {
  return new AirlockError("INVALID_ARGUMENT", `invalid AdmissionReview: ${message}`);
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function optionalString(o: JsonObject, key: string, where: string): string {
  const v = o[key];
  if (v === undefined || v === null) return "";
  if (typeof v !== "string") throw invalid(`${where}.${key} must be a string`);
  return v;
}

function optionalObject(o: JsonObject, key: string, where: string): JsonObject | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) throw invalid(`${where}.${key} must be an object`);
  return v;
}

/**
 * Reads an `AdmissionReview` request (already parsed from JSON).
 *
 * @throws {AirlockError} `INVALID_ARGUMENT` when it is not an `admission.k8s.io/v1` `AdmissionReview` with a
 * request carrying a `uid`, a `kind` and a known `operation`, or a field read has the wrong type.
 */
export function parseAdmissionReview(review: unknown): AdmissionRequest {
  if (!isObject(review)) throw invalid("the body must be a JSON object");
  if (review.apiVersion !== ADMISSION_API_VERSION || review.kind !== "AdmissionReview") {
    throw invalid(
      `expected apiVersion "${ADMISSION_API_VERSION}" and kind "AdmissionReview", got ` +
        `${JSON.stringify(review.apiVersion ?? null)} and ${JSON.stringify(review.kind ?? null)} ` +
        `(set admissionReviewVersions: [v1] in the webhook configuration)`,
    );
  }
  const r = review.request;
  if (!isObject(r)) throw invalid("request is missing");
  if (typeof r.uid !== "string" || r.uid === "") throw invalid("request.uid must be a non-empty string");
  const kind = r.kind;
  if (!isObject(kind)) throw invalid("request.kind must be an object");
  const gvk: GroupVersionKind = {
    group: optionalString(kind, "group", "request.kind"),
    version: optionalString(kind, "version", "request.kind"),
    kind: optionalString(kind, "kind", "request.kind"),
  };
  if (typeof r.operation !== "string" || !OPERATIONS.has(r.operation)) {
    throw invalid(`request.operation must be one of CREATE, UPDATE, DELETE, CONNECT`);
  }
  if (r.dryRun !== undefined && r.dryRun !== null && typeof r.dryRun !== "boolean") {
    throw invalid("request.dryRun must be a boolean");
  }
  return {
    uid: r.uid,
    kind: gvk,
    subResource: optionalString(r, "subResource", "request"),
    name: optionalString(r, "name", "request"),
    namespace: optionalString(r, "namespace", "request"),
    operation: r.operation as AdmissionOperation,
    object: optionalObject(r, "object", "request"),
    oldObject: optionalObject(r, "oldObject", "request"),
    dryRun: r.dryRun === true,
  };
}

/**
 * The `AdmissionReview` answering request `uid`. A denial carries `status` (`Failure`, the message, the code);
 * a patch is base64-encoded JSON with `patchType: JSONPatch` (only when non-empty, as the API server requires).
 */
export function admissionResponse(uid: string, answer: AdmissionAnswer): JsonObject {
  const response: Record<string, unknown> = { uid, allowed: answer.allowed };
  if (!answer.allowed) {
    response.status = {
      status: "Failure",
      message: answer.message ?? "denied",
      reason: "Forbidden",
      code: answer.code ?? 403,
    };
  } else if (answer.message !== undefined) {
    response.status = { status: "Success", message: answer.message, code: 200 };
  }
  if (answer.warnings && answer.warnings.length > 0) response.warnings = [...answer.warnings];
  if (answer.patch && answer.patch.length > 0) {
    response.patchType = "JSONPatch";
    response.patch = base64Encode(new TextEncoder().encode(JSON.stringify(answer.patch)));
  }
  return { apiVersion: ADMISSION_API_VERSION, kind: "AdmissionReview", response };
}
