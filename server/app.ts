/**
 * The HTTP app of `airlock serve`, on hono. It knows no runtime: everything it works with comes in through
 * {@linkcode AppOptions} (the operations bound to the operator's key, the token authenticator, the job store,
 * metrics, logger, clock), and `serve.ts` puts it on `Deno.serve`.
 *
 * Routes: `POST /v1/sign|validate|verify` (202 + job id), `GET /v1/jobs`, `GET /v1/jobs/{id}`,
 * `GET /v1/jobs/{id}/events` (SSE), `GET /v1/public-key`, `GET /healthz`, `GET /metrics`, `GET /openapi.json`,
 * `GET /` (HTML), and with an admission configuration `POST /v1/admission/validate|mutate` (`admission.ts`). Every `/v1/*` call and `/metrics` need `Authorization: Bearer TOKEN`; the page takes the token
 * once as `/?token=…`, moves it into an HttpOnly, SameSite=Strict cookie and redirects to `/`.
 *
 * Order of checks for a job request: token (401), per-token rate limit (429), media type (415), body size
 * (413), JSON (400), fields (400; fields that would name a key, file or module are refused by name), image
 * count (413). Nothing is queued unless everything passed.
 *
 * @example
 * ```ts
 * const app = createApp({ operations, tokens, jobs, metrics, logger, limits });
 * Deno.serve(app.fetch);
 * ```
 *
 * @module
 */
