/**
 * The PKCS#11 key backend (`pkcs11:` URIs, RFC 7512): URI parsing, the Cryptoki binding through
 * `Deno.dlopen`, and the signing key. See {@link ./key.ts} for the behaviour and {@link ./uri.ts} for the URI.
 *
 * @example
 * ```ts
 * import { openPkcs11Key } from "./backends/pkcs11/mod.ts";
 * const key = await openPkcs11Key("pkcs11:token=test;object=sigkey?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=pin.txt");
 * ```
 *
 * @module
 */
export { type GeneratedPkcs11Key, generatePkcs11KeyPair, openPkcs11Key, type Pkcs11Key } from "./key.ts";
export type { Pkcs11Options } from "./session.ts";
export {
  parsePkcs11Uri,
  type ParsePkcs11UriOptions,
  pinValueWarning,
  PKCS11_MODULE_PATH_ENV,
  PKCS11_PIN_ENV,
  PKCS11_SCHEME,
  type Pkcs11Uri,
  redactPkcs11Uri,
} from "./uri.ts";
export { CryptokiError } from "./cryptoki.ts";
