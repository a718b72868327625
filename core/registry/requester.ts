/**
 * The request layer of the registry client, shared by every operation: it finds a registry's API base, picks and
 * keeps a transport per host (TLS material from certs.d), and sends each request with authentication
 * (`auth.ts`), redirects, a per-request timeout and retries (`retry.ts`). Answers outside the statuses an
 * operation expects become {@linkcode RegistryError}s (`errors.ts`).
 *
 * Request counts: nothing is sent that the operation does not need. No ping before the first request (when plain
 * http is allowed, one `GET /v2/` per registry picks https or http); one 401 per registry teaches the auth
 * scheme. Credentials go to the registry's own host only, never across a redirect to another host.
 *
 * @module
 */

import { AirlockError } from "../errors.ts";
import { LinkedAbort } from "../abort.ts";
import { Answer } from "./answer.ts";
import { Authenticator, type Authorization } from "./auth.ts";
import { RegistryError, registryError } from "./errors.ts";
import { apiHost, certsName, repositoryPath } from "./names.ts";
import { backoffDelay, isRetryableStatus, parseRetryAfter, type RetryPolicy, sleep } from "./retry.ts";
import { loadTlsMaterial } from "./tls.ts";
import {
  FetchTransport,
  NetworkError,
  networkError,
  NodeTransport,
  type Transport,
  type TransportResponse,
} from "./transport.ts";
import type { CredentialLookup } from "./types.ts";

const MiB = 1024 * 1024;
const redirectStatuses = new Set([301, 302, 303, 307, 308]);
const maxRedirects = 10;
/** How the cosign-style commands spell "plain http allowed". */
const HTTP_HINT = "(cosign-style commands: --allow-http-registry)";

/** How a {@linkcode Requester} connects, authenticates, times out and retries. */
export interface RequesterOptions {
  /** Verify TLS certificates. */
  readonly tlsVerify: boolean;
  /** Allow plain http: the first contact with a registry tries https, then http. */
  readonly allowHttp: boolean;
  /** certs.d roots searched per host. */
  readonly certDirs?: string[];
  /** One directory of certificates for every host (replaces the certs.d lookup). */
  readonly certDir?: string;
  /** Finds credentials per registry. */
  readonly credentials?: CredentialLookup;
  /** `User-Agent` header. */
  readonly userAgent: string;
  /** Per request (until the body is read), in ms. */
  readonly timeoutMs: number;
  /** Retries of transient failures. */
  readonly policy: RetryPolicy;
  /** A transport for every request instead of the built-in ones. */
  readonly transport?: Transport;
}

/** Where a request goes: the registry, and the repository its path and token scope are in (none for `/v2/`). */
export interface Scope {
  /** `host[:port]` as in references (credentials and auth state key). */
  readonly registry: string;
  /** The repository; none for the API root. */
  readonly repository?: string;
}

/** One distribution API request as an operation describes it. */
export interface ApiCall {
  /** HTTP method. */
  readonly method: string;
  /** Token actions on the repository: `pull`, `pull,push` or `*`. */
  readonly actions?: string;
  /**
   * A path under `/v2/<repository>/` (`manifests/v1`, `blobs/uploads/`; under `/v2/` without a repository), or an
   * absolute URL (upload locations, Link pages).
   */
  readonly target: string | URL;
  /** Request headers. */
  readonly headers?: Record<string, string>;
  /** The body: bytes in memory, or a stream (never retried, never redirected). */
  readonly body?: Uint8Array | ReadableStream<Uint8Array>;
  /** Cancels the request, its retries and waits. */
  readonly signal?: AbortSignal;
  /** Retry transient failures of this single request (default true). */
  readonly retry?: boolean;
  /** More token scopes (a cross-repository mount needs `pull` on the source repository). */
  readonly extraScopes?: readonly string[];
  /** Per-exchange timeout instead of the default; `0` = none (streamed bodies watch idleness instead). */
  readonly timeoutMs?: number;
}

/** One HTTP exchange below authentication. */
interface Exchange {
  readonly method: string;
  readonly url: URL;
  readonly headers: Headers;
  readonly body?: Uint8Array | ReadableStream<Uint8Array>;
  readonly signal?: AbortSignal;
  /** The registry's API base: `authorization` is kept across redirects to its host only. */
  readonly authBase?: URL;
  /** Allow plain http even when TLS is verified (token realms, as the registry announces them). */
  readonly allowHttp?: boolean;
  /** Instead of the default per-request timeout; `0` = none. */
  readonly timeoutMs?: number;
}

