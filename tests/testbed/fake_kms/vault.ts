/**
 * A FAKE HashiCorp Vault (transit secrets engine only), written for the tests: the real HTTP API shapes of
 * `GET /v1/<mount>/keys/<name>`, `POST /v1/<mount>/sign/<name>[/<hash>]` and `GET /v1/auth/token/lookup-self`,
 * checking `X-Vault-Token` (and `X-Vault-Namespace` when configured) on every request, and signing with real
 * keys. Like Vault, it answers `403 {"errors":["permission denied"]}` both for an unknown token and for a token
 * whose policy does not allow the path; RSA keys sign with PSS unless `signature_algorithm: pkcs1v15` is asked
 * for (the fake refuses PSS rather than implementing it).
 *
 * @example
 * ```ts
 * await using vault = await startFakeVault({ tokens: { "s.good": "sign" } });
 * vault.addKey("release", "ec-p256");
 * ```
 *
 * @module
 */
import { createHash } from "node:crypto";
import {
  b64,
  type FakeKeyKind,
  type FakeServer,
  type FakeSigningKey,
  type FakeTls,
  makeFakeKey,
  rawToDer,
  startFakeServer,
  unb64,
} from "./common.ts";

/** What a token may do: `sign` = read keys and sign; `read` = read keys only; `none` = nothing but lookup-self. */
export type FakeVaultPolicy = "sign" | "read" | "none";

/** Options of {@linkcode startFakeVault}. */
export interface FakeVaultOptions {
  /** Valid tokens and their policies. */
  tokens: Record<string, FakeVaultPolicy>;
  /** The transit mount path (default `transit`). */
  mount?: string;
  /** When set, every request must carry this `X-Vault-Namespace`. */
  namespace?: string;
  /** Serve https with this certificate. */
  tls?: FakeTls;
}

/** One request the fake answered. */
export interface FakeVaultRequest {
  method: string;
  path: string;
  status: number;
  body?: Record<string, unknown>;
}

/** A running fake Vault. */
export interface FakeVault extends FakeServer {
  /** Creates (or replaces) a transit key with one version. */
  addKey(name: string, kind: FakeKeyKind): FakeSigningKey;
  /** Adds a new version to a key; returns it. */
  rotate(name: string): FakeSigningKey;
  /** The key versions by name (index 0 = version 1). */
  readonly keys: Map<string, FakeSigningKey[]>;
  /** Every request answered, in order. */
  readonly requests: FakeVaultRequest[];
}

const VAULT_TYPES: Record<FakeKeyKind, string> = {
  "ec-p256": "ecdsa-p256",
  "rsa-2048": "rsa-2048",
  ed25519: "ed25519",
};

/**
 * Starts a fake Vault on 127.0.0.1.
 *
 * @example
 * ```ts
 * await using vault = await startFakeVault({ tokens: { t: "sign" } });
 * ```
 */
export async function startFakeVault(options: FakeVaultOptions): Promise<FakeVault> {
  const mount = options.mount ?? "transit";
  const keys = new Map<string, FakeSigningKey[]>();
  const requests: FakeVaultRequest[] = [];
  const errors = (status: number, ...errs: string[]) => Response.json({ errors: errs }, { status });

  const handle = async (req: Request, record: FakeVaultRequest): Promise<Response> => {
    const url = new URL(req.url);
    if (options.namespace !== undefined && req.headers.get("x-vault-namespace") !== options.namespace) {
      return errors(403, "permission denied");
    }
    const policy = options.tokens[req.headers.get("x-vault-token") ?? ""];
    if (policy === undefined) return errors(403, "permission denied");
    if (req.method === "GET" && url.pathname === "/v1/auth/token/lookup-self") {
      return Response.json({ data: { policies: [policy], ttl: 3600 } });
    }
    const prefix = `/v1/${mount}/`;
    if (!url.pathname.startsWith(prefix)) {
      return errors(404, `no handler for route "${url.pathname.slice(4)}"`);
    }
    const [op, name, hashInPath, ...rest] = url.pathname.slice(prefix.length).split("/");
    if (rest.length) return errors(404, "unsupported path");
    if (req.method === "GET" && op === "keys" && name && !hashInPath) {
      if (policy === "none") return errors(403, "permission denied");
      const versions = keys.get(name);
      if (!versions) return errors(404);
      const kind = versions[0].kind;
      const keyEntries: Record<string, unknown> = {};
      versions.forEach((k, i) => {
        keyEntries[String(i + 1)] = {
          creation_time: new Date().toISOString(),
          name: kind === "ec-p256" ? "P-256" : kind === "ed25519" ? "ed25519" : "rsa-2048",
          public_key: kind === "ed25519" ? b64(k.spki.slice(-32)) : k.publicPem,
        };
      });
      return Response.json({
        data: {
          name,
          type: VAULT_TYPES[kind],
          latest_version: versions.length,
          min_decryption_version: 1,
          supports_signing: true,
          keys: keyEntries,
        },
      });
    }
    if (req.method === "POST" && op === "sign" && name) {
      if (policy !== "sign") return errors(403, "permission denied");
      const body = await req.json() as Record<string, unknown>;
      record.body = body;
      const versions = keys.get(name);
      if (!versions) return errors(400, "encryption key not found");
      const hash = hashInPath ?? String(body.hash_algorithm ?? "sha2-256");
      if (hash !== "sha2-256") return errors(400, `fake Vault: unsupported hash algorithm ${hash}`);
      const version = body.key_version === undefined ? versions.length : Number(body.key_version);
      const key = versions[version - 1];
      if (!key) return errors(400, "requested version for signing does not exist");
      const input = unb64(String(body.input ?? ""));
      let sig: Uint8Array;
      if (key.kind === "ed25519") {
        if (body.prehashed === true) {
          return errors(400, "unsupported hash algorithm with ed25519 and prehashed");
        }
        sig = key.signMessage(input);
      } else {
        const digest = body.prehashed === true
          ? input
          : new Uint8Array(createHash("sha256").update(input).digest());
        if (digest.length !== 32) return errors(400, "prehashed input has the wrong length");
        if (key.kind === "ec-p256") {
          const raw = key.signDigest(digest);
          sig = (body.marshaling_algorithm ?? "asn1") === "asn1" ? rawToDer(raw) : raw;
        } else {
          if (body.signature_algorithm !== "pkcs1v15") {
            return errors(400, "fake Vault: PSS signatures are not implemented; ask for pkcs1v15");
          }
          sig = key.signDigest(digest);
        }
      }
      return Response.json({ data: { signature: `vault:v${version}:${b64(sig)}`, key_version: version } });
    }
    return errors(405, "unsupported operation");
  };

  const server = await startFakeServer(async (req) => {
    const record: FakeVaultRequest = { method: req.method, path: new URL(req.url).pathname, status: 0 };
    const res = await handle(req, record);
    record.status = res.status;
    requests.push(record);
    return res;
  }, options.tls);

  return {
    ...server,
    keys,
    requests,
    addKey(name, kind) {
      const k = makeFakeKey(kind);
      keys.set(name, [k]);
      return k;
    },
    rotate(name) {
      const versions = keys.get(name);
      if (!versions) throw new Error(`no key ${name}`);
      const k = makeFakeKey(versions[0].kind);
      versions.push(k);
      return k;
    },
  };
}
