/**
 * Registry authentication: `WWW-Authenticate` challenges, Basic credentials and Bearer tokens (Docker token
 * protocol, GET with Basic credentials or anonymous; OAuth2 POST form with an identity token), cached per registry
 * and scope set until they expire.
 *
 * One challenge round trip per registry: the first request to a registry goes out anonymously and, if answered
 * with 401, teaches the scheme; concurrent first requests wait for that answer instead of each collecting a 401.
 * From then on Basic is sent preemptively and Bearer tokens are fetched (or taken from the cache) before the
 * request. Secrets never appear in messages.
 *
 * @module
 */

import { base64Encode } from "../encoding/base64.ts";
import { AirlockError } from "../errors.ts";
import type { Credential, CredentialLookup } from "./types.ts";
import { parseErrorDocument } from "./errors.ts";

/** One parsed challenge of a `WWW-Authenticate` header. */
export interface Challenge {
  /** Auth scheme, lowercased: `basic`, `bearer`, … */
  readonly scheme: string;
  /** Parameters with lowercased names (`realm`, `service`, `scope`, `error`…). */
  readonly params: Readonly<Record<string, string>>;
}

/**
 * Parses a `WWW-Authenticate` header (RFC 9110 §11.6.1): several challenges separated by commas, parameters as
 * `name=token` or `name="quoted \"string\""`, token68 values kept under the key `""`.
 *
 * @example
 * ```ts
 * parseWwwAuthenticate('Bearer realm="https://auth.example/token",service="registry",scope="repository:a:pull"');
 * // → [{ scheme: "bearer", params: { realm: "https://auth.example/token", service: "registry", scope: "repository:a:pull" } }]
 * ```
 */
