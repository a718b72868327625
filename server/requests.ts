/**
 * The request bodies of `airlock serve`, read strictly: a JSON object whose fields are the CLI's long flags in
 * camelCase, each with the CLI's meaning and parsing (`arch`/`os` as CSV lists, `timeout` as a Go duration).
 * Anything else is refused with a reason (`INVALID_ARGUMENT`, HTTP 400): malformed JSON, a field of the wrong
 * type, an unknown field, and — with a message of its own — any field that would name a key, a passphrase, a
 * file, a directory or a module: those are chosen by the operator when the service starts, never by a request.
 *
 * Each image is one image-list line (sign, validate; hangar's grammar, `docker.io/library` defaults) or one
 * reference (verify, as `airlock verify` takes them); a line that does not resolve to an image is refused
 * before any job exists.
 *
 * Runtime-agnostic: no Deno API here.
 *
 * @module
 */
import { newExactRepository } from "../core/config/policy_config.ts";
import { parseGoDuration } from "../core/encoding/go_values.ts";
import { AirlockError, errorMessage } from "../core/errors.ts";
import { parseImageList, type ResolvedImageLine, resolveImageList } from "../core/image_list.ts";
import { DEFAULT_ARCH_LIST, DEFAULT_OS_LIST, parseCsvList } from "../core/platform.ts";
import { parseReference, type Reference } from "../core/reference.ts";
import type { JobKind } from "./jobs.ts";

/** Limits on what one request may ask for. */
export interface RequestLimits {
  /** Images per request. */
  readonly maxImages: number;
}

/** Options shared by every job request. */
interface CommonRequest {
  /** The images as the request named them. */
  readonly images: readonly string[];
  /** Images worked on at once inside the job (1–20, default 1). */
  readonly jobs: number;
  /** Deadline per image in ms (`timeout`, a Go duration, default `10m`, at most `1h`). */
  readonly timeoutMs: number;
}

/** `POST /v1/sign`. */
export interface SignRequest extends CommonRequest {
  /** Discriminant. */
  readonly kind: "sign";
  /** Each image resolved as an image-list line. */
  readonly lines: readonly ResolvedImageLine[];
  /** Architectures of list children to sign. */
  readonly arch: readonly string[];
  /** Operating systems of list children to sign. */
  readonly os: readonly string[];
  /** Sign the index of multi-arch images too (default true). */
  readonly signIndex: boolean;
  /** Add a signature even when an equal one exists. */
  readonly force: boolean;
  /** Written into the payload's `optional`. */
  readonly annotations?: Readonly<Record<string, string>>;
}

/** `POST /v1/validate`. */
export interface ValidateRequest extends CommonRequest {
  /** Discriminant. */
  readonly kind: "validate";
  /** Each image resolved as an image-list line. */
  readonly lines: readonly ResolvedImageLine[];
  /** Architectures of list children to check. */
  readonly arch: readonly string[];
  /** Operating systems of list children to check. */
  readonly os: readonly string[];
  /** Accept signatures naming this repository (exactRepository). */
  readonly exactRepository?: string;
  /** Require a signature on the index too. */
  readonly requireIndexSignature: boolean;
  /** Skip (instead of failing) an image none of whose platform manifests matches `arch`/`os`. */
  readonly skipUnmatched: boolean;
}

/** `POST /v1/verify`. */
export interface VerifyRequest extends CommonRequest {
  /** Discriminant. */
  readonly kind: "verify";
  /** Each image parsed as a reference. */
  readonly references: readonly Reference[];
  /** Every one must be in the payload's `optional` with this value. */
  readonly annotations?: Readonly<Record<string, string>>;
}

/** Any job request. */
export type JobRequest = SignRequest | ValidateRequest | VerifyRequest;

