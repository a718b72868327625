/**
 * What the Vault and cloud KMS backends (`hashivault.ts`, `awskms.ts`, `gcpkms.ts`, `azurekms.ts`) share: an
 * HTTP client with per-service TLS options, error classification into {@linkcode AirlockError} codes with
 * every known secret scrubbed from messages, cached bearer tokens, environment and file helpers.
 *
 * Transport: requests go through the registry client's transports (`core/registry/transport.ts`): `fetch`
 * (certificates verified; extra CAs and a client certificate through `Deno.createHttpClient`), or `node:https`
 * without certificate checks when a backend's "skip verify" option is set (`VAULT_SKIP_VERIFY`,
 * `AWS_TLS_INSECURE_SKIP_VERIFY`).
 *
 * Error codes: `KEY_SERVICE_UNREACHABLE` (connection refused, DNS), `TLS_ERROR`, `TIMEOUT`, and the codes the
 * backends pick from the answer: `KEY_AUTH_FAILED`, `KEY_ACCESS_DENIED`, `KEY_NOT_FOUND`, `KEY_BACKEND`.
 *
 * @example
 * ```ts
 * const http = await KmsHttpClient.create({ service: "Vault", caCertFiles: ["/etc/vault/ca.pem"] });
 * const res = await http.send("GET", new URL("https://vault:8200/v1/transit/keys/k"), { headers: { "X-Vault-Token": t } });
 * http.close();
 * ```
 *
 * @module
 */
import { AirlockError } from "../core/errors.ts";
import { FetchTransport, NodeTransport, type Transport } from "../core/registry/transport.ts";
import { defaultEnv } from "./passphrase.ts";

/** Reads an environment variable; `undefined` when unset (or when env access is not permitted). */
export type EnvLookup = (name: string) => string | undefined;

/**
 * `options.env`, else `Deno.env.get` with a missing `--allow-env` permission counted as "not set".
 *
 * @example
 * ```ts
 * const env = envLookup(options);
 * env("VAULT_ADDR");
 * ```
 */
export function envLookup(options: { env?: EnvLookup } = {}): EnvLookup {
  return options.env ?? defaultEnv;
}

/**
 * The value of the first of `names` that is set and not empty.
 */
export function firstEnv(env: EnvLookup, ...names: string[]): string | undefined {
  for (const n of names) {
    const v = env(n);
    if (v !== undefined && v !== "") return v;
  }
  return undefined;
}

/**
 * Whether an environment flag is on, as Go's `strconv.ParseBool` reads it (`1`, `t`, `true`, any case).
 */
export function envFlag(value: string | undefined): boolean {
  return value !== undefined && /^(1|t|true)$/i.test(value.trim());
}

/**
 * Reads a text file, or `undefined` when it does not exist. Other failures throw `IO_ERROR` naming `what`.
 */
export async function readOptionalFile(path: string, what: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw new AirlockError("IO_ERROR", `reading ${what} "${path}": ${(e as Error).message}`, { cause: e });
  }
}

/**
 * Reads a text file that must exist; throws `IO_ERROR` naming `what`.
 */
export async function readRequiredFile(path: string, what: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    throw new AirlockError("IO_ERROR", `reading ${what} "${path}": ${(e as Error).message}`, { cause: e });
  }
}

/**
 * `text` with every occurrence of each (non-trivial) secret replaced by `***`.
 */
export function scrub(text: string, secrets: readonly (string | undefined)[]): string {
  let out = text;
  for (const s of secrets) {
    if (s !== undefined && s.length >= 4) out = out.split(s).join("***");
  }
  return out;
}

/**
 * Unpadded base64url of `bytes` (or of a string's UTF-8).
 */
export function base64UrlEncode(bytes: Uint8Array | string): string {
  const b = typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes;
  let bin = "";
  for (let i = 0; i < b.length; i += 0x8000) bin += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(bin).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/**
 * Decodes base64url (padding optional; standard base64 characters are accepted too); `undefined` on malformed
 * input.
 */
export function base64UrlDecode(s: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9_\-+/]*={0,2}$/.test(s)) return undefined;
  const std = s.replace(/=+$/, "").replaceAll("-", "+").replaceAll("_", "/");
  if (std.length % 4 === 1) return undefined;
  try {
    return Uint8Array.from(atob(std + "=".repeat((4 - std.length % 4) % 4)), (c) => c.charCodeAt(0));
  } catch {
    return undefined;
  }
}

/**
 * Whether `url` points at this machine (`localhost`, `127.0.0.0/8`, `[::1]`): plain http is allowed only there
 * for endpoints that receive secrets or bearer tokens.
 */
