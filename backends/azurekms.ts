/**
 * The Azure Key Vault backend: `azurekms://VAULT.vault.azure.net/KEY[/VERSION]` signs with a Key Vault (or
 * Managed HSM) key (spec/cosign.md §4.3; sigstore `pkg/signature/kms/azure`). Without a version the current
 * version is read once, when the key is opened, and pinned for the run.
 *
 * Protocol: Key Vault REST, `api-version=7.4`. `GET /keys/KEY[/VERSION]` returns the key as a JWK (converted to
 * SPKI); `POST /keys/KEY/VERSION/sign` with `{"alg": "ES256" | "RS256", "value": base64url(SHA-256 digest)}`
 * returns the signature — raw `r‖s` for ECDSA, converted to ASN.1 DER as cosign stores it. EC P-256 and RSA keys
 * (software or HSM) are supported. Each signature is checked against the public key before it is returned.
 *
 * Credentials (Microsoft Entra ID, OAuth2 client-credentials grant, as `DefaultAzureCredential`'s environment
 * and workload identity parts): `AZURE_TENANT_ID`, `AZURE_CLIENT_ID` and `AZURE_CLIENT_SECRET`, or
 * `AZURE_FEDERATED_TOKEN_FILE` (workload identity: the file's token is the client assertion);
 * `AZURE_AUTHORITY_HOST` (default `https://login.microsoftonline.com`) for other clouds. The scope is derived from
 * the vault's host (`https://vault.azure.net/.default` for `*.vault.azure.net`, `…vault.azure.cn`, Managed HSM's
 * `managedhsm.azure.net`). Tokens are cached until shortly before they expire and fetched again after a 401.
 *
 * Endpoint: `AIRLOCK_AZUREKMS_ENDPOINT` (a base URL; plain http only to localhost) replaces `https://VAULT` for
 * private endpoints and test fakes; the vault name in the reference still picks the scope. Extra CAs: Deno's
 * `DENO_CERT`.
 *
 * Not supported (yet): managed identity (IMDS), client certificates, the Azure CLI's login.
 *
 * Errors: `INVALID_ARGUMENT` (URI), `KEY_AUTH_FAILED` (no credentials, a refused secret, a 401),
 * `KEY_ACCESS_DENIED` (403), `KEY_NOT_FOUND` (`KeyNotFound`), `KEY_UNSUPPORTED` (key type or curve),
 * `KEY_SERVICE_UNREACHABLE`, `TLS_ERROR`, `KEY_BACKEND`. The client secret and tokens never appear in a message.
 *
 * @example
 * ```ts
 * const key = await openAzureKmsKey("azurekms://myvault.vault.azure.net/release");
 * const sig = await key.sign(payload);
 * await key.close();
 * ```
 *
 * @module
 */
import { AirlockError } from "../core/errors.ts";
import { ecdsaRawToDer, type PublicKey, publicKeyFromSpki } from "../core/signature/public_key.ts";
import type { KeyBackend } from "./key_types.ts";
import { kmsErrorCode } from "./kms_errors.ts";
import {
  base64UrlDecode,
  base64UrlEncode,
  endpointUrl,
  type EnvLookup,
  envLookup,
  excerpt,
  firstEnv,
  jsonObject,
  KmsHttpClient,
  type KmsResponse,
  readRequiredFile,
  requestToken,
  scrub,
  sendWithToken,
  TokenCache,
} from "./kms_http.ts";
import { kmsKey, type KmsKeyOptions, sha256 } from "./kms_key.ts";

/** Options of {@linkcode openAzureKmsKey} (the environment lookup, the time limit of one request). */
export type AzureKmsKeyOptions = KmsKeyOptions;

/** A parsed `azurekms://` reference. */
export interface AzureKmsRef {
  /** The vault host, e.g. `myvault.vault.azure.net`. */
  readonly vault: string;
  /** The key name. */
  readonly key: string;
  /** The key version, when given. */
  readonly version?: string;
}

/** The Key Vault REST API version airlock speaks. */
export const AZURE_KEYVAULT_API_VERSION = "7.4";

/**
 * Parses `azurekms://VAULT_HOST/KEY[/VERSION]`. Throws `INVALID_ARGUMENT`.
 *
 * @example
 * ```ts
 * parseAzureKmsRef("azurekms://v.vault.azure.net/release/0123abcd");
 * // { vault: "v.vault.azure.net", key: "release", version: "0123abcd" }
 * ```
 */
