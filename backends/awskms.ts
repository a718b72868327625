/**
 * The AWS KMS backend: `awskms://[ENDPOINT]/KEY` signs with an asymmetric KMS key (spec/cosign.md §4.3; sigstore
 * `pkg/signature/kms/aws`). `KEY` is a key id (UUID or `mrk-…`), a key ARN, `alias/NAME` or an alias ARN;
 * `ENDPOINT` (`host[:port]`, spoken to over https) replaces the regional endpoint — `awskms:///alias/x` has none.
 *
 * Protocol: AWS's JSON protocol (`POST /`, `Content-Type: application/x-amz-json-1.1`,
 * `X-Amz-Target: TrentService.<Operation>`), every request signed with Signature Version 4 by
 * `@smithy/signature-v4` (the signer of the AWS SDK for JavaScript). Opening calls `GetPublicKey` (key spec,
 * usage, signing algorithms, SPKI); signing calls `Sign` with `MessageType: DIGEST` and the SHA-256 of the
 * message: `ECDSA_SHA_256` for `ECC_NIST_P256` keys (DER signatures), `RSASSA_PKCS1_V1_5_SHA_256` for RSA keys.
 * Each signature is checked against the public key before it is returned.
 *
 * Configuration, as the AWS SDKs read it (environment first, then the shared files):
 * | setting | where from |
 * |---|---|
 * | credentials | `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`; else the profile (`AWS_PROFILE`, default `default`) in `AWS_SHARED_CREDENTIALS_FILE` (`~/.aws/credentials`), then in `AWS_CONFIG_FILE` (`~/.aws/config`, section `[profile NAME]`) |
 * | region | the key ARN's region; else `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's `region` |
 * | endpoint | the URI's `ENDPOINT` (https); else `AWS_ENDPOINT_URL_KMS`, `AWS_ENDPOINT_URL` (any URL); else `https://kms.<region>.amazonaws.com` |
 * | TLS | `AWS_CA_BUNDLE` (or the profile's `ca_bundle`): extra CAs; `AWS_TLS_INSECURE_SKIP_VERIFY=1` skips checks (insecure) |
 *
 * Not supported (yet): IAM roles from the instance metadata service, ECS/EKS container credentials, web identity
 * (IRSA), SSO and `credential_process` profiles, `role_arn` profiles.
 *
 * Errors: `INVALID_ARGUMENT` (URI), `CONFIG_INVALID` (no region), `KEY_AUTH_FAILED` (no credentials;
 * `UnrecognizedClientException`, `InvalidSignatureException`, expired tokens…), `KEY_ACCESS_DENIED`
 * (`AccessDeniedException`), `KEY_NOT_FOUND` (`NotFoundException`), `KEY_UNSUPPORTED` (key spec or usage),
 * `KEY_SERVICE_UNREACHABLE`, `TLS_ERROR`, `KEY_BACKEND`. The secret key and session token never appear in a
 * message.
 *
 * @example
 * ```ts
 * const key = await openAwsKmsKey("awskms:///alias/release");
 * const sig = await key.sign(payload);
 * await key.close();
 * ```
 *
 * @module
 */
import { SignatureV4 } from "@smithy/signature-v4";
import { createHash, createHmac, type Hash, type Hmac } from "node:crypto";
import { AirlockError } from "../core/errors.ts";
import { base64Decode, base64Encode } from "../core/encoding/base64.ts";
import { type PublicKey, publicKeyFromSpki } from "../core/signature/public_key.ts";
import type { KeyBackend } from "./key_types.ts";
import { kmsErrorCode } from "./kms_errors.ts";
import {
  endpointUrl,
  envFlag,
  type EnvLookup,
  envLookup,
  excerpt,
  firstEnv,
  jsonObject,
  KmsHttpClient,
  type KmsResponse,
  readOptionalFile,
  scrub,
} from "./kms_http.ts";
import { kmsKey, type KmsKeyOptions, sha256 } from "./kms_key.ts";

/** Options of {@linkcode openAwsKmsKey} (the environment lookup, the time limit of one request). */
export type AwsKmsKeyOptions = KmsKeyOptions;

/** A parsed `awskms://` reference. */
export interface AwsKmsRef {
  /** The endpoint host from the URI (`""` when none). */
  readonly endpoint: string;
  /** The key id, key ARN, `alias/NAME` or alias ARN. */
  readonly keyId: string;
  /** The region named by an ARN. */
  readonly region?: string;
  /** The ARN partition (`aws`, `aws-cn`, `aws-us-gov`), when the key is an ARN. */
  readonly partition?: string;
}

