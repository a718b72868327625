/**
 * A FAKE Google Cloud KMS with its own OAuth2 token endpoint and metadata server, written for the tests. One
 * server on 127.0.0.1 answers:
 * - `POST /token`: the JWT-bearer grant (RFC 7523) — the assertion's RS256 signature is checked against the
 *   service account's public key (by `iss` and `kid`), and `aud`, `iat`/`exp` and `scope` are checked — and the
 *   refresh-token grant of `authorized_user` files; errors as Google's (`invalid_grant`, `invalid_client`);
 * - `GET /computeMetadata/v1/instance/service-accounts/default/token` (requires `Metadata-Flavor: Google`);
 * - Cloud KMS REST v1: `GET …/cryptoKeyVersions/V/publicKey`, `POST …/cryptoKeyVersions/V:asymmetricSign`
 *   (digest or data, CRC32C checks and `verified…Crc32c`/`signatureCrc32c` answers), `GET …/cryptoKeyVersions`
 *   (with `filter=state=ENABLED` and paging), every call requiring an issued bearer token; errors as Google's
 *   `{"error": {"code", "message", "status"}}`.
 *
 * @example
 * ```ts
 * await using gcp = await startFakeGcpKms();
 * const sa = await gcp.makeServiceAccount(dir);
 * gcp.addVersion("projects/p/locations/global/keyRings/r/cryptoKeys/k", "ec-p256");
 * ```
 *
 * @module
 */
import { createHash, generateKeyPairSync, verify } from "node:crypto";
import { join } from "node:path";
import {
  b64,
  fakeCrc32c,
  type FakeKeyKind,
  type FakeServer,
  type FakeSigningKey,
  makeFakeKey,
  rawToDer,
  startFakeServer,
  unb64,
} from "./common.ts";

/** What a principal may do: `sign` = everything; `read` = no `asymmetricSign`. */
export type FakeGcpPolicy = "sign" | "read";

/** One key version held by the fake. */
export interface FakeGcpVersion {
  /** Full resource name `…/cryptoKeyVersions/N`. */
  name: string;
  /** The key. */
  key: FakeSigningKey;
  /** `ENABLED`, `DISABLED`, … */
  state: string;
  /** RFC 3339 creation time. */
  createTime: string;
  /** The Cloud KMS algorithm name. */
  algorithm: string;
}

/** Fault injection for integrity-check tests. */
export type FakeGcpFault = "none" | "bad-signature-crc" | "unverified-digest";

/** A running fake Cloud KMS. */
export interface FakeGcpKms extends FakeServer {
  /** Writes a service account key file (its `token_uri` is this fake); returns its path and email. */
  makeServiceAccount(
    dir: string,
    opts?: { policy?: FakeGcpPolicy; name?: string },
  ): Promise<{ path: string; email: string }>;
  /** Writes an `authorized_user` credentials file; returns its path. */
  makeAuthorizedUser(dir: string, opts?: { policy?: FakeGcpPolicy }): Promise<string>;
  /** Makes the metadata server issue tokens with this policy (default `sign`). */
  metadataPolicy: FakeGcpPolicy;
  /** Adds a version to a crypto key (created when new); returns it. */
  addVersion(
    cryptoKey: string,
    kind: FakeKeyKind,
    opts?: { state?: string; createTime?: string },
  ): FakeGcpVersion;
  /** All versions by crypto key name. */
  readonly versions: Map<string, FakeGcpVersion[]>;
  /** Tokens issued, by grant (`jwt-bearer`, `refresh_token`, `metadata`). */
  readonly issued: { grant: string; principal: string }[];
  /** Every KMS call answered: method, path, status. */
  readonly calls: { method: string; path: string; status: number }[];
  /** The fault to inject into `asymmetricSign` answers. */
  fault: FakeGcpFault;
}

const ALGORITHMS: Record<FakeKeyKind, string> = {
  "ec-p256": "EC_SIGN_P256_SHA256",
  "rsa-2048": "RSA_SIGN_PKCS1_2048_SHA256",
  ed25519: "EC_SIGN_ED25519",
};

