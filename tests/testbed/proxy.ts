/**
 * A FAKE for tests: a small HTTP proxy in front of a real registry that can misbehave on purpose.
 *
 * It is not a registry and not a general proxy. It forwards every request to one upstream (normally a
 * `startRegistry()` instance) and lets a test rewrite chosen answers: flip a byte of a blob or manifest body while
 * keeping the headers (digest-mismatch tests), swap a 404 body for Harbor's "artifact … not found" wording,
 * answer 429 with `Retry-After`, 500 or 403 a number of times before passing through, or close the connection
 * abruptly (before the answer, or in the middle of the body), trickle a body one byte at a time, or never answer. It counts requests by method and path so tests can
 * assert how many round trips a client made.
 *
 * Connections reach a raw TCP (or TLS) listener first and are spliced to an internal `Deno.serve`; that is what
 * lets a rule close the client's connection without answering.
 *
 * @module
 */

/** The request as a rule sees it. */
export interface ProxyRequestInfo {
  /** HTTP method. */
  readonly method: string;
  /** Path without the query string, e.g. `/v2/a/b/manifests/v1`. */
  readonly path: string;
  /** The full request URL as received by the proxy. */
  readonly url: URL;
  /** The request headers. */
  readonly headers: Headers;
}

/** An upstream answer, fully read, that a rule may change. */
export interface ProxyResponse {
  /** HTTP status. */
  status: number;
  /** Response headers (`content-length` is recomputed from `body` except for HEAD). */
  headers: Headers;
  /** The body bytes. */
  body: Uint8Array;
}

/** What a rule does with a matching request. */
export type ProxyAction =
  /** Answer this instead of forwarding. */
  | { kind: "respond"; status: number; headers?: Record<string, string>; body?: string | Uint8Array }
  /** Forward, then flip (xor 0x01) one byte of a non-empty body (default: the middle one); headers unchanged. */
  | { kind: "flipByte"; offset?: number }
  /** Forward; when the upstream status is `whenStatus` (any if absent), replace the body, keep status/headers. */
  | {
    kind: "replaceBody";
    body: string | Uint8Array | ((req: ProxyRequestInfo) => string);
    whenStatus?: number;
  }
  /** Close the client's connection without answering. */
  | { kind: "reset" }
  /** Forward (the registry does the work), then close the client's connection without answering: a lost answer. */
  | { kind: "loseAnswer" }
  /** Forward, send the status and headers, then break the connection after half of the body. */
  | { kind: "cutBody" }
  /** Forward, send the status and headers, then the body one byte every `intervalMs` (a trickling registry). */
  | { kind: "trickle"; intervalMs: number }
  /** Never answer (until the proxy stops): a registry that accepts the request and then hangs. */
  | { kind: "stall" }
  /** Forward, then let `fn` rewrite the answer. */
  | {
    kind: "rewrite";
    fn: (res: ProxyResponse, req: ProxyRequestInfo) => ProxyResponse | Promise<ProxyResponse>;
  };

/** A rule: which requests it applies to, how often, and what it does. */
export interface ProxyRule {
  /** Only requests with this method (any when absent). */
  method?: string;
  /** Only this exact path, or paths matching this expression (any when absent). */
  path?: string | RegExp;
  /** Apply this many times, then step aside (default: always). */
  times?: number;
  /** What to do. */
  action: ProxyAction;
}

/** A rule once added: how often it fired; `remove()` takes it out. */
export interface InstalledRule {
  /** How many requests this rule has handled. */
  readonly applied: number;
  /** Removes the rule. */
  remove(): void;
}

/** One request the proxy saw. */
export interface ProxyRequestRecord {
  /** HTTP method. */
  method: string;
  /** Path without query. */
  path: string;
  /** Query string including `?`, or `""`. */
  search: string;
  /** Status answered (0 when the connection was reset). */
  status: number;
}

/** Options of {@linkcode startProxy}. */
export interface ProxyOptions {
  /** Client for the upstream connection (e.g. `registry.client` for a TLS registry). */
  upstreamClient?: Deno.HttpClient;
  /** Serve TLS to clients with this certificate and key (PEM strings). Plain HTTP when absent. */
  tls?: { certPem: string; keyPem: string };
  /** Rules to install at start. */
  rules?: ProxyRule[];
}

