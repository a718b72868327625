/**
 * KMS plugins: `NAME://KEY` references are served by an executable `sigstore-kms-NAME` on `PATH`, speaking
 * sigstore's cliplugin protocol (sigstore/sigstore `pkg/signature/kms/cliplugin`), as cosign does for any
 * scheme it has no built-in provider for (spec/cosign.md §4.3).
 *
 * The protocol, protocol version `v1` (one process per call):
 * - argument 1: the protocol version, `v1`;
 * - argument 2: JSON `{"initOptions": {"protocolVersion": "v1", "keyResourceID": "KEY", "hashFunc": 5,
 *   "rpcOptions": {…}, "ctxDeadline"?: RFC 3339}, "methodName": "signMessage", "signMessage": {…}}` — `KEY` is
 *   the reference without `NAME://`; `hashFunc` is Go's `crypto.Hash` number (5 = SHA-256); methods are
 *   `defaultAlgorithm`, `supportedAlgorithms`, `createKey`, `publicKey`, `signMessage`, `verifySignature`;
 * - stdin: the data to sign (or verify); empty for the other methods;
 * - stdout: JSON `{"errorMessage"?: "…", "<methodName>": {…}}`; byte fields (`publicKeyPEM`, `signature`,
 *   `digest`) are base64 (Go's `[]byte` encoding). The exit status is ignored; an `errorMessage` is the error.
 *
 * Signing sends the payload on stdin **and** its SHA-256 as `signOptions.messageOptions.digest` with
 * `hashFunc` 5, so a plugin may sign the digest (as sigstore's KMS providers do) or hash the message itself;
 * both give the same signature input. Each signature is checked against the plugin's public key before it is
 * returned (a plugin is a foreign program), and raw `r‖s` ECDSA signatures are converted to DER.
 *
 * The plugin's stderr is captured, not passed through (library code prints nothing); its tail is added to
 * error messages when a call fails. At most {@linkcode PluginOptions.maxProcesses} plugin processes run at once.
 *
 * @example
 * ```ts
 * const key = await openPluginKey("mykms://keys/release"); // runs sigstore-kms-mykms
 * const sig = await key.sign(payload);
 * await key.close();
 * ```
 *
 * @module
 */
import { AirlockError } from "../core/errors.ts";
import { base64Decode, base64Encode } from "../core/encoding/base64.ts";
import {
  ecdsaDerToRaw,
  ecdsaRawToDer,
  parsePublicKeyPem,
  type PublicKey,
  publicKeyToPem,
  verifySignature,
} from "../core/signature/public_key.ts";
import { type KeyBackend, pluginName } from "./key_types.ts";
import { sha256 } from "./kms_key.ts";
import { defaultEnv } from "./passphrase.ts";

/** Executable name prefix: `sigstore-kms-NAME` serves `NAME://…`. */
export const PLUGIN_PREFIX = "sigstore-kms-";

/** The cliplugin protocol version airlock speaks. */
export const PLUGIN_PROTOCOL_VERSION = "v1";

/** Go's `crypto.SHA256` (`crypto.Hash` numbering), the hash every airlock signature uses. */
export const GO_CRYPTO_SHA256 = 5;

/** Options of {@linkcode openPluginKey}, {@linkcode createPluginKey} and {@linkcode invokePlugin}. */
export interface PluginOptions {
  /** Reads an environment variable (`PATH`); defaults to `Deno.env.get`. */
  env?: (name: string) => string | undefined;
  /** Time limit of one plugin call in ms (sent as `ctxDeadline`, then the process is killed); default 120 000. */
  timeoutMs?: number;
  /** Plugin processes allowed at once per key; default 8. */
  maxProcesses?: number;
}

/** The JSON answer of a plugin (`PluginResp`); only the fields airlock reads are typed. */
export interface PluginResponse {
  /** Set when the call failed. */
  errorMessage?: string;
  /** `defaultAlgorithm` answer. */
  defaultAlgorithm?: { defaultAlgorithm?: string };
  /** `supportedAlgorithms` answer. */
  supportedAlgorithms?: { supportedAlgorithms?: string[] };
  /** `createKey` answer: base64 of the PEM. */
  createKey?: { publicKeyPEM?: string };
  /** `publicKey` answer: base64 of the PEM. */
  publicKey?: { publicKeyPEM?: string };
  /** `signMessage` answer: base64 of the signature. */
  signMessage?: { signature?: string };
  /** `verifySignature` answer (empty on success). */
  verifySignature?: Record<string, never>;
}

/** The method names of protocol v1. */
export type PluginMethod =
  | "defaultAlgorithm"
  | "supportedAlgorithms"
  | "createKey"
  | "publicKey"
  | "signMessage"
  | "verifySignature";

/** A plugin reference split into its parts. */
export interface PluginRef {
  /** The scheme, e.g. `mykms`. */
  readonly name: string;
  /** The executable, `sigstore-kms-<name>`. */
  readonly executable: string;
  /** What the plugin receives as `keyResourceID`: the reference after `NAME://`. */
  readonly keyResourceId: string;
}

