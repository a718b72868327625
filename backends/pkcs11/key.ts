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
import { DER, derEncode, derOid } from "../../core/encoding/der.ts";
import { ecdsaRawToDer, OID, type PublicKey, publicKeyFromSpki } from "../../core/signature/public_key.ts";
import { encodePem } from "../../core/encoding/pem.ts";
import type { KeyBackend } from "../key_types.ts";
import { sha256 } from "../kms_key.ts";
import { CKA, CKK, CKM, CKO, CKR } from "./constants.ts";
import {
  attrBool,
  attrBytes,
  type Attribute,
  attrUlong,
  CryptokiError,
  type Handle,
  readUlong,
} from "./cryptoki.ts";
import { parsePkcs11Uri } from "./uri.ts";
import {
  acquireModule,
  backendError,
  findPrivateKey,
  keyName,
  keyTemplate,
  type LoadedModule,
  logout,
  openSessionAndLogin,
  type Pkcs11Options,
  releaseModule,
  withModule,
} from "./session.ts";
import { CURVE_SIZE, ecSpki, readPublicSpki } from "./spki.ts";

/** A PKCS#11 key, opened and logged in: a {@linkcode KeyBackend} with a few facts about the key. */
export interface Pkcs11Key extends KeyBackend {
  /** The key's algorithm and curve, and its SPKI. */
  readonly key: PublicKey;
  /** The token label the key lives on. */
  readonly tokenLabel: string;
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
