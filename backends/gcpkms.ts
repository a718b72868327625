/**
 * The Google Cloud KMS backend: `gcpkms://projects/P/locations/L/keyRings/R/cryptoKeys/K[/cryptoKeyVersions/V]`
 * signs with an `ASYMMETRIC_SIGN` key version (spec/cosign.md §4.3; sigstore `pkg/signature/kms/gcp`). Without a
 * version the newest `ENABLED` version is used (listed once, when the key is opened).
 *
 * Protocol: Cloud KMS REST v1. `GET …/cryptoKeyVersions/V/publicKey` (PEM, checked against `pemCrc32c`);
 * `POST …/cryptoKeyVersions/V:asymmetricSign` with `digest.sha256` and `digestCrc32c` — the answer must say
 * `verifiedDigestCrc32c: true`, name the version asked for, and carry a `signatureCrc32c` that matches the
 * signature (the integrity checks Google documents). `EC_SIGN_P256_SHA256` and `RSA_SIGN_PKCS1_*_SHA256` keys
 * sign the SHA-256 digest; `EC_SIGN_ED25519` keys sign the message itself (`data`, `dataCrc32c`). Each signature
 * is also checked against the public key before it is returned.
 *
 * Credentials, in Application Default Credentials order:
 * 1. `GOOGLE_APPLICATION_CREDENTIALS`, else gcloud's `application_default_credentials.json` (in `CLOUDSDK_CONFIG`,
 *    default `~/.config/gcloud`): a `service_account` key file (OAuth2 JWT-bearer grant, RFC 7523: an RS256 JWT
 *    signed with the file's private key, posted to its `token_uri`) or an `authorized_user` file (refresh-token
 *    grant);
 * 2. the metadata server, when `GCE_METADATA_HOST` is set or the machine is a Google Compute Engine VM (its DMI
 *    product name; `NO_GCE_CHECK=true` turns that detection off, as in Google's Node.js auth library).
 * Access tokens are cached until shortly before they expire and fetched again after a 401.
 *
 * Endpoint: `AIRLOCK_GCPKMS_ENDPOINT` (a base URL such as `https://cloudkms.example-psc.p.googleapis.com`;
 * plain http only to localhost) replaces `https://cloudkms.googleapis.com`, for Private Service Connect
 * endpoints and test fakes. Extra CAs: Deno's `DENO_CERT`.
 *
 * Errors: `INVALID_ARGUMENT` (URI), `KEY_AUTH_FAILED` (no credentials, a refused grant, `UNAUTHENTICATED`),
 * `KEY_ACCESS_DENIED` (`PERMISSION_DENIED`), `KEY_NOT_FOUND`, `KEY_UNSUPPORTED` (algorithm, credential type),
 * `KEY_SERVICE_UNREACHABLE`, `TLS_ERROR`, `KEY_BACKEND` (including failed integrity checks). Private keys,
 * refresh tokens, client secrets and access tokens never appear in a message.
 *
 * @example
 * ```ts
 * const key = await openGcpKmsKey("gcpkms://projects/p/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1");
 * const sig = await key.sign(payload);
 * await key.close();
 * ```
 *
 * @module
 */
import { AirlockError } from "../core/errors.ts";
import { base64Decode, base64Encode } from "../core/encoding/base64.ts";
import { bufferSource, parsePublicKeyPem } from "../core/signature/public_key.ts";
import { decodePem } from "../core/encoding/pem.ts";
import type { KeyBackend } from "./key_types.ts";
import { kmsErrorCode } from "./kms_errors.ts";
import {
  base64UrlEncode,
  endpointUrl,
  type EnvLookup,
  envLookup,
  excerpt,
  firstEnv,
  jsonObject,
  KmsHttpClient,
  type KmsResponse,
  readOptionalFile,
  readRequiredFile,
  requestToken,
  scrub,
  sendWithToken,
  TokenCache,
  tokenFromAnswer,
} from "./kms_http.ts";
import { kmsKey, type KmsKeyOptions, sha256 } from "./kms_key.ts";

