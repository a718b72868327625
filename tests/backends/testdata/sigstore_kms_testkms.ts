/**
 * `sigstore-kms-testkms`: a KMS plugin for the tests, speaking sigstore's cliplugin protocol v1 the way
 * sigstore/sigstore `pkg/signature/kms/cliplugin` expects (argument 1: protocol version; argument 2: JSON
 * `PluginArgs`; stdin: the data; stdout: JSON `PluginResp`; errors in `errorMessage`, exit status ignored).
 *
 * The key lives in a file: `keyResourceID` (the reference after `testkms://`) is its path, holding an ECDSA
 * P-256 private key as JWK. Switches for tests, through the environment:
 * - `TESTKMS_LOG=FILE`: append every call's arguments (and the stdin length) as a JSON line;
 * - `TESTKMS_RAW_SIG=1`: answer raw `r‖s` signatures instead of DER;
 * - `TESTKMS_BAD_SIG=1`: answer a signature over other data.
 *
 * No dependencies: WebCrypto only, so it runs with `--no-config` from any directory.
 *
 * @module
 */

interface Args {
  initOptions?: { protocolVersion?: string; keyResourceID?: string; hashFunc?: number };
  methodName?: string;
  createKey?: { algorithm?: string };
  signMessage?: { signOptions?: { messageOptions?: { digest?: string | null; hashFunc?: number | null } } };
  verifySignature?: { signature?: string; verifyOptions?: unknown };
}

const enc = new TextEncoder();
const b64 = (b: Uint8Array) => btoa(String.fromCharCode(...b));
const ALG = { name: "ECDSA", namedCurve: "P-256" } as const;

function answer(resp: Record<string, unknown>, code = 0): never {
  Deno.stdout.writeSync(enc.encode(JSON.stringify(resp)));
  Deno.exit(code);
}

function fail(message: string): never {
  // a non-zero exit status: the protocol says the client ignores it and reads errorMessage
  answer({ errorMessage: message }, 1);
}

async function readStdin(): Promise<Uint8Array<ArrayBuffer>> {
  const chunks: Uint8Array[] = [];
  for await (const c of Deno.stdin.readable) chunks.push(c);
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

async function loadKey(path: string): Promise<{ priv: CryptoKey; pub: CryptoKey }> {
  let jwk: JsonWebKey;
  try {
    jwk = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    fail(`testkms: cannot read key "${path}": ${(e as Error).message}`);
  }
  const priv = await crypto.subtle.importKey("jwk", jwk, ALG, false, ["sign"]);
  const { d: _d, key_ops: _o, ...pubJwk } = jwk;
  const pub = await crypto.subtle.importKey("jwk", pubJwk, ALG, true, ["verify"]);
  return { priv, pub };
}

async function publicPem(pub: CryptoKey): Promise<string> {
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", pub));
  const lines = b64(spki).match(/.{1,64}/g)!.join("\n");
  return `-----BEGIN PUBLIC KEY-----\n${lines}\n-----END PUBLIC KEY-----\n`;
}

function rawToDer(raw: Uint8Array): Uint8Array {
  const int = (b: Uint8Array) => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    const v = b.subarray(i);
    return v[0] & 0x80 ? [0x02, v.length + 1, 0, ...v] : [0x02, v.length, ...v];
  };
  const body = [...int(raw.subarray(0, 32)), ...int(raw.subarray(32))];
  return new Uint8Array([0x30, body.length, ...body]);
}

async function sha256(b: Uint8Array<ArrayBuffer>): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", b));
}

const [version, json] = Deno.args;
if (version !== "v1") fail(`testkms: expected protocol version v1, got ${version}`);
let args: Args;
try {
  args = JSON.parse(json ?? "");
} catch (e) {
  fail(`testkms: parsing the arguments: ${(e as Error).message}`);
}
const stdin = await readStdin();
const log = Deno.env.get("TESTKMS_LOG");
if (log) {
  await Deno.writeTextFile(log, JSON.stringify({ args, stdinLength: stdin.length }) + "\n", { append: true });
}
const path = args.initOptions?.keyResourceID ?? "";
if (args.initOptions?.protocolVersion !== "v1") fail("testkms: initOptions.protocolVersion is not v1");

switch (args.methodName) {
  case "defaultAlgorithm":
    answer({ defaultAlgorithm: { defaultAlgorithm: "ecdsa-p256" } });
    break;
  case "supportedAlgorithms":
    answer({ supportedAlgorithms: { supportedAlgorithms: ["ecdsa-p256"] } });
    break;
  case "createKey": {
    if (args.createKey?.algorithm !== "ecdsa-p256") {
      fail(`testkms: algorithm ${args.createKey?.algorithm} not supported`);
    }
    try {
      await Deno.lstat(path);
    } catch {
      const pair = await crypto.subtle.generateKey(ALG, true, ["sign", "verify"]);
      const jwk = await crypto.subtle.exportKey("jwk", pair.privateKey);
      await Deno.writeTextFile(path, JSON.stringify(jwk), { mode: 0o600, createNew: true });
    }
    const { pub } = await loadKey(path);
    answer({ createKey: { publicKeyPEM: b64(enc.encode(await publicPem(pub))) } });
    break;
  }
  case "publicKey": {
    const { pub } = await loadKey(path);
    answer({ publicKey: { publicKeyPEM: b64(enc.encode(await publicPem(pub))) } });
    break;
  }
  case "signMessage": {
    const { priv } = await loadKey(path);
    const mo = args.signMessage?.signOptions?.messageOptions ?? {};
    const hashFunc = mo.hashFunc ?? args.initOptions?.hashFunc;
    if (hashFunc !== 5) fail(`testkms: only SHA-256 (5) is supported, got ${hashFunc}`);
    if (stdin.length === 0) fail("testkms: digest-only signing is not implemented; send the message");
    if (mo.digest) {
      const want = b64(await sha256(stdin));
      if (mo.digest !== want) fail("testkms: the digest does not match the message");
    }
    const data = Deno.env.get("TESTKMS_BAD_SIG") === "1" ? enc.encode("something else") : stdin;
    const raw = new Uint8Array(await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, priv, data));
    const sig = Deno.env.get("TESTKMS_RAW_SIG") === "1" ? raw : rawToDer(raw);
    answer({ signMessage: { signature: b64(sig) } });
    break;
  }
  case "verifySignature":
    fail("testkms: verifySignature is not implemented");
    break;
  default:
    fail(`testkms: unsupported method: ${args.methodName}`);
}
