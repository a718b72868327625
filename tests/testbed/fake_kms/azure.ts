/**
 * A FAKE Azure Key Vault with its own Microsoft Entra ID token endpoint, written for the tests. One server on
 * 127.0.0.1 answers:
 * - `POST /<tenant>/oauth2/v2.0/token`: the client-credentials grant — tenant, client id and client secret (or a
 *   workload-identity `client_assertion`) are checked, and the scope must be `https://vault.azure.net/.default`;
 *   errors as Entra ID's (`invalid_client` AADSTS7000215, `unauthorized_client` AADSTS700016, tenant not found);
 * - Key Vault REST `api-version=7.4`: `GET /keys/<name>[/<version>]` (a JWK), `POST /keys/<name>/<version>/sign`
 *   (`ES256`: raw `r‖s`, `RS256`), each requiring a bearer token it issued; errors as Key Vault's
 *   (`Unauthorized` with a `WWW-Authenticate` challenge, `Forbidden`, `KeyNotFound`, `BadParameter`).
 *
 * @example
 * ```ts
 * await using az = await startFakeAzureKeyVault({ tenant: "t", clients: { app: { secret: "s" } } });
 * az.addKey("release", "ec-p256");
 * ```
 *
 * @module
 */
import {
  b64,
  type FakeKeyKind,
  type FakeServer,
  type FakeSigningKey,
  makeFakeKey,
  startFakeServer,
  unb64,
} from "./common.ts";

/** An application registration the fake knows. */
export interface FakeAzureClient {
  /** Its client secret. */
  secret?: string;
  /** A federated (workload identity) token it accepts as `client_assertion`. */
  federatedToken?: string;
  /** Key permissions: `sign` (get + sign, default) or `get`. */
  policy?: "sign" | "get";
}

/** Options of {@linkcode startFakeAzureKeyVault}. */
export interface FakeAzureOptions {
  /** The tenant id. */
  tenant: string;
  /** Client id → registration. */
  clients: Record<string, FakeAzureClient>;
  /** The scope tokens must be asked for (default `https://vault.azure.net/.default`). */
  scope?: string;
}

/** A running fake Key Vault. */
export interface FakeAzureKeyVault extends FakeServer {
  /** Creates a key or adds a version to it; returns the version id and key. */
  addKey(name: string, kind: FakeKeyKind): { version: string; key: FakeSigningKey };
  /** Versions by key name, oldest first. */
  readonly keys: Map<string, { version: string; key: FakeSigningKey }[]>;
  /** Tokens issued (client ids). */
  readonly issued: string[];
  /** Every vault call answered. */
  readonly calls: { method: string; path: string; status: number; body?: Record<string, unknown> }[];
}