export function isLoopback(url: URL): boolean {
  const h = url.hostname;
  return h === "localhost" || h === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/**
 * Parses an endpoint URL from configuration: must be `https:`, or `http:` to a loopback address (test and
 * local fakes). Throws `CONFIG_INVALID` naming `what`.
 */
export function endpointUrl(value: string, what: string, options: { allowHttp?: boolean } = {}): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new AirlockError("CONFIG_INVALID", `${what}: "${value}" is not a URL`);
  }
  if (url.protocol === "https:" || (url.protocol === "http:" && (options.allowHttp || isLoopback(url)))) {
    return url;
  }
  throw new AirlockError(
    "CONFIG_INVALID",
    `${what}: "${value}" must be an https:// URL (plain http only to localhost)`,
  );
}

/** Answers worth another try (throttled, gateway trouble); signing and reading keys are idempotent. */
const RETRY_STATUS = new Set([429, 502, 503, 504]);
/** Waits before the 2nd and 3rd try. */
const RETRY_DELAYS_MS = [250, 1000];

/** Options of {@linkcode KmsHttpClient.create}. */
export interface KmsHttpOptions {
  /** The service, for messages: `Vault`, `AWS KMS`, … */
  service: string;
  /** PEM files of extra CAs to trust (in addition to the system roots). */
  caCertFiles?: readonly string[];
  /** Directories whose `*.pem`/`*.crt` files are extra CAs (`VAULT_CAPATH`). */
  caCertDirs?: readonly string[];
  /** A client certificate chain and key (PEM files), for mutual TLS. */
  clientCert?: { certFile: string; keyFile: string };
  /** Skip certificate checks (never the default). */
  insecureSkipVerify?: boolean;
  /** Time limit of one exchange in ms, including the body; default 30 000. */
  timeoutMs?: number;
  /** Where the CA option comes from, for the TLS error hint (e.g. `VAULT_CACERT`). */
  caHint?: string;
}

/** A complete HTTP answer. */
export interface KmsResponse {
  /** HTTP status. */
  readonly status: number;
  /** Response headers. */
  readonly headers: Headers;
  /** The body as text. */
  readonly text: string;
  /** The body parsed as JSON, or `undefined` when it is not JSON. */
  readonly json: unknown;
}

/** Options of one {@linkcode KmsHttpClient.send}. */
export interface KmsRequestInit {
  /** Request headers. */
  headers?: Record<string, string>;
  /** The body (a string is sent as UTF-8). */
  body?: string | Uint8Array;
}

/**
 * A small HTTP client for one key service: TLS options fixed at creation, whole bodies, errors classified.
 *
 * @example
 * ```ts
 * const http = await KmsHttpClient.create({ service: "Azure Key Vault" });
 * const res = await http.send("GET", new URL("https://v.vault.azure.net/keys/k?api-version=7.4"));
 * ```
 */
export class KmsHttpClient {
  /** The service name used in messages. */
  readonly service: string;
  readonly #transport: Transport;
  readonly #timeoutMs: number;
  readonly #caHint: string | undefined;
  readonly #insecure: boolean;

  private constructor(service: string, transport: Transport, options: KmsHttpOptions) {
    this.service = service;
    this.#transport = transport;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#caHint = options.caHint;
    this.#insecure = options.insecureSkipVerify ?? false;
  }

  /**
   * Reads the CA and client certificate files and makes the client. Throws `IO_ERROR` for unreadable files,
   * `TLS_ERROR` for unusable certificates.
   */
  static async create(options: KmsHttpOptions): Promise<KmsHttpClient> {
    const caCerts: string[] = [];
    for (const f of options.caCertFiles ?? []) caCerts.push(await readRequiredFile(f, "CA certificate file"));
    for (const d of options.caCertDirs ?? []) {
      try {
        for await (const e of Deno.readDir(d)) {
          if (e.isFile && /\.(pem|crt)$/i.test(e.name)) {
            caCerts.push(await readRequiredFile(`${d}/${e.name}`, "CA certificate file"));
          }
        }
      } catch (e) {
        if (e instanceof AirlockError) throw e;
        throw new AirlockError("IO_ERROR", `reading CA directory "${d}": ${(e as Error).message}`, {
          cause: e,
        });
      }
    }
    const clientCert = options.clientCert
      ? {
        cert: await readRequiredFile(options.clientCert.certFile, "client certificate"),
        key: await readRequiredFile(options.clientCert.keyFile, "client key"),
      }
      : undefined;
    let transport: Transport;
    try {
      transport = options.insecureSkipVerify
        ? new NodeTransport({ caCerts: [], clientCert })
        : new FetchTransport({ caCerts, clientCert });
    } catch (e) {
      throw new AirlockError(
        "TLS_ERROR",
        `${options.service}: invalid CA or client certificate: ${(e as Error).message}`,
        { cause: e },
      );
    }
    return new KmsHttpClient(options.service, transport, options);
  }

