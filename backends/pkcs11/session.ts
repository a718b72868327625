/**
 * PKCS#11 modules, tokens and logins for the key backend (`key.ts`): one `C_Initialize` and one login per
 * (module, slot) and process, shared by every key on the token and undone when the last one closes; the token
 * the URI names; the PIN from the first source present (see `key.ts`), zeroed after `C_Login` and never in an
 * error; the private key object the URI names.
 *
 * @module
 */
import { AirlockError } from "../../core/errors.ts";
import { defaultEnv, defaultIsTerminal, readPassphraseFile, terminalPrompt } from "../passphrase.ts";
import { CKA, CKF, CKO, CKR } from "./constants.ts";
import {
  attrBytes,
  type Attribute,
  attrUlong,
  Cryptoki,
  CryptokiError,
  type Handle,
  type TokenInfo,
} from "./cryptoki.ts";
import { PKCS11_PIN_ENV, type Pkcs11Uri } from "./uri.ts";

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

// ---------------------------------------------------------------------------------------------------------------
// Shared modules: one C_Initialize and one login per (module, slot) and process

/** A loaded PKCS#11 module, shared by every key of the process that uses it. */
export interface LoadedModule {
  readonly ck: Cryptoki;
  /** Whether we called C_Initialize (and so must call C_Finalize). */
  readonly owned: boolean;
  refs: number;
  /** Logged-in slots → number of keys relying on the login. */
  readonly logins: Map<Handle, number>;
}

const modules = new Map<string, LoadedModule>();

/** A `KEY_BACKEND` error (a module that does not load, a failing Cryptoki call). */
export function backendError(message: string, cause?: unknown): AirlockError {
  return new AirlockError("KEY_BACKEND", message, { cause });
}

/** Loads the module at `path` (once per process) and counts one more user of it. */
export async function acquireModule(path: string): Promise<LoadedModule> {
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

/** Counts one user less; the last one finalises the module (when we initialised it). */
export function releaseModule(m: LoadedModule): void {
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
export function keyName(uri: Pkcs11Uri): string {
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
export function login(
  m: LoadedModule,
  session: Handle,
  slot: Handle,
  token: TokenInfo,
  pin: Uint8Array,
): void {
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

/** Logs the slot out when the last key relying on its login closes. */
export function logout(m: LoadedModule, session: Handle, slot: Handle): void {
  const n = m.logins.get(slot);
  if (n === undefined) return;
  if (n > 1) {
    m.logins.set(slot, n - 1);
    return;
  }
  m.logins.delete(slot);
  m.ck.logout(session);
}

/** The search template of the key objects the URI names (class, label, id). */
export function keyTemplate(cls: number, uri: Pkcs11Uri, id?: Uint8Array): Attribute[] {
  const t = [attrUlong(CKA.CLASS, cls)];
  if (uri.object !== undefined) t.push(attrBytes(CKA.LABEL, new TextEncoder().encode(uri.object)));
  const theId = id ?? uri.id;
  if (theId !== undefined) t.push(attrBytes(CKA.ID, theId));
  return t;
}

/** Runs `fn` with a loaded module, releasing it when `fn` throws. */
export async function withModule<T>(
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
export async function openSessionAndLogin(
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

/** The one private key object the URI names on the token. */
export function findPrivateKey(ck: Cryptoki, session: Handle, uri: Pkcs11Uri, token: TokenInfo): Handle {
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