const UUID =
  /^(?:mrk-[0-9a-f]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$/;
const ALIAS = /^alias\/[A-Za-z0-9/_-]+$/;
const ARN = /^arn:(aws[a-z-]*):kms:([a-z0-9-]+):(\d{12}):(key\/[A-Za-z0-9-]+|alias\/[A-Za-z0-9/_-]+)$/;

/**
 * Parses `awskms://[ENDPOINT]/KEY` as sigstore's AWS client does. Throws `INVALID_ARGUMENT`.
 *
 * @example
 * ```ts
 * parseAwsKmsRef("awskms:///arn:aws:kms:eu-west-1:111122223333:alias/release");
 * // { endpoint: "", keyId: "arn:aws:kms:eu-west-1:111122223333:alias/release", region: "eu-west-1", partition: "aws" }
 * ```
 */
export function parseAwsKmsRef(ref: string): AwsKmsRef {
  const m = /^awskms:\/\/([^/]*)\/(.+)$/.exec(ref);
  const keyId = m?.[2] ?? "";
  const arn = ARN.exec(keyId);
  if (!m || !(UUID.test(keyId) || ALIAS.test(keyId) || arn)) {
    throw new AirlockError(
      "INVALID_ARGUMENT",
      `invalid AWS KMS key reference "${ref}": expected awskms://[ENDPOINT]/KEY with a key id, key ARN, ` +
        `alias/NAME or alias ARN`,
    );
  }
  return { endpoint: m[1], keyId, ...(arn ? { partition: arn[1], region: arn[2] } : {}) };
}

/**
 * Parses an AWS shared config/credentials file (INI): section name → key → value. Nested sub-sections
 * (indented lines under `key =`) are skipped.
 */
export function parseAwsIni(text: string): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  let section: Record<string, string> | undefined;
  for (const line of text.split(/\r?\n/)) {
    if (/^\s*([#;]|$)/.test(line) || /^\s+/.test(line)) continue;
    const s = /^\[\s*([^\]]+?)\s*\]/.exec(line);
    if (s) {
      section = out[s[1]] ??= {};
      continue;
    }
    const kv = /^([^=]+?)\s*=\s*(.*?)\s*$/.exec(line);
    if (kv && section) section[kv[1].toLowerCase()] = kv[2];
  }
  return out;
}

/** AWS credentials (never printed). */
interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** Everything the environment and shared files say. */
interface AwsSettings {
  credentials?: AwsCredentials;
  region?: string;
  caBundle?: string;
  profile: string;
}

async function awsSettings(env: EnvLookup): Promise<AwsSettings> {
  const home = env("HOME") ?? "";
  const profile = firstEnv(env, "AWS_PROFILE", "AWS_DEFAULT_PROFILE") ?? "default";
  const credFile = firstEnv(env, "AWS_SHARED_CREDENTIALS_FILE") ?? `${home}/.aws/credentials`;
  const configFile = firstEnv(env, "AWS_CONFIG_FILE") ?? `${home}/.aws/config`;
  const creds = parseAwsIni((await readOptionalFile(credFile, "the AWS credentials file")) ?? "")[profile] ??
    {};
  const config = parseAwsIni((await readOptionalFile(configFile, "the AWS config file")) ?? "");
  const conf = config[profile === "default" ? "default" : `profile ${profile}`] ?? config[profile] ?? {};
  const fromSection = (s: Record<string, string>): AwsCredentials | undefined =>
    s.aws_access_key_id && s.aws_secret_access_key
      ? {
        accessKeyId: s.aws_access_key_id,
        secretAccessKey: s.aws_secret_access_key,
        ...(s.aws_session_token ? { sessionToken: s.aws_session_token } : {}),
      }
      : undefined;
  const envId = firstEnv(env, "AWS_ACCESS_KEY_ID");
  const envSecret = firstEnv(env, "AWS_SECRET_ACCESS_KEY");
  const envToken = firstEnv(env, "AWS_SESSION_TOKEN");
  const credentials = envId && envSecret
    ? { accessKeyId: envId, secretAccessKey: envSecret, ...(envToken ? { sessionToken: envToken } : {}) }
    : fromSection(creds) ?? fromSection(conf);
  return {
    credentials,
    region: firstEnv(env, "AWS_REGION", "AWS_DEFAULT_REGION") ?? conf.region,
    caBundle: firstEnv(env, "AWS_CA_BUNDLE") ?? conf.ca_bundle,
    profile,
  };
}

/** A SHA-256 (or HMAC-SHA-256 with a secret) for the signer, over node:crypto. */
class NodeSha256 {
  #h: Hash | Hmac;
  readonly #secret?: string | Uint8Array;

  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.#secret = secret === undefined || typeof secret === "string"
      ? secret
      : secret instanceof ArrayBuffer
      ? new Uint8Array(secret)
      : new Uint8Array(secret.buffer, secret.byteOffset, secret.byteLength);
    this.#h = this.#make();
  }

  #make(): Hash | Hmac {
    return this.#secret === undefined ? createHash("sha256") : createHmac("sha256", this.#secret);
  }

  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.#h.update(
      typeof data === "string"
        ? data
        : data instanceof ArrayBuffer
        ? new Uint8Array(data)
        : new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    );
  }

  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.#h.digest()));
  }

  reset(): void {
    this.#h = this.#make();
  }
}