/** Options of {@linkcode openGcpKmsKey} (the environment lookup, the time limit of one request). */
export type GcpKmsKeyOptions = KmsKeyOptions;

/** A parsed `gcpkms://` reference. */
export interface GcpKmsRef {
  /** `projects/P/locations/L/keyRings/R/cryptoKeys/K`. */
  readonly cryptoKey: string;
  /** The version number, when the reference names one. */
  readonly version?: string;
}

/** The default Cloud KMS endpoint. */
export const GCP_KMS_ENDPOINT = "https://cloudkms.googleapis.com";

/** The OAuth2 scope asked for. */
const SCOPE = "https://www.googleapis.com/auth/cloud-platform";

/**
 * Parses a `gcpkms://` reference. Throws `INVALID_ARGUMENT`.
 *
 * @example
 * ```ts
 * parseGcpKmsRef("gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/3");
 * // { cryptoKey: "projects/p/locations/l/keyRings/r/cryptoKeys/k", version: "3" }
 * ```
 */
export function parseGcpKmsRef(ref: string): GcpKmsRef {
  const m =
    /^gcpkms:\/\/(projects\/[^/]+\/locations\/[^/]+\/keyRings\/[^/]+\/cryptoKeys\/[^/]+)(?:\/cryptoKeyVersions\/([^/]+))?$/
      .exec(ref);
  if (!m) {
    throw new AirlockError(
      "INVALID_ARGUMENT",
      `invalid GCP KMS key reference "${ref}": expected ` +
        "gcpkms://projects/P/locations/L/keyRings/R/cryptoKeys/K[/cryptoKeyVersions/V]",
    );
  }
  return { cryptoKey: m[1], ...(m[2] ? { version: m[2] } : {}) };
}

const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = (c & 1) ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/**
 * CRC32C (Castagnoli), the checksum Cloud KMS uses for its integrity fields.
 */
