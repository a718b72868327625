/**
 * Helpers of the admission webhook tests: `airlock serve` started in-process (the real `startServer`) as the
 * cluster runs it — HTTPS with an openssl-made serving certificate, `--client-ca` with a client certificate for
 * "the API server" — and an HTTP client that posts AdmissionReviews to it the way the API server does.
 *
 * @module
 */
import { join } from "node:path";
import { HangarLogger } from "../../core/report.ts";
import { type RunningServer, type ServeConfig, startServer } from "../../server/serve.ts";
import { addToken } from "../../server/tokens.ts";
import { ATTACHMENTS_ON, type CertKeyPair, makeCa, makeLeaf, writeRegistriesD } from "../testbed/mod.ts";
import type { Json } from "./reviews.ts";

/** TLS material of a test webhook. */
export interface WebhookTls {
  /** CA of the serving certificate (the webhook configuration's caBundle). */
  readonly serverCa: CertKeyPair;
  /** The serving certificate. */
  readonly server: CertKeyPair;
  /** The CA given as `--client-ca`. */
  readonly clientCa: CertKeyPair;
  /** The API server's client certificate (signed by `clientCa`, clientAuth). */
  readonly apiserver: CertKeyPair;
  /** A client certificate from another CA. */
  readonly stranger: CertKeyPair;
}

/**
 * Makes the certificates of {@linkcode WebhookTls} in `dir`.
 *
 * @example
 * ```ts
 * const tls = await makeWebhookTls(tmp.path);
 * ```
 */
export async function makeWebhookTls(dir: string): Promise<WebhookTls> {
  const serverCa = await makeCa(dir, { name: "server-ca" });
  const server = await makeLeaf(dir, serverCa, { name: "server" });
  const clientCa = await makeCa(dir, { name: "client-ca", commonName: "kubernetes front proxy CA" });
  const apiserver = await makeLeaf(dir, clientCa, {
    name: "apiserver",
    commonName: "kube-apiserver",
    sans: [],
    usage: "clientAuth",
  });
  const otherCa = await makeCa(dir, { name: "other-ca" });
  const stranger = await makeLeaf(dir, otherCa, {
    name: "stranger",
    commonName: "kube-apiserver",
    sans: [],
    usage: "clientAuth",
  });
  return { serverCa, server, clientCa, apiserver, stranger };
}

/** A running test webhook. */
export interface TestWebhook extends AsyncDisposable {
  /** The server. */
  readonly server: RunningServer;
  /** `https://127.0.0.1:PORT`. */
  readonly url: string;
  /** Every log line so far. */
  readonly log: string[];
  /** The bearer token of the job API (`ci`). */
  readonly token: string;
  /**
   * Posts a review to `/v1/admission/<endpoint>` as `as` (default `apiserver`: with the client certificate;
   * `none`: without one; `stranger`: with a certificate of another CA).
   */
  post(
    endpoint: "validate" | "mutate",
    review: Json,
    as?: "apiserver" | "none" | "stranger",
  ): Promise<{ status: number; body: Json; ms: number }>;
  /** `fetch(url + path)` with the bearer token, without a client certificate. */
  call(path: string, init?: RequestInit): Promise<Response>;
}

/** Options of {@linkcode startWebhook}. */
export interface StartWebhookOptions {
  /** Scratch directory. */
  readonly dir: string;
  /** The admission configuration file's text (written to `<dir>/admission.yaml`). */
  readonly config: string;
  /** TLS material (default: made in `dir`). */
  readonly tls?: WebhookTls;
  /** Require client certificates (default true). */
  readonly clientCa?: boolean;
  /** Overrides of the serve configuration (`keyRef`, `admissionTimeoutMs`, `registry`…). */
  readonly serve?: Partial<ServeConfig>;
}

/**
 * Starts `airlock serve --admission-config` in-process on 127.0.0.1 with TLS (and `--client-ca`), no key.
 *
 * @example
 * ```ts
 * await using hook = await startWebhook({ dir: tmp.path, config: "policy: policy.json\n" });
 * const r = await hook.post("validate", review(pod(…)));
 * ```
 */
export async function startWebhook(o: StartWebhookOptions): Promise<TestWebhook> {
  const tls = o.tls ?? await makeWebhookTls(o.dir);
  const configFile = join(o.dir, "admission.yaml");
  await Deno.writeTextFile(configFile, o.config);
  const tokenFile = join(o.dir, "tokens");
  const token = (await addToken(tokenFile, "ci")).token;
  const rd = await writeRegistriesD(o.dir, ATTACHMENTS_ON, "webhook-registries.d");
  const log: string[] = [];
  const sink = (s: string) => log.push(s);
  const withClientCa = o.clientCa ?? true;
  const server = await startServer({
    tokenFile,
    listen: "127.0.0.1:0",
    tlsCert: tls.server.certPath,
    tlsKey: tls.server.keyPath,
    admissionConfig: configFile,
    clientCa: withClientCa ? tls.clientCa.certPath : undefined,
    registry: { tlsVerify: false },
    registriesD: rd,
    maxBodyBytes: 64 * 1024,
    maxImages: 50,
    ratePerMinute: 10_000,
    jobs: 2,
    shutdownTimeoutMs: 5_000,
    logger: new HangarLogger({ stdout: sink, stderr: sink, hideTime: true }),
    tokenCheckIntervalMs: 0,
    ...o.serve,
  });
  const clients = {
    apiserver: Deno.createHttpClient({
      caCerts: [tls.serverCa.certPem],
      cert: tls.apiserver.certPem,
      key: tls.apiserver.keyPem,
    }),
    stranger: Deno.createHttpClient({
      caCerts: [tls.serverCa.certPem],
      cert: tls.stranger.certPem,
      key: tls.stranger.keyPem,
    }),
    none: Deno.createHttpClient({ caCerts: [tls.serverCa.certPem] }),
  };
  return {
    server,
    url: server.url,
    log,
    token,
    async post(endpoint, review, as = "apiserver") {
      const t0 = performance.now();
      const res = await fetch(`${server.url}/v1/admission/${endpoint}`, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json, */*" },
        body: JSON.stringify(review),
        client: clients[as],
      });
      const body = await res.json() as Json;
      return { status: res.status, body, ms: performance.now() - t0 };
    },
    call(path, init = {}) {
      const headers = new Headers(init.headers);
      if (!headers.has("authorization")) headers.set("authorization", `Bearer ${token}`);
      return fetch(server.url + path, { ...init, headers, client: clients.none });
    },
    async [Symbol.asyncDispose]() {
      try {
        await server.shutdown();
      } finally {
        for (const c of Object.values(clients)) c.close();
      }
    },
  };
}

/** The `response` of an AdmissionReview answer. */
export function responseOf(body: Json): Json {
  return body.response as Json;
}

/** The decoded JSON Patch of a mutating answer (`[]` when none). */
export function patchOf(body: Json): Json[] {
  const r = responseOf(body);
  return r.patch === undefined ? [] : JSON.parse(atob(r.patch as string));
}