/** The fields each operation accepts (the OpenAPI document lists the same). */
export const REQUEST_FIELDS: Readonly<Record<JobKind, readonly string[]>> = {
  sign: ["images", "arch", "os", "signIndex", "annotations", "jobs", "force", "timeout"],
  validate: [
    "images",
    "arch",
    "os",
    "exactRepository",
    "requireIndexSignature",
    "skipUnmatched",
    "jobs",
    "timeout",
  ],
  verify: ["images", "annotations", "jobs", "timeout"],
};

/** Field names that would let a request choose a key, secret, file, directory, module or TLS setting. */
const OPERATOR_ONLY =
  /key|passphrase|password|pin|secret|token|policy|pkcs11|module|path|file|dir|cert|tls|auth|credential|plugin|registries|kms|vault|hsm/i;

const MAX_IMAGE_LENGTH = 1024;
const MAX_ANNOTATIONS = 64;
const MAX_TIMEOUT_MS = 3_600_000;

function bad(message: string): AirlockError {
  return new AirlockError("INVALID_ARGUMENT", message);
}

/**
 * Why a request's `Content-Type` header is not one a JSON body may carry (`application/json`, with or without
 * parameters); none when it is.
 */
export function jsonContentTypeError(contentType: string | undefined): AirlockError | undefined {
  const type = contentType ?? "";
  if (/^application\/json\s*(;|$)/i.test(type)) return undefined;
  return new AirlockError("UNSUPPORTED_MEDIA_TYPE", `the body must be application/json, not "${type}"`);
}

/**
 * Parses a request body's text as JSON.
 *
 * @throws {AirlockError} `INVALID_ARGUMENT` `malformed JSON: …`.
 */
export function parseJsonBody(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw bad(`malformed JSON: ${errorMessage(e)}`);
  }
}

/**
 * Checks a parsed body for `kind` and returns the typed request.
 *
 * @throws {AirlockError} `INVALID_ARGUMENT` naming the field and the reason.
 */
export function parseJobRequest(kind: JobKind, body: unknown, limits: RequestLimits): JobRequest {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw bad("the request body must be a JSON object");
  }
  const o = body as Record<string, unknown>;
  const allowed = REQUEST_FIELDS[kind];
  for (const field of Object.keys(o)) {
    if (allowed.includes(field)) continue;
    if (OPERATOR_ONLY.test(field)) {
      throw bad(
        `field ${
          JSON.stringify(field)
        } is not accepted: keys, passphrases, files, directories and modules are ` +
          "chosen by the operator when the service starts, never by a request",
      );
    }
    throw bad(`unknown field ${JSON.stringify(field)}; ${kind} accepts: ${allowed.join(", ")}`);
  }
  const images = imagesField(o.images, limits);
  const common = { images, jobs: intField(o, "jobs", 1, 20, 1), timeoutMs: timeoutField(o.timeout) };
  // sign and validate: each image an image-list line, and the list's platform filter
  const listFields = () => ({
    lines: resolveLines(images),
    arch: csvField(o, "arch", DEFAULT_ARCH_LIST),
    os: csvField(o, "os", DEFAULT_OS_LIST),
  });
  switch (kind) {
    case "sign":
      return {
        kind,
        ...common,
        ...listFields(),
        signIndex: boolField(o, "signIndex", true),
        force: boolField(o, "force", false),
        ...annotationsField(o.annotations),
      };
    case "validate": {
      const exact = o.exactRepository;
      if (exact !== undefined) {
        if (typeof exact !== "string" || exact === "") {
          throw bad(`field "exactRepository" must be a non-empty string`);
        }
        try {
          newExactRepository(exact);
        } catch (e) {
          throw bad(`field "exactRepository": ${errorMessage(e)}`);
        }
      }
      return {
        kind,
        ...common,
        ...listFields(),
        requireIndexSignature: boolField(o, "requireIndexSignature", false),
        skipUnmatched: boolField(o, "skipUnmatched", false),
        ...(exact !== undefined ? { exactRepository: exact as string } : {}),
      };
    }
    case "verify":
      return {
        kind,
        ...common,
        references: images.map((image, i) => {
          try {
            return parseReference(image);
          } catch (e) {
            throw bad(`images[${i}]: ${errorMessage(e)}`);
          }
        }),
        ...annotationsField(o.annotations),
      };
  }
}