import { type Context, Hono, type MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { getCookie, setCookie } from "hono/cookie";
import { HTTPException } from "hono/http-exception";
import { routePath } from "hono/route";
import { streamSSE } from "hono/streaming";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { AirlockError, errorMessage } from "../core/errors.ts";
import type { Logger } from "../core/report.ts";
import { VERSION } from "../core/version.ts";
import { errorBody, httpStatusFor } from "./errors.ts";
import type { JobEvent, JobKind, JobStore } from "./jobs.ts";
import type { Metrics } from "./metrics.ts";
import { openApiDocument } from "./openapi.ts";
import type { Operations } from "./operations.ts";
import { PAGE_CSP, renderJobsPage, renderLoginPage } from "./page.ts";
import { RateLimiter } from "./rate_limit.ts";
import { jsonContentTypeError, parseJobRequest, parseJsonBody } from "./requests.ts";
import { type AdmissionRouteOptions, type ConnectionInfo, registerAdmissionRoutes } from "./admission.ts";
import type { TokenAuthenticator } from "./tokens.ts";

/** Size limits and rates. */
export interface AppLimits {
  /** Request body bytes (413 above). */
  readonly maxBodyBytes: number;
  /** Images per request (413 above). */
  readonly maxImages: number;
  /** Job submissions per token per minute (429 above). */
  readonly ratePerMinute: number;
}

/** What the app works with. */
export interface AppOptions {
  /**
   * The pipelines, bound to the operator's key and registry settings; absent on a verify-only admission webhook
   * started without `--key` (the job routes then answer 501).
   */
  readonly operations?: Operations;
  /** The admission webhook endpoints (`--admission-config`). */
  readonly admission?: Omit<AdmissionRouteOptions, "metrics" | "logger" | "now">;
  /** Checks bearer tokens. */
  readonly tokens: TokenAuthenticator;
  /** Jobs. */
  readonly jobs: JobStore;
  /** Counters. */
  readonly metrics: Metrics;
  /** Log lines (refused requests, accepted jobs, errors). */
  readonly logger: Logger;
  /** Limits. */
  readonly limits: AppLimits;
  /** The clock, in ms (default `Date.now`). */
  readonly now?: () => number;
  /** Mark the page cookie `Secure` (when served over TLS). */
  readonly secureCookie?: boolean;
  /** The number of valid tokens, for `/metrics`. */
  readonly tokenCount?: () => number;
  /** Seconds between keep-alive comments on event streams (default 15). */
  readonly keepAliveSeconds?: number;
}

/** The app's hono environment: the token name of an authenticated call, and what the adapter says about the connection. */
export type AppEnv = { Variables: { tokenName: string }; Bindings: ConnectionInfo | undefined };
type Env = AppEnv;

/** The page's cookie; it holds the token itself, so it is HttpOnly and SameSite=Strict. */
const COOKIE = "airlock_token";
const BEARER_RE = /^Bearer[ \t]+([^\s]+)[ \t]*$/i;

function noKey(): AirlockError {
  return new AirlockError(
    "NOT_CONFIGURED",
    "this service was started without --key (a verify-only admission webhook): it signs, validates and " +
      "verifies nothing for the job API",
  );
}

/**
 * Builds the app.
 *
 * @example
 * ```ts
 * const app = createApp(options);
 * const res = await app.request("/healthz");
 * ```
 */
export function createApp(o: AppOptions): Hono<Env> {
  const app = new Hono<Env>();
  const log = o.logger;
  const now = o.now ?? Date.now;
  const limiter = new RateLimiter({ perMinute: o.limits.ratePerMinute, now });

  const fail = (c: Context, err: AirlockError, reason?: string): Response => {
    if (reason) o.metrics.rejected(reason);
    return c.json(errorBody(err), httpStatusFor(err) as ContentfulStatusCode);
  };

  // Latency and counts of every answer, labelled by route pattern.
  app.use("*", async (c, next) => {
    const t0 = performance.now();
    await next();
    const route = routePath(c, -1) || "unmatched";
    o.metrics.observeRequest(c.req.method, route, c.res.status, (performance.now() - t0) / 1000);
    c.header("X-Content-Type-Options", "nosniff");
    if (!c.res.headers.has("Cache-Control")) c.header("Cache-Control", "no-store");
  });

  const authenticate: MiddlewareHandler<Env> = async (c, next) => {
    const m = BEARER_RE.exec(c.req.header("authorization") ?? "");
    const name = m ? await o.tokens.authenticate(m[1]) : undefined;
    if (name === undefined) {
      log.warn(
        `refused ${c.req.method} ${JSON.stringify(c.req.path)}: ${
          m ? "unknown or revoked token" : "no bearer token"
        }`,
      );
      c.header("WWW-Authenticate", 'Bearer realm="airlock"');
      return fail(
        c,
        new AirlockError("UNAUTHENTICATED", "a valid bearer token is required"),
        "unauthenticated",
      );
    }
    c.set("tokenName", name);
    await next();
  };
  // The admission endpoints answer the API server, which sends no token (`--client-ca` guards them instead).
  app.use(
    "/v1/*",
    (c, next) => o.admission && c.req.path.startsWith("/v1/admission/") ? next() : authenticate(c, next),
  );
  app.use("/metrics", authenticate);

  const submit = (kind: JobKind) =>
    [
      // per-token rate limit, before the body is read
      (async (c, next) => {
        const r = limiter.take(c.get("tokenName"));
        if (!r.ok) {
          c.header("Retry-After", String(r.retryAfterSeconds));
          return fail(
            c,
            new AirlockError(
              "RATE_LIMITED",
              `rate limit of ${o.limits.ratePerMinute}/min exceeded for this token`,
            ),
            "rate_limited",
          );
        }
        const notJson = jsonContentTypeError(c.req.header("content-type"));
        if (notJson) return fail(c, notJson, "invalid");
        await next();
      }) as MiddlewareHandler<Env>,
      bodyLimit({
        maxSize: o.limits.maxBodyBytes,
        onError: (c) =>
          fail(
            c,
            new AirlockError("TOO_LARGE", `request body over ${o.limits.maxBodyBytes} bytes`),
            "too_large",
          ),
      }),
      async (c: Context<Env>) => {
        const name = c.get("tokenName");
        let request;
        try {
          request = parseJobRequest(kind, parseJsonBody(await c.req.text()), {
            maxImages: o.limits.maxImages,
          });
        } catch (e) {
          if (!(e instanceof AirlockError)) throw e;
          log.warn(`refused ${kind} request of token ${name}: ${e.message}`);
          return fail(c, e, e.code === "TOO_LARGE" ? "too_large" : "invalid");
        }
        const req = request;
        const operations = o.operations;
        if (!operations) return fail(c, noKey(), "invalid");
        const job = o.jobs.submit({
          kind,
          submittedBy: name,
          images: req.images,
          work: (ctx) => operations.run(req, ctx),
        });
        log.info(`job ${job.id} accepted: ${kind} of ${req.images.length} image(s) for token ${name}`);
        c.header("Location", `/v1/jobs/${job.id}`);
        return c.json({ id: job.id, kind, state: job.state, images: req.images.length }, 202);
      },
    ] as const;

  app.post("/v1/sign", ...submit("sign"));
  app.post("/v1/validate", ...submit("validate"));
  app.post("/v1/verify", ...submit("verify"));

  app.get("/v1/jobs", (c) => {
    const limit = Math.min(200, Math.max(1, Number(c.req.query("limit") ?? 50) || 50));
    return c.json({ jobs: o.jobs.list(limit) });
  });

  app.get("/v1/jobs/:id", (c) => {
    const job = o.jobs.get(c.req.param("id"));
    return job ? c.json(job) : fail(c, new AirlockError("NOT_FOUND", "no such job"));
  });

  app.get("/v1/jobs/:id/events", (c) => {
    const after = Number(c.req.header("last-event-id") ?? 0);
    const queue: (JobEvent | undefined)[] = [];
    let wake: (() => void) | undefined;
    const sub = o.jobs.subscribe(c.req.param("id"), Number.isInteger(after) ? after : 0, (ev) => {
      queue.push(ev);
      wake?.();
    });
    if (!sub) return fail(c, new AirlockError("NOT_FOUND", "no such job"));
    const keepAliveMs = (o.keepAliveSeconds ?? 15) * 1000;
    return streamSSE(c, async (stream) => {
      stream.onAbort(() => wake?.());
      const send = (ev: JobEvent) =>
        stream.writeSSE({ id: String(ev.seq), event: ev.event, data: JSON.stringify(ev.data) });
      try {
        for (const ev of sub.replay) await send(ev);
        if (sub.finished) return;
        while (!stream.aborted) {
          while (queue.length > 0) {
            const ev = queue.shift();
            if (ev === undefined) return; // the server closes the stream (shutdown)
            await send(ev);
            if (ev.event === "done") return;
          }
          let timer: ReturnType<typeof setTimeout> | undefined;
          const woken = await new Promise<boolean>((resolve) => {
            wake = () => resolve(true);
            timer = setTimeout(() => resolve(false), keepAliveMs);
          });
          clearTimeout(timer);
          wake = undefined;
          if (!woken && !stream.aborted) await stream.write(": keep-alive\n\n");
        }
      } finally {
        sub.unsubscribe();
      }
    });
  });

  app.get("/v1/public-key", async (c) => {
    if (!o.operations) return fail(c, noKey());
    c.header("Content-Type", "application/x-pem-file");
    return c.body(await o.operations.publicKey());
  });

  app.get("/healthz", (c) => c.json({ status: "ok" }));

  app.get("/metrics", (c) => {
    c.header("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    return c.body(o.metrics.render({
      jobsRunning: o.jobs.running,
      jobsQueued: o.jobs.queued,
      tokens: o.tokenCount?.(),
      admissionCache: o.admission?.engine.cacheStats,
    }));
  });

  app.get("/openapi.json", (c) => c.json(openApiDocument()));

  app.get("/", async (c) => {
    c.header("Content-Security-Policy", PAGE_CSP);
    c.header("Referrer-Policy", "no-referrer");
    c.header("X-Frame-Options", "DENY");
    const offered = c.req.query("token");
    if (offered !== undefined) {
      if (await o.tokens.authenticate(offered) === undefined) {
        o.metrics.rejected("unauthenticated");
        return c.html(renderLoginPage("That token is not valid."), 401);
      }
      setCookie(c, COOKIE, offered, {
        httpOnly: true,
        sameSite: "Strict",
        path: "/",
        secure: o.secureCookie ?? false,
        maxAge: 8 * 3600,
      });
      return c.redirect("/", 303);
    }
    const cookie = getCookie(c, COOKIE);
    const viewer = cookie === undefined ? undefined : await o.tokens.authenticate(cookie);
    if (viewer === undefined) {
      if (cookie !== undefined) o.metrics.rejected("unauthenticated");
      return c.html(
        renderLoginPage(cookie === undefined ? "This page needs a token." : "Your token is no longer valid."),
        401,
      );
    }
    return c.html(renderJobsPage(o.jobs.list(50), {
      version: VERSION,
      renderedAt: new Date(now()).toISOString(),
      viewer,
      decisions: o.admission?.recent.list(100),
    }));
  });

  if (o.admission) registerAdmissionRoutes(app, { ...o.admission, metrics: o.metrics, logger: log, now });

  app.notFound((c) => fail(c, new AirlockError("NOT_FOUND", `no route for ${c.req.method} ${c.req.path}`)));

  app.onError((err, c) => {
    if (err instanceof HTTPException) return err.getResponse();
    const status = httpStatusFor(err);
    if (status >= 500) {
      log.error(`${c.req.method} ${JSON.stringify(c.req.path)} failed: ${errorMessage(err)}`);
    }
    return c.json(errorBody(err), status as ContentfulStatusCode);
  });

  return app;
}