/**
 * Sends distribution API requests to any number of registries, keeping transports, API bases and auth state.
 *
 * @example
 * ```ts
 * const http = new Requester({ tlsVerify: true, userAgent: "airlock", timeoutMs: 60_000, policy: defaultRetryPolicy });
 * const answer = await http.expect(ref, { method: "GET", actions: "pull", target: "tags/list" }, [200], "listing tags");
 * const bytes = await answer.bytes(1024 * 1024, "listing tags");
 * http.close();
 * ```
 */
export class Requester {
  readonly #options: RequesterOptions;
  readonly #transports = new Map<string, Promise<Transport>>();
  readonly #bases = new Map<string, Promise<URL>>();
  readonly #auth: Authenticator;
  #closed = false;

  /** @param options TLS, credentials, timeout, retries */
  constructor(options: RequesterOptions) {
    this.#options = options;
    this.#auth = new Authenticator({
      credentials: options.credentials,
      plainHttpAllowed: options.allowHttp,
      // The realm is whatever the (verified) registry announced; http realms are allowed for anonymous tokens,
      // and with credentials only where the registries themselves may use plain http (see auth.ts).
      exchange: async (req) => {
        const answer = await this.#roundTrip({ ...req, allowHttp: true }, true);
        const body = answer.status === 200
          ? await answer.bytes(MiB, `reading the token from ${req.url.host}`)
          : new TextEncoder().encode(await answer.text());
        return { status: answer.status, headers: answer.headers, body };
      },
    });
  }

  /** How many tokens were fetched from token servers (cache misses). */
  get tokensFetched(): number {
    return this.#auth.tokensFetched;
  }

  /** The per-request timeout, in ms (streamed transfers use it as their idle limit). */
  get timeoutMs(): number {
    return this.#options.timeoutMs;
  }

  /**
   * Sends `call` and returns its answer whatever the status; the body is the caller's to read. With
   * authentication: one fresh try after a 401 when it can help.
   */
  async send(scope: Scope, call: ApiCall): Promise<Answer> {
    const base = await this.#base(scope.registry, call.signal);
    const url = typeof call.target === "string" ? new URL(apiPath(scope, call.target), base) : call.target;
    const headers = new Headers(call.headers);
    let scopes = scope.repository && call.actions ? [`repository:${scope.repository}:${call.actions}`] : [];
    if (call.extraScopes) scopes = [...scopes, ...call.extraScopes];
    let auth: Authorization = await this.#auth.authorize(scope.registry, scopes, call.signal);
    // Credentials go to the registry's own host only (not to an upload location or page elsewhere).
    const sameHost = url.host === base.host;
    for (let authTry = 0;; authTry++) {
      if (auth.header && sameHost) headers.set("authorization", auth.header);
      else headers.delete("authorization");
      let answer: Answer;
      try {
        const { method, body, signal, timeoutMs } = call;
        answer = await this.#roundTrip(
          { method, url, headers, body, signal, timeoutMs, authBase: base },
          call.retry ?? true,
        );
      } catch (e) {
        this.#auth.observe(scope.registry, 0);
        throw e;
      }
      if (answer.status !== 401 || authTry > 0) {
        this.#auth.observe(scope.registry, answer.status);
        return answer;
      }
      const text = await answer.text();
      const challenge = answer.headers.get("www-authenticate");
      const decision = await this.#auth.challenged(scope.registry, challenge, scopes, auth);
      if (!decision.retry) return Answer.replay(answer, text);
      scopes = decision.scopes;
      auth = await this.#auth.authorize(scope.registry, scopes, call.signal);
      if (!auth.header) return Answer.replay(answer, text);
    }
  }

  /**
   * Sends `call`; an answer whose status is not in `ok` becomes a {@linkcode RegistryError} about `what`. The
   * body of the answer returned is the caller's to read.
   */
  async expect(scope: Scope, call: ApiCall, ok: readonly number[], what: string): Promise<Answer> {
    const answer = await this.send(scope, call);
    if (!ok.includes(answer.status)) throw await this.failure(answer, what);
    return answer;
  }

  /** {@linkcode expect} for answers whose status and headers say it all: the body is discarded. */
  async exchange(scope: Scope, call: ApiCall, ok: readonly number[], what: string): Promise<Answer> {
    const answer = await this.expect(scope, call, ok, what);
    await answer.discard();
    return answer;
  }

  /**
   * Runs `send` (after `prepare`, whose failures are final) until its answer is final: a transient network
   * failure or status (408, 429, 5xx) leads to another try after a backoff wait, at most `retries` times. The
   * blob upload retries its `POST` + `PUT` pair this way; single requests are retried the same way.
   */
  async retrying<P = void>(
    signal: AbortSignal | undefined,
    send: (prepared: P) => Promise<Answer>,
    prepare?: () => Promise<P>,
  ): Promise<Answer> {
    const policy = this.#options.policy;
    for (let attempt = 0;; attempt++) {
      const prepared = (await prepare?.()) as P;
      let answer: Answer;
      try {
        answer = await send(prepared);
      } catch (e) {
        if (e instanceof NetworkError && e.retryable && attempt < policy.retries) {
          await sleep(backoffDelay(attempt, policy), signal);
          continue;
        }
        throw e;
      }
      if (isRetryableStatus(answer.status) && attempt < policy.retries) {
        const retryAfter = parseRetryAfter(answer.headers.get("retry-after"));
        await answer.discard();
        await sleep(backoffDelay(attempt, policy, retryAfter), signal);
        continue;
      }
      return answer;
    }
  }

  /** The error for an unexpected answer (its body is read): the registry's code and message, about `what`. */
  async failure(answer: Answer, what: string): Promise<RegistryError> {
    const err = registryError(what, answer.status, await answer.text());
    const challenge = answer.headers.get("www-authenticate") ?? "";
    if (answer.status === 401 && /insufficient_scope/i.test(challenge)) {
      // A token was sent but does not grant what the request needs: a permission problem, not a login problem.
      return new RegistryError(
        "DENIED",
        `${err.message} (access denied: the token does not grant this operation)`,
        err.status,
        err.errors,
      );
    }
    return err;
  }

  /** Releases transports and their pooled connections; the requester cannot be used afterwards. */
  close(): void {
    this.#closed = true;
    for (const p of this.#transports.values()) p.then((t) => t.close(), () => {});
    this.#transports.clear();
    this.#options.transport?.close();
  }

  /** One request through the transport, with redirects, timeout and retries (no auth logic). */
  async #roundTrip(exchange: Exchange, retry: boolean): Promise<Answer> {
    if (this.#closed) throw new AirlockError("INVALID_ARGUMENT", "the registry client is closed");
    exchange.headers.set("user-agent", this.#options.userAgent);
    const once = () => this.#once(exchange);
    return await (retry ? this.retrying(exchange.signal, once) : once());
  }

  /** One exchange plus redirects (GET/HEAD only); credentials are not sent to other hosts. */
  async #once(exchange: Exchange): Promise<Answer> {
    const { method, url, body, signal, authBase, allowHttp = false } = exchange;
    const limitMs = exchange.timeoutMs ?? this.#options.timeoutMs;
    let current = url;
    let headers = exchange.headers;
    for (let hop = 0;; hop++) {
      if (signal?.aborted) throw networkError(signal.reason, current, { cancelled: true });
      // The request's own timer, stopped as soon as its body has been read: thousands of requests a minute must
      // not leave thousands of pending 60 s timers (and their signals) behind.
      const timeout = new RequestTimer(limitMs, signal);
      const hopUrl = current;
      const classify = (e: unknown) =>
        networkError(e, hopUrl, {
          cancelled: signal?.aborted === true,
          timedOut: timeout.timedOut,
          timeoutMs: limitMs,
        });
      let transport: Transport;
      try {
        transport = await this.#transportFor(current, allowHttp);
      } catch (e) {
        timeout.stop();
        throw e;
      }
      let res: TransportResponse;
      try {
        res = await transport.send({
          method,
          url: current,
          headers,
          ...(body instanceof ReadableStream ? { stream: body } : { body }),
          signal: timeout.signal,
        });
      } catch (e) {
        timeout.stop();
        throw classify(e);
      }
      const answer = new Answer(res, current, classify, () => timeout.stop());
      const location = res.headers.get("location");
      if (!redirectStatuses.has(res.status) || !location || (method !== "GET" && method !== "HEAD")) {
        return answer;
      }
      await answer.discard();
      current = this.#redirectTarget(url, current, location, hop, allowHttp);
      if (headers.has("authorization") && (authBase === undefined || current.host !== authBase.host)) {
        headers = new Headers(headers);
        headers.delete("authorization");
      }
    }
  }

  /** Where a redirect from `current` leads, when it may be followed. */
  #redirectTarget(url: URL, current: URL, location: string, hop: number, allowHttp: boolean): URL {
    if (hop >= maxRedirects) {
      throw new AirlockError("REGISTRY_ERROR", `too many redirects from ${url.host}${url.pathname}`);
    }
    let next: URL;
    try {
      next = new URL(location, current);
    } catch {
      throw new AirlockError("REGISTRY_ERROR", `${url.host} redirected to an invalid location`);
    }
    if (next.protocol !== "https:" && next.protocol !== "http:") {
      throw new AirlockError("REGISTRY_ERROR", `${url.host} redirected to an unsupported URL scheme`);
    }
    if (next.protocol === "http:" && !this.#options.allowHttp && !allowHttp) {
      throw new AirlockError(
        "TLS_ERROR",
        `${url.host} redirected to plain http (${next.host}); that needs --tls-verify=false ${HTTP_HINT}`,
      );
    }
    return next;
  }

  /** The API base URL of a registry: `https://host` (or `http://host`, found by probing, when http is allowed). */
  #base(registry: string, signal?: AbortSignal): Promise<URL> {
    return cached(this.#bases, registry, () => this.#probe(registry, signal));
  }

  async #probe(registry: string, signal?: AbortSignal): Promise<URL> {
    const host = apiHost(registry);
    const https = new URL(`https://${host}/`);
    if (!this.#options.allowHttp) return https;
    // Plain http allowed: one GET /v2/ over https, else over http. Its answer also teaches the auth scheme. An
    // https server answers plain http with 400 ("Client sent an HTTP request to an HTTPS server"): then the https
    // failure (an untrusted certificate, say) is the error to report, never a fall-back to http.
    const tryBase = async (base: URL) => {
      const url = new URL("/v2/", base);
      const answer = await this.#roundTrip({ method: "GET", url, headers: new Headers(), signal }, true);
      await answer.discard();
      if (answer.status === 400 && base.protocol === "http:") throw new Error("an https server");
      if (answer.status === 401) {
        await this.#auth.challenged(registry, answer.headers.get("www-authenticate"), [], {}).catch(() => {});
      } else {
        this.#auth.observe(registry, answer.status);
      }
      return base;
    };
    try {
      return await tryBase(https);
    } catch (first) {
      if (first instanceof NetworkError && (first.code === "CANCELLED" || first.code === "TIMEOUT")) {
        throw first;
      }
      try {
        return await tryBase(new URL(`http://${host}/`));
      } catch {
        throw first;
      }
    }
  }

  #transportFor(url: URL, allowHttp: boolean): Promise<Transport> {
    const { transport, tlsVerify, certDirs, certDir } = this.#options;
    if (transport) return Promise.resolve(transport);
    if (url.protocol === "http:" && !this.#options.allowHttp && !allowHttp) {
      return Promise.reject(
        new AirlockError(
          "TLS_ERROR",
          `refusing plain http to ${url.host}; that needs --tls-verify=false ${HTTP_HINT}`,
        ),
      );
    }
    return cached(this.#transports, `${url.protocol}//${url.host}`, async () => {
      const material = await loadTlsMaterial(certsName(url.host), { certDirs, certDir });
      // Only https without certificate checks needs node:https; plain http and verified https use fetch,
      // which costs less CPU per request (measured: signing 600 signatures, 2.75 s of client CPU → see bench).
      const skipChecks = !tlsVerify && url.protocol === "https:";
      return skipChecks ? new NodeTransport(material) : new FetchTransport(material);
    });
  }
}