/**
 * Starts a fake Cloud KMS (with token endpoint and metadata server) on 127.0.0.1.
 *
 * @example
 * ```ts
 * await using gcp = await startFakeGcpKms();
 * ```
 */
export async function startFakeGcpKms(): Promise<FakeGcpKms> {
  const versions = new Map<string, FakeGcpVersion[]>();
  const accounts = new Map<string, { publicPem: string; keyId: string; policy: FakeGcpPolicy }>();
  const users = new Map<string, { secret: string; refresh: string; policy: FakeGcpPolicy }>();
  const tokens = new Map<string, { principal: string; policy: FakeGcpPolicy; expires: number }>();
  const issued: { grant: string; principal: string }[] = [];
  const calls: { method: string; path: string; status: number }[] = [];
  let url = "";
  let seq = 0;

  const oauthError = (status: number, error: string, description: string) =>
    Response.json({ error, error_description: description }, { status });
  const apiError = (code: number, status: string, message: string) =>
    Response.json({ error: { code, message, status } }, { status: code });
  const issue = (grant: string, principal: string, policy: FakeGcpPolicy) => {
    const token = `ya29.fake-${crypto.randomUUID()}`;
    tokens.set(token, { principal, policy, expires: Date.now() + 3600_000 });
    issued.push({ grant, principal });
    return Response.json({ access_token: token, expires_in: 3599, token_type: "Bearer" });
  };

  const tokenEndpoint = async (req: Request): Promise<Response> => {
    const form = new URLSearchParams(await req.text());
    const grant = form.get("grant_type");
    if (grant === "urn:ietf:params:oauth:grant-type:jwt-bearer") {
      const parts = (form.get("assertion") ?? "").split(".");
      if (parts.length !== 3) {
        return oauthError(400, "invalid_grant", "Invalid JWT: Token must be a short-lived token");
      }
      let header: Record<string, unknown>, claims: Record<string, unknown>;
      try {
        header = JSON.parse(new TextDecoder().decode(unb64(parts[0])));
        claims = JSON.parse(new TextDecoder().decode(unb64(parts[1])));
      } catch {
        return oauthError(400, "invalid_grant", "Invalid JWT: malformed");
      }
      const account = accounts.get(String(claims.iss));
      if (!account) return oauthError(400, "invalid_grant", "Invalid grant: account not found");
      if (header.alg !== "RS256" || (header.kid !== undefined && header.kid !== account.keyId)) {
        return oauthError(400, "invalid_grant", "Invalid JWT Signature.");
      }
      const ok = verify(
        "sha256",
        new TextEncoder().encode(`${parts[0]}.${parts[1]}`),
        account.publicPem,
        unb64(parts[2]),
      );
      if (!ok) return oauthError(400, "invalid_grant", "Invalid JWT Signature.");
      const now = Date.now() / 1000;
      if (claims.aud !== `${url}/token`) return oauthError(400, "invalid_grant", "Invalid JWT: aud mismatch");
      if (
        typeof claims.iat !== "number" || typeof claims.exp !== "number" || claims.exp < now ||
        claims.iat > now + 300 || claims.exp - claims.iat > 3600
      ) {
        return oauthError(
          400,
          "invalid_grant",
          "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.",
        );
      }
      if (typeof claims.scope !== "string" || !/cloud-platform|cloudkms/.test(claims.scope)) {
        return oauthError(400, "invalid_scope", "Invalid OAuth scope or ID token audience provided.");
      }
      return issue("jwt-bearer", String(claims.iss), account.policy);
    }
    if (grant === "refresh_token") {
      const user = users.get(form.get("client_id") ?? "");
      if (!user || user.secret !== form.get("client_secret")) {
        return oauthError(401, "invalid_client", "The OAuth client was not found.");
      }
      if (user.refresh !== form.get("refresh_token")) return oauthError(400, "invalid_grant", "Bad Request");
      return issue("refresh_token", String(form.get("client_id")), user.policy);
    }
    return oauthError(400, "unsupported_grant_type", `Invalid grant_type: ${grant}`);
  };

  const kms = async (req: Request, path: string, policy: FakeGcpPolicy): Promise<Response> => {
    const u = new URL(req.url);
    const sign = /^(.*\/cryptoKeyVersions\/[^/:]+):asymmetricSign$/.exec(path);
    const pub = /^(.*\/cryptoKeyVersions\/[^/:]+)\/publicKey$/.exec(path);
    const list =
      /^(projects\/[^/]+\/locations\/[^/]+\/keyRings\/[^/]+\/cryptoKeys\/[^/]+)\/cryptoKeyVersions$/.exec(
        path,
      );
    const find = (name: string) =>
      versions.get(name.replace(/\/cryptoKeyVersions\/[^/]+$/, ""))?.find((v) => v.name === name);
    if (req.method === "GET" && list) {
      const all = versions.get(list[1]);
      if (!all) return apiError(404, "NOT_FOUND", `CryptoKey ${list[1]} not found.`);
      const filter = u.searchParams.get("filter");
      const wanted = filter ? /^state\s*=\s*(\w+)$/.exec(filter)?.[1] : undefined;
      const matching = all.filter((v) => wanted === undefined || v.state === wanted);
      const size = 2; // small pages, whatever pageSize asks: clients must follow nextPageToken
      const start = Number(u.searchParams.get("pageToken") ?? "0");
      const page = matching.slice(start, start + size);
      return Response.json({
        cryptoKeyVersions: page.map((v) => ({
          name: v.name,
          state: v.state,
          createTime: v.createTime,
          algorithm: v.algorithm,
        })),
        ...(start + size < matching.length ? { nextPageToken: String(start + size) } : {}),
        totalSize: matching.length,
      });
    }
    if (req.method === "GET" && pub) {
      const v = find(pub[1]);
      if (!v) return apiError(404, "NOT_FOUND", `CryptoKeyVersion ${pub[1]} not found.`);
      return Response.json({
        pem: v.key.publicPem,
        algorithm: v.algorithm,
        pemCrc32c: String(fakeCrc32c(new TextEncoder().encode(v.key.publicPem))),
        name: v.name,
        protectionLevel: "SOFTWARE",
      });
    }
    if (req.method === "POST" && sign) {
      const v = find(sign[1]);
      if (policy !== "sign") {
        return apiError(
          403,
          "PERMISSION_DENIED",
          `Permission 'cloudkms.cryptoKeyVersions.useToSign' denied on resource '${
            sign[1]
          }' (or it may not exist).`,
        );
      }
      if (!v) return apiError(404, "NOT_FOUND", `CryptoKeyVersion ${sign[1]} not found.`);
      if (v.state !== "ENABLED") {
        return apiError(
          400,
          "FAILED_PRECONDITION",
          `${v.name} is not enabled, current state is: ${v.state}.`,
        );
      }
      const body = await req.json() as Record<string, unknown>;
      let sig: Uint8Array;
      const out: Record<string, unknown> = { name: v.name, protectionLevel: "SOFTWARE" };
      if (v.key.kind === "ed25519") {
        const data = unb64(String(body.data ?? ""));
        if (body.dataCrc32c !== undefined && Number(body.dataCrc32c) !== fakeCrc32c(data)) {
          return apiError(
            400,
            "INVALID_ARGUMENT",
            "The checksum in field data_crc32c did not match the data in field data.",
          );
        }
        sig = v.key.signMessage(data);
        out.verifiedDataCrc32c = body.dataCrc32c !== undefined;
      } else {
        const digest = unb64(String((body.digest as Record<string, unknown> | undefined)?.sha256 ?? ""));
        if (digest.length !== 32) {
          return apiError(
            400,
            "INVALID_ARGUMENT",
            "Digest type does not match the algorithm, or the digest length is wrong.",
          );
        }
        if (body.digestCrc32c !== undefined && Number(body.digestCrc32c) !== fakeCrc32c(digest)) {
          return apiError(
            400,
            "INVALID_ARGUMENT",
            "The checksum in field digest_crc32c did not match the data in field digest.",
          );
        }
        const raw = v.key.signDigest(digest);
        sig = v.key.kind === "ec-p256" ? rawToDer(raw) : raw;
        out.verifiedDigestCrc32c = body.digestCrc32c !== undefined && fake.fault !== "unverified-digest";
      }
      out.signature = b64(sig);
      out.signatureCrc32c = String(fakeCrc32c(sig) + (fake.fault === "bad-signature-crc" ? 1 : 0));
      return Response.json(out);
    }
    return apiError(404, "NOT_FOUND", `unknown path ${path}`);
  };

  const server = await startFakeServer(async (req) => {
    const u = new URL(req.url);
    if (req.method === "POST" && u.pathname === "/token") return tokenEndpoint(req);
    if (u.pathname === "/computeMetadata/v1/instance/service-accounts/default/token") {
      if (req.headers.get("metadata-flavor") !== "Google") {
        return new Response("Missing Metadata-Flavor", { status: 403 });
      }
      return issue("metadata", "default@fake-project.iam.gserviceaccount.com", fake.metadataPolicy);
    }
    if (!u.pathname.startsWith("/v1/")) return apiError(404, "NOT_FOUND", "not found");
    const path = decodeURIComponent(u.pathname.slice(4));
    const auth = /^Bearer (.+)$/.exec(req.headers.get("authorization") ?? "");
    const tok = auth ? tokens.get(auth[1]) : undefined;
    let res: Response;
    if (!tok || tok.expires < Date.now()) {
      res = apiError(
        401,
        "UNAUTHENTICATED",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
      );
    } else res = await kms(req, path, tok.policy);
    calls.push({ method: req.method, path, status: res.status });
    return res;
  });
  url = server.url;

  const fake: FakeGcpKms = {
    ...server,
    versions,
    issued,
    calls,
    fault: "none",
    metadataPolicy: "sign",
    async makeServiceAccount(dir, opts = {}) {
      const name = opts.name ?? `signer-${++seq}`;
      const email = `${name}@fake-project.iam.gserviceaccount.com`;
      const pair = generateKeyPairSync("rsa", { modulusLength: 2048 });
      const keyId = createHash("sha1").update(email).digest("hex");
      accounts.set(email, {
        publicPem: pair.publicKey.export({ type: "spki", format: "pem" }).toString(),
        keyId,
        policy: opts.policy ?? "sign",
      });
      const path = join(dir, `${name}.json`);
      await Deno.writeTextFile(
        path,
        JSON.stringify(
          {
            type: "service_account",
            project_id: "fake-project",
            private_key_id: keyId,
            private_key: pair.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
            client_email: email,
            client_id: "1234567890",
            auth_uri: `${url}/auth`,
            token_uri: `${url}/token`,
          },
          null,
          2,
        ),
      );
      return { path, email };
    },
    async makeAuthorizedUser(dir, opts = {}) {
      const clientId = `client-${++seq}.apps.googleusercontent.com`;
      const secret = `GOCSPX-${crypto.randomUUID()}`;
      const refresh = `1//refresh-${crypto.randomUUID()}`;
      users.set(clientId, { secret, refresh, policy: opts.policy ?? "sign" });
      const path = join(dir, `adc-${seq}.json`);
      await Deno.writeTextFile(
        path,
        JSON.stringify({
          type: "authorized_user",
          client_id: clientId,
          client_secret: secret,
          refresh_token: refresh,
          token_uri: `${url}/token`,
        }),
      );
      return path;
    },
    addVersion(cryptoKey, kind, opts = {}) {
      const list = versions.get(cryptoKey) ?? [];
      versions.set(cryptoKey, list);
      const v: FakeGcpVersion = {
        name: `${cryptoKey}/cryptoKeyVersions/${list.length + 1}`,
        key: makeFakeKey(kind),
        state: opts.state ?? "ENABLED",
        createTime: opts.createTime ?? new Date(Date.now() + list.length * 1000).toISOString(),
        algorithm: ALGORITHMS[kind],
      };
      list.push(v);
      return v;
    },
  };
  return fake;
}
