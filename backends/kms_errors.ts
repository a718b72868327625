/**
 * What a refused KMS answer means for the key, for every KMS backend (Vault/OpenBao transit, AWS KMS, Cloud KMS,
 * Azure Key Vault): 401 is an authentication failure, 403 a permission the identity lacks, 404 a key that is not
 * there — unless the service names the error itself, which then decides. Each backend words the message.
 *
 * @module
 */
import type { ErrorCode } from "../core/errors.ts";

/** The error kinds a service may name in its answer body (`__type`, `error.status`, `error.code`, …). */
export interface KmsNamedError {
  /** The service says the credentials were refused. */
  readonly auth?: boolean;
  /** The service says the identity may not use the key. */
  readonly denied?: boolean;
  /** The service says there is no such key. */
  readonly notFound?: boolean;
}

/**
 * The key error code of a failed KMS answer: `KEY_AUTH_FAILED`, `KEY_ACCESS_DENIED`, `KEY_NOT_FOUND`, else
 * `KEY_BACKEND`, in that order of precedence.
 *
 * @param status the HTTP status
 * @param named what the service named in its body
 * @param byStatus whether the HTTP status counts too (AWS: only when the answer names no error type)
 */
export function kmsErrorCode(status: number, named: KmsNamedError = {}, byStatus = true): ErrorCode {
  if (named.auth || (byStatus && status === 401)) return "KEY_AUTH_FAILED";
  if (named.denied || (byStatus && status === 403)) return "KEY_ACCESS_DENIED";
  if (named.notFound || (byStatus && status === 404)) return "KEY_NOT_FOUND";
  return "KEY_BACKEND";
}
