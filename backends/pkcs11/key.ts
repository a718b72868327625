/**
 * The PKCS#11 key backend: signs with a private key that never leaves its token (an HSM, a smart card,
 * SoftHSM2), through {@link ./cryptoki.ts}.
 *
 * Opening a key (once per run) loads the module, finds the token (label, serial, manufacturer, model or
 * slot id from the URI; uninitialised tokens are skipped), logs in **once** with the PIN, finds the private key
 * (`CKA_CLASS` private key plus `CKA_LABEL` and/or `CKA_ID`) and reads the public key from the matching public
 * key object, else the certificate object, else (RSA) the private key's modulus and exponent.
 *
 * Where the PIN comes from, first present wins: {@linkcode Pkcs11Options.pin}; the URI's `pin-value`; its
 * `pin-source` file (first line); `COSIGN_PKCS11_PIN`; a prompt without echo when stdin is a terminal
 * (injectable). Without any, a token that requires login fails with `KEY_PASSPHRASE`. The PIN is zeroed after
 * `C_Login` and never appears in errors.
 *
 * Signing, as cosign does it: ECDSA (P-256, P-384, P-521) = SHA-256 of the message, `CKM_ECDSA` on the
 * digest (SoftHSM2 has no `CKM_ECDSA_SHA256`), raw `r‖s` converted to ASN.1 DER; RSA = `CKM_SHA256_RSA_PKCS`
 * on the message (falling back to `CKM_RSA_PKCS` over a SHA-256 DigestInfo when the token lacks it).
 *
 * Concurrency: airlock signs with many jobs at once. By default each signature is two synchronous FFI calls
 * (`C_SignInit`, `C_Sign`) on one session; JavaScript runs them back to back, so concurrent `sign()` calls
 * are serialised without a lock. {@linkcode Pkcs11Options.sessions} > 1 switches to a pool of sessions with
 * `nonblocking` `C_Sign` calls on worker threads. Measured with SoftHSM2 2.6.1 on 2 cores (bench/keys_bench.ts,
 * 1000 payloads, 4 signers at once): ECDSA P-256 ~11,700 sig/s synchronous vs ~10,400 with 4 nonblocking
 * sessions; RSA-2048 ~1,300 vs ~1,200. SoftHSM2 serialises signing inside the module (CPU time equals wall
 * time with 4 sessions, although Deno runs nonblocking calls in parallel: 4 × `usleep(200 ms)` take 200 ms),
 * so the thread hop only costs. The synchronous call blocks the event loop for ~0.1 ms (EC) to ~0.8 ms (RSA),
 * nothing next to the registry's ~20 ms per signature. The pool is for tokens that sign slowly but in
 * parallel (network HSMs).
 *
 * One module loaded twice in a process (two keys on one token) shares one `C_Initialize` and one login;
 * both are undone when the last key closes.
 *
 * Errors: `INVALID_ARGUMENT` (URI), `KEY_BACKEND` (module does not load — the message names the path — or a
 * Cryptoki call fails: the `CKR_…` name is in the message), `KEY_NOT_FOUND` (token, slot or key object),
 * `KEY_PASSPHRASE` (no PIN, wrong PIN `CKR_PIN_INCORRECT`, locked PIN), `KEY_UNSUPPORTED` (key type),
 * `KEY_EXISTS` (generating over an existing key), `IO_ERROR` (pin-source file).
 *
 * @example
 * ```ts
 * const key = await openPkcs11Key("pkcs11:token=test;object=sigkey?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=/run/pin");
 * try {
 *   const sig = await key.sign(payload);
 * } finally {
 *   await key.close();
 * }
 * ```
 *
 * @module
 */
import { AirlockError } from "../../core/errors.ts";
import { DER, derEncode, derOid, oidToString, readDer, readDerOne } from "../../core/encoding/der.ts";
import {
  curveFromOid,
  ecdsaRawToDer,
  OID,
  type PublicKey,
  publicKeyFromSpki,
} from "../../core/signature/public_key.ts";
import { encodePem } from "../../core/encoding/pem.ts";
import type { KeyBackend } from "../key_types.ts";
import { sha256 } from "../kms_key.ts";
import { defaultEnv, defaultIsTerminal, readPassphraseFile, terminalPrompt } from "../passphrase.ts";
import { CKA, CKC, CKF, CKK, CKM, CKO, CKR } from "./constants.ts";
import {
  attrBool,
  attrBytes,
  type Attribute,
  attrUlong,
  Cryptoki,
  CryptokiError,
  type Handle,
  readUlong,
  type TokenInfo,
} from "./cryptoki.ts";
import { parsePkcs11Uri, PKCS11_PIN_ENV, type Pkcs11Uri } from "./uri.ts";