export function parseAzureKmsRef(ref: string): AzureKmsRef {
  const m =
    /^azurekms:\/\/([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+(?::\d+)?)\/([A-Za-z0-9-]{1,127})(?:\/([A-Za-z0-9]+))?$/
      .exec(ref);
  if (!m) {
    throw new AirlockError(
      "INVALID_ARGUMENT",
      `invalid Azure Key Vault key reference "${ref}": expected azurekms://VAULT.vault.azure.net/KEY[/VERSION]`,
    );
  }
  return { vault: m[1], key: m[2], ...(m[3] ? { version: m[3] } : {}) };
}

/**
 * The OAuth2 scope for a vault host: its DNS suffix after the vault name.
 */
export function azureScope(vaultHost: string): string {
  const host = vaultHost.replace(/:\d+$/, "");
  return `https://${host.slice(host.indexOf(".") + 1)}/.default`;
}

/** Entra ID client-credential tokens. */
interface AzureTokens {
  cache: TokenCache;
  secrets: string[];
  clientId: string;
}

function azureTokens(
  http: KmsHttpClient,
  env: EnvLookup,
  scope: string,
  what: string,
): AzureTokens {
  const tenant = firstEnv(env, "AZURE_TENANT_ID");
  const clientId = firstEnv(env, "AZURE_CLIENT_ID");
  const secret = firstEnv(env, "AZURE_CLIENT_SECRET");
  const federatedFile = firstEnv(env, "AZURE_FEDERATED_TOKEN_FILE");
  if (!tenant || !clientId || (!secret && !federatedFile)) {
    throw new AirlockError(
      "KEY_AUTH_FAILED",
      `${what}: no Azure credentials: set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET ` +
        "(or AZURE_FEDERATED_TOKEN_FILE for workload identity)",
    );
  }
  if (!/^[A-Za-z0-9.-]+$/.test(tenant)) {
    throw new AirlockError(
      "CONFIG_INVALID",
      `${what}: AZURE_TENANT_ID "${tenant}" is not a tenant id or domain`,
    );
  }
  const authority = endpointUrl(
    firstEnv(env, "AZURE_AUTHORITY_HOST") ?? "https://login.microsoftonline.com",
    "AZURE_AUTHORITY_HOST",
  );
  const tokenUrl = new URL(`${authority.href.replace(/\/+$/, "")}/${tenant}/oauth2/v2.0/token`);
  const secrets = secret ? [secret] : [];
  const cache = new TokenCache(async () => {
    const form = new URLSearchParams({ grant_type: "client_credentials", client_id: clientId, scope });
    if (secret) form.set("client_secret", secret);
    else {
      const assertion = (await readRequiredFile(federatedFile!, "AZURE_FEDERATED_TOKEN_FILE")).trim();
      secrets.push(assertion);
      form.set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
      form.set("client_assertion", assertion);
    }
    return await requestToken(
      http,
      tokenUrl,
      form,
      `${what}: Microsoft Entra ID (${authority.host}, tenant ${tenant}) refused a token for client ${clientId}`,
      secrets,
    );
  });
  return { cache, secrets, clientId };
}

class AzureKmsClient {
  readonly #http: KmsHttpClient;
  readonly #tokens: AzureTokens;
  readonly #base: string;
  readonly #what: string;

  constructor(what: string, http: KmsHttpClient, tokens: AzureTokens, base: URL) {
    this.#what = what;
    this.#http = http;
    this.#tokens = tokens;
    this.#base = base.href.replace(/\/+$/, "");
  }

  async call(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
    const url = new URL(`${this.#base}/${path}`);
    url.searchParams.set("api-version", AZURE_KEYVAULT_API_VERSION);
    const res = await sendWithToken(this.#http, this.#tokens.cache, method, url, body);
    const json = jsonObject(res);
    if (res.status === 200 && json) return json;
    throw this.#error(res, method === "GET" ? "read" : "sign with");
  }

  #error(res: KmsResponse, action: string): AirlockError {
    const err = ((res.json as { error?: unknown } | undefined)?.error ?? {}) as Record<string, unknown>;
    const code = String(err.code ?? "");
    const detail = scrub(
      `${code ? `${code}: ` : ""}${String(err.message ?? "") || excerpt(res.text) || `HTTP ${res.status}`}`,
      [...this.#tokens.secrets, ...this.#tokens.cache.secrets()],
    );
    const where = `${this.#what}: Azure Key Vault`;
    switch (kmsErrorCode(res.status, { notFound: code === "KeyNotFound" })) {
      case "KEY_AUTH_FAILED":
        return new AirlockError(
          "KEY_AUTH_FAILED",
          `${where} refused the access token of client ${this.#tokens.clientId}: ${detail}`,
        );
      case "KEY_ACCESS_DENIED":
        return new AirlockError(
          "KEY_ACCESS_DENIED",
          `${where}: client ${this.#tokens.clientId} may not ${action} the key: ${detail}`,
        );
      case "KEY_NOT_FOUND":
        return new AirlockError("KEY_NOT_FOUND", `${where}: key not found: ${detail}`);
      default:
        return new AirlockError(
          "KEY_BACKEND",
          `${where} failed to ${action} the key (HTTP ${res.status}): ${detail}`,
        );
    }
  }

  close(): void {
    this.#http.close();
  }
}

/** How the key signs. */
type AzureAlg = "ES256" | "RS256";

/** Asks Key Vault to sign the SHA-256 of `message` with the key version at `path`; ES256's `r‖s` becomes DER. */
async function azureSign(
  what: string,
  client: AzureKmsClient,
  path: string,
  alg: AzureAlg,
  message: Uint8Array,
): Promise<Uint8Array> {
  const out = await client.call("POST", `${path}/sign`, { alg, value: base64UrlEncode(sha256(message)) });
  const sig = typeof out.value === "string" ? base64UrlDecode(out.value) : undefined;
  if (!sig) throw new AirlockError("KEY_BACKEND", `${what}: Azure Key Vault answered no signature`);
  if (alg !== "ES256") return sig;
  if (sig.length !== 64) {
    throw new AirlockError("KEY_BACKEND", `${what}: ES256 signature of ${sig.length} bytes, not 64`);
  }
  return ecdsaRawToDer(sig);
}

/** The JWK of a Key Vault key as SPKI, and the algorithm to sign with. */
async function fromJwk(
  what: string,
  jwk: Record<string, unknown>,
): Promise<{ key: PublicKey; alg: AzureAlg }> {
  const kty = String(jwk.kty ?? "");
  let imported: CryptoKey;
  let alg: AzureAlg;
  try {
    if (kty === "EC" || kty === "EC-HSM") {
      if (jwk.crv !== "P-256") {
        throw new AirlockError(
          "KEY_UNSUPPORTED",
          `${what}: curve ${String(jwk.crv)} is not supported (P-256 is: cosign signs SHA-256 digests)`,
        );
      }
      alg = "ES256";
      imported = await crypto.subtle.importKey(
        "jwk",
        { kty: "EC", crv: "P-256", x: String(jwk.x), y: String(jwk.y) },
        { name: "ECDSA", namedCurve: "P-256" },
        true,
        ["verify"],
      );
    } else if (kty === "RSA" || kty === "RSA-HSM") {
      alg = "RS256";
      imported = await crypto.subtle.importKey(
        "jwk",
        { kty: "RSA", n: String(jwk.n), e: String(jwk.e) },
        { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
        true,
        ["verify"],
      );
    } else {
      throw new AirlockError(
        "KEY_UNSUPPORTED",
        `${what}: key type "${kty}" cannot sign (EC and RSA keys can)`,
      );
    }
  } catch (e) {
    if (e instanceof AirlockError) throw e;
    throw new AirlockError(
      "KEY_BACKEND",
      `${what}: Azure Key Vault answered an unusable JWK: ${(e as Error).message}`,
      {
        cause: e,
      },
    );
  }
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", imported));
  return { key: publicKeyFromSpki(spki), alg };
}

/**
 * Opens an `azurekms://…` reference: gets a token, reads the key (its current version when none is named), so
 * missing credentials or a missing key fail here.
 */
export async function openAzureKmsKey(ref: string, options: AzureKmsKeyOptions = {}): Promise<KeyBackend> {
  const parsed = parseAzureKmsRef(ref);
  const env = envLookup(options);
  const override = firstEnv(env, "AIRLOCK_AZUREKMS_ENDPOINT");
  const base = override
    ? endpointUrl(override, "AIRLOCK_AZUREKMS_ENDPOINT")
    : endpointUrl(`https://${parsed.vault}`, `the vault of ${ref}`);
  const http = await KmsHttpClient.create({
    service: "Azure Key Vault",
    timeoutMs: options.timeoutMs,
    caHint: "DENO_CERT",
  });
  try {
    const tokens = azureTokens(http, env, azureScope(parsed.vault), ref);
    const client = new AzureKmsClient(ref, http, tokens, base);
    const out = await client.call("GET", `keys/${parsed.key}${parsed.version ? `/${parsed.version}` : ""}`);
    const jwk = (out.key ?? {}) as Record<string, unknown>;
    const attributes = (out.attributes ?? {}) as Record<string, unknown>;
    if (attributes.enabled === false) throw new AirlockError("KEY_BACKEND", `${ref}: the key is disabled`);
    const version = parsed.version ?? String(jwk.kid ?? "").replace(/^.*\//, "");
    if (!version) {
      throw new AirlockError("KEY_BACKEND", `${ref}: Azure Key Vault answered a key without a kid`);
    }
    const { key, alg } = await fromJwk(ref, jwk);
    const path = `keys/${parsed.key}/${version}`;
    return kmsKey({
      name: ref,
      key,
      sign: (message) => azureSign(ref, client, path, alg, message),
      mismatch: "Azure Key Vault returned a signature that does not verify with the key's public key",
      close: () => client.close(),
    });
  } catch (e) {
    http.close();
    throw e;
  }
}
