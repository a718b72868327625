/**
 * A small token server for the distribution registry's token authentication, written for tests.
 *
 * It issues ES256 JWTs signed by a key whose self-signed certificate the registry trusts (`rootcertbundle`),
 * with the libtrust key id in the `kid` header. Both request forms of the Docker token protocol are served at
 * `/token`: `GET ?service=&scope=&account=` with an optional Basic `Authorization` header, and the OAuth2 `POST`
 * (`grant_type=password` or `refresh_token`, form-encoded). Users, per-repository grants and `expires_in` are
 * configurable; every issued token is counted, so tests can assert client-side token caching.
 *
 * @module
 */
import { makeCa } from "./certs.ts";
import { base64url, importP256, pemToDer, removeDir } from "./util.ts";

/**
 * What each account may do: account name (`""` = anonymous) → repository name (or `"*"` for any) → the actions
 * granted (`pull`, `push`, `delete`, `*`). For scopes that are not `repository:` scopes the key is `type:name`
 * (e.g. `registry:catalog`).
 */
export type TokenGrants = Record<string, Record<string, string[]>>;

/** Options of {@linkcode startTokenServer}. */
export interface TokenServerOptions {
  /** Accounts and their passwords. */
  users?: Record<string, string>;
  /**
   * Per-account grants. Without it, an authenticated user gets every action asked for, and an anonymous
   * request gets `pull` only when `anonymous` is true.
   */
  grants?: TokenGrants;
  /** Issue tokens to requests without credentials (access from `grants[""]`, else `pull`). Default false: 401. */
  anonymous?: boolean;
  /** Lifetime of access tokens in seconds, and the `expires_in` answered (default 300). */
  expiresIn?: number;
  /** The registry's service name, the JWT `aud` (default `airlock-test-registry`). */
  service?: string;
  /** The JWT `iss` (default `airlock-test-token-issuer`). */
  issuer?: string;
  /**
   * Whether the POST password grant answers a `refresh_token` (default true). The GET form answers one only
   * when asked with `offline_token=true`.
   */
  issueRefreshTokens?: boolean;
  /**
   * Serve HTTPS with this certificate and key (PEM); `caCertPem` lets {@linkcode TokenServer.getToken} trust it.
   * Plain HTTP when absent.
   */
  tls?: { certPem: string; keyPem: string; caCertPem?: string };
}

/** One request the token server answered. */
export interface TokenRequestRecord {
  /** `GET` or `POST`. */
  method: string;
  /** `password`, `refresh_token` (POST) or `basic` / `anonymous` (GET). */
  grantType: string;
  /** The authenticated account, `""` when anonymous or refused. */
  account: string;
  /** The scopes asked for, as sent. */
  scopes: string[];
  /** The HTTP status answered. */
  status: number;
}

/** One `access` entry of a registry token. */
export interface TokenAccess {
  /** Resource type, e.g. `repository`. */
  type: string;
  /** Resource name, e.g. `a/b`. */
  name: string;
  /** Granted actions. */
  actions: string[];
}

/** A running token server. Stop it with `stop()` or `await using`. */
export interface TokenServer extends AsyncDisposable {
  /** Base URL, `http://127.0.0.1:PORT`. */
  readonly url: string;
  /** The token endpoint (`<url>/token`), the registry's `realm`. */
  readonly realm: string;
  /** The JWT audience = the registry's `service`. */
  readonly service: string;
  /** The JWT issuer = the registry's `issuer`. */
  readonly issuer: string;
  /** Path of the signing certificate (PEM), the registry's `rootcertbundle`. */
  readonly certPath: string;
  /** The libtrust key id of the signing key, sent as the JWT `kid`. */
  readonly keyId: string;
  /** How many access tokens were issued so far. */
  readonly issued: number;
  /** Every request answered, in order. */
  readonly requests: readonly TokenRequestRecord[];
  /**
   * Fetches a token over HTTP the way a client does (GET form; Basic auth when `user` is given). It counts in
   * `issued` and `requests` like any other request.
   */
  getToken(scopes: string[], user?: string, password?: string): Promise<string>;
  /** Registers a refresh token (an `identitytoken` in auth files) for `account`. */
  addRefreshToken(token: string, account: string): void;
  /** Changes grants at run time (replaces them; `undefined` = grant everything asked to authenticated users). */
  setGrants(grants: TokenGrants | undefined): void;
  /** Forgets the request log and the issued count. */
  resetCounts(): void;
  /** Stops the server and removes its signing material. */
  stop(): Promise<void>;
}

/**
 * The libtrust key id of an SPKI-encoded public key: base32 of the first 30 bytes of sha256(SPKI DER), in groups
 * of four characters joined by `:` (what distribution's token auth matches a JWT `kid` against).
 *
 * @example
 * ```ts
 * const kid = await libtrustKeyId(spkiDer); // "ABCD:EFGH:…" (12 groups)
 * ```
 */