export function parseWwwAuthenticate(header: string): Challenge[] {
  const out: { scheme: string; params: Record<string, string> }[] = [];
  let i = 0;
  const n = header.length;
  const skipWs = () => {
    while (i < n && (header[i] === " " || header[i] === "\t")) i++;
  };
  const readToken = () => {
    const start = i;
    while (i < n && /[!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(header[i])) i++;
    return header.slice(start, i);
  };
  const readQuoted = () => {
    let value = "";
    i++; // opening quote
    while (i < n && header[i] !== '"') {
      if (header[i] === "\\" && i + 1 < n) i++;
      value += header[i++];
    }
    i++; // closing quote
    return value;
  };
  while (i < n) {
    skipWs();
    if (header[i] === ",") {
      i++;
      continue;
    }
    const scheme = readToken();
    if (!scheme) {
      i++; // junk: skip a character and try again
      continue;
    }
    const current = { scheme: scheme.toLowerCase(), params: {} as Record<string, string> };
    out.push(current);
    skipWs();
    // parameters until the next challenge (a token not followed by "=")
    while (i < n) {
      skipWs();
      if (header[i] === ",") {
        i++;
        continue;
      }
      const save = i;
      const name = readToken();
      skipWs();
      if (name && header[i] === "=") {
        i++;
        // token68 may end with "=" padding: `Basic abc==`
        if (header[i] === "=" || i >= n || header[i] === ",") {
          while (header[i] === "=") i++;
          current.params[""] = name;
          continue;
        }
        skipWs();
        const value = header[i] === '"' ? readQuoted() : readToken68();
        current.params[name.toLowerCase()] = value;
        continue;
      }
      if (name && Object.keys(current.params).length === 0 && (i >= n || header[i] === ",")) {
        // token68 credentials-style value directly after the scheme
        current.params[""] = name;
        continue;
      }
      i = save; // the start of the next challenge
      break;
    }
  }
  return out;

  function readToken68(): string {
    const start = i;
    while (i < n && header[i] !== "," && header[i] !== " " && header[i] !== "\t") i++;
    return header.slice(start, i);
  }
}

/** A minimal HTTP exchange the authenticator uses to reach token servers (the client's transport stack). */
export type TokenExchange = (request: {
  method: "GET" | "POST";
  url: URL;
  headers: Headers;
  body?: Uint8Array;
  signal?: AbortSignal;
}) => Promise<{ status: number; headers: Headers; body: Uint8Array }>;

/** Options of an {@linkcode Authenticator}. */
export interface AuthenticatorOptions {
  /** Finds credentials per registry; `undefined` result = anonymous. */
  readonly credentials?: CredentialLookup;
  /** Sends token requests. */
  readonly exchange: TokenExchange;
  /** `client_id` sent with OAuth2 POST token requests. */
  readonly clientId?: string;
  /**
   * Whether the registries themselves may be reached over plain HTTP (`--tls-verify=false`). Unless they may,
   * credentials (a password, a refresh token) are never sent to a token realm on `http://`.
   */
  readonly plainHttpAllowed?: boolean;
  /** Clock, for tests. */
  readonly now?: () => number;
}

interface CachedToken {
  readonly token: string;
  readonly expiresAt: number;
}

interface RegistryState {
  /** The challenge learned from the first 401 (Bearer preferred to Basic). */
  challenge?: Challenge;
  /** Whether some request to this registry got an answer (so the first-contact gate is open). */
  contacted: boolean;
  /** While the first request is in flight, others wait on this. */
  gate?: Promise<void>;
  openGate?: () => void;
  /** The `Authorization: Basic …` value, built once from the registry's credentials. */
  basicHeader?: string;
}

/** What {@linkcode Authenticator.authorize} decided for one request. */
export interface Authorization {
  /** The `Authorization` header value, when one is to be sent. */
  readonly header?: string;
  /** The cache key of the token used, so a 401 can invalidate exactly it. */
  readonly tokenKey?: string;
  /** Whether the token was taken from the cache (a 401 then deserves one fresh try). */
  readonly cached?: boolean;
}

/** Longest bearer token accepted (it is sent in a header with every request). */
const MAX_TOKEN_LENGTH = 16 * 1024;

/** Lifetime assumed when the token server gives none, and the minimum (as docker and containers/image do). */
const minimumTokenLifetimeSeconds = 60;

/**
 * Keeps the per-registry auth state of one client: the known challenge, credentials, and the token cache.
 *
 * @example
 * ```ts
 * const auth = new Authenticator({ credentials, exchange });
 * const a = await auth.authorize("r.example", ["repository:app:pull"]);
 * // send the request with a.header; on 401: if (await auth.challenged(...)) retry once
 * ```
 */
export class Authenticator {
  readonly #lookup?: CredentialLookup;
  readonly #exchange: TokenExchange;
  readonly #clientId: string;
  readonly #now: () => number;
  readonly #plainHttpAllowed: boolean;
  readonly #states = new Map<string, RegistryState>();
  readonly #credentials = new Map<string, Promise<Credential | undefined>>();
  readonly #tokens = new Map<string, CachedToken>();
  readonly #inflight = new Map<string, Promise<CachedToken>>();
  /** How many tokens were fetched from token servers (for tests and statistics). */
  tokensFetched = 0;

  /** @param options credentials, token exchange, client id */
  constructor(options: AuthenticatorOptions) {
    this.#lookup = options.credentials;
    this.#exchange = options.exchange;
    this.#clientId = options.clientId ?? "airlock";
    this.#now = options.now ?? Date.now;
    this.#plainHttpAllowed = options.plainHttpAllowed ?? false;
  }

  #state(registry: string): RegistryState {
    let s = this.#states.get(registry);
    if (!s) {
      s = { contacted: false };
      this.#states.set(registry, s);
    }
    return s;
  }

  /** The credentials for `registry`, looked up once per client. */
  credentialsFor(registry: string): Promise<Credential | undefined> {
    let p = this.#credentials.get(registry);
    if (!p) {
      p = this.#lookup ? this.#lookup(registry) : Promise.resolve(undefined);
      this.#credentials.set(registry, p);
      p.catch(() => this.#credentials.delete(registry));
    }
    return p;
  }

  /**
   * Decides the `Authorization` header for a request to `registry` needing `scopes`. Before the registry's scheme
   * is known, the first caller goes out anonymously and the others wait for its answer
   * ({@linkcode Authenticator.observe}).
   */
  async authorize(registry: string, scopes: readonly string[], signal?: AbortSignal): Promise<Authorization> {
    const state = this.#state(registry);
    while (!state.contacted && state.gate) await waitOrAbort(state.gate, signal);
    if (!state.contacted && !state.gate) {
      state.gate = new Promise<void>((resolve) => state.openGate = resolve);
      return {};
    }
    return await this.#headerFor(registry, state, scopes, signal);
  }

  /**
   * Records that a request to `registry` got an answer other than 401 (or failed before any answer: status 0),
   * opening the first-contact gate. 401 answers go to {@linkcode Authenticator.challenged} instead.
   */
  observe(registry: string, status: number): void {
    const state = this.#state(registry);
    if (status !== 0) state.contacted = true;
    this.#openGate(state);
  }

  #openGate(state: RegistryState): void {
    const open = state.openGate;
    state.gate = undefined;
    state.openGate = undefined;
    open?.();
  }

  /**
   * After a 401 answer to a request sent with `sent`: tells whether one more try with fresh authorization makes
   * sense (no auth was sent, a cached token may have expired, or the challenge asks for another scope), and
   * returns the scopes to ask for. Throws UNAUTHORIZED when the registry wants credentials nobody has.
   */
  async challenged(
    registry: string,
    wwwAuthenticate: string | null,
    scopes: readonly string[],
    sent: Authorization,
  ): Promise<{ retry: boolean; scopes: string[] }> {
    const state = this.#state(registry);
    if (sent.tokenKey) this.#tokens.delete(sent.tokenKey);
    const challenges = wwwAuthenticate ? parseWwwAuthenticate(wwwAuthenticate) : [];
    const chosen = challenges.find((c) => c.scheme === "bearer") ??
      challenges.find((c) => c.scheme === "basic");
    const asked = normalizeScopes(scopes);
    let merged = asked;
    if (chosen?.scheme === "bearer" && chosen.params.scope) {
      merged = normalizeScopes([...scopes, ...chosen.params.scope.split(" ")]);
    }
    // Registries list actions in any order (`push,pull`): only a really different set counts as new.
    const newScope = merged.join(" ") !== asked.join(" ");
    const schemeChanged = chosen !== undefined && chosen.scheme !== state.challenge?.scheme;
    if (chosen) state.challenge = chosen;
    state.contacted = true;
    this.#openGate(state);
    if (!chosen) return { retry: false, scopes: merged };
    if (chosen.scheme === "basic") {
      const cred = await this.credentialsFor(registry);
      if (!cred) {
        throw new AirlockError(
          "UNAUTHORIZED",
          `registry ${registry} requires authentication and no credentials were found for it (log in first)`,
        );
      }
    }
    const retry = sent.header === undefined || sent.cached === true || newScope || schemeChanged;
    return { retry, scopes: merged };
  }

  async #headerFor(
    registry: string,
    state: RegistryState,
    scopes: readonly string[],
    signal?: AbortSignal,
  ): Promise<Authorization> {
    const challenge = state.challenge;
    if (!challenge) return {};
    if (challenge.scheme === "basic") {
      if (state.basicHeader === undefined) {
        const cred = await this.credentialsFor(registry);
        if (!cred) return {};
        if (!("username" in cred)) {
          throw new AirlockError(
            "UNAUTHORIZED",
            `registry ${registry} asks for Basic authentication but its stored credential is an identity token`,
          );
        }
        state.basicHeader = basicHeader(cred.username, cred.password);
      }
      return { header: state.basicHeader };
    }
    if (challenge.scheme === "bearer") {
      const realm = challenge.params.realm;
      if (!realm) {
        throw new AirlockError(
          "REGISTRY_ERROR",
          `registry ${registry} sent a Bearer challenge without a realm`,
        );
      }
      const sorted = normalizeScopes(scopes);
      const key = `${registry}\n${realm}\n${challenge.params.service ?? ""}\n${sorted.join(" ")}`;
      const hit = this.#tokens.get(key);
      if (hit && hit.expiresAt > this.#now()) {
        return { header: `Bearer ${hit.token}`, tokenKey: key, cached: true };
      }
      let p = this.#inflight.get(key);
      if (!p) {
        p = this.#fetchToken(registry, realm, challenge.params.service, sorted, signal);
        this.#inflight.set(key, p);
        p.then((t) => this.#tokens.set(key, t), () => {}).finally(() => this.#inflight.delete(key));
      }
      const token = await p;
      return { header: `Bearer ${token.token}`, tokenKey: key, cached: false };
    }
    throw new AirlockError(
      "UNAUTHORIZED",
      `registry ${registry} asks for unsupported authentication scheme "${challenge.scheme}"`,
    );
  }

  async #fetchToken(
    registry: string,
    realm: string,
    service: string | undefined,
    scopes: string[],
    signal?: AbortSignal,
  ): Promise<CachedToken> {
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new AirlockError("REGISTRY_ERROR", `registry ${registry} sent an invalid token realm "${realm}"`);
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") {
      throw new AirlockError("REGISTRY_ERROR", `registry ${registry} sent an invalid token realm "${realm}"`);
    }
    const cred = await this.credentialsFor(registry);
    if (cred && url.protocol === "http:" && !this.#plainHttpAllowed) {
      // containers/image sends them anyway: anyone on the path would read the password in clear.
      throw new AirlockError(
        "TLS_ERROR",
        `registry ${registry} asks for a token from ${url.origin}${url.pathname} over plain HTTP; the credentials ` +
          `for ${registry} are not sent there: they would travel unencrypted. Plain HTTP is used only for a ` +
          `registry allowed it with --tls-verify=false (fix the token service's realm to https)`,
      );
    }
    const headers = new Headers({ accept: "application/json" });
    let res: { status: number; headers: Headers; body: Uint8Array };
    if (cred && "identityToken" in cred) {
      // OAuth2 refresh-token grant (docker/distribution docs/spec/auth/oauth.md).
      const form = new URLSearchParams({
        grant_type: "refresh_token",
        refresh_token: cred.identityToken,
        client_id: this.#clientId,
      });
      if (service) form.set("service", service);
      if (scopes.length > 0) form.set("scope", scopes.join(" "));
      headers.set("content-type", "application/x-www-form-urlencoded");
      res = await this.#exchange({
        method: "POST",
        url,
        headers,
        body: new TextEncoder().encode(form.toString()),
        signal,
      });
    } else {
      if (service) url.searchParams.set("service", service);
      for (const s of scopes) url.searchParams.append("scope", s);
      if (cred) {
        url.searchParams.set("account", cred.username);
        headers.set("authorization", basicHeader(cred.username, cred.password));
      }
      res = await this.#exchange({ method: "GET", url, headers, signal });
    }
    const text = new TextDecoder().decode(res.body);
    const where = `fetching a token for ${registry} from ${url.origin}${url.pathname}`;
    if (res.status !== 200) {
      const errs = parseErrorDocument(text);
      const oauth = oauthError(text);
      const detail = errs.length > 0
        ? ` ${errs[0].code}: ${errs[0].message}`
        : oauth
        ? ` ${oauth.error}${oauth.description ? `: ${oauth.description}` : ""}`
        : "";
      // OAuth2 (RFC 6749 §5.2): a refused refresh token or password is `400 invalid_grant`.
      if (res.status === 401 || oauth?.error === "invalid_grant" || oauth?.error === "invalid_client") {
        throw new AirlockError(
          "UNAUTHORIZED",
          `${where}: 401${detail} (check the credentials for ${registry})`,
        );
      }
      if (res.status === 403) throw new AirlockError("DENIED", `${where}: 403${detail}`);
      throw new AirlockError("REGISTRY_ERROR", `${where}: ${res.status}${detail}`);
    }
    let doc: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      doc = JSON.parse(text);
    } catch {
      throw new AirlockError("REGISTRY_ERROR", `${where}: the answer is not JSON`);
    }
    if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
      throw new AirlockError("REGISTRY_ERROR", `${where}: the answer is not a JSON object`);
    }
    const token = typeof doc.token === "string" && doc.token
      ? doc.token
      : typeof doc.access_token === "string" && doc.access_token
      ? doc.access_token
      : undefined;
    if (!token) throw new AirlockError("REGISTRY_ERROR", `${where}: the answer holds no token`);
    // It goes into a header: printable ASCII without spaces (RFC 6750 b64token is narrower), of a sane length.
    if (token.length > MAX_TOKEN_LENGTH || !/^[\x21-\x7e]+$/.test(token)) {
      throw new AirlockError("REGISTRY_ERROR", `${where}: the answer holds a malformed token`);
    }
    this.tokensFetched++;
    const lifetime = Math.max(
      typeof doc.expires_in === "number" && Number.isFinite(doc.expires_in) ? doc.expires_in : 0,
      minimumTokenLifetimeSeconds,
    );
    // Local clock (not issued_at): immune to a skewed registry clock. Expire 10% early, at most 30 s early.
    const margin = Math.min(lifetime * 0.1, 30);
    return { token, expiresAt: this.#now() + (lifetime - margin) * 1000 };
  }
}