/** A running proxy. Stop it with `stop()` or `await using`. */
export interface TestProxy extends AsyncDisposable {
  /** `127.0.0.1:PORT`. */
  readonly host: string;
  /** `http(s)://127.0.0.1:PORT`. */
  readonly url: string;
  /** The upstream base URL. */
  readonly upstream: string;
  /** Every request seen, in order. */
  readonly requests: readonly ProxyRequestRecord[];
  /** `fetch(url + path, init)` (give `init.client` for a TLS proxy). */
  fetch(path: string, init?: RequestInit): Promise<Response>;
  /** Adds a rule (evaluated in the order added; the first matching rule with uses left applies). */
  addRule(rule: ProxyRule): InstalledRule;
  /** Removes every rule. */
  clearRules(): void;
  /** How many requests had this method and exact path (`"*"` = any method). */
  count(method: string, path: string | RegExp): number;
  /** Requests per `"METHOD /path"`. */
  counts(): Map<string, number>;
  /** Forgets the request log. */
  resetCounts(): void;
  /**
   * Resolves when every request received so far has been answered (or failed), so that `requests` holds its
   * final status — a client killed mid-request leaves the proxy still waiting for the upstream.
   */
  settled(): Promise<void>;
  /** Stops listening, closes every connection. */
  stop(): Promise<void>;
}

/**
 * The body Harbor answers for a missing artifact (a `404` with code `UNKNOWN`, not `MANIFEST_UNKNOWN`), derived
 * from a `/v2/<repo>/manifests/<ref>` path.
 *
 * @example
 * ```ts
 * harborNotFoundBody("/v2/a/b/manifests/sha256-x.sig");
 * // {"errors":[{"code":"UNKNOWN","message":"artifact a/b:sha256-x.sig not found"}]}
 * ```
 */
export function harborNotFoundBody(path: string): string {
  const m = path.match(/^\/v2\/(.+)\/manifests\/([^/]+)$/);
  const artifact = m ? `${m[1]}${m[2].includes(":") ? "@" : ":"}${m[2]}` : path;
  return JSON.stringify({ errors: [{ code: "UNKNOWN", message: `artifact ${artifact} not found` }] });
}

/**
 * Rule: flip one byte of the body of matching GET answers (blobs, manifests), headers kept.
 *
 * @example
 * ```ts
 * proxy.addRule(flipByteRule({ path: `/v2/a/b/blobs/${digest}` }));
 * ```
 */
export function flipByteRule(match: Omit<ProxyRule, "action"> = {}, offset?: number): ProxyRule {
  return { method: "GET", ...match, action: { kind: "flipByte", offset } };
}

/**
 * Rule: when the upstream answers 404 to a manifest request, answer Harbor's `UNKNOWN … not found` body instead.
 *
 * @example
 * ```ts
 * proxy.addRule(harborNotFoundRule());
 * ```
 */
export function harborNotFoundRule(match: Omit<ProxyRule, "action"> = {}): ProxyRule {
  return {
    path: /\/manifests\//,
    ...match,
    action: { kind: "replaceBody", whenStatus: 404, body: (req) => harborNotFoundBody(req.path) },
  };
}

/**
 * Rule: answer `429 Too Many Requests` with `Retry-After: retryAfter` `times` times, then pass through.
 *
 * @example
 * ```ts
 * proxy.addRule(tooManyRequestsRule(2, 1, { method: "PUT" }));
 * ```
 */
export function tooManyRequestsRule(
  times: number,
  retryAfter = 1,
  match: Omit<ProxyRule, "action"> = {},
): ProxyRule {
  return {
    ...match,
    times,
    action: {
      kind: "respond",
      status: 429,
      headers: { "retry-after": String(retryAfter) },
      body: registryError("TOOMANYREQUESTS", "too many requests"),
    },
  };
}

/**
 * Rule: answer `500` `times` times, then pass through.
 *
 * @example
 * ```ts
 * proxy.addRule(serverErrorRule(1));
 * ```
 */
export function serverErrorRule(times: number, match: Omit<ProxyRule, "action"> = {}): ProxyRule {
  return {
    ...match,
    times,
    action: { kind: "respond", status: 500, body: registryError("UNKNOWN", "unknown error") },
  };
}

