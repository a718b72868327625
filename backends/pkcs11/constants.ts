/**
 * The Cryptoki (PKCS#11 v2.40) constants airlock uses, and readable names and messages for return values.
 *
 * @module
 */

/** Object classes (`CKA_CLASS`). */
export const CKO = { CERTIFICATE: 1, PUBLIC_KEY: 2, PRIVATE_KEY: 3 } as const;

/** Attribute types. */
export const CKA = {
  CLASS: 0x0,
  TOKEN: 0x1,
  PRIVATE: 0x2,
  LABEL: 0x3,
  VALUE: 0x11,
  CERTIFICATE_TYPE: 0x80,
  KEY_TYPE: 0x100,
  ID: 0x102,
  SENSITIVE: 0x103,
  SIGN: 0x108,
  VERIFY: 0x10a,
  MODULUS: 0x120,
  MODULUS_BITS: 0x121,
  PUBLIC_EXPONENT: 0x122,
  EXTRACTABLE: 0x162,
  EC_PARAMS: 0x180,
  EC_POINT: 0x181,
} as const;

/** Key types (`CKA_KEY_TYPE`). */
export const CKK = { RSA: 0x0, EC: 0x3, EC_EDWARDS: 0x40 } as const;

/** Certificate types (`CKA_CERTIFICATE_TYPE`). */
export const CKC = { X_509: 0x0 } as const;

/** Mechanisms. */
export const CKM = {
  RSA_PKCS_KEY_PAIR_GEN: 0x0,
  RSA_PKCS: 0x1,
  SHA256_RSA_PKCS: 0x40,
  EC_KEY_PAIR_GEN: 0x1040,
  ECDSA: 0x1041,
} as const;

/** Flags: `CK_C_INITIALIZE_ARGS.flags`, `CK_TOKEN_INFO.flags`, `C_OpenSession` flags. */
export const CKF = {
  OS_LOCKING_OK: 0x2,
  RW_SESSION: 0x2,
  SERIAL_SESSION: 0x4,
  LOGIN_REQUIRED: 0x4,
  USER_PIN_INITIALIZED: 0x8,
  PROTECTED_AUTHENTICATION_PATH: 0x100,
  TOKEN_INITIALIZED: 0x400,
  USER_PIN_LOCKED: 0x40000,
} as const;

/** User types for `C_Login`. */
export const CKU = { SO: 0, USER: 1 } as const;

/** The return values airlock tells apart (`CK_RV`). */
export const CKR = {
  OK: 0x0,
  HOST_MEMORY: 0x2,
  SLOT_ID_INVALID: 0x3,
  GENERAL_ERROR: 0x5,
  FUNCTION_FAILED: 0x6,
  ARGUMENTS_BAD: 0x7,
  ATTRIBUTE_SENSITIVE: 0x11,
  ATTRIBUTE_TYPE_INVALID: 0x12,
  ATTRIBUTE_VALUE_INVALID: 0x13,
  DATA_INVALID: 0x20,
  DATA_LEN_RANGE: 0x21,
  DEVICE_ERROR: 0x30,
  DEVICE_MEMORY: 0x31,
  DEVICE_REMOVED: 0x32,
  FUNCTION_NOT_SUPPORTED: 0x54,
  KEY_HANDLE_INVALID: 0x60,
  KEY_SIZE_RANGE: 0x62,
  KEY_TYPE_INCONSISTENT: 0x63,
  KEY_FUNCTION_NOT_PERMITTED: 0x68,
  MECHANISM_INVALID: 0x70,
  MECHANISM_PARAM_INVALID: 0x71,
  OBJECT_HANDLE_INVALID: 0x82,
  OPERATION_ACTIVE: 0x90,
  OPERATION_NOT_INITIALIZED: 0x91,
  PIN_INCORRECT: 0xa0,
  PIN_INVALID: 0xa1,
  PIN_LEN_RANGE: 0xa2,
  PIN_EXPIRED: 0xa3,
  PIN_LOCKED: 0xa4,
  SESSION_CLOSED: 0xb0,
  SESSION_COUNT: 0xb1,
  SESSION_HANDLE_INVALID: 0xb3,
  SESSION_PARALLEL_NOT_SUPPORTED: 0xb4,
  SESSION_READ_ONLY: 0xb5,
  SESSION_EXISTS: 0xb6,
  TEMPLATE_INCOMPLETE: 0xd0,
  TEMPLATE_INCONSISTENT: 0xd1,
  TOKEN_NOT_PRESENT: 0xe0,
  TOKEN_NOT_RECOGNIZED: 0xe1,
  TOKEN_WRITE_PROTECTED: 0xe2,
  USER_ALREADY_LOGGED_IN: 0x100,
  USER_NOT_LOGGED_IN: 0x101,
  USER_PIN_NOT_INITIALIZED: 0x102,
  USER_TYPE_INVALID: 0x103,
  BUFFER_TOO_SMALL: 0x150,
  CRYPTOKI_NOT_INITIALIZED: 0x190,
  CRYPTOKI_ALREADY_INITIALIZED: 0x191,
  CURVE_NOT_SUPPORTED: 0x140,
  DOMAIN_PARAMS_INVALID: 0x130,
} as const;

const NAMES = new Map<number, string>(Object.entries(CKR).map(([k, v]) => [v, `CKR_${k}`]));

/**
 * The name of a `CK_RV`, e.g. `CKR_PIN_INCORRECT`, or `CKR_0x…` for codes airlock does not name.
 */
export function ckrName(rv: number): string {
  return NAMES.get(rv) ?? `CKR_0x${rv.toString(16).padStart(8, "0")}`;
}

const HINTS: Record<number, string> = {
  [CKR.PIN_INCORRECT]: "wrong PIN",
  [CKR.PIN_INVALID]: "the PIN has characters the token does not accept",
  [CKR.PIN_LEN_RANGE]: "the PIN is too short or too long for the token",
  [CKR.PIN_EXPIRED]: "the PIN has expired",
  [CKR.PIN_LOCKED]: "the PIN is locked (too many wrong attempts)",
  [CKR.USER_PIN_NOT_INITIALIZED]: "the token's user PIN is not initialised",
  [CKR.USER_NOT_LOGGED_IN]: "not logged in to the token",
  [CKR.SLOT_ID_INVALID]: "no such slot",
  [CKR.TOKEN_NOT_PRESENT]: "no token in the slot",
  [CKR.TOKEN_NOT_RECOGNIZED]: "the token is not recognised",
  [CKR.DEVICE_REMOVED]: "the token was removed",
  [CKR.DEVICE_ERROR]: "device error",
  [CKR.MECHANISM_INVALID]: "the token does not support this mechanism",
  [CKR.KEY_FUNCTION_NOT_PERMITTED]: "the key may not be used for signing (CKA_SIGN is false)",
  [CKR.KEY_TYPE_INCONSISTENT]: "the key type does not fit the mechanism",
  [CKR.SESSION_COUNT]: "the token has no more sessions",
  [CKR.TOKEN_WRITE_PROTECTED]: "the token is write-protected",
  [CKR.CURVE_NOT_SUPPORTED]: "the token does not support this curve",
  [CKR.CRYPTOKI_NOT_INITIALIZED]: "the module is not initialised",
};

/**
 * A short description of a `CK_RV` for error messages: `wrong PIN (CKR_PIN_INCORRECT)`, or just the name.
 */
export function ckrDescription(rv: number): string {
  const hint = HINTS[rv];
  return hint ? `${hint} (${ckrName(rv)})` : ckrName(rv);
}