export async function libtrustKeyId(spkiDer: Uint8Array): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", spkiDer as Uint8Array<ArrayBuffer>))
    .slice(
      0,
      30,
    );
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0;
  let value = 0;
  let out = "";
  for (const b of hash) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  // 30 bytes = 240 bits = exactly 48 base32 characters: no remainder, no padding.
  return out.match(/.{4}/g)!.join(":");
}

/**
 * Parses one scope string `type:name:actions` (the name may itself contain `:`, e.g. a port).
 *
 * @example
 * ```ts
 * parseScope("repository:a/b:pull,push"); // {type: "repository", name: "a/b", actions: ["pull", "push"]}
 * ```
 */
export function parseScope(scope: string): TokenAccess | undefined {
  const first = scope.indexOf(":");
  const last = scope.lastIndexOf(":");
  if (first < 0 || last === first) return undefined;
  return {
    type: scope.slice(0, first),
    name: scope.slice(first + 1, last),
    actions: scope.slice(last + 1).split(",").filter((a) => a !== ""),
  };
}

/**
 * Starts a token server on 127.0.0.1 (a free port) with a fresh EC P-256 signing key and certificate.
 *
 * @example
 * ```ts
 * await using ts = await startTokenServer({ users: { alice: "pw" }, grants: { alice: { "*": ["pull"] } } });
 * // registry config: auth.token {realm: ts.realm, service: ts.service, issuer: ts.issuer, rootcertbundle: ts.certPath}
 * ```
 */
export async function startTokenServer(opts: TokenServerOptions = {}): Promise<TokenServer> {
  const dir = await Deno.makeTempDir({ prefix: "airlock-token-" });
  try {
    const signer = await makeCa(dir, { name: "token-signer", commonName: "airlock test token signer" });
    const { privateKey, spki } = await importP256(pemToDer(signer.keyPem));
    const keyId = await libtrustKeyId(spki);
    return serve(opts, dir, signer.certPath, privateKey, keyId);
  } catch (e) {
    await removeDir(dir);
    throw e;
  }
}