/**
 * Rule: answer `403 DENIED` (as registries do for a missing permission) to matching requests.
 *
 * @example
 * ```ts
 * proxy.addRule(forbiddenRule({ method: "PUT" }));
 * ```
 */
export function forbiddenRule(match: Omit<ProxyRule, "action"> = {}): ProxyRule {
  return {
    ...match,
    action: {
      kind: "respond",
      status: 403,
      body: registryError("DENIED", "requested access to the resource is denied"),
    },
  };
}

/**
 * Rule: close the client's connection without answering, `times` times (always when absent).
 *
 * Note: Deno's `fetch` (hyper) retries a request once, silently, when a reused keep-alive connection closes
 * before any answer; so one reset on a pooled connection is not seen by such a client (the count shows it).
 * Use `times >= 2` (or always) to make the client see the failure.
 *
 * @example
 * ```ts
 * proxy.addRule(resetRule(1, { path: "/v2/" }));
 * ```
 */
export function resetRule(times?: number, match: Omit<ProxyRule, "action"> = {}): ProxyRule {
  return { ...match, times, action: { kind: "reset" } };
}

/**
 * Rule: forward matching requests to the registry (which does the work), then close the client's connection
 * without answering, `times` times (always when absent): the answer is lost, the effect is not. `record.status`
 * is the registry's status.
 *
 * @example
 * ```ts
 * proxy.addRule(loseAnswerRule(1, { method: "PUT", path: /\/blobs\/uploads\// }));
 * ```
 */
export function loseAnswerRule(times?: number, match: Omit<ProxyRule, "action"> = {}): ProxyRule {
  return { ...match, times, action: { kind: "loseAnswer" } };
}

function registryError(code: string, message: string): string {
  return JSON.stringify({ errors: [{ code, message }] });
}

const HOP_BY_HOP = [
  "connection",
  "keep-alive",
  "transfer-encoding",
  "upgrade",
  "proxy-connection",
  "te",
  "trailer",
];

interface Splice {
  outer: Deno.Conn;
  inner: Deno.Conn;
  closed: boolean;
}

/**
 * Starts the proxy on 127.0.0.1 (free port) in front of `upstream` (e.g. `registry.url`).
 *
 * @example
 * ```ts
 * await using reg = await startRegistry();
 * await using proxy = await startProxy(reg.url, { rules: [tooManyRequestsRule(2)] });
 * const res = await fetch(`${proxy.url}/v2/`); // 429, then 429, then 200
 * ```
 */
export function startProxy(upstream: string, opts: ProxyOptions = {}): Promise<TestProxy> {
  return Promise.resolve().then(() => createProxy(upstream, opts));
}