/** Options of {@linkcode openPkcs11Key} and {@linkcode generatePkcs11KeyPair}. */
export interface Pkcs11Options {
  /** The PIN itself (library callers); wins over every other source. A string is encoded as UTF-8. */
  pin?: string | Uint8Array;
  /**
   * Reads an environment variable (`COSIGN_PKCS11_PIN`, `COSIGN_PKCS11_MODULE_PATH`); defaults to
   * `Deno.env.get`. Pass `() => undefined` to ignore the environment.
   */
  env?: (name: string) => string | undefined;
  /** Asks for the PIN; receives the prompt text. Defaults to a terminal prompt without echo. */
  prompt?: (message: string) => Promise<string>;
  /** Whether stdin is a terminal (the prompt is used only then); defaults to `Deno.stdin.isTerminal()`. */
  isTerminal?: () => boolean;
  /**
   * Signing sessions. `1` (default): synchronous FFI calls on one session, concurrent signers serialised.
   * More: a pool of that many sessions with `nonblocking` `C_Sign` calls on worker threads.
   */
  sessions?: number;
}

/** A PKCS#11 key, opened and logged in: a {@linkcode KeyBackend} with a few facts about the key. */
export interface Pkcs11Key extends KeyBackend {
  /** The key's algorithm and curve, and its SPKI. */
  readonly key: PublicKey;
  /** The token label the key lives on. */
  readonly tokenLabel: string;
}

// ---------------------------------------------------------------------------------------------------------------
// Shared modules: one C_Initialize and one login per (module, slot) and process

interface LoadedModule {
  readonly ck: Cryptoki;
  /** Whether we called C_Initialize (and so must call C_Finalize). */
  readonly owned: boolean;
  refs: number;
  /** Logged-in slots → number of keys relying on the login. */
  readonly logins: Map<Handle, number>;
}

const modules = new Map<string, LoadedModule>();

function backendError(message: string, cause?: unknown): AirlockError {
  return new AirlockError("KEY_BACKEND", message, { cause });
}

async function acquireModule(path: string): Promise<LoadedModule> {
  const loaded = modules.get(path);
  if (loaded) {
    loaded.refs++;
    return loaded;
  }
  if (path.includes("/")) {
    try {
      const st = await Deno.stat(path);
      if (!st.isFile) throw backendError(`PKCS#11 module "${path}" is not a file`);
    } catch (e) {
      if (e instanceof AirlockError) throw e;
      if (e instanceof Deno.errors.NotFound) throw backendError(`PKCS#11 module "${path}" does not exist`, e);
      // permission problems: let dlopen report them
    }
  }
  let ck: Cryptoki;
  try {
    ck = Cryptoki.load(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
      throw backendError(`loading PKCS#11 module "${path}" needs FFI permission (--allow-ffi)`, e);
    }
    if (e instanceof CryptokiError) throw backendError(`PKCS#11 module "${path}": ${e.message}`, e);
    const msg = (e as Error).message;
    const what = msg.includes("C_GetFunctionList") ? " (not a PKCS#11 module: no C_GetFunctionList)" : "";
    throw backendError(`cannot load PKCS#11 module "${path}"${what}: ${msg}`, e);
  }
  let owned: boolean;
  try {
    owned = ck.initialize();
  } catch (e) {
    ck.close();
    throw backendError(`PKCS#11 module "${path}": ${(e as Error).message}`, e);
  }
  // The map may have gained an entry while we awaited stat: keep the first, drop ours.
  const raced = modules.get(path);
  if (raced) {
    if (owned) ck.finalize();
    raced.refs++;
    return raced;
  }
  const m: LoadedModule = { ck, owned, refs: 1, logins: new Map() };
  modules.set(path, m);
  return m;
}

