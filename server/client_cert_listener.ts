/**
 * An HTTPS listener that asks every client for a certificate and tells the app whether it chains to a given CA
 * (`airlock serve --client-ca`). Deno's own `Deno.serve` cannot request client certificates, so this one runs on
 * `node:https` (`requestCert: true`, `rejectUnauthorized: false`: a client without a certificate still connects —
 * the bearer-token API beside the webhook is unchanged — and the app refuses the admission endpoints to it).
 * Requests and answers are converted to and from the Fetch API, bodies streamed both ways (event streams too).
 *
 * @module
 */
import https from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import { Readable } from "node:stream";
import type { TLSSocket } from "node:tls";
import { AirlockError, errorMessage } from "../core/errors.ts";
import type { ConnectionInfo } from "./admission.ts";

/** What the listener is started with. */
export interface ClientCertListenerOptions {
  /** Host name or IP literal to listen on. */
  readonly hostname: string;
  /** Port (0: any free port). */
  readonly port: number;
  /** Server certificate chain, PEM. */
  readonly cert: string;
  /** Its private key, PEM. */
  readonly key: string;
  /** The CA (PEM, one or more certificates) client certificates must chain to. */
  readonly clientCa: string;
  /** The app. */
  readonly fetch: (request: Request, info: ConnectionInfo) => Response | Promise<Response>;
  /** Called when answering fails unexpectedly (the client gets a 500). */
  readonly onError: (e: unknown) => Response;
}

/** A running listener. */
export interface RunningListener {
  /** The port listened on. */
  readonly port: number;
  /** Stops accepting connections; resolves when every open request is answered (idle connections are closed). */
  shutdown(): Promise<void>;
}

/**
 * Starts the listener.
 *
 * @throws {AirlockError} `IO_ERROR` when it cannot listen (port in use, bad certificate).
 */
export async function listenWithClientCa(o: ClientCertListenerOptions): Promise<RunningListener> {
  let server: https.Server;
  try {
    server = https.createServer({
      cert: o.cert,
      key: o.key,
      ca: o.clientCa,
      requestCert: true,
      rejectUnauthorized: false,
    }, (req, res) => void handle(req, res, o));
  } catch (e) {
    throw new AirlockError("IO_ERROR", `cannot start the TLS listener: ${errorMessage(e)}`, { cause: e });
  }
  await new Promise<void>((resolve, reject) => {
    server.once(
      "error",
      (e) =>
        reject(new AirlockError("IO_ERROR", `cannot listen on ${o.hostname}:${o.port}: ${errorMessage(e)}`)),
    );
    server.listen(o.port, o.hostname, () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : o.port;
  let closing: Promise<void> | undefined;
  return {
    port,
    shutdown: () =>
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}

async function handle(
  req: IncomingMessage,
  res: ServerResponse,
  o: ClientCertListenerOptions,
): Promise<void> {
  const socket = req.socket as TLSSocket;
  const aborted = new AbortController();
  res.on("close", () => {
    if (!res.writableFinished) aborted.abort();
  });
  let response: Response;
  try {
    const headers = new Headers();
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
      headers.append(req.rawHeaders[i], req.rawHeaders[i + 1]);
    }
    const method = req.method ?? "GET";
    const hasBody = method !== "GET" && method !== "HEAD";
    const host = o.hostname.includes(":") ? `[${o.hostname}]` : o.hostname;
    const request = new Request(`https://${host}${req.url ?? "/"}`, {
      method,
      headers,
      body: hasBody ? Readable.toWeb(req) as ReadableStream<Uint8Array> : undefined,
      signal: aborted.signal,
      ...(hasBody ? { duplex: "half" } : {}),
    } as RequestInit);
    response = await o.fetch(request, { clientCertVerified: socket.authorized === true });
  } catch (e) {
    response = o.onError(e);
  }
  const outHeaders: Record<string, string | string[]> = {};
  response.headers.forEach((value, name) => {
    if (name !== "set-cookie") outHeaders[name] = value;
  });
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) outHeaders["set-cookie"] = cookies;
  res.writeHead(response.status, outHeaders);
  if (!response.body || req.method === "HEAD") {
    res.end();
    return;
  }
  const reader = response.body.getReader();
  try {
    while (!aborted.signal.aborted) {
      const { done, value } = await reader.read();
      if (done) break;
      if (!res.write(value)) await new Promise<void>((r) => res.once("drain", r).once("close", r));
    }
  } catch {
    // the client went away, or the body failed: nothing more can be sent
  } finally {
    if (aborted.signal.aborted) await reader.cancel().catch(() => {});
    res.end();
  }
}
