/**
 * A thin binding of the Cryptoki C API (PKCS#11 v2.40) through `Deno.dlopen` — no native addon, so
 * `deno compile` embeds it (it needs only `--allow-ffi`).
 *
 * The module is opened with `dlopen`; its only symbol looked up by name is `C_GetFunctionList`, and every other
 * function comes from the `CK_FUNCTION_LIST` it returns (function `i` at offset `8 + 8·i`: a 2-byte
 * `CK_VERSION` padded to 8, then pointers). Layout facts for LP64 (x86-64 and arm64 Linux): `CK_ULONG` is
 * 8 bytes, `CK_ATTRIBUTE` and `CK_MECHANISM` are 24 bytes, `CK_C_INITIALIZE_ARGS` 48.
 *
 * Every call returns or throws {@linkcode CryptokiError} with the `CK_RV`; mapping to airlock's error codes is
 * the caller's job ({@link ./key.ts}). `C_Sign` exists twice: a synchronous call (the event loop waits ~0.1 ms
 * on SoftHSM2) and a `nonblocking` one that runs on a worker thread and returns a promise.
 *
 * @example
 * ```ts
 * const ck = Cryptoki.load("/usr/lib/softhsm/libsofthsm2.so");
 * ck.initialize();
 * const slots = ck.getSlotList(true);
 * ck.finalize();
 * ck.close();
 * ```
 *
 * @module
 */
import { CKR, ckrDescription, ckrName, CKU } from "./constants.ts";

/** A failed Cryptoki call: which function, and its `CK_RV`. */
export class CryptokiError extends Error {
  /** The `CK_RV` returned. */
  readonly rv: number;
  /** The function, e.g. `C_Login`. */
  readonly fn: string;

  /**
   * Describes a failed call.
   *
   * @param fn the function that failed
   * @param rv its return value
   */
  constructor(fn: string, rv: number) {
    super(`${fn}: ${ckrDescription(rv)}`);
    this.name = "CryptokiError";
    this.fn = fn;
    this.rv = rv;
  }

  /** The `CKR_…` name of {@linkcode CryptokiError.rv}. */
  get rvName(): string {
    return ckrName(this.rv);
  }
}

/** One attribute of a template: its type and value bytes (see {@linkcode attrUlong}, {@linkcode attrBool}). */
export interface Attribute {
  /** `CKA_…` type. */
  readonly type: number;
  /** The value as the C structure's bytes. */
  readonly value: Uint8Array;
}

/**
 * A `CK_ULONG` attribute (8 bytes, little-endian on the supported platforms).
 */
export function attrUlong(type: number, value: number): Attribute {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(value), true);
  return { type, value: b };
}

/**
 * A `CK_BBOOL` attribute (1 byte).
 */
export function attrBool(type: number, value: boolean): Attribute {
  return { type, value: new Uint8Array([value ? 1 : 0]) };
}

/**
 * A byte-array attribute (labels, ids, DER values).
 */
export function attrBytes(type: number, value: Uint8Array): Attribute {
  return { type, value };
}

/**
 * Reads a `CK_ULONG` attribute value.
 */
export function readUlong(value: Uint8Array): number {
  return Number(new DataView(value.buffer, value.byteOffset, value.byteLength).getBigUint64(0, true));
}

/** What `C_GetTokenInfo` says about a token (text fields with their blank padding removed). */
export interface TokenInfo {
  /** `label` (32 bytes, blank padded). */
  readonly label: string;
  /** `manufacturerID`. */
  readonly manufacturer: string;
  /** `model`. */
  readonly model: string;
  /** `serialNumber`. */
  readonly serial: string;
  /** `flags` (`CKF_LOGIN_REQUIRED`, `CKF_TOKEN_INITIALIZED`, …). */
  readonly flags: number;
}

const U64 = "u64" as const;
const BUF = "buffer" as const;
const PTR = "pointer" as const;

const DEFS = {
  C_Initialize: { index: 0, parameters: [BUF], result: U64 },
  C_Finalize: { index: 1, parameters: [PTR], result: U64 },
  C_GetSlotList: { index: 4, parameters: ["u8", BUF, BUF], result: U64 },
  C_GetTokenInfo: { index: 6, parameters: [U64, BUF], result: U64 },
  C_OpenSession: { index: 12, parameters: [U64, U64, PTR, PTR, BUF], result: U64 },
  C_CloseSession: { index: 13, parameters: [U64], result: U64 },
  C_Login: { index: 18, parameters: [U64, U64, BUF, U64], result: U64 },
  C_Logout: { index: 19, parameters: [U64], result: U64 },
  C_GetAttributeValue: { index: 24, parameters: [U64, U64, BUF, U64], result: U64 },
  C_FindObjectsInit: { index: 26, parameters: [U64, BUF, U64], result: U64 },
  C_FindObjects: { index: 27, parameters: [U64, BUF, U64, BUF], result: U64 },
  C_FindObjectsFinal: { index: 28, parameters: [U64], result: U64 },
  C_SignInit: { index: 42, parameters: [U64, BUF, U64], result: U64 },
  C_Sign: { index: 43, parameters: [U64, BUF, U64, BUF, BUF], result: U64 },
  C_GenerateKeyPair: { index: 59, parameters: [U64, BUF, BUF, U64, BUF, U64, BUF, BUF], result: U64 },
} as const;