/**
 * The signal of one request: aborted by the caller's signal, or (a `TimeoutError`) after `ms` (0: never), until
 * {@linkcode RequestTimer.stop}. Made of a listener removed at the end rather than `AbortSignal.any`, which keeps
 * a record on the caller's (run-long) signal for every request.
 */
class RequestTimer {
  readonly #link: LinkedAbort;
  readonly #timer?: ReturnType<typeof setTimeout>;
  timedOut = false;

  constructor(ms: number, parent?: AbortSignal) {
    this.#link = new LinkedAbort(parent);
    if (ms > 0) {
      this.#timer = setTimeout(() => {
        this.timedOut = true;
        this.#link.abort(new DOMException("request timed out", "TimeoutError"));
      }, ms);
    }
  }

  get signal(): AbortSignal {
    return this.#link.signal;
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#link.dispose();
  }
}

/** The path of `target` under the API base: `/v2/<repository>/<target>`, or `/v2/<target>` without a repository. */
function apiPath(scope: Scope, target: string): string {
  return scope.repository === undefined
    ? `/v2/${target}`
    : `/v2/${repositoryPath(scope.repository)}/${target}`;
}

/** The promise cached under `key`, made by `make` when there is none; a failed one is forgotten. */
function cached<T>(cache: Map<string, Promise<T>>, key: string, make: () => Promise<T>): Promise<T> {
  let p = cache.get(key);
  if (!p) {
    p = make();
    cache.set(key, p);
    p.catch(() => cache.delete(key));
  }
  return p;
}