/**
 * Splits `NAME://KEY` (as sigstore's `getPluginExecutableAndKeyResourceID` does). Throws `INVALID_ARGUMENT`
 * for references without such a scheme.
 */
export function parsePluginRef(ref: string): PluginRef {
  const name = pluginName(ref);
  if (name === undefined) {
    throw new AirlockError("INVALID_ARGUMENT", `"${ref}" is not a KMS plugin reference (NAME://KEY)`);
  }
  return { name, executable: PLUGIN_PREFIX + name, keyResourceId: ref.slice(name.length + 3) };
}

/**
 * The absolute path of `executable` on `PATH` (the first regular file with an execute bit), or `undefined`.
 */
export async function lookPath(
  executable: string,
  env: (name: string) => string | undefined = defaultEnv,
): Promise<string | undefined> {
  for (const dir of (env("PATH") ?? "").split(":")) {
    const path = `${dir === "" ? "." : dir}/${executable}`;
    try {
      const st = await Deno.stat(path);
      if (st.isFile && (st.mode === null || (st.mode & 0o111) !== 0)) return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

function pluginError(executable: string, message: string, stderr = "", cause?: unknown): AirlockError {
  const tail = stderr.trim().slice(-400);
  return new AirlockError(
    "KEY_BACKEND",
    `KMS plugin "${executable}": ${message}${tail ? ` (plugin stderr: ${tail})` : ""}`,
    { cause },
  );
}

/** One call: method arguments and stdin. */
export interface PluginCall {
  /** The method. */
  method: PluginMethod;
  /** The method's argument object (`{}` when it has none). */
  args: Record<string, unknown>;
  /** Bytes for stdin (the message); none for most methods. */
  stdin?: Uint8Array;
}

const RPC_OPTIONS = { keyVersion: "", remoteVerification: false };

/**
 * Runs the plugin once and returns its parsed answer. Throws `KEY_BACKEND` when the process cannot be started,
 * times out, prints no JSON, or answers with an `errorMessage` (quoted in the message).
 *
 * @param path the executable (absolute path, from {@linkcode lookPath})
 */
export async function invokePlugin(
  path: string,
  ref: PluginRef,
  call: PluginCall,
  options: PluginOptions = {},
): Promise<PluginResponse> {
  const timeoutMs = options.timeoutMs ?? 120_000;
  const deadline = new Date(Date.now() + timeoutMs).toISOString();
  const payload = {
    initOptions: {
      ctxDeadline: deadline,
      protocolVersion: PLUGIN_PROTOCOL_VERSION,
      keyResourceID: ref.keyResourceId,
      hashFunc: GO_CRYPTO_SHA256,
      rpcOptions: { ...RPC_OPTIONS, ctxDeadline: deadline },
    },
    methodName: call.method,
    [call.method]: call.args,
  };
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(path, {
      args: [PLUGIN_PROTOCOL_VERSION, JSON.stringify(payload)],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(timeoutMs),
    }).spawn();
  } catch (e) {
    throw pluginError(ref.executable, `cannot run "${path}": ${(e as Error).message}`, "", e);
  }
  const writer = child.stdin.getWriter();
  const wrote = (async () => {
    try {
      if (call.stdin && call.stdin.length) await writer.write(call.stdin);
      await writer.close();
    } catch {
      // the plugin need not read its stdin
    }
  })();
  const out = await child.output();
  await wrote;
  const stderr = new TextDecoder().decode(out.stderr);
  if (out.signal !== null) {
    const why = out.signal === "SIGTERM" ? `timed out after ${timeoutMs} ms` : `was killed by ${out.signal}`;
    throw pluginError(ref.executable, `${call.method} ${why}`, stderr);
  }
  let resp: PluginResponse;
  try {
    const parsed: unknown = JSON.parse(new TextDecoder().decode(out.stdout));
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      throw new Error("not an object");
    }
    resp = parsed as PluginResponse;
  } catch (e) {
    throw pluginError(
      ref.executable,
      `${call.method}: parsing the plugin's answer: ${(e as Error).message} (exit code ${out.code})`,
      stderr,
      e,
    );
  }
  if (typeof resp.errorMessage === "string" && resp.errorMessage !== "") {
    throw pluginError(ref.executable, `${call.method} returned an error: ${resp.errorMessage}`);
  }
  return resp;
}

/** Decodes a base64 byte field of an answer; throws `KEY_BACKEND` naming the field when it is missing. */
function bytesField(ref: PluginRef, value: string | undefined, field: string): Uint8Array {
  const bytes = typeof value === "string" ? base64Decode(value) : undefined;
  if (!bytes || bytes.length === 0) throw pluginError(ref.executable, `the answer has no valid ${field}`);
  return bytes;
}

function publicKeyOf(ref: PluginRef, pemB64: string | undefined, field: string): PublicKey {
  const pem = new TextDecoder().decode(bytesField(ref, pemB64, field));
  try {
    return parsePublicKeyPem(pem);
  } catch (e) {
    throw pluginError(ref.executable, `${field}: ${(e as Error).message}`, "", e);
  }
}

async function resolvePlugin(ref: string, options: PluginOptions): Promise<{ pr: PluginRef; path: string }> {
  const pr = parsePluginRef(ref);
  const path = await lookPath(pr.executable, options.env);
  if (!path) {
    throw new AirlockError(
      "KEY_UNSUPPORTED",
      `${pr.name}:// keys need the KMS plugin "${pr.executable}", which is not on PATH`,
    );
  }
  return { pr, path };
}

const CURVE_BYTES = { "P-256": 32, "P-384": 48, "P-521": 66 } as const;

/** A key served by a KMS plugin. */
export interface PluginKey extends KeyBackend {
  /** The public key the plugin reported at open. */
  readonly key: PublicKey;
  /** The plugin reference. */
  readonly ref: PluginRef;
}

class PluginKeyImpl implements PluginKey {
  readonly key: PublicKey;
  readonly ref: PluginRef;
  readonly #path: string;
  readonly #options: PluginOptions;
  readonly #pem: string;
  #running = 0;
  readonly #queue: (() => void)[] = [];
  #closed = false;

  constructor(ref: PluginRef, path: string, key: PublicKey, options: PluginOptions) {
    this.ref = ref;
    this.#path = path;
    this.key = key;
    this.#options = options;
    this.#pem = publicKeyToPem(key);
  }

  publicKey(): Promise<string> {
    return Promise.resolve(this.#pem);
  }

  async sign(message: Uint8Array): Promise<Uint8Array> {
    if (this.#closed) throw new AirlockError("KEY_BACKEND", `KMS key ${this.ref.name}:// is closed`);
    const max = this.#options.maxProcesses ?? 8;
    if (this.#running >= max) await new Promise<void>((r) => this.#queue.push(r));
    this.#running++;
    try {
      const digest = sha256(message);
      const resp = await invokePlugin(this.#path, this.ref, {
        method: "signMessage",
        args: {
          signOptions: {
            rpcOptions: RPC_OPTIONS,
            messageOptions: { digest: base64Encode(digest), hashFunc: GO_CRYPTO_SHA256 },
          },
        },
        stdin: message,
      }, this.#options);
      let sig = bytesField(this.ref, resp.signMessage?.signature, "signMessage.signature");
      if (this.key.algorithm === "ecdsa") {
        const size = CURVE_BYTES[this.key.curve!];
        if (!ecdsaDerToRaw(sig, size) && sig.length === 2 * size) sig = ecdsaRawToDer(sig);
      }
      if (!await verifySignature(this.key, message, sig)) {
        throw pluginError(
          this.ref.executable,
          "signMessage returned a signature that does not verify with its public key",
        );
      }
      return sig;
    } finally {
      this.#running--;
      this.#queue.shift()?.();
    }
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }
}

/**
 * Opens a `NAME://KEY` reference: finds `sigstore-kms-NAME` on `PATH` and asks it for the public key (so a
 * missing plugin or key fails here, before any network call). Errors: `KEY_UNSUPPORTED` (plugin not on
 * PATH, named in the message), `KEY_BACKEND` (the plugin failed; its `errorMessage` is quoted), `KEY_INVALID`.
 */
export async function openPluginKey(ref: string, options: PluginOptions = {}): Promise<PluginKey> {
  const { pr, path } = await resolvePlugin(ref, options);
  const resp = await invokePlugin(path, pr, {
    method: "publicKey",
    args: { publicKeyOptions: { rpcOptions: RPC_OPTIONS } },
  }, options);
  return new PluginKeyImpl(
    pr,
    path,
    publicKeyOf(pr, resp.publicKey?.publicKeyPEM, "publicKey.publicKeyPEM"),
    options,
  );
}

/**
 * Creates the key in the KMS through the plugin (`createKey` with `algorithm`, else the plugin's
 * `defaultAlgorithm`), as `cosign generate-key-pair --kms NAME://KEY` does; returns its public key PEM.
 */
export async function createPluginKey(
  ref: string,
  options: PluginOptions & { algorithm?: string } = {},
): Promise<{ publicPem: string; algorithm: string }> {
  const { pr, path } = await resolvePlugin(ref, options);
  let algorithm = options.algorithm;
  if (algorithm === undefined) {
    const d = await invokePlugin(path, pr, { method: "defaultAlgorithm", args: {} }, options);
    algorithm = d.defaultAlgorithm?.defaultAlgorithm;
    if (!algorithm) throw pluginError(pr.executable, "defaultAlgorithm answered no algorithm");
  }
  const resp = await invokePlugin(path, pr, {
    method: "createKey",
    args: { algorithm, ctxDeadline: new Date(Date.now() + (options.timeoutMs ?? 120_000)).toISOString() },
  }, options);
  const key = publicKeyOf(pr, resp.createKey?.publicKeyPEM, "createKey.publicKeyPEM");
  return { publicPem: publicKeyToPem(key), algorithm };
}
