/**
 * The HashiCorp Vault / OpenBao backend: `hashivault://KEY` and `openbao://KEY` sign with a key of the transit
 * secrets engine that never leaves Vault (spec/cosign.md §4.3; sigstore `pkg/signature/kms/hashivault`).
 *
 * Configuration (environment; `openbao://` reads the `BAO_*` name first, `hashivault://` the `VAULT_*` one):
 * | variable | meaning |
 * |---|---|
 * | `VAULT_ADDR` / `BAO_ADDR` | the server, e.g. `https://vault.example:8200` (required) |
 * | `VAULT_TOKEN` / `BAO_TOKEN` | the token; else the token helper file `~/.vault-token` |
 * | `TRANSIT_SECRET_ENGINE_PATH` | the transit mount, default `transit` |
 * | `VAULT_NAMESPACE` / `BAO_NAMESPACE` | sent as `X-Vault-Namespace` (Vault Enterprise, OpenBao namespaces) |
 * | `VAULT_CACERT`, `VAULT_CAPATH` | a CA file, a directory of CA files, trusted besides the system roots |
 * | `VAULT_CLIENT_CERT`, `VAULT_CLIENT_KEY` | a client certificate for mutual TLS |
 * | `VAULT_SKIP_VERIFY` | `1`/`true`: do not check the server's certificate (insecure) |
 *
 * Opening reads the key (`GET /v1/<transit>/keys/<key>`): its type and the latest version's public key. Signing
 * pins that version and posts the SHA-256 of the message to `POST /v1/<transit>/sign/<key>/sha2-256` with
 * `prehashed: true` (ECDSA: `marshaling_algorithm: asn1`, DER; RSA: `signature_algorithm: pkcs1v15` — Vault's
 * default for RSA is PSS, which cosign's verifiers do not accept). Ed25519 keys sign the message itself. The
 * `vault:vN:` prefix is removed, and every signature is checked against the public key before it is returned.
 *
 * Errors: `CONFIG_INVALID` (no address), `KEY_AUTH_FAILED` (no token, or Vault rejects it: a 403 on the key
 * and on `auth/token/lookup-self`), `KEY_ACCESS_DENIED` (the token is valid, its policies deny the path),
 * `KEY_NOT_FOUND`, `KEY_UNSUPPORTED` (key type), `KEY_SERVICE_UNREACHABLE`, `TLS_ERROR`, `KEY_BACKEND`. The token
 * never appears in a message.
 *
 * @example
 * ```ts
 * const key = await openVaultKey("hashivault://release", { env: (n) => ({ VAULT_ADDR: "https://vault:8200", VAULT_TOKEN: t })[n] });
 * const sig = await key.sign(payload);
 * await key.close();
 * ```
 *
 * @module
 */
import { AirlockError } from "../core/errors.ts";
import { base64Decode, base64Encode } from "../core/encoding/base64.ts";
import { DER, derEncode, derOid } from "../core/encoding/der.ts";
import { OID, parsePublicKeyPem, type PublicKey, publicKeyFromSpki } from "../core/signature/public_key.ts";
import type { KeyBackend } from "./key_types.ts";
import { kmsErrorCode } from "./kms_errors.ts";
import {
  endpointUrl,
  envFlag,
  type EnvLookup,
  envLookup,
  excerpt,
  firstEnv,
  KmsHttpClient,
  type KmsResponse,
  readOptionalFile,
  scrub,
} from "./kms_http.ts";
import { kmsKey, type KmsKeyOptions, sha256 } from "./kms_key.ts";

/** Options of {@linkcode openVaultKey} (the environment lookup, the time limit of one request). */
export type VaultKeyOptions = KmsKeyOptions;

/** A parsed `hashivault://` / `openbao://` reference. */
export interface VaultRef {
  /** `hashivault` or `openbao`. */
  readonly scheme: "hashivault" | "openbao";
  /** The transit key name. */
  readonly key: string;
}

/**
 * Parses `hashivault://KEY` or `openbao://KEY` (a transit key name: letters, digits, `_`, `-`, `.`). Throws
 * `INVALID_ARGUMENT`.
 */
export function parseVaultRef(ref: string): VaultRef {
  const m = /^(hashivault|openbao):\/\/(\w(?:[\w.-]*\w)?)$/.exec(ref);
  if (!m) {
    throw new AirlockError(
      "INVALID_ARGUMENT",
      `invalid Vault key reference "${ref}": expected hashivault://KEY or openbao://KEY (a transit key name)`,
    );
  }
  return { scheme: m[1] as VaultRef["scheme"], key: m[2] };
}

/** The transit key types airlock signs with. */
type VaultKeyType = "ecdsa" | "rsa" | "ed25519";

function keyTypeOf(type: string): VaultKeyType | undefined {
  if (/^ecdsa-p(256|384|521)$/.test(type)) return "ecdsa";
  if (/^rsa-(2048|3072|4096)$/.test(type)) return "rsa";
  if (type === "ed25519") return "ed25519";
  return undefined;
}

