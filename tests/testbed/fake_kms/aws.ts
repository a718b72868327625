/**
 * A FAKE AWS KMS, written for the tests: the real JSON protocol (`POST /`, `application/x-amz-json-1.1`,
 * `X-Amz-Target: TrentService.GetPublicKey | Sign | DescribeKey`) and a complete, independent Signature Version 4
 * check of every request (canonical request, string to sign, the HMAC key chain from the secret key, credential
 * scope, date skew, signed headers, session token) before anything is answered. Errors carry AWS's `__type`s:
 * `UnrecognizedClientException`, `InvalidSignatureException`, `AccessDeniedException`, `NotFoundException`,
 * `ValidationException`. Keys are real (ECDSA P-256 and RSA-2048), addressed by id, ARN, alias or alias ARN.
 *
 * @example
 * ```ts
 * await using kms = await startFakeAwsKms({ credentials: { AKIDTEST: { secret: "s3cr3t" } } });
 * const { keyId } = kms.addKey("ec-p256", { alias: "release" });
 * ```
 *
 * @module
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
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

/** One access key the fake accepts. */
export interface FakeAwsCredential {
  /** The secret access key. */
  secret: string;
  /** When set, requests must carry it as `X-Amz-Security-Token`. */
  sessionToken?: string;
  /** `sign` (default) may call everything; `read` may not call `Sign`. */
  policy?: "sign" | "read";
}

/** Options of {@linkcode startFakeAwsKms}. */
export interface FakeAwsKmsOptions {
  /** Access key id → credential. */
  credentials: Record<string, FakeAwsCredential>;
  /** The region in the credential scope and ARNs (default `us-east-1`). */
  region?: string;
  /** Serve https with this certificate. */
  tls?: FakeTls;
}

/** One request the fake answered. */
export interface FakeAwsRequest {
  /** The operation (`Sign`, …). */
  operation: string;
  /** The access key id from the `Authorization` header. */
  accessKeyId?: string;
  /** The HTTP status. */
  status: number;
  /** The error `__type`, if any. */
  errorType?: string;
  /** The JSON input. */
  input?: Record<string, unknown>;
}

/** A running fake AWS KMS. */
export interface FakeAwsKms extends FakeServer {
  /** The account id in ARNs. */
  readonly account: string;
  /** The region. */
  readonly region: string;
  /** Creates a key (optionally with an alias `alias/<alias>`); returns its id, ARN and key. */
  addKey(kind: FakeKeyKind, opts?: { alias?: string }): { keyId: string; arn: string; key: FakeSigningKey };
  /** Every request answered. */
  readonly requests: FakeAwsRequest[];
}