/**
 * The `Authorization: Basic …` value for a user name and password (UTF-8, base64).
 */
export function basicHeader(username: string, password: string): string {
  return `Basic ${base64Encode(new TextEncoder().encode(`${username}:${password}`))}`;
}

function waitOrAbort(p: Promise<void>, signal?: AbortSignal): Promise<void> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(new AirlockError("CANCELLED", "request cancelled"));
  return new Promise<void>((resolve, reject) => {
    const onAbort = () =>
      reject(new AirlockError("CANCELLED", "request cancelled", { cause: signal.reason }));
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    });
  });
}

function oauthError(text: string): { error: string; description?: string } | undefined {
  try {
    const doc = JSON.parse(text);
    if (typeof doc?.error === "string") {
      const description = typeof doc.error_description === "string"
        ? doc.error_description.slice(0, 200)
        : undefined;
      return { error: doc.error.slice(0, 100), ...(description ? { description } : {}) };
    }
  } catch {
    // not an OAuth2 error document
  }
  return undefined;
}

/**
 * Normalises token scopes: one entry per resource (`type:name`), actions merged, de-duplicated and sorted, entries
 * sorted — so `repository:a:push,pull` and `repository:a:pull,push` are one cache key.
 */
export function normalizeScopes(scopes: readonly string[]): string[] {
  const byResource = new Map<string, Set<string>>();
  const opaque = new Set<string>();
  for (const scope of scopes) {
    if (!scope) continue;
    const first = scope.indexOf(":");
    const last = scope.lastIndexOf(":");
    if (first < 0 || last === first) {
      opaque.add(scope);
      continue;
    }
    const resource = scope.slice(0, last);
    const actions = byResource.get(resource) ?? new Set<string>();
    for (const a of scope.slice(last + 1).split(",")) if (a) actions.add(a);
    byResource.set(resource, actions);
  }
  const out = [...opaque];
  for (const [resource, actions] of byResource) out.push(`${resource}:${[...actions].sort().join(",")}`);
  return out.sort();
}