  /**
   * Sends one request and reads the whole answer; a throttled or gateway answer (429, 502, 503, 504) or a
   * closed connection is tried again twice. Throws `KEY_SERVICE_UNREACHABLE`, `TLS_ERROR` or `TIMEOUT` (the
   * message names the service and host, never headers or bodies); any other HTTP status is returned.
   */
  async send(method: string, url: URL, init: KmsRequestInit = {}): Promise<KmsResponse> {
    for (let attempt = 0;; attempt++) {
      try {
        const res = await this.#once(method, url, init);
        if (!RETRY_STATUS.has(res.status) || attempt >= RETRY_DELAYS_MS.length) return res;
      } catch (e) {
        if (
          !(e instanceof AirlockError && /connection closed/.test(e.message)) ||
          attempt >= RETRY_DELAYS_MS.length
        ) {
          throw e;
        }
      }
      await new Promise((r) => setTimeout(r, RETRY_DELAYS_MS[attempt]));
    }
  }

  async #once(method: string, url: URL, init: KmsRequestInit): Promise<KmsResponse> {
    const signal = AbortSignal.timeout(this.#timeoutMs);
    const headers = new Headers(init.headers ?? {});
    const body = typeof init.body === "string" ? new TextEncoder().encode(init.body) : init.body;
    let text: string;
    let res;
    try {
      res = await this.#transport.send({ method, url, headers, body, signal });
      text = res.body ? await new Response(res.body).text() : "";
    } catch (e) {
      throw this.#networkError(e, url, signal.aborted);
    }
    let json: unknown = undefined;
    if (text !== "") {
      try {
        json = JSON.parse(text);
      } catch {
        // not JSON: callers use the text
      }
    }
    return { status: res.status, headers: res.headers, text, json };
  }

  #networkError(err: unknown, url: URL, timedOut: boolean): AirlockError {
    const where = `${this.service} at ${url.protocol}//${url.host}`;
    if (timedOut) {
      return new AirlockError("TIMEOUT", `${where} did not answer within ${this.#timeoutMs / 1000} s`, {
        cause: err,
      });
    }
    const chain: string[] = [];
    for (let cur: unknown = err, i = 0; cur !== undefined && cur !== null && i < 5; i++) {
      chain.push(
        cur instanceof Error ? `${(cur as { code?: string }).code ?? ""} ${cur.message}` : String(cur),
      );
      cur = cur instanceof Error ? cur.cause : undefined;
    }
    const text = chain.join(" | ");
    if (/certificate|UnknownIssuer|CERT_|UNABLE_TO_VERIFY|SELF_SIGNED|NotValidForName/i.test(text)) {
      const hint = this.#caHint ? `; trust its CA with ${this.#caHint}` : "";
      return new AirlockError(
        "TLS_ERROR",
        `TLS verification failed for ${where}: ${
          /UnknownIssuer|UNABLE_TO_VERIFY|SELF_SIGNED/i.test(text)
            ? "certificate signed by an unknown authority"
            : "invalid certificate"
        }${hint}`,
        { cause: err },
      );
    }
    if (
      !this.#insecure && /wrong version number|InvalidContentType|CorruptMessage|record overflow/i.test(text)
    ) {
      return new AirlockError("TLS_ERROR", `TLS handshake with ${where} failed (does it speak plain http?)`, {
        cause: err,
      });
    }
    const why = /ECONNREFUSED|Connection refused|os error 111/i.test(text)
      ? "connection refused"
      : /dns error|ENOTFOUND|EAI_AGAIN|failed to lookup|Name or service not known/i.test(text)
      ? "host name not found"
      : /reset|ECONNRESET|closed/i.test(text)
      ? "connection closed"
      : "request failed";
    return new AirlockError("KEY_SERVICE_UNREACHABLE", `cannot reach ${where}: ${why}`, { cause: err });
  }

  /** Releases pooled connections. */
  close(): void {
    this.#transport.close();
  }
}

/**
 * The body of an answer when it is a JSON object, else `undefined`.
 */
export function jsonObject(res: KmsResponse): Record<string, unknown> | undefined {
  return typeof res.json === "object" && res.json !== null ? res.json as Record<string, unknown> : undefined;
}

