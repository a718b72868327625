/**
 * The public key of a PKCS#11 key as SPKI DER, from the token's objects: the matching public key object
 * (`CKA_EC_PARAMS` + `CKA_EC_POINT`, or `CKA_MODULUS` + `CKA_PUBLIC_EXPONENT`), else the certificate object, else
 * (RSA) the private key's modulus and exponent.
 *
 * @module
 */
import { AirlockError } from "../../core/errors.ts";
import { DER, derEncode, derOid, oidToString, readDer, readDerOne } from "../../core/encoding/der.ts";
import { curveFromOid, OID } from "../../core/signature/public_key.ts";
import { CKA, CKC, CKK, CKO } from "./constants.ts";
import { attrUlong, Cryptoki, type Handle } from "./cryptoki.ts";
import type { Pkcs11Uri } from "./uri.ts";
import { keyName, keyTemplate } from "./session.ts";

/** Byte length of a coordinate (and of `r`, `s`) on each curve. */
export const CURVE_SIZE = { "P-256": 32, "P-384": 48, "P-521": 66 } as const;

/** SPKI DER of an EC public key from `CKA_EC_PARAMS` and `CKA_EC_POINT`. */
export function ecSpki(params: Uint8Array, point: Uint8Array): Uint8Array {
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
export function readPublicSpki(
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
