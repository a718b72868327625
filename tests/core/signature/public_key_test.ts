import { assert, assertEquals, assertRejects, assertThrows } from "../../assert.ts";
import { AirlockError } from "../../../core/errors.ts";
import { FIXTURES_DIR } from "../../testbed/fixtures.ts";
import { base64Decode } from "../../../core/encoding/base64.ts";
import { decodePem, encodePem } from "../../../core/encoding/pem.ts";
import { DER, derEncode, derOid, oidToString } from "../../../core/encoding/der.ts";
import {
  ecdsaDerToRaw,
  ecdsaRawToDer,
  OID,
  parsePublicKeyPem,
  publicKeyToPem,
  spkiSha256Hex,
  verifySignature,
} from "../../../core/signature/public_key.ts";

const FIXTURES = `${FIXTURES_DIR}/`;
const MSG = new TextEncoder().encode("hello");
const b64 = (s: string): Uint8Array => base64Decode(s)!;

// Made with OpenSSL 3.0 (`openssl dgst -sha256 -sign`, `openssl pkeyutl -sign -rawin`) over "hello": data from
// another tool, so these check interop rather than airlock against itself.
const OPENSSL = {
  p256: {
    pub: `-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEeijNN1q7LEWThDIxOGwEIQzYs2kv
0gagnISL0Pi5WOwDIHOm2Gv8e9amkKLWuXTC+7FUOXegjdu1eL0LrAOEGA==
-----END PUBLIC KEY-----
`,
    sig: "MEQCIDIXYBG1zs1Bjasp/JpO3U/rme5GtJcCGIkMj8x0DE5eAiA3NO1l8gFJj9fI8PqFZ/F3txIejgYAegAjDJMeCQ6YUg==",
  },
  p384: {
    pub: `-----BEGIN PUBLIC KEY-----
MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEkSWb7CU8dlhG5r7uQG2dGN3JPabNdOpU
KTlwlwNfTTxKJUNl7SlcZRW61qpc4prkfl3deBDx8rCJqMSC1bTmuqO/o2BlS1tz
XvkX5ML1QF0fk5u53cYSINWSd5knGXqA
-----END PUBLIC KEY-----
`,
    sig:
      "MGQCMBrlIX5P0l7KnoJHl9jqgHQd5ti/R3vk8qn0wHCt4jDNj7UIdLkO34JD3qJ1ezxZ6wIwOj7+7rv/U3QQBE5J9EwKlNvpgWEABKa9p1QM153S/TFfCGitZA6/r4vltRvJkpdK",
    // the same key and message, but hashed with SHA-384: must NOT verify (the verifier hash is always SHA-256)
    sigSha384:
      "MGUCMQDAu7HfBYu3H75otJ65rPVEEO224izK6s0tlzJp2acQ3vvEoNi2Ff7eEnk/+o82URsCMFdE0yfNF8RVQ4cNd3n/frNqstWNEERvfhEOG4lvmn8fVSP6AjHd1dMIDdPH35J7CA==",
  },
  p521: {
    pub: `-----BEGIN PUBLIC KEY-----
MIGbMBAGByqGSM49AgEGBSuBBAAjA4GGAAQADXzdGlOOP+QWOWC2bxGOm+XS/+X8
OFmGqcGfp6T+4Wi8D0JezwqUvXUAiB48XQKlLm8eRMjvbDZAao8wgI2oUVoBcNtf
TQpJjyueHCCQmm19iPn2w15WlTV8vJrXbXlxDJrtJgdVPbXIgN3JwBh3zzvZWzRL
A76DGylxxbaxId89ZH0=
-----END PUBLIC KEY-----
`,
    sig:
      "MIGHAkIA3rtSMW4zuVNXaX6ZG95D+AATuXEhVHlOHHrvELtHjgSiF5b7dXEciwsfPYBfpBVerR9DwmE23A3iW0MiaO+wOAICQRxhJfx/xRnzd1cVxevNO4HV0yXFsp49fUlyDqdHRzFQ7s0glL+SHHR+r7+/yfnx2wyPL093RU8GxXX3wDQj+Ai+",
  },
  ed25519: {
    pub: `-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEARBOalu5GoduqgSbzuReu84Vg9MAgaL6/1fGFr4O2D6s=
-----END PUBLIC KEY-----
`,
    sig: "5WDq2YXEycM1Fj1rH1+cSl2uS5/NzlaPqmsURkYR8pHUOp3P49DF0cbBPJJD8puTV0wz5uLJzw7NKlkTF+5fCw==",
  },
  rsa: {
    pub: `-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEArENyv/0QFjdurV2SA82Z
Xs2KcH2b+3NC3/3CW5Q/xkyfk0nbM8VHA1idk5wtrWDExHY7lT4cAGeYCDM16nue
kuTeHaOYw3Sn2iqC7s1yLGWWuLWIOBkDx4Shw/CtrO5rmc4pz7YxUQWLFY1t8dst
Yua3XlcnWyM2ap/dvwifChd0/xH4KqYjk9edZ6SmgpBcj1ihCSj1C8mlM9UEYv9n
DJq1gcPweDrprg7tx6xQSiE4RkiRvmzzko/uBmyu15fMOLERq5f7bw+k8Afu5zkA
Oy/NQBnOTzhBgXQKqHvbYJ7ZS57vWQTYTjyK6xBaieWE6lI3x9o1HauQSzcocOpd
WQIDAQAB
-----END PUBLIC KEY-----
`,
    pkcs1: `-----BEGIN RSA PUBLIC KEY-----
MIIBCgKCAQEArENyv/0QFjdurV2SA82ZXs2KcH2b+3NC3/3CW5Q/xkyfk0nbM8VH
A1idk5wtrWDExHY7lT4cAGeYCDM16nuekuTeHaOYw3Sn2iqC7s1yLGWWuLWIOBkD
x4Shw/CtrO5rmc4pz7YxUQWLFY1t8dstYua3XlcnWyM2ap/dvwifChd0/xH4KqYj
k9edZ6SmgpBcj1ihCSj1C8mlM9UEYv9nDJq1gcPweDrprg7tx6xQSiE4RkiRvmzz
ko/uBmyu15fMOLERq5f7bw+k8Afu5zkAOy/NQBnOTzhBgXQKqHvbYJ7ZS57vWQTY
TjyK6xBaieWE6lI3x9o1HauQSzcocOpdWQIDAQAB
-----END RSA PUBLIC KEY-----
`,
    sig:
      "HC61+SrokIG+RHVTRCZUROl5WENktWhnn089LegtOnCkJUYMK/cEPyKaigjKoDEePb220xj6ODnJeG3XslYl1r4DNsmzJvMcLTUfqNNOgREoOE8kdnlgK4bEo3E75R19RMZH2zaMiQ1ockmcfa7j2Zjk0pvFjBZGd/1elWp66hqJsLSP8YPBr8rILQ5Ha6qhjxm8615YgbDd2bVvL7QjG9wx4No+DHnq3/lIx8xEh/WyWfs8ziu3tR4AkaF8oaV8eQbf5O2TEI6dbCNFIaTVdTQ4mvn+R9m97tIazR+a9YHRK+Ri9hd6gxVqupwQJVY7orE9sEg2FJXETaZ7Svsp/w==",
  },
};

