/**
 * The socket layer of the registry client: one HTTP exchange per call, nothing above it (no redirects, retries,
 * auth or error mapping — the client does those once for every transport).
 *
 * Two implementations share the {@linkcode Transport} interface:
 * - {@linkcode FetchTransport}: Deno's `fetch`, certificates verified; extra CAs and a client certificate through
 *   `Deno.createHttpClient`. Connections are pooled and reused by Deno.
 * - {@linkcode NodeTransport}: `node:https` / `node:http` with keep-alive agents and `rejectUnauthorized: false`,
 *   for `--tls-verify=false` (Deno's fetch has no per-client switch to skip certificate checks). It also speaks
 *   plain http, which only that mode allows.
 *
 * @module
 */

import http from "node:http";
import https from "node:https";
import { AirlockError, type ErrorCode } from "../errors.ts";
import type { TlsMaterial } from "./tls.ts";

/** One HTTP request as the client hands it to a transport. */
export interface TransportRequest {
  /** HTTP method: GET, HEAD, PUT, POST, DELETE, PATCH. */
  readonly method: string;
  /** Absolute URL (`https:` or, for the insecure transport only, `http:`). */
  readonly url: URL;
  /** Request headers; the transport adds Content-Length for bodies. */
  readonly headers: Headers;
  /** The body, fully in memory (registry requests airlock makes are small). */
  readonly body?: Uint8Array;
  /**
   * A streamed body instead of `body` (blob uploads of any size): sent with chunked transfer encoding, as
   * docker's own push does. Each chunk is read only when the connection can take it.
   */
  readonly stream?: ReadableStream<Uint8Array>;
  /** Aborts the exchange, including reading the response body. */
  readonly signal: AbortSignal;
}

/** The answer: status, headers and a body stream the caller must read or cancel. */
export interface TransportResponse {
  /** HTTP status code. */
  readonly status: number;
  /** Response headers. */
  readonly headers: Headers;
  /** The body; `null` for HEAD and bodiless answers. */
  readonly body: ReadableStream<Uint8Array> | null;
}

/**
 * A way to send one HTTP request. Implementations do not follow redirects and throw the runtime's own error on
 * network failures ({@linkcode networkError} classifies them).
 *
 * @example
 * ```ts
 * const t: Transport = new FetchTransport();
 * const res = await t.send({ method: "GET", url: new URL("https://r.example/v2/"), headers: new Headers(), signal });
 * await res.body?.cancel();
 * t.close();
 * ```
 */
export interface Transport {
  /** Sends the request; resolves when the response headers have arrived. */
  send(request: TransportRequest): Promise<TransportResponse>;
  /** Releases pooled connections and clients. */
  close(): void;
}

/**
 * `fetch`-based transport with certificate verification. `material` adds CAs (on top of the system roots) and a
 * client certificate; without material Deno's shared client is used.
 */
export class FetchTransport implements Transport {
  #client?: Deno.HttpClient;

  /** @param material extra CAs and client certificate for the host(s) this transport serves */
  constructor(material?: TlsMaterial) {
    const caCerts = material?.caCerts ?? [];
    if (caCerts.length > 0 || material?.clientCert) {
      try {
        this.#client = Deno.createHttpClient({
          ...(caCerts.length > 0 ? { caCerts: [...caCerts] } : {}),
          ...(material?.clientCert ? { cert: material.clientCert.cert, key: material.clientCert.key } : {}),
        });
      } catch (e) {
        throw new AirlockError(
          "TLS_ERROR",
          `invalid certificate or key in ${material?.dir ?? "the certificate directory"}: ${
            (e as Error).message
          }`,
          { cause: e },
        );
      }
    }
  }

  /** Sends one request with `redirect: "manual"`. */
  async send(request: TransportRequest): Promise<TransportResponse> {
    const hasBody = request.method !== "GET" && request.method !== "HEAD";
    const res = await fetch(request.url, {
      method: request.method,
      headers: request.headers,
      body: hasBody
        ? (request.stream ?? (request.body ?? new Uint8Array(0)) as Uint8Array<ArrayBuffer>)
        : undefined,
      redirect: "manual",
      signal: request.signal,
      ...(this.#client ? { client: this.#client } : {}),
    });
    let body = res.body;
    if (request.method === "HEAD" && body) {
      await body.cancel();
      body = null;
    }
    return { status: res.status, headers: res.headers, body };
  }

  /** Closes the custom HTTP client, if one was made. */
  close(): void {
    this.#client?.close();
    this.#client = undefined;
  }
}