/** The settings read from the environment, in the scheme's order. */
interface VaultConfig {
  addr: URL;
  token: string;
  transit: string;
  namespace?: string;
}

/** The variables named `BAO_<suffix>` and `VAULT_<suffix>`, the scheme's own first. */
function envNames(ref: VaultRef, suffix: string): string[] {
  return ref.scheme === "openbao"
    ? [`BAO_${suffix}`, `VAULT_${suffix}`]
    : [`VAULT_${suffix}`, `BAO_${suffix}`];
}

async function vaultConfig(ref: VaultRef, env: EnvLookup): Promise<VaultConfig> {
  const names = (suffix: string) => envNames(ref, suffix);
  const addrText = firstEnv(env, ...names("ADDR"));
  if (!addrText) {
    throw new AirlockError(
      "CONFIG_INVALID",
      `${ref.scheme}://${ref.key}: ${names("ADDR")[0]} is not set (the address of the Vault server)`,
    );
  }
  const addr = endpointUrl(addrText, names("ADDR")[0], { allowHttp: true });
  let token = firstEnv(env, ...names("TOKEN"));
  if (!token) {
    const home = env("HOME");
    if (home) token = (await readOptionalFile(`${home}/.vault-token`, "the Vault token file"))?.trim();
  }
  if (!token) {
    throw new AirlockError(
      "KEY_AUTH_FAILED",
      `${ref.scheme}://${ref.key}: no Vault token: set ${names("TOKEN")[0]} or log in (~/.vault-token)`,
    );
  }
  const transit = (firstEnv(env, "TRANSIT_SECRET_ENGINE_PATH") ?? "transit").replace(/^\/+|\/+$/g, "");
  return { addr, token, transit, namespace: firstEnv(env, ...names("NAMESPACE")) };
}

/** The Ed25519 SPKI of a raw 32-byte public key (Vault answers Ed25519 public keys as base64 raw bytes). */
function ed25519Spki(raw: Uint8Array): Uint8Array {
  return derEncode(
    DER.SEQUENCE,
    derEncode(DER.SEQUENCE, derOid(OID.ED25519)),
    derEncode(DER.BIT_STRING, new Uint8Array([0]), raw),
  );
}

/**
 * Asks Vault to sign `message` with version `version` of the transit key: its SHA-256 (`prehashed`, DER for ECDSA,
 * PKCS#1 v1.5 for RSA), or the message itself for Ed25519. The `vault:vN:` prefix is removed.
 */
async function vaultSign(
  http: KmsHttpClient,
  config: VaultConfig,
  ref: VaultRef,
  type: VaultKeyType,
  version: number,
  message: Uint8Array,
): Promise<Uint8Array> {
  let path: string;
  const body: Record<string, unknown> = { key_version: version };
  if (type === "ed25519") {
    path = `sign/${ref.key}`;
    body.input = base64Encode(message);
  } else {
    path = `sign/${ref.key}/sha2-256`;
    body.input = base64Encode(sha256(message));
    body.prehashed = true;
    if (type === "ecdsa") body.marshaling_algorithm = "asn1";
    else body.signature_algorithm = "pkcs1v15";
  }
  const res = await vaultRequest(http, config, "POST", path, body);
  if (res.status !== 200) throw await vaultError(http, config, ref, res, "sign with");
  const text = (res.json as { data?: { signature?: unknown } } | undefined)?.data?.signature;
  const m = typeof text === "string" ? /^vault:v\d+:(.*)$/.exec(text) : null;
  const sig = m ? base64Decode(m[1]) : undefined;
  if (!sig) {
    throw new AirlockError(
      "KEY_BACKEND",
      `${ref.scheme}://${ref.key}: Vault answered no "vault:vN:<base64>" signature`,
    );
  }
  return sig;
}