function tampered(b: Uint8Array, at: number): Uint8Array {
  const c = b.slice();
  c[at] ^= 1;
  return c;
}

Deno.test("parsePublicKeyPem: PKIX EC P-256/P-384/P-521, RSA, Ed25519 and PKCS#1 RSA", () => {
  assertEquals(parsePublicKeyPem(OPENSSL.p256.pub).curve, "P-256");
  assertEquals(parsePublicKeyPem(OPENSSL.p384.pub).curve, "P-384");
  assertEquals(parsePublicKeyPem(OPENSSL.p521.pub).curve, "P-521");
  assertEquals(parsePublicKeyPem(OPENSSL.ed25519.pub).algorithm, "ed25519");
  assertEquals(parsePublicKeyPem(OPENSSL.rsa.pub).algorithm, "rsa");
  const pkcs1 = parsePublicKeyPem(OPENSSL.rsa.pkcs1);
  assertEquals(pkcs1.algorithm, "rsa");
  // the PKCS#1 key converted to SPKI is byte-identical to OpenSSL's SPKI of the same key
  assertEquals(pkcs1.spki, parsePublicKeyPem(OPENSSL.rsa.pub).spki);
  assertEquals(publicKeyToPem(pkcs1), OPENSSL.rsa.pub);
  // text before the block is skipped, as Go's pem.Decode does
  assertEquals(parsePublicKeyPem("comment\n" + OPENSSL.p256.pub).curve, "P-256");
  // CRLF line ends
  assertEquals(parsePublicKeyPem(OPENSSL.p256.pub.replaceAll("\n", "\r\n")).curve, "P-256");
});

