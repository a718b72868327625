/**
 * The OpenAPI 3.1 document of `airlock serve` (served at `GET /openapi.json`). A TypeScript module, not a file
 * read at run time, so `deno compile` embeds it.
 *
 * @module
 */
import { VERSION } from "../core/version.ts";

type Schema = Record<string, unknown>;

const str = (description: string, extra: Schema = {}): Schema => ({ type: "string", description, ...extra });
const bool = (description: string): Schema => ({ type: "boolean", description });
const csv = (description: string): Schema => ({
  description: `${description} A string (comma-separated, as the CLI flag) or an array of such strings.`,
  oneOf: [{ type: "string" }, { type: "array", items: { type: "string" } }],
});

const common: Record<string, Schema> = {
  images: {
    type: "array",
    minItems: 1,
    items: { type: "string", maxLength: 1024 },
    description: "Images, each one image-list line (`host/repo:tag`, `host/repo@sha256:…`).",
  },
  jobs: { type: "integer", minimum: 1, maximum: 20, default: 1, description: "Images worked on at once." },
  timeout: str("Deadline per image, a Go duration (`90s`, `10m`); at most `1h`.", { default: "10m" }),
};

const annotations: Schema = {
  type: "object",
  additionalProperties: { type: "string" },
  maxProperties: 64,
  description: "Annotations in the payload's `optional` (sign: written; verify: required).",
};

const signRequest: Schema = {
  type: "object",
  additionalProperties: false,
  required: ["images"],
  properties: {
    images: common.images,
    arch: csv("Architectures of list children to sign (default `amd64,arm64`)."),
    os: csv("Operating systems of list children to sign (default `linux`)."),
    signIndex: { ...bool("Sign the index of multi-arch images too."), default: true },
    annotations,
    jobs: common.jobs,
    force: { ...bool("Add a signature even when an equal one exists."), default: false },
    timeout: common.timeout,
  },
};

const validateRequest: Schema = {
  type: "object",
  additionalProperties: false,
  required: ["images"],
  properties: {
    images: common.images,
    arch: csv("Architectures of list children to check (default `amd64,arm64`)."),
    os: csv("Operating systems of list children to check (default `linux`)."),
    exactRepository: str("Accept signatures whose identity names this repository."),
    requireIndexSignature: { ...bool("Require a signature on the index too."), default: false },
    skipUnmatched: {
      ...bool("Skip, instead of failing, an image none of whose platform manifests matches arch/os."),
      default: false,
    },
    jobs: common.jobs,
    timeout: common.timeout,
  },
};

const verifyRequest: Schema = {
  type: "object",
  additionalProperties: false,
  required: ["images"],
  properties: { images: common.images, annotations, jobs: common.jobs, timeout: common.timeout },
};

const error: Schema = {
  type: "object",
  required: ["error"],
  properties: {
    error: {
      type: "object",
      required: ["code", "message"],
      properties: { code: str("Error kind (airlock's error codes)."), message: str("For people.") },
    },
  },
};

const target: Schema = {
  type: "object",
  required: ["digest", "status"],
  properties: {
    digest: str("Manifest digest."),
    identity: str("Identity in the payload."),
    kind: { type: "string", enum: ["index", "image"] },
    platform: { type: ["string", "null"] },
    status: str("`signed`/`present`, `accepted`/`rejected`, `verified`."),
    layerDigest: str("Payload layer written, found or verified."),
    reason: { type: ["string", "null"], description: "Why a manifest was rejected (validate)." },
  },
};

const imageResult: Schema = {
  type: "object",
  required: ["image", "status", "reference", "digest", "targets", "error"],
  properties: {
    image: str("The image as requested."),
    status: str(
      "`pending`; sign: `signed`/`unchanged`/`skipped`/`failed`; validate: `passed`/`failed`/`skipped`; " +
        "verify: `verified`/`failed`.",
    ),
    reference: { type: ["string", "null"] },
    digest: { type: ["string", "null"] },
    targets: { type: "array", items: { $ref: "#/components/schemas/Target" } },
    error: { oneOf: [{ type: "null" }, { $ref: "#/components/schemas/Error/properties/error" }] },
  },
};

const job: Schema = {
  type: "object",
  required: ["id", "kind", "state", "submittedBy", "createdAt", "summary", "images"],
  properties: {
    id: str("Job id.", { format: "uuid" }),
    kind: { type: "string", enum: ["sign", "validate", "verify"] },
    state: { type: "string", enum: ["queued", "running", "succeeded", "failed", "cancelled"] },
    submittedBy: str("Name of the token that submitted the job."),
    createdAt: str("", { format: "date-time" }),
    startedAt: { type: ["string", "null"], format: "date-time" },
    finishedAt: { type: ["string", "null"], format: "date-time" },
    summary: {
      type: "object",
      properties: { total: { type: "integer" }, done: { type: "integer" }, failed: { type: "integer" } },
    },
    images: { type: "array", items: { $ref: "#/components/schemas/ImageResult" } },
    error: { oneOf: [{ type: "null" }, { $ref: "#/components/schemas/Error/properties/error" }] },
  },
};