const ACCOUNT = "111122223333";

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function sha256Hex(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

function hmac(key: Uint8Array | string, data: string): Uint8Array {
  return new Uint8Array(createHmac("sha256", key).update(data).digest());
}

/** RFC 3986 encoding of one path segment, as SigV4 canonical URIs use it. */
function uriEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/**
 * Starts a fake AWS KMS on 127.0.0.1.
 *
 * @example
 * ```ts
 * await using kms = await startFakeAwsKms({ credentials: { AKID: { secret: "x" } }, region: "eu-west-1" });
 * ```
 */
export async function startFakeAwsKms(options: FakeAwsKmsOptions): Promise<FakeAwsKms> {
  const region = options.region ?? "us-east-1";
  const keys = new Map<string, FakeSigningKey>();
  const aliases = new Map<string, string>();
  const requests: FakeAwsRequest[] = [];
  const arnOf = (id: string) => `arn:aws:kms:${region}:${ACCOUNT}:key/${id}`;

  const fail = (status: number, type: string, message: string) =>
    new Response(JSON.stringify({ __type: type, message }), {
      status,
      headers: { "content-type": "application/x-amz-json-1.1", "x-amzn-errortype": `${type}:` },
    });

  /** Checks the SigV4 signature; returns an error answer or the access key id and its credential. */
  const authenticate = (
    req: Request,
    url: URL,
    body: Uint8Array,
  ): Response | { id: string; cred: FakeAwsCredential } => {
    const auth = req.headers.get("authorization") ?? "";
    const m =
      /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/
        .exec(auth);
    if (!m) return fail(400, "MissingAuthenticationTokenException", "Missing Authentication Token");
    const [, id, date, scopeRegion, service, signedHeadersText, signature] = m;
    const cred = options.credentials[id];
    if (!cred) {
      return fail(
        400,
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
      );
    }
    const amzDate = req.headers.get("x-amz-date") ?? "";
    const t = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
    if (!t || amzDate.slice(0, 8) !== date) {
      return fail(
        400,
        "IncompleteSignatureException",
        "Date in Credential scope does not match YYYYMMDD from X-Amz-Date.",
      );
    }
    const when = Date.UTC(+t[1], +t[2] - 1, +t[3], +t[4], +t[5], +t[6]);
    if (Math.abs(Date.now() - when) > 5 * 60_000) {
      return fail(
        400,
        "InvalidSignatureException",
        "Signature expired: the request time is too far from now.",
      );
    }
    if (scopeRegion !== region || service !== "kms") {
      return fail(
        400,
        "InvalidSignatureException",
        `Credential should be scoped to a valid region (${region}) and service kms.`,
      );
    }
    if (cred.sessionToken && req.headers.get("x-amz-security-token") !== cred.sessionToken) {
      return fail(
        400,
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
      );
    }
    const signedHeaders = signedHeadersText.split(";");
    for (const h of ["host", "x-amz-date", ...(cred.sessionToken ? ["x-amz-security-token"] : [])]) {
      if (!signedHeaders.includes(h)) {
        return fail(400, "InvalidSignatureException", `'${h}' must be a signed header.`);
      }
    }
    const payloadHash = sha256Hex(body);
    const declared = req.headers.get("x-amz-content-sha256");
    if (declared !== null && declared !== payloadHash) {
      return fail(
        400,
        "InvalidSignatureException",
        "The provided x-amz-content-sha256 header does not match the body.",
      );
    }
    const canonicalHeaders = signedHeaders.map((h) => {
      // over HTTP/2 the host arrives as the :authority pseudo-header, which Deno.serve puts in the URL
      const v = h === "host" ? (req.headers.get("host") ?? url.host) : req.headers.get(h);
      if (v === null) return undefined;
      return `${h}:${v.trim().replace(/\s+/g, " ")}\n`;
    });
    if (canonicalHeaders.includes(undefined)) {
      return fail(400, "InvalidSignatureException", "A signed header is missing.");
    }
    const canonicalQuery = [...url.searchParams.entries()]
      .map(([k, v]) => [uriEncode(k), uriEncode(v)])
      .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : 1))
      .map(([k, v]) => `${k}=${v}`)
      .join("&");
    const canonicalUri = url.pathname.split("/").map((s) => uriEncode(decodeURIComponent(s))).join("/") ||
      "/";
    const canonicalRequest = [
      req.method,
      canonicalUri,
      canonicalQuery,
      canonicalHeaders.join(""),
      signedHeadersText,
      payloadHash,
    ].join("\n");
    const scope = `${date}/${scopeRegion}/${service}/aws4_request`;
    const stringToSign = ["AWS4-HMAC-SHA256", amzDate, scope, sha256Hex(canonicalRequest)].join("\n");
    const kDate = hmac(`AWS4${cred.secret}`, date);
    const kSigning = hmac(hmac(hmac(kDate, scopeRegion), service), "aws4_request");
    const expected = hex(hmac(kSigning, stringToSign));
    if (!timingSafeEqual(new TextEncoder().encode(expected), new TextEncoder().encode(signature))) {
      return fail(
        400,
        "InvalidSignatureException",
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
      );
    }
    return { id, cred };
  };

  const resolveKey = (keyId: unknown): { id: string; key: FakeSigningKey } | Response => {
    let s = String(keyId ?? "");
    const arn = /^arn:aws:kms:([^:]+):(\d+):(.*)$/.exec(s);
    if (arn) {
      if (arn[1] !== region || arn[2] !== ACCOUNT) return fail(400, "NotFoundException", `Invalid arn ${s}`);
      s = arn[3];
    }
    let id = s.startsWith("key/") ? s.slice(4) : s;
    if (s.startsWith("alias/")) {
      const target = aliases.get(s);
      if (!target) {
        return fail(400, "NotFoundException", `Alias arn:aws:kms:${region}:${ACCOUNT}:${s} is not found.`);
      }
      id = target;
    }
    const key = keys.get(id);
    if (!key) return fail(400, "NotFoundException", `Key '${arnOf(id)}' does not exist`);
    return { id, key };
  };

  const signingAlgorithms = (k: FakeSigningKey) =>
    k.kind === "ec-p256" ? ["ECDSA_SHA_256"] : [
      "RSASSA_PSS_SHA_256",
      "RSASSA_PSS_SHA_384",
      "RSASSA_PSS_SHA_512",
      "RSASSA_PKCS1_V1_5_SHA_256",
      "RSASSA_PKCS1_V1_5_SHA_384",
      "RSASSA_PKCS1_V1_5_SHA_512",
    ];
  const keySpec = (k: FakeSigningKey) => (k.kind === "ec-p256" ? "ECC_NIST_P256" : "RSA_2048");

  const handle = async (req: Request, record: FakeAwsRequest): Promise<Response> => {
    const url = new URL(req.url);
    const body = new Uint8Array(await req.arrayBuffer());
    const target = req.headers.get("x-amz-target") ?? "";
    record.operation = target.replace(/^TrentService\./, "");
    if (req.method !== "POST" || url.pathname !== "/") return fail(404, "UnknownOperationException", "");
    const auth = authenticate(req, url, body);
    if (auth instanceof Response) return auth;
    record.accessKeyId = auth.id;
    if (req.headers.get("content-type") !== "application/x-amz-json-1.1") {
      return fail(400, "SerializationException", "wrong content type");
    }
    let input: Record<string, unknown>;
    try {
      input = JSON.parse(new TextDecoder().decode(body));
    } catch {
      return fail(400, "SerializationException", "body is not JSON");
    }
    record.input = input;
    const found = resolveKey(input.KeyId);
    if (found instanceof Response) return found;
    const { id, key } = found;
    const json = (v: unknown) =>
      new Response(JSON.stringify(v), { headers: { "content-type": "application/x-amz-json-1.1" } });
    switch (target) {
      case "TrentService.GetPublicKey":
        return json({
          KeyId: arnOf(id),
          PublicKey: b64(key.spki),
          KeySpec: keySpec(key),
          CustomerMasterKeySpec: keySpec(key),
          KeyUsage: "SIGN_VERIFY",
          SigningAlgorithms: signingAlgorithms(key),
        });
      case "TrentService.DescribeKey":
        return json({
          KeyMetadata: {
            AWSAccountId: ACCOUNT,
            KeyId: id,
            Arn: arnOf(id),
            Enabled: true,
            KeyState: "Enabled",
            KeySpec: keySpec(key),
            KeyUsage: "SIGN_VERIFY",
            SigningAlgorithms: signingAlgorithms(key),
          },
        });
      case "TrentService.Sign": {
        if ((auth.cred.policy ?? "sign") !== "sign") {
          return fail(
            400,
            "AccessDeniedException",
            `User: arn:aws:iam::${ACCOUNT}:user/test is not authorized to perform: kms:Sign on resource: ${
              arnOf(id)
            } because no identity-based policy allows the kms:Sign action`,
          );
        }
        const alg = String(input.SigningAlgorithm ?? "");
        if (!signingAlgorithms(key).includes(alg)) {
          return fail(400, "InvalidKeyUsageException", `You cannot use ${alg} with this key.`);
        }
        if (input.MessageType !== "DIGEST") {
          return fail(400, "ValidationException", "fake: only DIGEST messages");
        }
        const digest = unb64(String(input.Message ?? ""));
        if (digest.length !== 32) {
          return fail(400, "ValidationException", "Digest is invalid length for algorithm");
        }
        if (alg.startsWith("RSASSA_PSS") || !alg.endsWith("SHA_256")) {
          return fail(400, "ValidationException", `fake: ${alg} is not implemented`);
        }
        const raw = key.signDigest(digest);
        return json({
          KeyId: arnOf(id),
          Signature: b64(key.kind === "ec-p256" ? rawToDer(raw) : raw),
          SigningAlgorithm: alg,
        });
      }
      default:
        return fail(400, "UnknownOperationException", `unknown target ${target}`);
    }
  };

  const server = await startFakeServer(async (req) => {
    const record: FakeAwsRequest = { operation: "", status: 0 };
    const res = await handle(req, record);
    record.status = res.status;
    if (res.status !== 200) record.errorType = res.headers.get("x-amzn-errortype")?.replace(/:$/, "");
    requests.push(record);
    return res;
  }, options.tls);

  return {
    ...server,
    account: ACCOUNT,
    region,
    requests,
    addKey(kind, opts = {}) {
      const keyId = crypto.randomUUID();
      const key = makeFakeKey(kind);
      keys.set(keyId, key);
      if (opts.alias) aliases.set(`alias/${opts.alias}`, keyId);
      return { keyId, arn: arnOf(keyId), key };
    },
  };
}