/** Error `__type`s that mean the credentials were refused. */
const AUTH_ERRORS = new Set([
  "UnrecognizedClientException",
  "InvalidSignatureException",
  "IncompleteSignature",
  "IncompleteSignatureException",
  "MissingAuthenticationToken",
  "MissingAuthenticationTokenException",
  "ExpiredTokenException",
  "InvalidClientTokenId",
  "SignatureDoesNotMatch",
  "RequestExpired",
]);

/** The key's public part and how to sign with it. */
interface KeyInfo {
  keyArn: string;
  key: PublicKey;
  algorithm: "ECDSA_SHA_256" | "RSASSA_PKCS1_V1_5_SHA_256";
}

class AwsKmsClient {
  readonly #http: KmsHttpClient;
  readonly #signer: SignatureV4;
  readonly #url: URL;
  readonly #credentials: AwsCredentials;
  readonly #what: string;

  constructor(what: string, http: KmsHttpClient, url: URL, region: string, credentials: AwsCredentials) {
    this.#what = what;
    this.#http = http;
    this.#url = url;
    this.#credentials = credentials;
    this.#signer = new SignatureV4({
      service: "kms",
      region,
      credentials,
      sha256: NodeSha256,
    });
  }

  /** Calls `TrentService.<operation>`; returns the JSON answer or throws the classified error. */
  async call(operation: string, input: Record<string, unknown>): Promise<Record<string, unknown>> {
    const body = JSON.stringify(input);
    const url = this.#url;
    const signed = await this.#signer.sign({
      method: "POST",
      protocol: url.protocol,
      hostname: url.hostname,
      port: url.port ? Number(url.port) : undefined,
      path: url.pathname || "/",
      query: {},
      headers: {
        host: url.host,
        "content-type": "application/x-amz-json-1.1",
        "x-amz-target": `TrentService.${operation}`,
      },
      body,
    });
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(signed.headers)) if (k !== "host") headers[k] = String(v);
    const res = await this.#http.send("POST", url, { headers, body });
    const json = jsonObject(res);
    if (res.status === 200 && json) return json;
    throw this.#error(operation, res);
  }

  #error(operation: string, res: KmsResponse): AirlockError {
    const json = jsonObject(res) ?? {};
    const rawType = String(json.__type ?? res.headers.get("x-amzn-errortype") ?? "");
    const type = rawType.replace(/^.*#/, "").replace(/:.*$/, "");
    const message = String(json.message ?? json.Message ?? "") || excerpt(res.text) || `HTTP ${res.status}`;
    const detail = scrub(`${type ? `${type}: ` : ""}${message}`, [
      this.#credentials.secretAccessKey,
      this.#credentials.sessionToken,
    ]);
    const where = `${this.#what}: AWS KMS ${operation} at ${this.#url.host}`;
    const named = {
      auth: AUTH_ERRORS.has(type),
      denied: type === "AccessDeniedException",
      notFound: type === "NotFoundException",
    };
    switch (kmsErrorCode(res.status, named, !type)) {
      case "KEY_AUTH_FAILED":
        return new AirlockError(
          "KEY_AUTH_FAILED",
          `${where} refused the credentials (access key ${this.#credentials.accessKeyId}): ${detail}`,
        );
      case "KEY_ACCESS_DENIED":
        return new AirlockError("KEY_ACCESS_DENIED", `${where}: permission denied: ${detail}`);
      case "KEY_NOT_FOUND":
        return new AirlockError("KEY_NOT_FOUND", `${where}: key not found: ${detail}`);
      default:
        return new AirlockError("KEY_BACKEND", `${where} failed (HTTP ${res.status}): ${detail}`);
    }
  }

  close(): void {
    this.#http.close();
  }
}