Deno.test("parsePublicKeyPem: errors carry containers/image's texts", () => {
  let e = assertThrows(() => parsePublicKeyPem("not a pem"), AirlockError);
  assertEquals(e.message, "parsing public key 1: PEM decoding failed");
  assertEquals(e.code, "KEY_INVALID");
  e = assertThrows(() => parsePublicKeyPem(""), AirlockError);
  assertEquals(e.message, "parsing public key 1: PEM decoding failed");
  const cert = encodePem("CERTIFICATE", new Uint8Array([0x30, 0]));
  e = assertThrows(() => parsePublicKeyPem(cert), AirlockError);
  assertEquals(
    e.message,
    "parsing public key 1: unknown Public key PEM file type: CERTIFICATE. Are you passing the correct public key?",
  );
  e = assertThrows(() => parsePublicKeyPem(encodePem("PUBLIC KEY", new Uint8Array([1, 2, 3]))), AirlockError);
  assertEquals(e.code, "KEY_INVALID");
  // a truncated body
  const p256 = decodePem(OPENSSL.p256.pub)!.bytes;
  e = assertThrows(() => parsePublicKeyPem(encodePem("PUBLIC KEY", p256.subarray(0, 40))), AirlockError);
  assertEquals(e.code, "KEY_INVALID");
  // secp256k1 is not a curve sigstore verifies; DSA is not an algorithm it verifies
  const spkiOf = (alg: Uint8Array, key: Uint8Array) =>
    encodePem(
      "PUBLIC KEY",
      derEncode(DER.SEQUENCE, alg, derEncode(DER.BIT_STRING, new Uint8Array([0]), key)),
    );
  const point = new Uint8Array(65).fill(1);
  point[0] = 4;
  e = assertThrows(
    () =>
      parsePublicKeyPem(
        spkiOf(derEncode(DER.SEQUENCE, derOid(OID.EC_PUBLIC_KEY), derOid("1.3.132.0.10")), point),
      ),
    AirlockError,
  );
  assertEquals(e.code, "KEY_UNSUPPORTED");
  e = assertThrows(
    () => parsePublicKeyPem(spkiOf(derEncode(DER.SEQUENCE, derOid("1.2.840.10040.4.1")), point)),
    AirlockError,
  );
  assertEquals(e.code, "KEY_UNSUPPORTED");
  // the key number in messages
  e = assertThrows(() => parsePublicKeyPem("x", 2), AirlockError);
  assertEquals(e.message, "parsing public key 2: PEM decoding failed");
});

Deno.test("verifySignature: signatures made by OpenSSL verify; tampered ones and other keys do not", async () => {
  for (const name of ["p256", "p384", "p521", "ed25519", "rsa"] as const) {
    const key = parsePublicKeyPem(OPENSSL[name].pub);
    const sig = b64(OPENSSL[name].sig);
    assert(await verifySignature(key, MSG, sig), `${name} verifies`);
    assert(!await verifySignature(key, new TextEncoder().encode("hellO"), sig), `${name}: other message`);
    assert(!await verifySignature(key, MSG, tampered(sig, sig.length - 3)), `${name}: tampered signature`);
    assert(!await verifySignature(key, MSG, new Uint8Array()), `${name}: empty signature`);
    const other = name === "p256" ? OPENSSL.p384 : OPENSSL.p256;
    assert(!await verifySignature(parsePublicKeyPem(other.pub), MSG, sig), `${name}: another key`);
  }
  assert(await verifySignature(parsePublicKeyPem(OPENSSL.rsa.pkcs1), MSG, b64(OPENSSL.rsa.sig)));
});

Deno.test("verifySignature: ECDSA uses SHA-256 on every curve and accepts ASN.1 DER only, never raw r‖s", async () => {
  const p384 = parsePublicKeyPem(OPENSSL.p384.pub);
  assert(!await verifySignature(p384, MSG, b64(OPENSSL.p384.sigSha384)), "SHA-384 signature must not verify");
  for (const [name, size] of [["p256", 32], ["p384", 48], ["p521", 66]] as const) {
    const key = parsePublicKeyPem(OPENSSL[name].pub);
    const der = b64(OPENSSL[name].sig);
    const raw = ecdsaDerToRaw(der, size)!;
    assertEquals(raw.length, 2 * size);
    assert(await verifySignature(key, MSG, der), `${name} DER verifies`);
    // The same signature as raw r‖s (IEEE P1363): containers/image 5.29 and cosign refuse it (ecdsa.VerifyASN1).
    assert(!await verifySignature(key, MSG, raw), `${name}: raw r‖s is refused`);
    assertEquals(ecdsaRawToDer(raw), der, `${name}: raw → DER gives OpenSSL's bytes back`);
    assert(!await verifySignature(key, MSG, raw.subarray(1)), `${name}: short raw`);
    // DER with trailing garbage is not accepted
    assert(!await verifySignature(key, MSG, new Uint8Array([...der, 0])), `${name}: trailing byte`);
  }
});

