/**
 * Registry errors: the distribution API's error documents (`{"errors":[{code,message,detail}]}`) turned into
 * {@linkcode AirlockError}s that keep the registry's raw answer, and containers/image's "manifest unknown" rule.
 *
 * @module
 */

import { AirlockError, type ErrorCode } from "../errors.ts";

/** One entry of a distribution error document, as the registry sent it. */
export interface RegistryErrorEntry {
  /** The registry's errcode, e.g. `MANIFEST_UNKNOWN`, `UNKNOWN`, `DENIED`. */
  readonly code: string;
  /** The registry's message, e.g. `manifest unknown`. */
  readonly message: string;
  /** Free-form detail, when the registry gave one. */
  readonly detail?: unknown;
}

/**
 * An error answered by a registry (an HTTP status outside the expected ones). Carries the HTTP status and the
 * parsed errcode entries so that callers can decide on the registry's own terms (see {@linkcode isManifestUnknown}).
 *
 * @example
 * ```ts
 * try { await client.getManifest(ref); } catch (e) {
 *   if (e instanceof RegistryError && e.status === 404) console.log(e.errors[0]?.code);
 * }
 * ```
 */
export class RegistryError extends AirlockError {
  /** The HTTP status the registry answered. */
  readonly status: number;
  /** The errcode entries of the body; empty when the body was not an errcode document. */
  readonly errors: readonly RegistryErrorEntry[];

  /**
   * A registry error with the registry's answer kept.
   *
   * @param code the airlock error kind
   * @param message what failed, for people
   * @param status the HTTP status
   * @param errors the parsed errcode entries (empty when the body was not an errcode document)
   */
  constructor(code: ErrorCode, message: string, status: number, errors: readonly RegistryErrorEntry[]) {
    super(code, message);
    this.name = "RegistryError";
    this.status = status;
    this.errors = errors;
  }
}

/**
 * Parses a distribution error document. Returns the entries, or `[]` when the body is not one (not JSON, no
 * `errors` array, or an empty one — containers/image treats all of these as "not an errcode document").
 *
 * @example
 * ```ts
 * parseErrorDocument('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}');
 * // → [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown" }]
 * ```
 */
export function parseErrorDocument(body: string): RegistryErrorEntry[] {
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch {
    return [];
  }
  if (typeof doc !== "object" || doc === null) return [];
  const list = (doc as { errors?: unknown }).errors;
  if (!Array.isArray(list)) return [];
  const out: RegistryErrorEntry[] = [];
  for (const item of list) {
    if (typeof item !== "object" || item === null) continue;
    const { code, message, detail } = item as { code?: unknown; message?: unknown; detail?: unknown };
    if (typeof code !== "string" && typeof message !== "string") continue;
    const entry: RegistryErrorEntry = {
      code: typeof code === "string" ? code.toUpperCase() : "UNKNOWN",
      message: typeof message === "string" ? message : "",
      ...(detail !== undefined ? { detail } : {}),
    };
    out.push(entry);
  }
  return out;
}

const errcodeKinds: Record<string, ErrorCode> = {
  UNAUTHORIZED: "UNAUTHORIZED",
  DENIED: "DENIED",
  MANIFEST_UNKNOWN: "NOT_FOUND",
  BLOB_UNKNOWN: "NOT_FOUND",
  NAME_UNKNOWN: "NOT_FOUND",
  BLOB_UPLOAD_UNKNOWN: "NOT_FOUND",
  TOOMANYREQUESTS: "RATE_LIMITED",
  SIZE_INVALID: "REGISTRY_ERROR",
  DIGEST_INVALID: "DIGEST_MISMATCH",
  MANIFEST_BLOB_UNKNOWN: "REGISTRY_ERROR",
  UNSUPPORTED: "REGISTRY_ERROR",
};

function statusKind(status: number): ErrorCode {
  if (status === 401) return "UNAUTHORIZED";
  if (status === 403) return "DENIED";
  if (status === 404) return "NOT_FOUND";
  if (status === 413) return "TOO_LARGE";
  if (status === 415) return "UNSUPPORTED_MEDIA_TYPE";
  if (status === 429) return "RATE_LIMITED";
  return "REGISTRY_ERROR";
}

const statusTexts: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  409: "Conflict",
  413: "Payload Too Large",
  415: "Unsupported Media Type",
  416: "Range Not Satisfiable",
  429: "Too Many Requests",
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

/** Keeps a registry-supplied text printable and short in a one-line message. */
function clip(text: string, max = 200): string {
  const oneLine = text.replace(/\s+/g, " ").trim();
  return oneLine.length > max ? oneLine.slice(0, max) + "…" : oneLine;
}

/**
 * Builds the error for an unexpected registry answer. `what` says what was being done, e.g.
 * `reading manifest v1 in 127.0.0.1:5000/app`; the message adds the status and the registry's code and message.
 * The airlock code comes from the errcode when it has a meaning of its own, else from the status.
 *
 * @example
 * ```ts
 * const err = registryError("reading manifest v1 in r/app", 404, '{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}');
 * err.message; // "reading manifest v1 in r/app: 404 MANIFEST_UNKNOWN: manifest unknown"
 * ```
 */
export function registryError(what: string, status: number, body: string): RegistryError {
  const errors = parseErrorDocument(body);
  const first = errors[0];
  // An errcode with a meaning of its own wins; a generic one (UNKNOWN, MANIFEST_INVALID…) defers to the status.
  const code: ErrorCode = (first && errcodeKinds[first.code]) || statusKind(status);
  let detail: string;
  if (errors.length > 0) {
    detail = errors.map((e) => `${e.code}: ${clip(e.message)}`).join("; ");
  } else {
    const text = clip(body.startsWith("<") ? "" : body);
    detail = statusTexts[status] ?? "unexpected status";
    if (text) detail += ` (${text})`;
  }
  const message = `${what}: ${status} ${detail}`;
  return new RegistryError(code, message, status, errors);
}

/**
 * containers/image's `isManifestUnknownError` (spec/hangar.md §5.5 step 2, §8): tells whether `err` means the
 * manifest does not exist. True for errcode `MANIFEST_UNKNOWN`; errcode `UNKNOWN` whose message is `Not Found`
 * or contains `not found` in any case (Harbor); an HTTP 404 whose body is not an errcode document. False for
 * everything else, including a 404 carrying `NAME_UNKNOWN`. Like containers/image, only the first errcode entry
 * counts.
 */
export function isManifestUnknown(err: unknown): boolean {
  if (!(err instanceof RegistryError)) return false;
  const first = err.errors[0];
  if (first === undefined) return err.status === 404;
  if (first.code === "MANIFEST_UNKNOWN") return true;
  if (first.code === "UNKNOWN") {
    return first.message === "Not Found" || first.message.toLowerCase().includes("not found");
  }
  return false;
}