/** Calls `Sign` with the SHA-256 of `message` (`MessageType: DIGEST`). */
async function awsSign(
  what: string,
  client: AwsKmsClient,
  info: KeyInfo,
  message: Uint8Array,
): Promise<Uint8Array> {
  const out = await client.call("Sign", {
    KeyId: info.keyArn,
    Message: base64Encode(sha256(message)),
    MessageType: "DIGEST",
    SigningAlgorithm: info.algorithm,
  });
  const sig = typeof out.Signature === "string" ? base64Decode(out.Signature) : undefined;
  if (!sig) throw new AirlockError("KEY_BACKEND", `${what}: AWS KMS Sign answered no Signature`);
  return sig;
}

function keyInfoOf(what: string, out: Record<string, unknown>): KeyInfo {
  const spec = String(out.KeySpec ?? out.CustomerMasterKeySpec ?? "");
  if (out.KeyUsage !== undefined && out.KeyUsage !== "SIGN_VERIFY") {
    throw new AirlockError(
      "KEY_UNSUPPORTED",
      `${what}: the key's usage is ${out.KeyUsage}, not SIGN_VERIFY`,
    );
  }
  const algorithm = spec === "ECC_NIST_P256"
    ? "ECDSA_SHA_256"
    : /^RSA_\d+$/.test(spec)
    ? "RSASSA_PKCS1_V1_5_SHA_256"
    : undefined;
  const algs = Array.isArray(out.SigningAlgorithms) ? out.SigningAlgorithms.map(String) : undefined;
  if (!algorithm || (algs && !algs.includes(algorithm))) {
    throw new AirlockError(
      "KEY_UNSUPPORTED",
      `${what}: key spec ${spec || "(none)"} cannot sign SHA-256 digests as cosign expects ` +
        `(ECC_NIST_P256 with ECDSA_SHA_256, RSA with RSASSA_PKCS1_V1_5_SHA_256)`,
    );
  }
  const der = typeof out.PublicKey === "string" ? base64Decode(out.PublicKey) : undefined;
  if (!der) throw new AirlockError("KEY_BACKEND", `${what}: AWS KMS GetPublicKey answered no PublicKey`);
  return { keyArn: String(out.KeyId ?? ""), key: publicKeyFromSpki(der), algorithm };
}

/**
 * Opens an `awskms://…` reference: resolves credentials, region and endpoint, then reads the public key
 * (`GetPublicKey`), so missing credentials, a wrong endpoint or a missing key fail here.
 */
export async function openAwsKmsKey(ref: string, options: AwsKmsKeyOptions = {}): Promise<KeyBackend> {
  const parsed = parseAwsKmsRef(ref);
  const env = envLookup(options);
  const settings = await awsSettings(env);
  const region = parsed.region ?? settings.region;
  if (!region) {
    throw new AirlockError(
      "CONFIG_INVALID",
      `${ref}: no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION, or region in the profile "${settings.profile}")`,
    );
  }
  if (!settings.credentials) {
    throw new AirlockError(
      "KEY_AUTH_FAILED",
      `${ref}: no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or the profile ` +
        `"${settings.profile}" in ~/.aws/credentials`,
    );
  }
  let url: URL;
  if (parsed.endpoint) url = endpointUrl(`https://${parsed.endpoint}`, `the endpoint of ${ref}`);
  else {
    const envUrl = firstEnv(env, "AWS_ENDPOINT_URL_KMS", "AWS_ENDPOINT_URL");
    const suffix = parsed.partition === "aws-cn" || region.startsWith("cn-")
      ? "amazonaws.com.cn"
      : "amazonaws.com";
    url = envUrl
      ? endpointUrl(envUrl, "AWS_ENDPOINT_URL_KMS", { allowHttp: true })
      : new URL(`https://kms.${region}.${suffix}/`);
  }
  const http = await KmsHttpClient.create({
    service: "AWS KMS",
    caCertFiles: settings.caBundle ? [settings.caBundle] : [],
    insecureSkipVerify: envFlag(env("AWS_TLS_INSECURE_SKIP_VERIFY")),
    timeoutMs: options.timeoutMs,
    caHint: "AWS_CA_BUNDLE",
  });
  const client = new AwsKmsClient(ref, http, url, region, settings.credentials);
  try {
    const info = keyInfoOf(ref, await client.call("GetPublicKey", { KeyId: parsed.keyId }));
    if (!info.keyArn) info.keyArn = parsed.keyId;
    return kmsKey({
      name: ref,
      key: info.key,
      sign: (message) => awsSign(ref, client, info, message),
      mismatch: "AWS KMS returned a signature that does not verify with the key's public key",
      close: () => client.close(),
    });
  } catch (e) {
    client.close();
    throw e;
  }
}