Deno.test("ecdsaDerToRaw rejects non-minimal, negative and oversized integers", () => {
  const seq = (...ints: number[][]) => {
    const body = ints.flatMap((i) => [0x02, i.length, ...i]);
    return new Uint8Array([0x30, body.length, ...body]);
  };
  assertEquals(ecdsaDerToRaw(seq([1], [2]), 32)!.length, 64);
  assertEquals(ecdsaDerToRaw(seq([0, 1], [2]), 32), undefined); // non-minimal
  assertEquals(ecdsaDerToRaw(seq([0x80], [2]), 32), undefined); // negative
  assertEquals(ecdsaDerToRaw(seq([], [2]), 32), undefined); // empty
  assertEquals(ecdsaDerToRaw(seq(new Array(33).fill(1), [2]), 32), undefined); // too large
  assertEquals(ecdsaDerToRaw(seq([1]), 32), undefined); // one integer
  assertEquals(ecdsaDerToRaw(new Uint8Array([0x30, 0x81, 0x01, 0]), 32), undefined); // non-minimal length
});

Deno.test("OIDs round-trip", () => {
  for (
    const oid of ["1.2.840.10045.2.1", "1.3.132.0.35", "1.3.101.112", "2.5.29.17", "1.2.840.113549.1.1.1"]
  ) {
    assertEquals(oidToString(derOid(oid).subarray(2)), oid);
  }
});

Deno.test("spkiSha256Hex matches the fingerprints in peer-skopeo/cases.json", async () => {
  const cases = JSON.parse(await Deno.readTextFile(`${FIXTURES}peer-skopeo/cases.json`));
  for (const [name, k] of Object.entries(cases.keys as Record<string, { publicKeySpkiSha256: string }>)) {
    const key = parsePublicKeyPem(await Deno.readTextFile(`${FIXTURES}peer-skopeo/keys/${name}.pub`));
    assertEquals(spkiSha256Hex(key), k.publicKeySpkiSha256, name);
  }
});

Deno.test("a real skopeo signature verifies with alice.pub only", async () => {
  const cases = JSON.parse(await Deno.readTextFile(`${FIXTURES}peer-skopeo/cases.json`));
  const alice = parsePublicKeyPem(await Deno.readTextFile(`${FIXTURES}peer-skopeo/keys/alice.pub`));
  const bob = parsePublicKeyPem(await Deno.readTextFile(`${FIXTURES}peer-skopeo/keys/bob.pub`));
  let checked = 0, byAlice = 0;
  for (const c of cases.cases) {
    for (const tag of c.signatureTags ?? []) {
      for (const layer of tag.layers ?? []) {
        if (!layer.signatureAnnotation || !Array.isArray(layer.verifiesWithKeys)) continue;
        const hex = String(layer.digest).replace("sha256:", "");
        const blob = `${FIXTURES}peer-skopeo/registry/docker/registry/v2/blobs/sha256/${
          hex.slice(0, 2)
        }/${hex}/data`;
        let payload: Uint8Array;
        try {
          payload = await Deno.readFile(blob);
        } catch {
          continue; // some fixtures omit blobs on purpose
        }
        const sig = b64(layer.signatureAnnotation);
        assertEquals(
          await verifySignature(alice, payload, sig),
          layer.verifiesWithKeys.includes("alice"),
          hex,
        );
        assertEquals(await verifySignature(bob, payload, sig), layer.verifiesWithKeys.includes("bob"), hex);
        checked++;
        if (layer.verifiesWithKeys.includes("alice")) byAlice++;
      }
    }
  }
  assert(checked >= 5 && byAlice >= 3, `real signatures checked: ${checked}, by alice: ${byAlice}`);
});

Deno.test("verifySignature on an unusable key throws KEY_INVALID", async () => {
  const key = parsePublicKeyPem(OPENSSL.p256.pub);
  const broken = { ...key, spki: key.spki.slice(0, 30) };
  const e = await assertRejects(() => verifySignature(broken, MSG, new Uint8Array(64)), AirlockError);
  assertEquals(e.code, "KEY_INVALID");
});