/**
 * `node:https`/`node:http` transport that does NOT verify certificates (`--tls-verify=false`) and allows plain
 * http. Keep-alive agents reuse connections; measured about as fast as `fetch` against a local registry.
 */
export class NodeTransport implements Transport {
  readonly #https: https.Agent;
  readonly #http: http.Agent;

  /** @param material a client certificate to present, if any (CAs are irrelevant when nothing is verified) */
  constructor(material?: TlsMaterial) {
    this.#https = new https.Agent({
      keepAlive: true,
      rejectUnauthorized: false,
      // Nothing is verified, so no CA is needed; naming none also keeps Deno's node:https from loading the
      // system roots, which needs `--allow-sys` (the compiled binary has only `--allow-sys=uid`): without it the
      // request failed with NotCapable, the probe fell back to plain http, and a leaked handle held the process
      // for a minute.
      ca: [],
      ...(material?.clientCert ? { cert: material.clientCert.cert, key: material.clientCert.key } : {}),
    });
    this.#http = new http.Agent({ keepAlive: true });
  }

  /** Sends one request. */
  send(request: TransportRequest): Promise<TransportResponse> {
    const secure = request.url.protocol === "https:";
    const headers: Record<string, string> = {};
    request.headers.forEach((value, key) => headers[key] = value);
    const hasBody = request.method !== "GET" && request.method !== "HEAD";
    const body = hasBody && !request.stream ? (request.body ?? new Uint8Array(0)) : undefined;
    if (body) headers["content-length"] = String(body.byteLength);
    const options: http.RequestOptions = {
      method: request.method,
      headers,
      agent: secure ? this.#https : this.#http,
      signal: request.signal,
    };
    return new Promise<TransportResponse>((resolve, reject) => {
      const onResponse = (res: http.IncomingMessage) => {
        const out = new Headers();
        for (const [key, value] of Object.entries(res.headers)) {
          if (value === undefined) continue;
          for (const v of Array.isArray(value) ? value : [value]) out.append(key, v);
        }
        const status = res.statusCode ?? 0;
        let stream: ReadableStream<Uint8Array> | null = null;
        if (request.method === "HEAD" || status === 204 || status === 304) {
          res.resume();
        } else {
          stream = ReadableStream.from(plainChunks(res as AsyncIterable<Uint8Array>));
        }
        resolve({ status, headers: out, body: stream });
      };
      const req = secure
        ? https.request(request.url, options, onResponse)
        : http.request(request.url, options, onResponse);
      req.on("error", reject);
      if (!request.stream) {
        req.end(body);
        return;
      }
      // Streamed body: write chunk by chunk, waiting for "drain" when the socket is full.
      const reader = request.stream.getReader();
      const pump = async () => {
        try {
          for (;;) {
            const { done, value } = await reader.read();
            if (done) break;
            if (!req.write(value)) await new Promise((r) => req.once("drain", r));
          }
          req.end();
        } catch (e) {
          req.destroy(e as Error);
        }
      };
      pump();
    });
  }

  /** Destroys both agents and their idle sockets. */
  close(): void {
    this.#https.destroy();
    this.#http.destroy();
  }
}

/** Node yields `Buffer`s; callers get plain `Uint8Array`s (own copies, so no pooled memory leaks out). */
async function* plainChunks(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  for await (const chunk of source) yield new Uint8Array(chunk);
}

/** A network-level failure, classified; `retryable` is true for transient ones (connection reset…). */
export class NetworkError extends AirlockError {
  /** Whether another attempt may succeed (reset or closed connections). */
  readonly retryable: boolean;

  /**
   * @param code REGISTRY_UNREACHABLE, TLS_ERROR, TIMEOUT or CANCELLED
   * @param message what failed
   * @param retryable whether the failure is transient
   * @param cause the runtime's error
   */
  constructor(code: ErrorCode, message: string, retryable: boolean, cause: unknown) {
    super(code, message, { cause });
    this.name = "NetworkError";
    this.retryable = retryable;
  }
}

function describeChain(err: unknown): string {
  const parts: string[] = [];
  let cur: unknown = err;
  for (let i = 0; i < 6 && cur !== undefined && cur !== null; i++) {
    if (cur instanceof Error) {
      const code = (cur as { code?: unknown }).code;
      parts.push(`${typeof code === "string" ? code + " " : ""}${cur.name} ${cur.message}`);
      cur = cur.cause;
    } else {
      parts.push(String(cur));
      break;
    }
  }
  return parts.join(" | ");
}