function b64url(bytes: Uint8Array): string {
  return b64(bytes).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/**
 * Starts a fake Azure Key Vault + token endpoint on 127.0.0.1.
 *
 * @example
 * ```ts
 * await using az = await startFakeAzureKeyVault({ tenant: "t", clients: { app: { secret: "s" } } });
 * ```
 */
export async function startFakeAzureKeyVault(options: FakeAzureOptions): Promise<FakeAzureKeyVault> {
  const scope = options.scope ?? "https://vault.azure.net/.default";
  const keys = new Map<string, { version: string; key: FakeSigningKey }[]>();
  const tokens = new Map<string, { client: string; policy: "sign" | "get"; expires: number }>();
  const issued: string[] = [];
  const calls: FakeAzureKeyVault["calls"] = [];
  let base = "";

  const aadError = (status: number, error: string, description: string) =>
    Response.json({
      error,
      error_description: description,
      error_codes: [Number(/AADSTS(\d+)/.exec(description)?.[1] ?? 0)],
    }, {
      status,
    });
  const kvError = (status: number, code: string, message: string, headers: Record<string, string> = {}) =>
    Response.json({ error: { code, message } }, { status, headers });

  const token = async (req: Request, tenant: string): Promise<Response> => {
    if (tenant !== options.tenant) {
      return aadError(
        400,
        "invalid_request",
        `AADSTS90002: Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID.`,
      );
    }
    const form = new URLSearchParams(await req.text());
    if (form.get("grant_type") !== "client_credentials") {
      return aadError(400, "unsupported_grant_type", "AADSTS70003: unsupported grant");
    }
    const id = form.get("client_id") ?? "";
    const client = options.clients[id];
    if (!client) {
      return aadError(
        400,
        "unauthorized_client",
        `AADSTS700016: Application with identifier '${id}' was not found in the directory.`,
      );
    }
    const secret = form.get("client_secret");
    const assertion = form.get("client_assertion");
    const ok = secret !== null
      ? client.secret !== undefined && secret === client.secret
      : assertion !== null &&
        form.get("client_assertion_type") === "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" &&
        assertion === client.federatedToken;
    if (!ok) {
      return aadError(
        401,
        "invalid_client",
        `AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${id}'.`,
      );
    }
    if (form.get("scope") !== scope) {
      return aadError(
        400,
        "invalid_scope",
        `AADSTS70011: The provided value for the input parameter 'scope' is not valid.`,
      );
    }
    const t = `eyJ0eXAiOiJKV1QifQ.fake-${crypto.randomUUID()}`;
    tokens.set(t, { client: id, policy: client.policy ?? "sign", expires: Date.now() + 3600_000 });
    issued.push(id);
    return Response.json({ token_type: "Bearer", expires_in: 3599, ext_expires_in: 3599, access_token: t });
  };

  const jwkOf = (name: string, version: string, key: FakeSigningKey) => ({
    kid: `${base}/keys/${name}/${version}`,
    ...(key.kind === "ec-p256"
      ? { kty: "EC", crv: "P-256", x: key.jwk.x, y: key.jwk.y }
      : { kty: "RSA", n: key.jwk.n, e: key.jwk.e }),
    key_ops: ["sign", "verify"],
  });

  const vault = async (
    req: Request,
    path: string,
    policy: "sign" | "get",
    client: string,
  ): Promise<Response> => {
    const parts = path.split("/").filter((p) => p !== "");
    if (parts[0] !== "keys" || parts.length < 2) return kvError(404, "NotFound", "unknown path");
    const name = parts[1];
    const versions = keys.get(name);
    const notFound = () =>
      kvError(
        404,
        "KeyNotFound",
        `A key with (name/id) ${name} was not found in this key vault. If you recently deleted this key you may be able to recover it using the correct recovery command.`,
      );
    if (req.method === "GET" && parts.length <= 3) {
      if (!versions) return notFound();
      const v = parts[2] ? versions.find((x) => x.version === parts[2]) : versions[versions.length - 1];
      if (!v) return notFound();
      return Response.json({
        key: jwkOf(name, v.version, v.key),
        attributes: {
          enabled: true,
          created: 1700000000,
          updated: 1700000000,
          recoveryLevel: "Recoverable+Purgeable",
        },
      });
    }
    if (req.method === "POST" && parts.length === 4 && parts[3] === "sign") {
      if (policy !== "sign") {
        return kvError(
          403,
          "Forbidden",
          `The user, group or application 'appid=${client}' does not have keys sign permission on key vault 'fake-vault'.`,
        );
      }
      const v = versions?.find((x) => x.version === parts[2]);
      if (!v) return notFound();
      const body = await req.json() as Record<string, unknown>;
      const digest = unb64(String(body.value ?? ""));
      const alg = String(body.alg ?? "");
      if ((v.key.kind === "ec-p256" && alg !== "ES256") || (v.key.kind === "rsa-2048" && alg !== "RS256")) {
        return kvError(400, "BadParameter", `Invalid algorithm ${alg} for this key.`);
      }
      if (digest.length !== 32) return kvError(400, "BadParameter", "Invalid digest length");
      return Response.json({
        kid: `${base}/keys/${name}/${v.version}`,
        value: b64url(v.key.signDigest(digest)),
      });
    }
    return kvError(405, "MethodNotAllowed", "unsupported");
  };

  const server = await startFakeServer(async (req) => {
    const u = new URL(req.url);
    const t = /^\/([^/]+)\/oauth2\/v2\.0\/token$/.exec(u.pathname);
    if (req.method === "POST" && t) return token(req, t[1]);
    let res: Response;
    const auth = /^Bearer (.+)$/.exec(req.headers.get("authorization") ?? "");
    const tok = auth ? tokens.get(auth[1]) : undefined;
    if (u.searchParams.get("api-version") !== "7.4") {
      res = kvError(400, "BadParameter", "The api-version query parameter is missing or not supported.");
    } else if (!tok || tok.expires < Date.now()) {
      res = kvError(
        401,
        "Unauthorized",
        auth ? "AKV10032: Invalid issuer." : "AKV10000: Request is missing a Bearer or PoP token.",
        {
          "www-authenticate":
            `Bearer authorization="${base}/${options.tenant}", resource="https://vault.azure.net"`,
        },
      );
    } else res = await vault(req, u.pathname, tok.policy, tok.client);
    calls.push({ method: req.method, path: u.pathname, status: res.status });
    return res;
  });
  base = server.url;

  return {
    ...server,
    keys,
    issued,
    calls,
    addKey(name, kind) {
      if (kind === "ed25519") throw new Error("Key Vault has no Ed25519 keys");
      const list = keys.get(name) ?? [];
      keys.set(name, list);
      const entry = {
        version: crypto.randomUUID().replaceAll("-", ""),
        key: makeFakeKey(list[0]?.key.kind ?? kind),
      };
      list.push(entry);
      return entry;
    },
  };
}
