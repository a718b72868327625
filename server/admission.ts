/**
 * The admission webhook endpoints of `airlock serve` (present only with `--admission-config`):
 * `POST /v1/admission/validate` and `POST /v1/admission/mutate` take an `admission.k8s.io/v1` `AdmissionReview`
 * from the Kubernetes API server and answer one (HTTP 200 whatever the verdict, as the API server expects).
 * They take no bearer token — the API server sends none; with `--client-ca` the caller must have presented a
 * client certificate that chains to that CA (403 otherwise).
 *
 * Every decision is logged (`admission: allowed|denied uid=… namespace=… kind=… image=… digest=… reason=…`, one
 * line per image checked, or one line saying why nothing was), counted in `/metrics`, and kept in a short list
 * of recent decisions for the page at `/`. Runtime-agnostic, like the rest of the app.
 *
 * @module
 */
import type { Context, Hono, MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { AdmissionEngine } from "../core/admission/service.ts";
import type { AdmissionRequest } from "../core/admission/review.ts";
import type { ReviewDecision } from "../core/admission/decide.ts";
import { AirlockError } from "../core/errors.ts";
import type { Logger } from "../core/report.ts";
import { errorBody, httpStatusFor } from "./errors.ts";
import type { AppEnv } from "./app.ts";
import type { Metrics } from "./metrics.ts";
import { jsonContentTypeError, parseJsonBody } from "./requests.ts";

/** The largest review accepted: an UPDATE carries the object and the old object (etcd keeps ≤ 1.5 MiB each). */
export const MAX_REVIEW_BYTES = 8 * 1024 * 1024;

/** One decision as the page shows it. */
export interface RecentDecision {
  /** ISO 8601. */
  readonly time: string;
  /** `validate` or `mutate`. */
  readonly endpoint: string;
  /** `allowed` or `denied`. */
  readonly decision: "allowed" | "denied";
  /** The review's uid. */
  readonly uid: string;
  /** Namespace. */
  readonly namespace: string;
  /** Kind and name (`Deployment web`). */
  readonly object: string;
  /** The image, `-` when nothing was checked. */
  readonly image: string;
  /** The digest judged, `-` when unknown. */
  readonly digest: string;
  /** Why. */
  readonly reason: string;
  /** A dry-run request. */
  readonly dryRun: boolean;
}

/**
 * The last decisions, newest first, bounded.
 */
export class RecentDecisions {
  readonly #items: RecentDecision[] = [];
  /**
   * Keeps at most `max` decisions.
   *
   * @param max how many
   */
  constructor(readonly max = 200) {}

  /** Adds a decision. */
  add(d: RecentDecision): void {
    this.#items.unshift(d);
    if (this.#items.length > this.max) this.#items.length = this.max;
  }

  /** The newest `n` decisions. */
  list(n = this.max): RecentDecision[] {
    return this.#items.slice(0, n);
  }
}

/** What the admission routes work with. */
export interface AdmissionRouteOptions {
  /** The engine. */
  readonly engine: AdmissionEngine;
  /** Counters. */
  readonly metrics: Metrics;
  /** Decision log lines. */
  readonly logger: Logger;
  /** The list the page shows. */
  readonly recent: RecentDecisions;
  /** Only callers with a verified client certificate (`--client-ca`). */
  readonly requireClientCert: boolean;
  /** The clock in ms. */
  readonly now: () => number;
}

/** What the runtime adapter tells the app about the connection. */
export interface ConnectionInfo {
  /** The client presented a certificate that chains to `--client-ca`. */
  readonly clientCertVerified?: boolean;
}

/** A log value: bare when it is one plain word, else JSON-quoted (requests are input; nothing may forge a field). */
function v(s: string): string {
  return s !== "" && /^[\w.:/@+=-]+$/.test(s) ? s : JSON.stringify(s);
}

function objectName(r: AdmissionRequest): string {
  return r.name === "" ? r.kind.kind : `${r.kind.kind} ${r.name}`;
}

/**
 * Adds the two endpoints to the app.
 */
export function registerAdmissionRoutes(app: Hono<AppEnv>, o: AdmissionRouteOptions): void {
  const fail = (c: Context, err: AirlockError, reason: string): Response => {
    o.metrics.rejected(reason);
    return c.json(errorBody(err), httpStatusFor(err) as ContentfulStatusCode);
  };

  const record = (endpoint: string, request: AdmissionRequest, d: ReviewDecision) => {
    const time = new Date(o.now()).toISOString();
    o.metrics.admissionReview(endpoint, d.answer.allowed, request.dryRun);
    const head = (decision: string) =>
      `admission: ${decision} endpoint=${endpoint} uid=${v(request.uid)} namespace=${v(request.namespace)} ` +
      `kind=${v(request.kind.kind)} name=${v(request.name)} op=${request.operation}` +
      (request.dryRun ? " dry-run=true" : "");
    const base = {
      time,
      endpoint,
      uid: request.uid,
      namespace: request.namespace,
      object: objectName(request),
      dryRun: request.dryRun,
    };
    if (d.images.length === 0) {
      const decision = d.answer.allowed ? "allowed" : "denied";
      const reason = d.note ?? d.answer.message ?? "";
      o.metrics.admissionImage(endpoint, d.answer.allowed ? "unchecked" : "invalid");
      (d.answer.allowed ? o.logger.info : o.logger.warn).call(
        o.logger,
        `${head(decision)} image=- digest=- reason=${JSON.stringify(reason)}`,
      );
      o.recent.add({ ...base, decision, image: "-", digest: "-", reason });
      return;
    }
    for (const img of d.images) {
      const decision = img.allowed ? "allowed" : "denied";
      o.metrics.admissionImage(endpoint, img.category);
      const reason = img.pinned ? `${img.reason}; pinned to ${img.pinned}` : img.reason;
      (img.allowed ? o.logger.info : o.logger.warn).call(
        o.logger,
        `${head(decision)} image=${v(img.image)} digest=${img.digest ?? "-"} cached=${img.cached} ` +
          `reason=${JSON.stringify(reason)}`,
      );
      o.recent.add({ ...base, decision, image: img.image, digest: img.digest ?? "-", reason });
    }
  };

  const endpoint = (name: "validate" | "mutate") =>
    [
      (async (c, next) => {
        if (o.requireClientCert && c.env?.clientCertVerified !== true) {
          o.logger.warn(`admission: refused ${name} review: no client certificate signed by --client-ca`);
          return fail(
            c,
            new AirlockError("DENIED", "a client certificate signed by the configured client CA is required"),
            "client_certificate",
          );
        }
        const notJson = jsonContentTypeError(c.req.header("content-type"));
        if (notJson) return fail(c, notJson, "invalid");
        await next();
      }) as MiddlewareHandler<AppEnv>,
      bodyLimit({
        maxSize: MAX_REVIEW_BYTES,
        onError: (c) =>
          fail(
            c,
            new AirlockError("TOO_LARGE", `AdmissionReview over ${MAX_REVIEW_BYTES} bytes`),
            "too_large",
          ),
      }),
      async (c: Context<AppEnv>) => {
        let result;
        try {
          result = await o.engine.review(parseJsonBody(await c.req.text()), { mutate: name === "mutate" });
        } catch (e) {
          if (!(e instanceof AirlockError)) throw e;
          o.logger.warn(`admission: refused ${name} review: ${e.message}`);
          return fail(c, e, "invalid");
        }
        record(name, result.request, result.decision);
        return c.json(result.response, 200);
      },
    ] as const;

  app.post("/v1/admission/validate", ...endpoint("validate"));
  app.post("/v1/admission/mutate", ...endpoint("mutate"));
}