function createProxy(upstream: string, opts: ProxyOptions): TestProxy {
  const upstreamUrl = new URL(upstream);
  const upstreamOrigin = upstreamUrl.origin;
  const rules: { rule: ProxyRule; applied: number; removed: boolean }[] = [];
  const requests: ProxyRequestRecord[] = [];
  const splices = new Map<number, Splice>();
  const pipes = new Set<Promise<void>>();

  const closeSplice = (s: Splice) => {
    if (s.closed) return;
    s.closed = true;
    for (const c of [s.outer, s.inner]) {
      try {
        c.close();
      } catch { /* already closed */ }
    }
  };

  const addRule = (rule: ProxyRule): InstalledRule => {
    const entry = { rule, applied: 0, removed: false };
    rules.push(entry);
    return {
      get applied() {
        return entry.applied;
      },
      remove() {
        entry.removed = true;
      },
    };
  };
  for (const r of opts.rules ?? []) addRule(r);

  const matches = (rule: ProxyRule, req: ProxyRequestInfo): boolean =>
    (rule.method === undefined || rule.method.toUpperCase() === req.method) &&
    (rule.path === undefined ||
      (typeof rule.path === "string" ? rule.path === req.path : rule.path.test(req.path)));

  const forward = async (req: Request, info: ProxyRequestInfo): Promise<ProxyResponse> => {
    const headers = new Headers(req.headers);
    for (const h of [...HOP_BY_HOP, "host", "content-length", "accept-encoding"]) headers.delete(h);
    headers.set("x-forwarded-host", proxyHost);
    headers.set("x-forwarded-proto", proxyProto);
    const hasBody = req.method !== "GET" && req.method !== "HEAD";
    const res = await fetch(`${upstreamOrigin}${info.url.pathname}${info.url.search}`, {
      method: req.method,
      headers,
      body: hasBody ? new Uint8Array(await req.arrayBuffer()) : undefined,
      redirect: "manual",
      client: opts.upstreamClient,
    });
    const body = new Uint8Array(await res.arrayBuffer());
    const outHeaders = new Headers(res.headers);
    for (const h of HOP_BY_HOP) outHeaders.delete(h);
    const location = outHeaders.get("location");
    if (location?.startsWith(upstreamOrigin)) {
      outHeaders.set("location", proxyUrl + location.slice(upstreamOrigin.length));
    }
    return { status: res.status, headers: outHeaders, body };
  };

  const trickles = new Set<() => void>();
  const stalls = new Set<() => void>();
  const trickle = (body: Uint8Array, intervalMs: number): ReadableStream<Uint8Array> => {
    let at = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let stopTrickle = () => {};
    return new ReadableStream<Uint8Array>({
      start(c) {
        stopTrickle = () => {
          clearTimeout(timer);
          trickles.delete(stopTrickle);
          try {
            c.close();
          } catch { /* closed */ }
        };
        trickles.add(stopTrickle);
      },
      pull(c) {
        return new Promise<void>((resolve) => {
          timer = setTimeout(() => {
            if (at < body.length) c.enqueue(body.slice(at, ++at));
            if (at >= body.length) stopTrickle();
            resolve();
          }, at === 0 ? 0 : intervalMs);
        });
      },
      cancel() {
        stopTrickle();
      },
    }, { highWaterMark: 0 });
  };

  const toResponse = (req: Request, r: ProxyResponse, cut = false, trickleMs = 0): Response => {
    const headers = new Headers(r.headers);
    if (req.method === "HEAD") {
      return new Response(null, { status: r.status, headers });
    }
    // An explicit length also keeps Deno.serve from compressing the body: bytes go out as the upstream sent them.
    headers.set("content-length", String(r.body.length));
    const nullBody = r.status === 204 || r.status === 304;
    if (trickleMs > 0 && !nullBody) {
      return new Response(trickle(r.body, trickleMs), { status: r.status, headers });
    }
    if (cut) {
      const half = r.body.slice(0, Math.floor(r.body.length / 2));
      const stream = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(half);
          c.error(new Error("testbed proxy: connection cut on purpose"));
        },
      });
      return new Response(stream, { status: r.status, headers });
    }
    return new Response(nullBody ? null : r.body as Uint8Array<ArrayBuffer>, { status: r.status, headers });
  };

  const inFlight = new Set<Promise<Response>>();
  const handler = (req: Request, conn: Deno.ServeHandlerInfo<Deno.NetAddr>): Promise<Response> => {
    const p = handle(req, conn);
    inFlight.add(p);
    p.finally(() => inFlight.delete(p)).catch(() => {});
    return p;
  };
  const handle = async (req: Request, conn: Deno.ServeHandlerInfo<Deno.NetAddr>): Promise<Response> => {
    const url = new URL(req.url);
    const info: ProxyRequestInfo = { method: req.method, path: url.pathname, url, headers: req.headers };
    const record: ProxyRequestRecord = {
      method: req.method,
      path: url.pathname,
      search: url.search,
      status: 0,
    };
    requests.push(record);
    const entry = rules.find((e) =>
      !e.removed && (e.rule.times === undefined || e.applied < e.rule.times) && matches(e.rule, info)
    );
    const action = entry?.rule.action;
    try {
      if (action?.kind === "reset") {
        entry!.applied++;
        const splice = splices.get(conn.remoteAddr.port);
        if (splice) closeSplice(splice);
        return new Response(null, { status: 502 });
      }
      if (action?.kind === "stall") {
        entry!.applied++;
        await new Promise<void>((resolve) => stalls.add(resolve));
        return new Response(null, { status: 502 });
      }
      if (action?.kind === "respond") {
        entry!.applied++;
        const body = typeof action.body === "string" ? new TextEncoder().encode(action.body) : action.body;
        const headers = new Headers({ "content-type": "application/json", ...action.headers });
        record.status = action.status;
        return toResponse(req, { status: action.status, headers, body: body ?? new Uint8Array() });
      }
      let res = await forward(req, info);
      if (action?.kind === "loseAnswer") {
        entry!.applied++;
        record.status = res.status;
        const splice = splices.get(conn.remoteAddr.port);
        if (splice) closeSplice(splice);
        return new Response(null, { status: 502 });
      }
      let cut = false;
      let trickleMs = 0;
      if (action?.kind === "flipByte" && res.body.length > 0) {
        entry!.applied++;
        const body = res.body.slice();
        const at = Math.min(action.offset ?? Math.floor(body.length / 2), body.length - 1);
        body[at] ^= 0x01;
        res = { ...res, body };
      } else if (action?.kind === "replaceBody") {
        if (action.whenStatus === undefined || action.whenStatus === res.status) {
          entry!.applied++;
          const b = typeof action.body === "function" ? action.body(info) : action.body;
          res = { ...res, body: typeof b === "string" ? new TextEncoder().encode(b) : b };
        }
      } else if (action?.kind === "cutBody") {
        entry!.applied++;
        cut = true;
      } else if (action?.kind === "trickle") {
        entry!.applied++;
        trickleMs = action.intervalMs;
      } else if (action?.kind === "rewrite") {
        entry!.applied++;
        res = await action.fn(res, info);
      }
      record.status = res.status;
      return toResponse(req, res, cut, trickleMs);
    } catch (e) {
      record.status = 502;
      return new Response(registryError("UNKNOWN", `testbed proxy: upstream failed: ${e}`), { status: 502 });
    }
  };

  const inner = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {}, onError: () => new Response(null, { status: 500 }) },
    handler,
  );
  const listener: Deno.Listener = opts.tls
    ? Deno.listenTls({ hostname: "127.0.0.1", port: 0, cert: opts.tls.certPem, key: opts.tls.keyPem })
    : Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const proxyHost = `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`;
  const proxyProto = opts.tls ? "https" : "http";
  const proxyUrl = `${proxyProto}://${proxyHost}`;

  const track = (p: Promise<void>) => {
    pipes.add(p);
    p.finally(() => pipes.delete(p));
  };
  const acceptLoop = (async () => {
    for (;;) {
      let outer: Deno.Conn;
      try {
        outer = await listener.accept();
      } catch {
        return; // listener closed
      }
      let innerConn: Deno.Conn;
      try {
        innerConn = await Deno.connect({ hostname: "127.0.0.1", port: inner.addr.port });
      } catch {
        outer.close();
        continue;
      }
      const port = (innerConn.localAddr as Deno.NetAddr).port;
      const splice: Splice = { outer, inner: innerConn, closed: false };
      splices.set(port, splice);
      const done = Promise.allSettled([
        outer.readable.pipeTo(innerConn.writable),
        innerConn.readable.pipeTo(outer.writable),
      ]).then(() => {
        closeSplice(splice);
        splices.delete(port);
      });
      track(done);
    }
  })();

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    stopping ??= (async () => {
      listener.close();
      await acceptLoop;
      for (const t of [...trickles]) t();
      for (const release of stalls) release();
      for (const s of splices.values()) closeSplice(s);
      await Promise.allSettled([...pipes]);
      await inner.shutdown();
    })();

  return {
    host: proxyHost,
    url: proxyUrl,
    upstream: upstreamOrigin,
    requests,
    fetch: (path: string, init?: RequestInit) => fetch(`${proxyUrl}${path}`, init),
    addRule,
    clearRules() {
      for (const e of rules) e.removed = true;
    },
    count(method: string, path: string | RegExp): number {
      return requests.filter((r) =>
        (method === "*" || r.method === method.toUpperCase()) &&
        (typeof path === "string" ? r.path === path : path.test(r.path))
      ).length;
    },
    counts(): Map<string, number> {
      const m = new Map<string, number>();
      for (const r of requests) m.set(`${r.method} ${r.path}`, (m.get(`${r.method} ${r.path}`) ?? 0) + 1);
      return m;
    },
    resetCounts() {
      requests.length = 0;
    },
    async settled() {
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