export function crc32c(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC32C_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A source of access tokens, and the secrets it holds (for scrubbing). */
interface GoogleTokens {
  cache: TokenCache;
  secrets: string[];
  describe: string;
}

async function serviceAccountTokens(
  http: KmsHttpClient,
  file: string,
  creds: Record<string, unknown>,
): Promise<GoogleTokens> {
  const email = String(creds.client_email ?? "");
  const pem = String(creds.private_key ?? "");
  const tokenUri = endpointUrl(
    String(creds.token_uri ?? "https://oauth2.googleapis.com/token"),
    `token_uri in ${file}`,
  );
  const block = decodePem(pem);
  if (!email || !block || block.type !== "PRIVATE KEY") {
    throw new AirlockError(
      "KEY_AUTH_FAILED",
      `service account file ${file}: client_email or an unencrypted PKCS#8 private_key is missing`,
    );
  }
  let signingKey: CryptoKey;
  try {
    signingKey = await crypto.subtle.importKey(
      "pkcs8",
      bufferSource(block.bytes),
      { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
      false,
      ["sign"],
    );
  } catch (e) {
    throw new AirlockError(
      "KEY_AUTH_FAILED",
      `service account file ${file}: the private key is not an RSA key`,
      {
        cause: e,
      },
    );
  }
  const keyId = typeof creds.private_key_id === "string" ? creds.private_key_id : undefined;
  const secrets = [pem];
  const what = `the Google token endpoint ${tokenUri.origin} (service account ${email})`;
  const cache = new TokenCache(async () => {
    const now = Math.floor(Date.now() / 1000);
    const header = base64UrlEncode(
      JSON.stringify({ alg: "RS256", typ: "JWT", ...(keyId ? { kid: keyId } : {}) }),
    );
    const claims = base64UrlEncode(
      JSON.stringify({ iss: email, scope: SCOPE, aud: tokenUri.href, iat: now, exp: now + 3600 }),
    );
    const input = new TextEncoder().encode(`${header}.${claims}`);
    const sig = new Uint8Array(await crypto.subtle.sign("RSASSA-PKCS1-v1_5", signingKey, input));
    const assertion = `${header}.${claims}.${base64UrlEncode(sig)}`;
    return await requestToken(
      http,
      tokenUri,
      new URLSearchParams({ grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer", assertion }),
      `${what} refused to issue an access token`,
      [...secrets, assertion],
    );
  });
  return { cache, secrets, describe: `service account ${email}` };
}

function authorizedUserTokens(
  http: KmsHttpClient,
  file: string,
  creds: Record<string, unknown>,
): GoogleTokens {
  const clientId = String(creds.client_id ?? "");
  const clientSecret = String(creds.client_secret ?? "");
  const refresh = String(creds.refresh_token ?? "");
  if (!clientId || !refresh) {
    throw new AirlockError(
      "KEY_AUTH_FAILED",
      `credentials file ${file}: client_id or refresh_token is missing`,
    );
  }
  const tokenUri = endpointUrl(
    String(creds.token_uri ?? "https://oauth2.googleapis.com/token"),
    `token_uri in ${file}`,
  );
  const secrets = [clientSecret, refresh];
  const cache = new TokenCache(() =>
    requestToken(
      http,
      tokenUri,
      new URLSearchParams({
        grant_type: "refresh_token",
        client_id: clientId,
        client_secret: clientSecret,
        refresh_token: refresh,
      }),
      `the Google token endpoint ${tokenUri.origin} refused to issue an access token`,
      secrets,
    )
  );
  return { cache, secrets, describe: `user credentials of ${file}` };
}

async function onGce(): Promise<boolean> {
  try {
    return (await Deno.readTextFile("/sys/class/dmi/id/product_name")).includes("Google");
  } catch {
    return false;
  }
}

function metadataTokens(http: KmsHttpClient, host: string): GoogleTokens {
  const url = new URL(`http://${host}/computeMetadata/v1/instance/service-accounts/default/token`);
  const cache = new TokenCache(async () => {
    const res = await http.send("GET", url, { headers: { "Metadata-Flavor": "Google" } });
    return tokenFromAnswer(res, `the metadata server ${host} refused to issue an access token`, []);
  });
  return { cache, secrets: [], describe: `the metadata server ${host}` };
}

/** Application Default Credentials (see the module doc). */
async function googleTokens(http: KmsHttpClient, env: EnvLookup): Promise<GoogleTokens> {
  let file = firstEnv(env, "GOOGLE_APPLICATION_CREDENTIALS");
  let text: string | undefined;
  if (file) text = await readRequiredFile(file, "GOOGLE_APPLICATION_CREDENTIALS");
  else {
    const dir = firstEnv(env, "CLOUDSDK_CONFIG") ?? `${env("HOME") ?? ""}/.config/gcloud`;
    file = `${dir}/application_default_credentials.json`;
    text = await readOptionalFile(file, "the gcloud application default credentials");
  }
  if (text !== undefined) {
    let creds: Record<string, unknown>;
    try {
      creds = JSON.parse(text);
    } catch {
      throw new AirlockError("KEY_AUTH_FAILED", `Google credentials file ${file} is not JSON`);
    }
    if (creds.type === "service_account") return await serviceAccountTokens(http, file, creds);
    if (creds.type === "authorized_user") return authorizedUserTokens(http, file, creds);
    throw new AirlockError(
      "KEY_UNSUPPORTED",
      `Google credentials file ${file}: type "${String(creds.type)}" is not supported ` +
        "(service_account and authorized_user are)",
    );
  }
  const noGceCheck = /^(1|true)$/i.test(firstEnv(env, "NO_GCE_CHECK") ?? "");
  const metadataHost = firstEnv(env, "GCE_METADATA_HOST") ??
    (!noGceCheck && await onGce() ? "169.254.169.254" : undefined);
  if (metadataHost) return metadataTokens(http, metadataHost);
  throw new AirlockError(
    "KEY_AUTH_FAILED",
    "no Google credentials: set GOOGLE_APPLICATION_CREDENTIALS to a service account key file, run " +
      "`gcloud auth application-default login`, or run on Google Cloud (metadata server)",
  );
}

/** How a key version signs. */
type SignMode = "digest" | "data";

function signModeOf(algorithm: string): SignMode | undefined {
  if (algorithm === "EC_SIGN_P256_SHA256" || /^RSA_SIGN_PKCS1_\d+_SHA256$/.test(algorithm)) return "digest";
  if (algorithm === "EC_SIGN_ED25519") return "data";
  return undefined;
}

class GcpKmsClient {
  readonly #http: KmsHttpClient;
  readonly #tokens: GoogleTokens;
  readonly #base: string;
  readonly #what: string;

  constructor(what: string, http: KmsHttpClient, tokens: GoogleTokens, base: URL) {
    this.#what = what;
    this.#http = http;
    this.#tokens = tokens;
    this.#base = base.href.replace(/\/+$/, "");
  }

  /** Calls `/v1/<path>`; retries once with a new token after a 401. */
  async call(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
    const url = new URL(`${this.#base}/v1/${path}`);
    const res = await sendWithToken(this.#http, this.#tokens.cache, method, url, body);
    const json = jsonObject(res);
    if (res.status === 200 && json) return json;
    throw this.#error(res, path);
  }

  #error(res: KmsResponse, path: string): AirlockError {
    const err = ((res.json as { error?: unknown } | undefined)?.error ?? {}) as Record<string, unknown>;
    const status = String(err.status ?? "");
    const detail = scrub(
      String(err.message ?? "") || excerpt(res.text) || `HTTP ${res.status}`,
      [...this.#tokens.secrets, ...this.#tokens.cache.secrets()],
    );
    const where = `${this.#what}: Cloud KMS ${path.replace(/^.*[/:]/, "")}`;
    const named = {
      auth: status === "UNAUTHENTICATED",
      denied: status === "PERMISSION_DENIED",
      notFound: status === "NOT_FOUND",
    };
    switch (kmsErrorCode(res.status, named)) {
      case "KEY_AUTH_FAILED":
        return new AirlockError(
          "KEY_AUTH_FAILED",
          `${where}: the access token (from ${this.#tokens.describe}) was refused: ${detail}`,
        );
      case "KEY_ACCESS_DENIED":
        return new AirlockError(
          "KEY_ACCESS_DENIED",
          `${where}: permission denied (${this.#tokens.describe}): ${detail}`,
        );
      case "KEY_NOT_FOUND":
        return new AirlockError("KEY_NOT_FOUND", `${where}: not found: ${detail}`);
      default:
        return new AirlockError(
          "KEY_BACKEND",
          `${where} failed (HTTP ${res.status}${status ? ` ${status}` : ""}): ${detail}`,
        );
    }
  }

  close(): void {
    this.#http.close();
  }
}

function crcField(value: unknown): number | undefined {
  const n = typeof value === "string" ? Number(value) : typeof value === "number" ? value : NaN;
  return Number.isFinite(n) ? n : undefined;
}

/**
 * Asks Cloud KMS to sign `message` (its SHA-256, or the message itself for Ed25519) with `version`, and runs the
 * CRC32C integrity checks on the answer.
 */
async function gcpSign(
  what: string,
  client: GcpKmsClient,
  version: string,
  mode: SignMode,
  message: Uint8Array,
): Promise<Uint8Array> {
  let body: Record<string, unknown>;
  if (mode === "digest") {
    const digest = sha256(message);
    body = { digest: { sha256: base64Encode(digest) }, digestCrc32c: String(crc32c(digest)) };
  } else {
    body = { data: base64Encode(message), dataCrc32c: String(crc32c(message)) };
  }
  const out = await client.call("POST", `${version}:asymmetricSign`, body);
  const integrity = (why: string) =>
    new AirlockError("KEY_BACKEND", `${what}: Cloud KMS asymmetricSign integrity check failed: ${why}`);
  const verified = mode === "digest" ? out.verifiedDigestCrc32c : out.verifiedDataCrc32c;
  if (verified !== true) {
    throw integrity(`the request's ${mode} checksum was not verified by the service`);
  }
  if (out.name !== undefined && out.name !== version) {
    throw integrity(`the answer names ${String(out.name)}, not ${version}`);
  }
  const sig = typeof out.signature === "string" ? base64Decode(out.signature) : undefined;
  if (!sig) throw new AirlockError("KEY_BACKEND", `${what}: Cloud KMS answered no signature`);
  if (crcField(out.signatureCrc32c) !== crc32c(sig)) {
    throw integrity("signatureCrc32c does not match the signature");
  }
  return sig;
}

/** The newest ENABLED version of a key (by create time, then version number). */
async function newestEnabledVersion(client: GcpKmsClient, cryptoKey: string, what: string): Promise<string> {
  let best: { name: string; time: number; num: number } | undefined;
  let pageToken = "";
  for (let page = 0; page < 100; page++) {
    const q = new URLSearchParams({ filter: "state=ENABLED", pageSize: "1000" });
    if (pageToken) q.set("pageToken", pageToken);
    const out = await client.call("GET", `${cryptoKey}/cryptoKeyVersions?${q}`);
    const versions = Array.isArray(out.cryptoKeyVersions) ? out.cryptoKeyVersions : [];
    for (const v of versions as Record<string, unknown>[]) {
      if (v.state !== undefined && v.state !== "ENABLED") continue;
      const name = String(v.name ?? "");
      const num = Number(name.replace(/^.*\//, ""));
      const time = Date.parse(String(v.createTime ?? "")) || 0;
      if (!best || time > best.time || (time === best.time && num > best.num)) best = { name, time, num };
    }
    pageToken = typeof out.nextPageToken === "string" ? out.nextPageToken : "";
    if (!pageToken) break;
  }
  if (!best) throw new AirlockError("KEY_NOT_FOUND", `${what}: the key has no ENABLED version`);
  return best.name;
}

/**
 * Opens a `gcpkms://…` reference: finds credentials, picks the version (the newest enabled one when the reference
 * names none) and reads its public key, so missing credentials or a missing key fail here.
 */
export async function openGcpKmsKey(ref: string, options: GcpKmsKeyOptions = {}): Promise<KeyBackend> {
  const parsed = parseGcpKmsRef(ref);
  const env = envLookup(options);
  const base = endpointUrl(
    firstEnv(env, "AIRLOCK_GCPKMS_ENDPOINT") ?? GCP_KMS_ENDPOINT,
    "AIRLOCK_GCPKMS_ENDPOINT",
  );
  const http = await KmsHttpClient.create({
    service: "Google Cloud KMS",
    timeoutMs: options.timeoutMs,
    caHint: "DENO_CERT",
  });
  try {
    const tokens = await googleTokens(http, env);
    const client = new GcpKmsClient(ref, http, tokens, base);
    const version = parsed.version
      ? `${parsed.cryptoKey}/cryptoKeyVersions/${parsed.version}`
      : await newestEnabledVersion(client, parsed.cryptoKey, ref);
    const out = await client.call("GET", `${version}/publicKey`);
    const algorithm = String(out.algorithm ?? "");
    const mode = signModeOf(algorithm);
    if (!mode) {
      throw new AirlockError(
        "KEY_UNSUPPORTED",
        `${ref}: algorithm ${algorithm || "(none)"} is not supported (EC_SIGN_P256_SHA256, ` +
          "RSA_SIGN_PKCS1_*_SHA256 and EC_SIGN_ED25519 are: cosign verifies SHA-256 and PKCS#1 v1.5)",
      );
    }
    const pem = typeof out.pem === "string" ? out.pem : "";
    const pemCrc = crcField(out.pemCrc32c);
    if (pemCrc !== undefined && pemCrc !== crc32c(new TextEncoder().encode(pem))) {
      throw new AirlockError(
        "KEY_BACKEND",
        `${ref}: Cloud KMS getPublicKey integrity check failed (pemCrc32c)`,
      );
    }
    return kmsKey({
      name: ref,
      key: parsePublicKeyPem(pem),
      sign: (message) => gcpSign(ref, client, version, mode, message),
      mismatch: `Cloud KMS returned a signature that does not verify with the public key of ${version}`,
      close: () => client.close(),
    });
  } catch (e) {
    http.close();
    throw e;
  }
}
