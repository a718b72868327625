/**
 * How `airlock serve` turns errors into HTTP answers: the one table mapping {@linkcode ErrorCode}s to HTTP
 * statuses, and the JSON error body every non-2xx answer of the API carries.
 *
 * @module
 */
import { AirlockError, type ErrorCode } from "../core/errors.ts";

/**
 * HTTP status by error code. Codes not listed are server-side failures (500). Errors of single images inside a
 * job are not HTTP errors: they are reported in the job's results.
 */
const HTTP_STATUS: Partial<Record<ErrorCode, number>> = {
  INVALID_ARGUMENT: 400,
  INVALID_REFERENCE: 400,
  INVALID_IMAGE_LIST: 400,
  UNAUTHENTICATED: 401,
  UNAUTHORIZED: 401,
  DENIED: 403,
  NOT_FOUND: 404,
  TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RATE_LIMITED: 429,
  UNAVAILABLE: 503,
  NOT_CONFIGURED: 501,
  TIMEOUT: 504,
};

/**
 * The HTTP status for an error raised while answering a request.
 */
export function httpStatusFor(err: unknown): number {
  return err instanceof AirlockError ? HTTP_STATUS[err.code] ?? 500 : 500;
}

/** The JSON body of an error answer. */
export interface ErrorBody {
  /** What went wrong. */
  readonly error: {
    /** The error kind ({@linkcode ErrorCode}), `INTERNAL` for unexpected failures. */
    readonly code: string;
    /** For people. */
    readonly message: string;
  };
}

/**
 * The JSON body for an error. Unexpected errors (not {@linkcode AirlockError}) are reported as `INTERNAL` with a
 * generic message, so that no internal detail leaks to clients; the caller logs the real one.
 */
export function errorBody(err: unknown): ErrorBody {
  if (err instanceof AirlockError) return { error: { code: err.code, message: err.message } };
  return { error: { code: "INTERNAL", message: "internal server error" } };
}