function vaultRequest(
  http: KmsHttpClient,
  config: VaultConfig,
  method: string,
  path: string,
  body?: unknown,
): Promise<KmsResponse> {
  const headers: Record<string, string> = { "X-Vault-Token": config.token, "X-Vault-Request": "true" };
  if (config.namespace) headers["X-Vault-Namespace"] = config.namespace;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const base = config.addr.href.replace(/\/+$/, "");
  const full = path.startsWith("auth/") ? path : `${config.transit}/${path}`;
  return http.send(method, new URL(`${base}/v1/${full}`), {
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** Vault's `{"errors": [...]}`, joined. */
function vaultErrors(res: KmsResponse): string {
  const errors = (res.json as { errors?: unknown } | undefined)?.errors;
  if (Array.isArray(errors)) return errors.map(String).join("; ");
  return excerpt(res.text);
}

/**
 * The error for a failed Vault answer. A 403 is Vault's answer both for a bad token and for a policy that
 * denies the path; `auth/token/lookup-self` (allowed by Vault's default policy) tells them apart.
 */
async function vaultError(
  http: KmsHttpClient,
  config: VaultConfig,
  ref: VaultRef,
  res: KmsResponse,
  action: string,
): Promise<AirlockError> {
  const what = `${ref.scheme}://${ref.key}`;
  const where = `${config.addr.origin}/v1/${config.transit}`;
  const detail = scrub(vaultErrors(res), [config.token]);
  const code = kmsErrorCode(res.status, { notFound: res.status === 400 && /key not found/i.test(detail) });
  if (code === "KEY_AUTH_FAILED" || code === "KEY_ACCESS_DENIED") {
    let tokenValid = false;
    try {
      tokenValid = (await vaultRequest(http, config, "GET", "auth/token/lookup-self")).status === 200;
    } catch {
      // unknown: report as an authentication failure
    }
    if (!tokenValid) {
      return new AirlockError(
        "KEY_AUTH_FAILED",
        `${what}: Vault at ${config.addr.origin} rejected the token (invalid or expired)${
          detail ? `: ${detail}` : ""
        }`,
      );
    }
    return new AirlockError(
      "KEY_ACCESS_DENIED",
      `${what}: the token's policies do not allow it to ${action} transit key "${ref.key}" at ${where}${
        detail ? `: ${detail}` : ""
      }`,
    );
  }
  if (code === "KEY_NOT_FOUND") {
    return new AirlockError(
      "KEY_NOT_FOUND",
      `${what}: transit key "${ref.key}" not found at ${where}${detail ? ` (${detail})` : ""}`,
    );
  }
  return new AirlockError(
    "KEY_BACKEND",
    `${what}: Vault failed to ${action} the key (HTTP ${res.status})${detail ? `: ${detail}` : ""}`,
  );
}

/**
 * Opens a `hashivault://KEY` or `openbao://KEY` reference: reads the configuration and the key's latest public
 * key, so a missing token, a wrong address or a missing key fails here, before any image is touched.
 *
 * @example
 * ```ts
 * const key = await openVaultKey("openbao://release");
 * console.log(await key.publicKey());
 * ```
 */
export async function openVaultKey(ref: string, options: VaultKeyOptions = {}): Promise<KeyBackend> {
  const parsed = parseVaultRef(ref);
  const env = envLookup(options);
  const config = await vaultConfig(parsed, env);
  const pick = (suffix: string) => firstEnv(env, ...envNames(parsed, suffix));
  const caFile = pick("CACERT");
  const caDir = pick("CAPATH");
  const clientCert = pick("CLIENT_CERT");
  const clientKey = pick("CLIENT_KEY");
  const http = await KmsHttpClient.create({
    service: "Vault",
    caCertFiles: caFile ? [caFile] : [],
    caCertDirs: caDir ? [caDir] : [],
    clientCert: clientCert && clientKey ? { certFile: clientCert, keyFile: clientKey } : undefined,
    insecureSkipVerify: envFlag(pick("SKIP_VERIFY")),
    timeoutMs: options.timeoutMs,
    caHint: parsed.scheme === "openbao" ? "BAO_CACERT" : "VAULT_CACERT",
  });
  try {
    const res = await vaultRequest(http, config, "GET", `keys/${parsed.key}`);
    if (res.status !== 200) throw await vaultError(http, config, parsed, res, "read");
    const data = (res.json as { data?: Record<string, unknown> } | undefined)?.data ?? {};
    const typeName = String(data.type ?? "");
    const type = keyTypeOf(typeName);
    if (!type || data.supports_signing === false) {
      throw new AirlockError(
        "KEY_UNSUPPORTED",
        `${ref}: transit key type "${typeName}" cannot sign (ecdsa-p256/p384/p521, rsa-2048/3072/4096, ed25519 can)`,
      );
    }
    const version = Number(data.latest_version);
    const entry = (data.keys as Record<string, { public_key?: unknown }> | undefined)?.[String(version)];
    const pub = typeof entry?.public_key === "string" ? entry.public_key : "";
    if (!Number.isInteger(version) || version < 1 || !pub) {
      throw new AirlockError("KEY_BACKEND", `${ref}: Vault answered no public key for the latest version`);
    }
    let key: PublicKey;
    if (type === "ed25519") {
      const raw = base64Decode(pub);
      if (!raw || raw.length !== 32) {
        throw new AirlockError(
          "KEY_BACKEND",
          `${ref}: Vault answered no Ed25519 public key for version ${version}`,
        );
      }
      key = publicKeyFromSpki(ed25519Spki(raw));
    } else {
      key = parsePublicKeyPem(pub);
    }
    return kmsKey({
      name: `${parsed.scheme}://${parsed.key}`,
      key,
      sign: (message) => vaultSign(http, config, parsed, type, version, message),
      mismatch: `Vault returned a signature that does not verify with the key's version ${version}`,
      close: () => http.close(),
    });
  } catch (e) {
    http.close();
    throw e;
  }
}