type FnName = keyof typeof DEFS;
type FnDef<N extends FnName> = {
  readonly parameters: (typeof DEFS)[N]["parameters"];
  readonly result: "u64";
};
type Fns = { [N in FnName]: Deno.UnsafeFnPointer<FnDef<N>> };
type NonblockingSign = Deno.UnsafeFnPointer<FnDef<"C_Sign"> & { readonly nonblocking: true }>;

/** `CK_UNAVAILABLE_INFORMATION` (`~0UL`): an attribute that is absent or sensitive. */
const UNAVAILABLE = 0xffff_ffff_ffff_ffffn;

/** Handle of a session or object (`CK_ULONG`). */
export type Handle = bigint;

function ptrValue(b: Uint8Array | null): bigint {
  if (!b || b.byteLength === 0) return 0n;
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b as Uint8Array<ArrayBuffer>)));
}

/** Packs a template into `CK_ATTRIBUTE[]` (24 bytes each); the values must stay alive during the call. */
function packTemplate(attrs: readonly Attribute[]): Uint8Array<ArrayBuffer> {
  const buf = new Uint8Array(Math.max(24 * attrs.length, 8));
  const dv = new DataView(buf.buffer);
  attrs.forEach((a, i) => {
    dv.setBigUint64(24 * i, BigInt(a.type), true);
    dv.setBigUint64(24 * i + 8, ptrValue(a.value), true);
    dv.setBigUint64(24 * i + 16, BigInt(a.value.byteLength), true);
  });
  return buf;
}

/** Packs a `CK_MECHANISM` without parameters. */
function packMechanism(mechanism: number): Uint8Array<ArrayBuffer> {
  const buf = new Uint8Array(24);
  new DataView(buf.buffer).setBigUint64(0, BigInt(mechanism), true);
  return buf;
}

function ulongCell(value = 0n): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, value, true);
  return b;
}

function readCell(b: Uint8Array): bigint {
  return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
}

const latin = new TextDecoder("utf-8");

function text(bytes: Uint8Array): string {
  return latin.decode(bytes).replace(/[ \0]+$/, "");
}

/**
 * One loaded PKCS#11 module. Not reference counted: see {@link ./key.ts} for sharing one module between keys.
 */
export class Cryptoki {
  readonly #lib: Deno.DynamicLibrary<{ C_GetFunctionList: { parameters: ["buffer"]; result: "u64" } }>;
  readonly #fn: Fns;
  readonly #signNonblocking: NonblockingSign;
  /** The path the module was loaded from. */
  readonly path: string;

  private constructor(
    path: string,
    lib: Deno.DynamicLibrary<{ C_GetFunctionList: { parameters: ["buffer"]; result: "u64" } }>,
    fns: Fns,
    signNonblocking: NonblockingSign,
  ) {
    this.path = path;
    this.#lib = lib;
    this.#fn = fns;
    this.#signNonblocking = signNonblocking;
  }

  /**
   * Loads the module at `path` and reads its function list. Throws what `Deno.dlopen` throws (the message
   * names the path), or {@linkcode CryptokiError} from `C_GetFunctionList`.
   */
  static load(path: string): Cryptoki {
    const lib = Deno.dlopen(path, { C_GetFunctionList: { parameters: ["buffer"], result: "u64" } } as const);
    try {
      const cell = ulongCell();
      const rv = Number(lib.symbols.C_GetFunctionList(cell));
      if (rv !== CKR.OK) throw new CryptokiError("C_GetFunctionList", rv);
      const list = Deno.UnsafePointer.create(readCell(cell));
      if (!list) throw new CryptokiError("C_GetFunctionList", CKR.GENERAL_ERROR);
      const view = new Deno.UnsafePointerView(list);
      const fnAt = (index: number): Deno.PointerObject<never> => {
        const p = view.getPointer(8 + 8 * index);
        if (!p) throw new Error(`the module's function list has no function ${index}`);
        return p as Deno.PointerObject<never>;
      };
      const fns = Object.fromEntries(
        Object.entries(DEFS).map(([name, d]) => [
          name,
          new Deno.UnsafeFnPointer(fnAt(d.index), { parameters: d.parameters, result: d.result }),
        ]),
      ) as unknown as Fns;
      const signNb = new Deno.UnsafeFnPointer(
        fnAt(DEFS.C_Sign.index),
        {
          parameters: DEFS.C_Sign.parameters,
          result: "u64",
          nonblocking: true,
        } as const,
      );
      return new Cryptoki(path, lib, fns, signNb);
    } catch (e) {
      lib.close();
      throw e;
    }
  }

