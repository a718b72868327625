/**
 * Errors raised by airlock's library. One base class carries a stable `code`; messages say what failed,
 * codes say which kind. Front doors (the CLI, `airlock serve`) map codes to exit codes, log lines and
 * HTTP statuses in one place each.
 *
 * @module
 */

/** Every error kind airlock reports. Stable: scripts and the HTTP API may rely on these strings. */
export type ErrorCode =
  // input
  | "INVALID_ARGUMENT"
  | "INVALID_REFERENCE"
  | "INVALID_IMAGE_LIST"
  | "CONFIG_INVALID"
  | "IO_ERROR"
  | "FILE_EXISTS"
  // registry transport and protocol
  | "REGISTRY_UNREACHABLE"
  | "TLS_ERROR"
  | "UNAUTHORIZED"
  | "DENIED"
  | "NOT_FOUND"
  | "RATE_LIMITED"
  | "REGISTRY_ERROR"
  | "DIGEST_MISMATCH"
  | "TOO_LARGE"
  | "UNSUPPORTED_MEDIA_TYPE"
  /** a manifest, index or image config is not what its media type says (not JSON, wrong shape or types) */
  | "MANIFEST_INVALID"
  | "TIMEOUT"
  | "CANCELLED"
  | "CREDENTIALS"
  // keys
  | "KEY_INVALID"
  | "KEY_PASSPHRASE"
  | "KEY_UNSUPPORTED"
  | "KEY_BACKEND"
  /** a token, slot or key object named by a key reference does not exist */
  | "KEY_NOT_FOUND"
  /** a key to be generated exists already (on a token) */
  | "KEY_EXISTS"
  /** a key service (Vault, a cloud KMS) refused or lacks the credentials: missing, wrong or expired token/keys */
  | "KEY_AUTH_FAILED"
  /** a key service accepted the credentials but does not allow the operation on the key */
  | "KEY_ACCESS_DENIED"
  /** a key service (Vault, a cloud KMS, its token endpoint) cannot be reached */
  | "KEY_SERVICE_UNREACHABLE"
  // signing and verification
  | "ATTACHMENTS_DISABLED"
  | "SIGNATURE_MISSING"
  | "SIGNATURE_INVALID"
  /** `verify`: signatures exist but none verifies with the key and names the digest (cosign exit code 12) */
  | "NO_MATCHING_SIGNATURES"
  /** a `.sig`/`.att` attachment manifest or its config cannot be read (malformed, wrong media type) */
  | "ATTACHMENT_INVALID"
  | "IDENTITY_NOT_ACCEPTED"
  /** `sign validate`: no platform manifest of an image passes the arch/os filter, so nothing was checked */
  | "NOTHING_VALIDATED"
  // keyless (sigstore) verification
  /** a sigstore `trusted_root.json` cannot be read or is malformed (e.g. a log key without a validity start) */
  | "TRUSTED_ROOT_INVALID"
  /** a sigstore bundle, or the cosign annotations converted into one, is malformed */
  | "BUNDLE_INVALID"
  /** the signing certificate does not chain to the trusted root, has no valid SCT, or was not valid at signing */
  | "CERTIFICATE_INVALID"
  /** a transparency-log entry (SET, inclusion proof, entry body) does not verify or does not match */
  | "TLOG_INVALID"
  /** a signed timestamp (RFC 3161) does not verify, or too few verified timestamps exist */
  | "TIMESTAMP_INVALID"
  /** a containers-policy requirement (`reject`) refused the image */
  | "POLICY_REJECTED"
  /** a containers-policy requirement airlock cannot evaluate (GPG `signedBy`, keyless `fulcio`/`pki`) */
  | "POLICY_UNSUPPORTED"
  // copying images (mirror, save, load)
  /** the arch/os filter leaves out some children of an index and no filtered index was asked for */
  | "INDEX_FILTERED"
  /** an image archive is cut short, malformed, or lacks a blob its manifests name */
  | "ARCHIVE_INVALID"
  // service (`airlock serve`)
  /** a request lacks a valid bearer token (HTTP 401) */
  | "UNAUTHENTICATED"
  /** the service is shutting down or its job queue is full (HTTP 503) */
  | "UNAVAILABLE"
  /** the service was started without what the request needs (a job request to a service without `--key`) */
  | "NOT_CONFIGURED";

/**
 * The base class of every error airlock throws on purpose.
 */
export class AirlockError extends Error {
  /** Which kind of failure this is. */
  readonly code: ErrorCode;

  /**
   * Creates an error of kind `code`.
   *
   * @param code the kind of failure
   * @param message what failed, for people
   * @param options `cause`: the underlying error, kept for `--debug`
   */
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "AirlockError";
    this.code = code;
  }
}

/**
 * Tells whether `err` is an {@linkcode AirlockError}, optionally of one of the given codes.
 */
export function isAirlockError(err: unknown, ...codes: ErrorCode[]): err is AirlockError {
  return err instanceof AirlockError && (codes.length === 0 || codes.includes(err.code));
}

/**
 * The message of any thrown value, for log lines.
 */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Any thrown value as an {@linkcode AirlockError}: an `AirlockError` as it is, anything else wrapped with
 * `code` (default `REGISTRY_ERROR`, what an image's work fails with unexpectedly) and kept as its `cause`.
 */
export function toAirlockError(err: unknown, code: ErrorCode = "REGISTRY_ERROR"): AirlockError {
  return isAirlockError(err) ? err : new AirlockError(code, errorMessage(err), { cause: err });
}