function imagesField(v: unknown, limits: RequestLimits): string[] {
  if (!Array.isArray(v)) throw bad(`field "images" is required: an array of image references`);
  if (v.length === 0) throw bad(`field "images" is empty`);
  if (v.length > limits.maxImages) {
    throw new AirlockError(
      "TOO_LARGE",
      `too many images: ${v.length} (at most ${limits.maxImages} per request)`,
    );
  }
  return v.map((s, i) => {
    if (typeof s !== "string" || s.trim() === "") throw bad(`images[${i}] must be a non-empty string`);
    if (s.length > MAX_IMAGE_LENGTH) throw bad(`images[${i}] is longer than ${MAX_IMAGE_LENGTH} characters`);
    // deno-lint-ignore no-control-regex
    if (/[\x00-\x1f\x7f]/.test(s)) throw bad(`images[${i}] contains control characters`);
    return s;
  });
}

/** Each image as a one-line image list; only lines that name an image are accepted. */
function resolveLines(images: readonly string[]): ResolvedImageLine[] {
  return images.map((image, i) => {
    const lines = parseImageList(image);
    if (lines.length !== 1) throw bad(`images[${i}] is not an image reference (a comment or empty)`);
    const [r] = resolveImageList(lines);
    if (r.status === "invalid") throw bad(`images[${i}]: ${r.error.message}`);
    if (r.status === "ignored") throw bad(`images[${i}] is not an image reference: ${JSON.stringify(image)}`);
    return r;
  });
}

function intField(o: Record<string, unknown>, name: string, min: number, max: number, def: number): number {
  const v = o[name];
  if (v === undefined) return def;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw bad(`field "${name}" must be an integer from ${min} to ${max}`);
  }
  return v;
}

function boolField(o: Record<string, unknown>, name: string, def: boolean): boolean {
  const v = o[name];
  if (v === undefined) return def;
  if (typeof v !== "boolean") throw bad(`field "${name}" must be true or false`);
  return v;
}

function csvField(o: Record<string, unknown>, name: string, defaults: readonly string[]): string[] {
  const v = o[name];
  if (v === undefined) return [...defaults];
  const values = typeof v === "string" ? [v] : v;
  if (!Array.isArray(values) || !values.every((x) => typeof x === "string")) {
    throw bad(`field "${name}" must be a string or an array of strings`);
  }
  if (values.length === 0) return [...defaults];
  return parseCsvList(values as string[], defaults, name);
}

function timeoutField(v: unknown): number {
  if (v === undefined) return 600_000;
  if (typeof v !== "string") throw bad(`field "timeout" must be a duration string such as "90s" or "10m"`);
  let ms: number;
  try {
    ms = parseGoDuration(v);
  } catch (e) {
    throw bad(`field "timeout": ${errorMessage(e)}`);
  }
  if (!(ms > 0) || ms > MAX_TIMEOUT_MS) throw bad(`field "timeout" must be more than 0 and at most 1h`);
  return ms;
}

function annotationsField(v: unknown): { annotations?: Record<string, string> } {
  if (v === undefined) return {};
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw bad(`field "annotations" must be an object of string values`);
  }
  const entries = Object.entries(v as Record<string, unknown>);
  if (entries.length > MAX_ANNOTATIONS) {
    throw bad(`field "annotations" has more than ${MAX_ANNOTATIONS} entries`);
  }
  for (const [k, val] of entries) {
    if (k === "" || k.length > 256) throw bad(`annotation keys must be 1-256 characters`);
    if (typeof val !== "string" || val.length > 4096) {
      throw bad(`annotation ${JSON.stringify(k)} must be a string of at most 4096 characters`);
    }
  }
  // fromEntries defines own properties: a "__proto__" key stays data
  return { annotations: Object.fromEntries(entries) as Record<string, string> };
}