/** A bearer token and when it stops being valid (ms since the epoch). */
export interface ExpiringToken {
  /** The token. */
  token: string;
  /** Expiry time, ms since the epoch. */
  expiresAt: number;
}

/**
 * A bearer token fetched on first use and again shortly (5 minutes, or half its life when shorter) before it
 * expires; concurrent callers share one fetch.
 *
 * @example
 * ```ts
 * const tokens = new TokenCache(() => fetchToken());
 * headers.Authorization = `Bearer ${await tokens.get()}`;
 * ```
 */
export class TokenCache {
  readonly #fetch: () => Promise<ExpiringToken>;
  #current?: ExpiringToken & { refreshAt: number };
  #pending?: Promise<string>;

  /** @param fetch gets a new token */
  constructor(fetch: () => Promise<ExpiringToken>) {
    this.#fetch = fetch;
  }

  /** A valid token (cached or new). */
  get(): Promise<string> {
    if (this.#current && Date.now() < this.#current.refreshAt) return Promise.resolve(this.#current.token);
    this.#pending ??= (async () => {
      try {
        const t = await this.#fetch();
        const life = t.expiresAt - Date.now();
        this.#current = { ...t, refreshAt: t.expiresAt - Math.min(300_000, life / 2) };
        return t.token;
      } finally {
        this.#pending = undefined;
      }
    })();
    return this.#pending;
  }

  /** Every secret this cache holds (for {@linkcode scrub}). */
  secrets(): string[] {
    return this.#current ? [this.#current.token] : [];
  }

  /** Forgets the token (after a 401). */
  clear(): void {
    this.#current = undefined;
  }
}

/**
 * Sends a request with `Authorization: Bearer` and a token from `tokens` (`body`, when given, as JSON); after a
 * 401 the token is dropped and the request tried once more with a new one. Returns the last answer, whatever its
 * status.
 */
export async function sendWithToken(
  http: KmsHttpClient,
  tokens: TokenCache,
  method: string,
  url: URL,
  body?: unknown,
): Promise<KmsResponse> {
  for (let attempt = 0;; attempt++) {
    const token = await tokens.get();
    const res = await http.send(method, url, {
      headers: {
        Authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { "Content-Type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (res.status !== 401 || attempt > 0) return res;
    tokens.clear();
  }
}

/**
 * The token of an OAuth2 token endpoint's answer (`access_token`, `expires_in`). Any other answer throws
 * `KEY_AUTH_FAILED` (`KEY_BACKEND` for a 5xx): `${refusal} (HTTP <status>): <error: error_description>`, with
 * `secrets` scrubbed.
 */
export function tokenFromAnswer(
  res: KmsResponse,
  refusal: string,
  secrets: readonly string[],
): ExpiringToken {
  const json = jsonObject(res) ?? {};
  if (res.status === 200 && typeof json.access_token === "string" && json.access_token !== "") {
    return { token: json.access_token, expiresAt: expiryOf(json.expires_in) };
  }
  const detail = scrub(
    [json.error, json.error_description].filter((x) => typeof x === "string").join(": ") ||
      excerpt(res.text) ||
      `HTTP ${res.status}`,
    secrets,
  );
  throw new AirlockError(
    res.status >= 500 ? "KEY_BACKEND" : "KEY_AUTH_FAILED",
    `${refusal} (HTTP ${res.status}): ${detail}`,
  );
}

/**
 * Posts an OAuth2 grant (`application/x-www-form-urlencoded`) to a token endpoint and returns the token, as
 * {@linkcode tokenFromAnswer} reads it.
 */
export async function requestToken(
  http: KmsHttpClient,
  url: URL,
  form: URLSearchParams,
  refusal: string,
  secrets: readonly string[],
): Promise<ExpiringToken> {
  const res = await http.send("POST", url, {
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: form.toString(),
  });
  return tokenFromAnswer(res, refusal, secrets);
}

/**
 * The `expires_in` of an OAuth2 token answer as an absolute time (default one hour).
 */
export function expiryOf(expiresIn: unknown): number {
  const n = typeof expiresIn === "number"
    ? expiresIn
    : typeof expiresIn === "string"
    ? Number(expiresIn)
    : NaN;
  return Date.now() + (Number.isFinite(n) && n > 0 ? n : 3600) * 1000;
}

/**
 * A short, single-line excerpt of a service's error text for messages (at most 300 characters).
 */
export function excerpt(text: string): string {
  const one = text.replace(/\s+/g, " ").trim();
  return one.length > 300 ? `${one.slice(0, 300)}…` : one;
}