function serve(
  opts: TokenServerOptions,
  dir: string,
  certPath: string,
  privateKey: CryptoKey,
  keyId: string,
): TokenServer {
  const service = opts.service ?? "airlock-test-registry";
  const issuer = opts.issuer ?? "airlock-test-token-issuer";
  const users = opts.users ?? {};
  const expiresIn = opts.expiresIn ?? 300;
  const issueRefresh = opts.issueRefreshTokens ?? true;
  let grants = opts.grants;
  const refreshTokens = new Map<string, string>();
  const requests: TokenRequestRecord[] = [];
  let issued = 0;

  const granted = (account: string, want: TokenAccess): string[] => {
    if (grants === undefined) {
      if (account !== "") return want.actions;
      return want.actions.filter((a) => a === "pull");
    }
    const rules = grants[account];
    if (!rules) return [];
    const key = want.type === "repository" ? want.name : `${want.type}:${want.name}`;
    const allowed = rules[key] ?? (want.type === "repository" ? rules["*"] : undefined) ?? [];
    if (allowed.includes("*")) return want.actions;
    return want.actions.filter((a) => allowed.includes(a));
  };

  const makeToken = async (account: string, scopes: string[]): Promise<string> => {
    const access: TokenAccess[] = [];
    for (const s of scopes.flatMap((x) => x.split(" ")).filter((x) => x !== "")) {
      const want = parseScope(s);
      if (!want) continue;
      const actions = granted(account, want);
      if (actions.length > 0) access.push({ type: want.type, name: want.name, actions });
    }
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: "JWT", alg: "ES256", kid: keyId };
    const claims = {
      iss: issuer,
      sub: account,
      aud: service,
      exp: now + expiresIn,
      nbf: now - 10,
      iat: now,
      jti: crypto.randomUUID(),
      access,
    };
    const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
    // WebCrypto's ECDSA signature is raw r‖s (64 bytes), which is exactly what JWS ES256 wants.
    const sig = new Uint8Array(
      await crypto.subtle.sign(
        { name: "ECDSA", hash: "SHA-256" },
        privateKey,
        new TextEncoder().encode(signingInput),
      ),
    );
    issued++;
    return `${signingInput}.${base64url(sig)}`;
  };

  const newRefreshToken = (account: string): string => {
    const t = `rt-${crypto.randomUUID()}`;
    refreshTokens.set(t, account);
    return t;
  };

  const json = (status: number, body: unknown, headers: Record<string, string> = {}): Response =>
    new Response(JSON.stringify(body), {
      status,
      headers: { "content-type": "application/json", ...headers },
    });

  const unauthorized = (): Response =>
    json(401, { errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] }, {
      "www-authenticate": `Basic realm="airlock-test-token"`,
    });

  const checkPassword = (user: string, password: string): boolean =>
    Object.hasOwn(users, user) && users[user] === password;

  const handle = async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    if (url.pathname !== "/token") return json(404, { error: "not found" });
    const record: TokenRequestRecord = {
      method: req.method,
      grantType: "",
      account: "",
      scopes: [],
      status: 0,
    };
    requests.push(record);
    const done = (res: Response): Response => {
      record.status = res.status;
      return res;
    };

    if (req.method === "GET") {
      record.scopes = url.searchParams.getAll("scope");
      if (url.searchParams.get("service") !== service) {
        return done(json(400, { errors: [{ code: "INVALID_SERVICE", message: "unknown service" }] }));
      }
      const auth = req.headers.get("authorization");
      let account = "";
      if (auth?.toLowerCase().startsWith("basic ")) {
        const decoded = atob(auth.slice(6).trim());
        const colon = decoded.indexOf(":");
        const user = decoded.slice(0, colon);
        if (colon < 0 || !checkPassword(user, decoded.slice(colon + 1))) return done(unauthorized());
        account = user;
        record.grantType = "basic";
      } else {
        if (!opts.anonymous) return done(unauthorized());
        record.grantType = "anonymous";
      }
      record.account = account;
      const token = await makeToken(account, record.scopes);
      const body: Record<string, unknown> = {
        token,
        access_token: token,
        expires_in: expiresIn,
        issued_at: new Date().toISOString(),
      };
      if (account !== "" && url.searchParams.get("offline_token") === "true") {
        body.refresh_token = newRefreshToken(account);
      }
      return done(json(200, body));
    }

    if (req.method === "POST") {
      const form = new URLSearchParams(await req.text());
      record.grantType = form.get("grant_type") ?? "";
      record.scopes = form.getAll("scope");
      if (form.get("service") !== service) {
        return done(json(400, { error: "invalid_request", error_description: "unknown service" }));
      }
      let account: string;
      let refresh: string | undefined;
      if (record.grantType === "password") {
        const user = form.get("username") ?? "";
        if (!checkPassword(user, form.get("password") ?? "")) return done(unauthorized());
        account = user;
        if (issueRefresh) refresh = newRefreshToken(account);
      } else if (record.grantType === "refresh_token") {
        const known = refreshTokens.get(form.get("refresh_token") ?? "");
        if (known === undefined) {
          return done(json(400, { error: "invalid_grant", error_description: "unknown refresh token" }));
        }
        account = known;
        refresh = form.get("refresh_token") ?? undefined;
      } else {
        return done(json(400, { error: "unsupported_grant_type" }));
      }
      record.account = account;
      const token = await makeToken(account, record.scopes);
      const body: Record<string, unknown> = {
        access_token: token,
        token_type: "Bearer",
        expires_in: expiresIn,
        issued_at: new Date().toISOString(),
        scope: record.scopes.join(" "),
      };
      if (refresh !== undefined) body.refresh_token = refresh;
      return done(json(200, body));
    }
    return done(json(405, { error: "method not allowed" }));
  };

  const server = opts.tls
    ? Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      onListen() {},
      cert: opts.tls.certPem,
      key: opts.tls.keyPem,
    }, handle)
    : Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, handle);
  const url = `${opts.tls ? "https" : "http"}://127.0.0.1:${server.addr.port}`;
  const tokenClient = opts.tls?.caCertPem
    ? Deno.createHttpClient({ caCerts: [opts.tls.caCertPem] })
    : undefined;
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    stopped ??= (async () => {
      await server.shutdown();
      tokenClient?.close();
      await removeDir(dir);
    })();

  return {
    url,
    realm: `${url}/token`,
    service,
    issuer,
    certPath,
    keyId,
    get issued() {
      return issued;
    },
    requests,
    async getToken(scopes: string[], user?: string, password?: string): Promise<string> {
      const q = new URLSearchParams({ service });
      for (const sc of scopes) q.append("scope", sc);
      if (user !== undefined) q.set("account", user);
      const res = await fetch(`${url}/token?${q}`, {
        headers: user !== undefined ? { authorization: `Basic ${btoa(`${user}:${password ?? ""}`)}` } : {},
        client: tokenClient,
      });
      if (res.status !== 200) throw new Error(`token request: ${res.status} ${await res.text()}`);
      return ((await res.json()) as { token: string }).token;
    },
    addRefreshToken(token: string, account: string) {
      refreshTokens.set(token, account);
    },
    setGrants(g: TokenGrants | undefined) {
      grants = g;
    },
    resetCounts() {
      requests.length = 0;
      issued = 0;
    },
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