  #check(fn: string, rv: number | bigint): void {
    const n = Number(rv);
    if (n !== CKR.OK) throw new CryptokiError(fn, n);
  }

  /**
   * `C_Initialize` with `CKF_OS_LOCKING_OK` (the module may be called from several threads). Returns `false`
   * when the module was already initialised in this process (`CKR_CRYPTOKI_ALREADY_INITIALIZED`).
   */
  initialize(): boolean {
    const args = new Uint8Array(48); // four mutex callbacks (null), flags, pReserved
    new DataView(args.buffer).setBigUint64(32, 2n, /* CKF_OS_LOCKING_OK */ true);
    const rv = Number(this.#fn.C_Initialize.call(args));
    if (rv === CKR.CRYPTOKI_ALREADY_INITIALIZED) return false;
    this.#check("C_Initialize", rv);
    return true;
  }

  /** `C_Finalize`. */
  finalize(): void {
    this.#check("C_Finalize", this.#fn.C_Finalize.call(null));
  }

  /** Unloads the library (`dlclose`). Call {@linkcode Cryptoki.finalize} first. */
  close(): void {
    this.#lib.close();
  }

  /** `C_GetSlotList`: the slot ids, only those with a token when `tokenPresent`. */
  getSlotList(tokenPresent: boolean): Handle[] {
    for (let attempt = 0;; attempt++) {
      const count = ulongCell();
      this.#check("C_GetSlotList", this.#fn.C_GetSlotList.call(tokenPresent ? 1 : 0, null, count));
      const n = Number(readCell(count));
      if (n === 0) return [];
      const list = new Uint8Array(8 * n);
      const rv = Number(this.#fn.C_GetSlotList.call(tokenPresent ? 1 : 0, list, count));
      if (rv === CKR.BUFFER_TOO_SMALL && attempt < 3) continue; // a token appeared in between
      this.#check("C_GetSlotList", rv);
      const got = Number(readCell(count));
      const dv = new DataView(list.buffer);
      return Array.from({ length: got }, (_, i) => dv.getBigUint64(8 * i, true));
    }
  }

  /** `C_GetTokenInfo`. */
  getTokenInfo(slot: Handle): TokenInfo {
    const info = new Uint8Array(256); // CK_TOKEN_INFO is 208 bytes on LP64
    this.#check("C_GetTokenInfo", this.#fn.C_GetTokenInfo.call(slot, info));
    return {
      label: text(info.subarray(0, 32)),
      manufacturer: text(info.subarray(32, 64)),
      model: text(info.subarray(64, 80)),
      serial: text(info.subarray(80, 96)),
      flags: Number(new DataView(info.buffer).getBigUint64(96, true)),
    };
  }

  /** `C_OpenSession` (serial; read-write when `rw`). */
  openSession(slot: Handle, rw = false): Handle {
    const cell = ulongCell();
    const flags = 0x4 /* CKF_SERIAL_SESSION */ | (rw ? 0x2 /* CKF_RW_SESSION */ : 0);
    this.#check("C_OpenSession", this.#fn.C_OpenSession.call(slot, BigInt(flags), null, null, cell));
    return readCell(cell);
  }

  /** `C_CloseSession`. */
  closeSession(session: Handle): void {
    this.#check("C_CloseSession", this.#fn.C_CloseSession.call(session));
  }

  /**
   * `C_Login` as `userType` (default `CKU_USER`); a `null` PIN for tokens with a protected authentication
   * path (PIN pad). `CKR_USER_ALREADY_LOGGED_IN` counts as success (the login is
   * per application, shared by all its sessions).
   */
  login(session: Handle, pin: Uint8Array | null, userType: number = CKU.USER): void {
    const rv = Number(this.#fn.C_Login.call(session, BigInt(userType), pin, BigInt(pin?.byteLength ?? 0)));
    if (rv === CKR.USER_ALREADY_LOGGED_IN) return;
    this.#check("C_Login", rv);
  }

  /** `C_Logout`; `CKR_USER_NOT_LOGGED_IN` is ignored. */
  logout(session: Handle): void {
    const rv = Number(this.#fn.C_Logout.call(session));
    if (rv === CKR.USER_NOT_LOGGED_IN) return;
    this.#check("C_Logout", rv);
  }

  /** `C_FindObjectsInit` / `C_FindObjects` / `C_FindObjectsFinal`: all objects matching `template`. */
  findObjects(session: Handle, template: readonly Attribute[]): Handle[] {
    const tpl = packTemplate(template);
    this.#check("C_FindObjectsInit", this.#fn.C_FindObjectsInit.call(session, tpl, BigInt(template.length)));
    const found: Handle[] = [];
    try {
      const batch = new Uint8Array(8 * 16);
      const count = ulongCell();
      for (;;) {
        this.#check("C_FindObjects", this.#fn.C_FindObjects.call(session, batch, 16n, count));
        const n = Number(readCell(count));
        const dv = new DataView(batch.buffer);
        for (let i = 0; i < n; i++) found.push(dv.getBigUint64(8 * i, true));
        if (n < 16) break;
      }
    } finally {
      this.#check("C_FindObjectsFinal", this.#fn.C_FindObjectsFinal.call(session));
    }
    return found;
  }

  /**
   * `C_GetAttributeValue` for each type: the value bytes, or `undefined` when the object has no such attribute
   * or it is sensitive.
   */
  getAttributes(
    session: Handle,
    object: Handle,
    types: readonly number[],
  ): Map<number, Uint8Array | undefined> {
    const out = new Map<number, Uint8Array | undefined>();
    // One attribute per call: a missing attribute then cannot hide the others (modules differ on that).
    for (const type of types) {
      const tpl = new Uint8Array(24);
      const dv = new DataView(tpl.buffer);
      dv.setBigUint64(0, BigInt(type), true);
      let rv = Number(this.#fn.C_GetAttributeValue.call(session, object, tpl, 1n));
      const len = dv.getBigUint64(16, true);
      if (
        rv === CKR.ATTRIBUTE_TYPE_INVALID || rv === CKR.ATTRIBUTE_SENSITIVE || len === UNAVAILABLE
      ) {
        out.set(type, undefined);
        continue;
      }
      this.#check("C_GetAttributeValue", rv);
      const value = new Uint8Array(Number(len));
      dv.setBigUint64(8, ptrValue(value), true);
      rv = Number(this.#fn.C_GetAttributeValue.call(session, object, tpl, 1n));
      this.#check("C_GetAttributeValue", rv);
      out.set(type, value.subarray(0, Number(dv.getBigUint64(16, true))));
    }
    return out;
  }

  /** `C_SignInit` with a mechanism that takes no parameter. */
  signInit(session: Handle, mechanism: number, key: Handle): void {
    this.#check("C_SignInit", this.#fn.C_SignInit.call(session, packMechanism(mechanism), key));
  }

  /** `C_Sign` (synchronous). `maxLength` bounds the signature (512 fits RSA-4096). */
  sign(session: Handle, data: Uint8Array, maxLength = 1024): Uint8Array {
    const sig = new Uint8Array(maxLength);
    const len = ulongCell(BigInt(maxLength));
    this.#check("C_Sign", this.#fn.C_Sign.call(session, data, BigInt(data.byteLength), sig, len));
    return sig.slice(0, Number(readCell(len)));
  }

  /** `C_Sign` on a worker thread (`nonblocking`); the session must not be used until the promise settles. */
  async signNonblocking(session: Handle, data: Uint8Array, maxLength = 1024): Promise<Uint8Array> {
    const input = data.slice(); // our own copy: nobody may change it while the thread reads it
    const sig = new Uint8Array(maxLength);
    const len = ulongCell(BigInt(maxLength));
    const rv = await this.#signNonblocking.call(session, input, BigInt(input.byteLength), sig, len);
    this.#check("C_Sign", rv);
    return sig.slice(0, Number(readCell(len)));
  }

  /** `C_GenerateKeyPair` with a mechanism that takes no parameter; returns `[public, private]` handles. */
  generateKeyPair(
    session: Handle,
    mechanism: number,
    publicTemplate: readonly Attribute[],
    privateTemplate: readonly Attribute[],
  ): [Handle, Handle] {
    const pub = packTemplate(publicTemplate);
    const priv = packTemplate(privateTemplate);
    const hPub = ulongCell();
    const hPriv = ulongCell();
    this.#check(
      "C_GenerateKeyPair",
      this.#fn.C_GenerateKeyPair.call(
        session,
        packMechanism(mechanism),
        pub,
        BigInt(publicTemplate.length),
        priv,
        BigInt(privateTemplate.length),
        hPub,
        hPriv,
      ),
    );
    // keep the template values reachable until here
    void publicTemplate, privateTemplate;
    return [readCell(hPub), readCell(hPriv)];
  }
}