function releaseModule(m: LoadedModule): void {
  if (--m.refs > 0) return;
  modules.delete(m.ck.path);
  try {
    if (m.owned) m.ck.finalize();
  } finally {
    m.ck.close();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Token, PIN, objects

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** How the URI names the key, for messages: `label "k", id 01`. */
function keyName(uri: Pkcs11Uri): string {
  const parts: string[] = [];
  if (uri.object !== undefined) parts.push(`label "${uri.object}"`);
  if (uri.id !== undefined) parts.push(`id ${hex(uri.id)}`);
  return parts.join(", ");
}

function tokenName(uri: Pkcs11Uri): string {
  const parts: string[] = [];
  if (uri.token !== undefined) parts.push(`label "${uri.token}"`);
  if (uri.serial !== undefined) parts.push(`serial "${uri.serial}"`);
  if (uri.manufacturer !== undefined) parts.push(`manufacturer "${uri.manufacturer}"`);
  if (uri.model !== undefined) parts.push(`model "${uri.model}"`);
  if (uri.slotId !== undefined) parts.push(`slot-id ${uri.slotId}`);
  return parts.join(", ");
}

function tokenMatches(uri: Pkcs11Uri, t: TokenInfo): boolean {
  return (uri.token === undefined || uri.token === t.label) &&
    (uri.serial === undefined || uri.serial === t.serial) &&
    (uri.manufacturer === undefined || uri.manufacturer === t.manufacturer) &&
    (uri.model === undefined || uri.model === t.model);
}

/** Finds the one slot whose token matches the URI. */
function findSlot(ck: Cryptoki, uri: Pkcs11Uri): { slot: Handle; token: TokenInfo } {
  const where = `PKCS#11 module "${ck.path}"`;
  if (uri.slotId !== undefined) {
    let token: TokenInfo;
    try {
      token = ck.getTokenInfo(uri.slotId);
    } catch (e) {
      if (e instanceof CryptokiError && [CKR.SLOT_ID_INVALID, CKR.TOKEN_NOT_PRESENT].includes(e.rv as 3)) {
        throw new AirlockError("KEY_NOT_FOUND", `no token in slot ${uri.slotId} of ${where} (${e.rvName})`, {
          cause: e,
        });
      }
      throw backendError(`${where}: ${(e as Error).message}`, e);
    }
    if (!tokenMatches(uri, token)) {
      throw new AirlockError(
        "KEY_NOT_FOUND",
        `the token in slot ${uri.slotId} of ${where} (label "${token.label}") does not match ${
          tokenName(uri)
        }`,
      );
    }
    return { slot: uri.slotId, token };
  }
  let found: { slot: Handle; token: TokenInfo }[];
  const labels: string[] = [];
  try {
    found = [];
    for (const slot of ck.getSlotList(true)) {
      const token = ck.getTokenInfo(slot);
      if (!(token.flags & CKF.TOKEN_INITIALIZED)) continue;
      labels.push(`"${token.label}"`);
      if (tokenMatches(uri, token)) found.push({ slot, token });
    }
  } catch (e) {
    throw backendError(`${where}: ${(e as Error).message}`, e);
  }
  if (found.length === 0) {
    throw new AirlockError(
      "KEY_NOT_FOUND",
      `no PKCS#11 token with ${tokenName(uri)} in ${where} (tokens: ${labels.join(", ") || "none"})`,
    );
  }
  if (found.length > 1) {
    throw new AirlockError(
      "INVALID_ARGUMENT",
      `${found.length} PKCS#11 tokens match ${
        tokenName(uri)
      } in ${where}: add serial= or slot-id= to the URI`,
    );
  }
  return found[0];
}

/** The PIN bytes, or `undefined` when the token needs none and none was given. */
async function resolvePin(
  uri: Pkcs11Uri,
  token: TokenInfo,
  options: Pkcs11Options,
): Promise<Uint8Array | undefined> {
  const enc = new TextEncoder();
  if (options.pin !== undefined) {
    return typeof options.pin === "string" ? enc.encode(options.pin) : options.pin.slice();
  }
  if (uri.pinValue !== undefined) return enc.encode(uri.pinValue);
  if (uri.pinSource !== undefined) return await readPassphraseFile(uri.pinSource);
  const fromEnv = (options.env ?? defaultEnv)(PKCS11_PIN_ENV);
  if (fromEnv !== undefined && fromEnv !== "") return enc.encode(fromEnv);
  if (!(token.flags & CKF.LOGIN_REQUIRED)) return undefined;
  if (token.flags & CKF.PROTECTED_AUTHENTICATION_PATH) return new Uint8Array(0); // PIN pad on the reader
  if ((options.isTerminal ?? defaultIsTerminal)()) {
    const answer = await (options.prompt ?? terminalPrompt)(
      `Enter PIN for key ${keyName(uri)} in PKCS#11 token "${token.label}": `,
    );
    return enc.encode(answer);
  }
  throw new AirlockError(
    "KEY_PASSPHRASE",
    `no PIN for PKCS#11 token "${token.label}": stdin is not a terminal, so airlock cannot ask for it; ` +
      `add pin-source=FILE to the URI or set ${PKCS11_PIN_ENV}`,
  );
}

function loginError(token: TokenInfo, e: unknown): AirlockError {
  if (e instanceof CryptokiError) {
    const pinCodes: number[] = [
      CKR.PIN_INCORRECT,
      CKR.PIN_INVALID,
      CKR.PIN_LEN_RANGE,
      CKR.PIN_EXPIRED,
      CKR.PIN_LOCKED,
      CKR.USER_PIN_NOT_INITIALIZED,
    ];
    if (pinCodes.includes(e.rv)) {
      return new AirlockError(
        "KEY_PASSPHRASE",
        `login to PKCS#11 token "${token.label}" failed: ${e.message}`,
        {
          cause: e,
        },
      );
    }
  }
  return backendError(`login to PKCS#11 token "${token.label}" failed: ${(e as Error).message}`, e);
}

/** Logs in once per (module, slot) and process. */
function login(m: LoadedModule, session: Handle, slot: Handle, token: TokenInfo, pin: Uint8Array): void {
  const n = m.logins.get(slot);
  if (n !== undefined) {
    m.logins.set(slot, n + 1);
    return;
  }
  try {
    m.ck.login(session, pin.length === 0 && token.flags & CKF.PROTECTED_AUTHENTICATION_PATH ? null : pin);
  } catch (e) {
    throw loginError(token, e);
  }
  m.logins.set(slot, 1);
}

function logout(m: LoadedModule, session: Handle, slot: Handle): void {
  const n = m.logins.get(slot);
  if (n === undefined) return;
  if (n > 1) {
    m.logins.set(slot, n - 1);
    return;
  }
  m.logins.delete(slot);
  m.ck.logout(session);
}

function keyTemplate(cls: number, uri: Pkcs11Uri, id?: Uint8Array): Attribute[] {
  const t = [attrUlong(CKA.CLASS, cls)];
  if (uri.object !== undefined) t.push(attrBytes(CKA.LABEL, new TextEncoder().encode(uri.object)));
  const theId = id ?? uri.id;
  if (theId !== undefined) t.push(attrBytes(CKA.ID, theId));
  return t;
}

/** Byte length of a coordinate (and of `r`, `s`) on each curve. */
const CURVE_SIZE = { "P-256": 32, "P-384": 48, "P-521": 66 } as const;

/** SPKI DER of an EC public key from `CKA_EC_PARAMS` and `CKA_EC_POINT`. */
function ecSpki(params: Uint8Array, point: Uint8Array): Uint8Array {
  const oid = oidToString(readDerOne(params, DER.OID).value);
  const curve = curveFromOid(oid);
  if (!curve) throw new AirlockError("KEY_UNSUPPORTED", `unsupported elliptic curve ${oid}`);
  const size = CURVE_SIZE[curve];
  // CKA_EC_POINT is a DER OCTET STRING around the uncompressed point; a few modules return the bare point.
  const raw = point.length === 1 + 2 * size && point[0] === 4
    ? point
    : readDerOne(point, DER.OCTET_STRING).value;
  return derEncode(
    DER.SEQUENCE,
    derEncode(DER.SEQUENCE, derOid(OID.EC_PUBLIC_KEY), derOid(oid)),
    derEncode(DER.BIT_STRING, new Uint8Array([0]), raw),
  );
}

function derUnsigned(b: Uint8Array): Uint8Array {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  const v = b.subarray(i);
  return v[0] & 0x80 ? derEncode(DER.INTEGER, new Uint8Array([0]), v) : derEncode(DER.INTEGER, v);
}

/** SPKI DER of an RSA public key from `CKA_MODULUS` and `CKA_PUBLIC_EXPONENT`. */
function rsaSpki(modulus: Uint8Array, exponent: Uint8Array): Uint8Array {
  return derEncode(
    DER.SEQUENCE,
    derEncode(DER.SEQUENCE, derOid(OID.RSA_ENCRYPTION), derEncode(DER.NULL)),
    derEncode(
      DER.BIT_STRING,
      new Uint8Array([0]),
      derEncode(DER.SEQUENCE, derUnsigned(modulus), derUnsigned(exponent)),
    ),
  );
}

/** The SubjectPublicKeyInfo inside an X.509 certificate (DER). */
function certificateSpki(cert: Uint8Array): Uint8Array {
  const tbs = readDer(readDerOne(cert, DER.SEQUENCE).value)[0];
  const fields = readDer(tbs.value);
  const start = fields[0]?.tag === 0xa0 ? 1 : 0; // [0] version
  const spki = fields[start + 5]; // serial, signature, issuer, validity, subject, spki
  if (!spki || spki.tag !== DER.SEQUENCE) throw new Error("certificate without subjectPublicKeyInfo");
  return spki.raw;
}

/** Reads the public key of the pair (public key object, else certificate, else the RSA private key). */
function readPublicSpki(
  ck: Cryptoki,
  session: Handle,
  uri: Pkcs11Uri,
  priv: Handle,
  keyType: number,
): Uint8Array {
  const privId = ck.getAttributes(session, priv, [CKA.ID]).get(CKA.ID);
  const tries = [keyTemplate(CKO.PUBLIC_KEY, uri)];
  if (privId && privId.length && uri.id === undefined) tries.push(keyTemplate(CKO.PUBLIC_KEY, {}, privId));
  for (const t of tries) {
    const [pub] = ck.findObjects(session, t);
    if (pub === undefined) continue;
    const a = ck.getAttributes(session, pub, [CKA.EC_PARAMS, CKA.EC_POINT, CKA.MODULUS, CKA.PUBLIC_EXPONENT]);
    if (keyType === CKK.EC && a.get(CKA.EC_PARAMS) && a.get(CKA.EC_POINT)) {
      return ecSpki(a.get(CKA.EC_PARAMS)!, a.get(CKA.EC_POINT)!);
    }
    if (keyType === CKK.RSA && a.get(CKA.MODULUS) && a.get(CKA.PUBLIC_EXPONENT)) {
      return rsaSpki(a.get(CKA.MODULUS)!, a.get(CKA.PUBLIC_EXPONENT)!);
    }
  }
  const certTries = [keyTemplate(CKO.CERTIFICATE, uri)];
  if (privId && privId.length && uri.id === undefined) {
    certTries.push(keyTemplate(CKO.CERTIFICATE, {}, privId));
  }
  for (const t of certTries) {
    t.push(attrUlong(CKA.CERTIFICATE_TYPE, CKC.X_509));
    const [cert] = ck.findObjects(session, t);
    const value = cert === undefined
      ? undefined
      : ck.getAttributes(session, cert, [CKA.VALUE]).get(CKA.VALUE);
    if (value) return certificateSpki(value);
  }
  if (keyType === CKK.RSA) {
    const a = ck.getAttributes(session, priv, [CKA.MODULUS, CKA.PUBLIC_EXPONENT]);
    if (a.get(CKA.MODULUS) && a.get(CKA.PUBLIC_EXPONENT)) {
      return rsaSpki(a.get(CKA.MODULUS)!, a.get(CKA.PUBLIC_EXPONENT)!);
    }
  }
  throw new AirlockError(
    "KEY_NOT_FOUND",
    `no public key or certificate object for the PKCS#11 key with ${keyName(uri)}`,
  );
}

// ---------------------------------------------------------------------------------------------------------------
// The backend

/** The OID of SHA-256 (`id-sha256`), named in a PKCS#1 v1.5 DigestInfo. */
const OID_SHA256 = "2.16.840.1.101.3.4.2.1";

/** The DER DigestInfo of a SHA-256 digest (PKCS#1 v1.5), for tokens without `CKM_SHA256_RSA_PKCS`. */
function sha256DigestInfo(digest: Uint8Array): Uint8Array {
  return derEncode(
    DER.SEQUENCE,
    derEncode(DER.SEQUENCE, derOid(OID_SHA256), derEncode(DER.NULL)),
    derEncode(DER.OCTET_STRING, digest),
  );
}

class TokenKey implements Pkcs11Key {
  readonly key: PublicKey;
  readonly tokenLabel: string;
  readonly #m: LoadedModule;
  readonly #slot: Handle;
  readonly #main: Handle;
  readonly #priv: Handle;
  readonly #name: string;
  readonly #pem: string;
  /** Sessions for nonblocking signing (empty in synchronous mode). */
  readonly #pool: Handle[] = [];
  readonly #idle: Handle[] = [];
  readonly #waiters: ((s: Handle) => void)[] = [];
  readonly #inFlight = new Set<Promise<unknown>>();
  #rsaMechanism: number = CKM.SHA256_RSA_PKCS;
  #closed = false;

  constructor(
    m: LoadedModule,
    slot: Handle,
    main: Handle,
    priv: Handle,
    key: PublicKey,
    tokenLabel: string,
    name: string,
    sessions: Handle[],
  ) {
    this.#m = m;
    this.#slot = slot;
    this.#main = main;
    this.#priv = priv;
    this.key = key;
    this.tokenLabel = tokenLabel;
    this.#name = name;
    this.#pem = encodePem("PUBLIC KEY", key.spki);
    this.#pool.push(...sessions);
    this.#idle.push(...sessions);
  }

  publicKey(): Promise<string> {
    return Promise.resolve(this.#pem);
  }

  /** The mechanism and the data to sign for `message`. */
  #input(message: Uint8Array): [number, Uint8Array] {
    if (this.key.algorithm === "ecdsa") return [CKM.ECDSA, sha256(message)];
    if (this.#rsaMechanism === CKM.SHA256_RSA_PKCS) return [CKM.SHA256_RSA_PKCS, message];
    return [CKM.RSA_PKCS, sha256DigestInfo(sha256(message))];
  }

  #output(sig: Uint8Array): Uint8Array {
    if (this.key.algorithm !== "ecdsa") return sig;
    if (sig.length !== 2 * CURVE_SIZE[this.key.curve!]) {
      throw backendError(`the PKCS#11 token returned an ECDSA signature of ${sig.length} bytes`);
    }
    return ecdsaRawToDer(sig);
  }

  /** `C_SignInit`, switching RSA to `CKM_RSA_PKCS` once if the token lacks `CKM_SHA256_RSA_PKCS`. */
  #signInit(session: Handle, message: Uint8Array): Uint8Array {
    let [mech, data] = this.#input(message);
    try {
      this.#m.ck.signInit(session, mech, this.#priv);
    } catch (e) {
      if (!(e instanceof CryptokiError) || e.rv !== CKR.MECHANISM_INVALID || mech !== CKM.SHA256_RSA_PKCS) {
        throw e;
      }
      this.#rsaMechanism = CKM.RSA_PKCS;
      [mech, data] = this.#input(message);
      this.#m.ck.signInit(session, mech, this.#priv);
    }
    return data;
  }

  #signError(e: unknown): AirlockError {
    if (e instanceof AirlockError) return e;
    return backendError(`signing with PKCS#11 key ${this.#name} failed: ${(e as Error).message}`, e);
  }

  sign(message: Uint8Array): Promise<Uint8Array> {
    if (this.#closed) return Promise.reject(backendError(`PKCS#11 key ${this.#name} is closed`));
    if (this.#pool.length === 0) {
      try {
        const data = this.#signInit(this.#main, message);
        return Promise.resolve(this.#output(this.#m.ck.sign(this.#main, data)));
      } catch (e) {
        return Promise.reject(this.#signError(e));
      }
    }
    const p = this.#signPooled(message);
    this.#inFlight.add(p);
    p.finally(() => this.#inFlight.delete(p)).catch(() => {});
    return p;
  }

  async #signPooled(message: Uint8Array): Promise<Uint8Array> {
    const session = this.#idle.pop() ?? await new Promise<Handle>((r) => this.#waiters.push(r));
    try {
      const data = this.#signInit(session, message);
      return this.#output(await this.#m.ck.signNonblocking(session, data));
    } catch (e) {
      throw this.#signError(e);
    } finally {
      const next = this.#waiters.shift();
      if (next) next(session);
      else this.#idle.push(session);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#inFlight]);
    const ck = this.#m.ck;
    try {
      for (const s of this.#pool) ck.closeSession(s);
      logout(this.#m, this.#main, this.#slot);
      ck.closeSession(this.#main);
    } catch {
      // closing is best effort: the module is finalised below anyway
    } finally {
      releaseModule(this.#m);
    }
  }
}

/** Runs `fn` with a loaded module, releasing it when `fn` throws. */
async function withModule<T>(
  uri: Pkcs11Uri,
  fn: (m: LoadedModule) => Promise<T>,
): Promise<T> {
  const m = await acquireModule(uri.modulePath!);
  try {
    return await fn(m);
  } catch (e) {
    releaseModule(m);
    throw e;
  }
}

/** Opens a session on the URI's token and logs in when the token needs it (or a PIN was given). */
async function openSessionAndLogin(
  m: LoadedModule,
  uri: Pkcs11Uri,
  options: Pkcs11Options,
  rw: boolean,
): Promise<{ slot: Handle; token: TokenInfo; session: Handle; loggedIn: boolean }> {
  const { slot, token } = findSlot(m.ck, uri);
  const pin = await resolvePin(uri, token, options);
  let session: Handle;
  try {
    session = m.ck.openSession(slot, rw);
  } catch (e) {
    pin?.fill(0);
    throw backendError(`opening a session on PKCS#11 token "${token.label}": ${(e as Error).message}`, e);
  }
  if (pin === undefined) return { slot, token, session, loggedIn: false };
  try {
    login(m, session, slot, token, pin);
  } catch (e) {
    try {
      m.ck.closeSession(session);
    } catch {
      // best effort: the login error matters
    }
    throw e;
  } finally {
    pin.fill(0);
  }
  return { slot, token, session, loggedIn: true };
}

function findPrivateKey(ck: Cryptoki, session: Handle, uri: Pkcs11Uri, token: TokenInfo): Handle {
  let found: Handle[];
  try {
    found = ck.findObjects(session, keyTemplate(CKO.PRIVATE_KEY, uri));
  } catch (e) {
    throw backendError(`searching PKCS#11 token "${token.label}": ${(e as Error).message}`, e);
  }
  if (found.length === 0) {
    const hint = token.flags & CKF.LOGIN_REQUIRED
      ? ""
      : " (or it is private and the token was not logged in)";
    throw new AirlockError(
      "KEY_NOT_FOUND",
      `no private key with ${keyName(uri)} on PKCS#11 token "${token.label}"${hint}`,
    );
  }
  if (found.length > 1) {
    throw new AirlockError(
      "INVALID_ARGUMENT",
      `${found.length} private keys with ${
        keyName(uri)
      } on PKCS#11 token "${token.label}": add id= or object= ` +
        "to the URI",
    );
  }
  return found[0];
}

/**
 * Opens the private key named by a `pkcs11:` URI and logs in to its token (see the module doc).
 *
 * @example
 * ```ts
 * const key = await openPkcs11Key("pkcs11:token=test;id=%01?module-path=/usr/lib/softhsm/libsofthsm2.so", { pin: "1234" });
 * const pem = await key.publicKey();
 * await key.close();
 * ```
 */
export async function openPkcs11Key(ref: string, options: Pkcs11Options = {}): Promise<Pkcs11Key> {
  const uri = parsePkcs11Uri(ref, { env: options.env });
  const sessions = options.sessions ?? 1;
  if (!Number.isInteger(sessions) || sessions < 1 || sessions > 64) {
    throw new AirlockError("INVALID_ARGUMENT", `PKCS#11 sessions must be 1-64, not ${sessions}`);
  }
  return await withModule(uri, async (m) => {
    const { slot, token, session, loggedIn } = await openSessionAndLogin(m, uri, options, false);
    const pool: Handle[] = [];
    try {
      const priv = findPrivateKey(m.ck, session, uri, token);
      const typeBytes = m.ck.getAttributes(session, priv, [CKA.KEY_TYPE]).get(CKA.KEY_TYPE);
      const keyType = typeBytes ? readUlong(typeBytes) : -1;
      if (keyType !== CKK.EC && keyType !== CKK.RSA) {
        throw new AirlockError(
          "KEY_UNSUPPORTED",
          `the PKCS#11 key with ${keyName(uri)} has key type 0x${
            keyType.toString(16)
          }; airlock signs with EC and ` +
            "RSA keys",
        );
      }
      let key: PublicKey;
      try {
        key = publicKeyFromSpki(readPublicSpki(m.ck, session, uri, priv, keyType));
      } catch (e) {
        if (e instanceof AirlockError) throw e;
        throw backendError(
          `reading the public key of PKCS#11 key ${keyName(uri)}: ${(e as Error).message}`,
          e,
        );
      }
      if (sessions > 1) {
        for (let i = 0; i < sessions; i++) pool.push(m.ck.openSession(slot, false));
      }
      return new TokenKey(m, slot, session, priv, key, token.label, keyName(uri), pool);
    } catch (e) {
      try {
        for (const s of pool) m.ck.closeSession(s);
        if (loggedIn) logout(m, session, slot);
        m.ck.closeSession(session);
      } catch {
        // best effort: the original error matters
      }
      if (e instanceof AirlockError) throw e;
      throw backendError(`PKCS#11 token "${token.label}": ${(e as Error).message}`, e);
    }
  });
}

/** A key pair generated on a token. */
export interface GeneratedPkcs11Key {
  /** The public key, PEM `PUBLIC KEY`. */
  publicPem: string;
  /** The `CKA_ID` given to both objects (from the URI, else 16 random bytes). */
  id: Uint8Array;
  /** The `CKA_LABEL` given to both objects (from the URI), if any. */
  label?: string;
}

/**
 * Generates an ECDSA P-256 key pair on the token named by a `pkcs11:` URI (`CKM_EC_KEY_PAIR_GEN`): a
 * sensitive, non-extractable private key allowed to sign, and its public key, both with the URI's `object`
 * label and `id` (a random 16-byte id when the URI has none). Fails with `KEY_EXISTS` when a private key with
 * that label or id is on the token already; nothing is overwritten.
 *
 * @example
 * ```ts
 * const { publicPem } = await generatePkcs11KeyPair("pkcs11:token=test;object=release?module-path=/usr/lib/softhsm/libsofthsm2.so", { pin: "1234" });
 * ```
 */
export async function generatePkcs11KeyPair(
  ref: string,
  options: Pkcs11Options = {},
): Promise<GeneratedPkcs11Key> {
  const uri = parsePkcs11Uri(ref, { env: options.env });
  const m = await acquireModule(uri.modulePath!);
  let opened: Awaited<ReturnType<typeof openSessionAndLogin>>;
  try {
    opened = await openSessionAndLogin(m, uri, options, true);
  } catch (e) {
    releaseModule(m);
    throw e;
  }
  const { slot, token, session, loggedIn } = opened;
  try {
    const ck = m.ck;
    const existing = [
      ...(uri.object !== undefined
        ? ck.findObjects(session, keyTemplate(CKO.PRIVATE_KEY, { object: uri.object }))
        : []),
      ...(uri.id !== undefined ? ck.findObjects(session, keyTemplate(CKO.PRIVATE_KEY, { id: uri.id })) : []),
    ];
    if (existing.length > 0) {
      throw new AirlockError(
        "KEY_EXISTS",
        `a private key with ${keyName(uri)} exists on PKCS#11 token "${token.label}" already`,
      );
    }
    const id = uri.id ?? crypto.getRandomValues(new Uint8Array(16));
    const common = (cls: number): Attribute[] => [
      attrUlong(CKA.CLASS, cls),
      attrUlong(CKA.KEY_TYPE, CKK.EC),
      attrBool(CKA.TOKEN, true),
      attrBytes(CKA.ID, id),
      ...(uri.object !== undefined ? [attrBytes(CKA.LABEL, new TextEncoder().encode(uri.object))] : []),
    ];
    const [pub] = ck.generateKeyPair(
      session,
      CKM.EC_KEY_PAIR_GEN,
      [...common(CKO.PUBLIC_KEY), attrBool(CKA.VERIFY, true), attrBytes(CKA.EC_PARAMS, derOid(OID.P256))],
      [
        ...common(CKO.PRIVATE_KEY),
        attrBool(CKA.PRIVATE, true),
        attrBool(CKA.SENSITIVE, true),
        attrBool(CKA.EXTRACTABLE, false),
        attrBool(CKA.SIGN, true),
      ],
    );
    const a = ck.getAttributes(session, pub, [CKA.EC_PARAMS, CKA.EC_POINT]);
    const spki = ecSpki(a.get(CKA.EC_PARAMS)!, a.get(CKA.EC_POINT)!);
    publicKeyFromSpki(spki);
    return { publicPem: encodePem("PUBLIC KEY", spki), id, label: uri.object };
  } catch (e) {
    if (e instanceof AirlockError) throw e;
    if (e instanceof CryptokiError && e.rv === CKR.USER_NOT_LOGGED_IN) {
      throw new AirlockError(
        "KEY_PASSPHRASE",
        `generating a key on PKCS#11 token "${token.label}" needs a login: give the PIN`,
        { cause: e },
      );
    }
    throw backendError(`generating a key on PKCS#11 token "${token.label}": ${(e as Error).message}`, e);
  } finally {
    try {
      if (loggedIn) logout(m, session, slot);
      m.ck.closeSession(session);
    } finally {
      releaseModule(m);
    }
  }
}