function tlsDetail(text: string): string {
  const m = /invalid peer certificate: ?([A-Za-z]+)/.exec(text) ??
    /(UnknownIssuer|CaUsedAsEndEntity|NotValidForName|Expired|BadSignature|UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|CERT_HAS_EXPIRED|ERR_TLS_CERT_ALTNAME_INVALID)/
      .exec(text);
  const what = m?.[1] ?? "handshake failed";
  const known: Record<string, string> = {
    UnknownIssuer: "certificate signed by an unknown authority",
    UNABLE_TO_VERIFY_LEAF_SIGNATURE: "certificate signed by an unknown authority",
    SELF_SIGNED_CERT_IN_CHAIN: "certificate signed by an unknown authority",
    DEPTH_ZERO_SELF_SIGNED_CERT: "self-signed certificate",
    CaUsedAsEndEntity: "the server's certificate is a CA certificate used as a leaf",
    NotValidForName: "certificate not valid for this host name",
    ERR_TLS_CERT_ALTNAME_INVALID: "certificate not valid for this host name",
    Expired: "certificate expired",
    CERT_HAS_EXPIRED: "certificate expired",
  };
  return known[what] ?? what;
}

/**
 * Turns a runtime network error (fetch `TypeError`, Node `ECONNREFUSED`…) for `url` into a {@linkcode NetworkError}:
 * TLS_ERROR (with the `--cert-dir` / `--tls-verify=false` hint), REGISTRY_UNREACHABLE naming the host, TIMEOUT or
 * CANCELLED (decided by the caller's signals). Connection resets are marked retryable.
 */
export function networkError(
  err: unknown,
  url: URL,
  context: { timedOut?: boolean; cancelled?: boolean; timeoutMs?: number } = {},
): NetworkError {
  if (err instanceof NetworkError) return err;
  const host = url.host;
  if (context.cancelled) {
    return new NetworkError("CANCELLED", `request to ${host} cancelled`, false, err);
  }
  if (context.timedOut) {
    const after = context.timeoutMs !== undefined ? ` after ${context.timeoutMs / 1000} s` : "";
    return new NetworkError("TIMEOUT", `request to ${host} timed out${after} (${url.pathname})`, false, err);
  }
  const text = describeChain(err);
  if (
    /invalid peer certificate|certificate|CERT_|UNABLE_TO_VERIFY|SELF_SIGNED|UnknownIssuer|CaUsedAsEndEntity/i
      .test(text) && !/wrong version number|record overflow|http request/i.test(text)
  ) {
    return new NetworkError(
      "TLS_ERROR",
      `TLS verification failed for ${host}: ${tlsDetail(text)}; trust its CA with certs.d ` +
        `(<dir>/${host}/ca.crt) or --cert-dir, or skip checks with --tls-verify=false`,
      false,
      err,
    );
  }
  if (
    /wrong version number|record overflow|InvalidContentType|CorruptMessage|tls handshake eof/i.test(text)
  ) {
    return new NetworkError(
      "TLS_ERROR",
      `TLS handshake with ${host} failed (does it speak plain http? that needs --tls-verify=false, or --allow-http-registry)`,
      false,
      err,
    );
  }
  if (/ECONNREFUSED|Connection refused|os error 111/i.test(text)) {
    return new NetworkError(
      "REGISTRY_UNREACHABLE",
      `cannot reach registry ${host}: connection refused`,
      false,
      err,
    );
  }
  if (/ENOTFOUND|EAI_AGAIN|dns error|failed to lookup address|Name or service not known/i.test(text)) {
    return new NetworkError(
      "REGISTRY_UNREACHABLE",
      `cannot reach registry ${host}: host name ${url.hostname} not found`,
      false,
      err,
    );
  }
  if (/EHOSTUNREACH|ENETUNREACH|No route to host|Network is unreachable/i.test(text)) {
    return new NetworkError(
      "REGISTRY_UNREACHABLE",
      `cannot reach registry ${host}: no route to host`,
      false,
      err,
    );
  }
  if (
    /ECONNRESET|EPIPE|socket hang up|connection reset|Connection reset|connection closed|closed before message|unexpected EOF|IncompleteMessage|broken pipe|ECONNABORTED/i
      .test(text)
  ) {
    return new NetworkError(
      "REGISTRY_UNREACHABLE",
      `connection to ${host} broken: ${err instanceof Error ? err.message : String(err)}`,
      true,
      err,
    );
  }
  return new NetworkError(
    "REGISTRY_UNREACHABLE",
    `request to ${host} failed: ${err instanceof Error ? err.message : String(err)}`,
    false,
    err,
  );
}