const errors = (...codes: number[]): Record<string, Schema> => {
  const text: Record<number, string> = {
    400: "Malformed JSON, a wrong or unknown field, or a field naming a key, file or module.",
    401: "Missing, unknown or revoked bearer token.",
    403: "No client certificate signed by `--client-ca` (admission endpoints).",
    404: "No such job.",
    413: "Request body or image list too large.",
    415: "The body is not `application/json`.",
    429: "Too many requests for this token; see `Retry-After`.",
    501: "The service was started without `--key` (a verify-only admission webhook).",
    503: "Shutting down, or too many jobs queued.",
  };
  return Object.fromEntries(codes.map((c) => [String(c), {
    description: text[c],
    content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
  }]));
};

const submit = (summary: string, schema: string): Schema => ({
  summary,
  security: [{ bearer: [] }],
  requestBody: {
    required: true,
    content: { "application/json": { schema: { $ref: `#/components/schemas/${schema}` } } },
  },
  responses: {
    "202": {
      description: "Accepted: the job id (follow it at `/v1/jobs/{id}` or its event stream).",
      headers: { Location: { schema: { type: "string" } } },
      content: {
        "application/json": {
          schema: { type: "object", required: ["id"], properties: { id: { type: "string" }, state: {} } },
        },
      },
    },
    ...errors(400, 401, 413, 415, 429, 501, 503),
  },
});

/**
 * The OpenAPI document.
 */
export function openApiDocument(): Record<string, unknown> {
  return {
    openapi: "3.1.0",
    info: {
      title: "airlock serve",
      version: VERSION,
      description: "Signing and verification of container images with the service's key (chosen by the " +
        "operator). Every /v1 call and /metrics need a bearer token from the service's token file.",
    },
    components: {
      securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
      schemas: {
        SignRequest: signRequest,
        ValidateRequest: validateRequest,
        VerifyRequest: verifyRequest,
        Error: error,
        Target: target,
        ImageResult: imageResult,
        Job: job,
      },
    },
    paths: {
      "/v1/sign": { post: submit("Sign images with the service key", "SignRequest") },
      "/v1/validate": {
        post: submit("Check images against the service key (containers-policy semantics)", "ValidateRequest"),
      },
      "/v1/verify": {
        post: submit("Verify images with the service key (cosign semantics)", "VerifyRequest"),
      },
      "/v1/jobs": {
        get: {
          summary: "Recent jobs, newest first",
          security: [{ bearer: [] }],
          parameters: [{ name: "limit", in: "query", schema: { type: "integer", minimum: 1, maximum: 200 } }],
          responses: {
            "200": {
              description: "Jobs",
              content: {
                "application/json": {
                  schema: {
                    type: "object",
                    properties: { jobs: { type: "array", items: { $ref: "#/components/schemas/Job" } } },
                  },
                },
              },
            },
            ...errors(401),
          },
        },
      },
      "/v1/jobs/{id}": {
        get: {
          summary: "A job: state and per-image results",
          security: [{ bearer: [] }],
          parameters: [{ name: "id", in: "path", required: true, schema: { type: "string" } }],
          responses: {
            "200": {
              description: "The job",
              content: { "application/json": { schema: { $ref: "#/components/schemas/Job" } } },
            },
            ...errors(401, 404),
          },
        },
      },
      "/v1/jobs/{id}/events": {
        get: {
          summary: "A job's progress as server-sent events",
          description:
            "Events: `state` `{state}`, `image` `{index, result, done, total}`, `done` (the final " +
            "job). Past events are replayed first (after `Last-Event-ID` when given); the stream ends after " +
            "`done`.",
          security: [{ bearer: [] }],
          parameters: [{ name: "id", in: "path", required: true, schema: { type: "string" } }],
          responses: {
            "200": { description: "Event stream", content: { "text/event-stream": {} } },
            ...errors(401, 404),
          },
        },
      },
      "/v1/public-key": {
        get: {
          summary: "The service key's public key (SPKI PEM)",
          security: [{ bearer: [] }],
          responses: {
            "200": { description: "PEM", content: { "application/x-pem-file": {} } },
            ...errors(401, 501),
          },
        },
      },
      ...Object.fromEntries((["validate", "mutate"] as const).map((kind) => [`/v1/admission/${kind}`, {
        post: {
          summary: kind === "validate"
            ? "Kubernetes validating admission webhook: allows or denies pods by their images' signatures"
            : "Kubernetes mutating admission webhook: also pins each verified tag to its digest (JSON Patch)",
          description:
            "Only with `--admission-config`. Takes an `admission.k8s.io/v1` `AdmissionReview` and " +
            "answers one (200 whatever the verdict). No bearer token; with `--client-ca`, a client " +
            "certificate signed by that CA is required (403 otherwise).",
          requestBody: { required: true, content: { "application/json": {} } },
          responses: {
            "200": { description: "The AdmissionReview answer", content: { "application/json": {} } },
            ...errors(400, 403, 413, 415),
          },
        },
      }])),
      "/healthz": {
        get: {
          summary: "Liveness",
          responses: { "200": { description: "ok", content: { "application/json": {} } } },
        },
      },
      "/metrics": {
        get: {
          summary: "Prometheus metrics",
          security: [{ bearer: [] }],
          responses: { "200": { description: "Prometheus text format", content: { "text/plain": {} } } },
        },
      },
      "/openapi.json": {
        get: { summary: "This document", responses: { "200": { description: "OpenAPI 3.1" } } },
      },
      "/": {
        get: {
          summary: "A page of recent jobs (HTML)",
          description: "Open `/?token=TOKEN` once: the token is moved into an HttpOnly cookie and the page " +
            "reloads without it in the address.",
          responses: { "200": { description: "HTML" }, "401": { description: "A page asking for a token" } },
        },
      },
    },
  };
}
