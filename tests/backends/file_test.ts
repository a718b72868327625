import { assert, assertEquals, assertRejects, assertStringIncludes } from "../assert.ts";
import { AirlockError } from "../../core/errors.ts";
import { FIXTURES_DIR } from "../testbed/fixtures.ts";
import {
  COSIGN_KEY_PEM_TYPE,
  decryptKeyEnvelope,
  encryptPrivateKey,
  loadPrivateKeyPem,
  openKeyFile,
  parseKeyEnvelope,
  SIGSTORE_KEY_PEM_TYPE,
} from "../../backends/file.ts";
import { type KeyBackend, openKey } from "../../backends/key_backend.ts";
import { firstLine, type PassphraseOptions, resolvePassphrase } from "../../backends/passphrase.ts";
import { base64Decode } from "../../core/encoding/base64.ts";
import { decodePem, encodePem } from "../../core/encoding/pem.ts";
import { DER, derEncode, readDer, readDerOne } from "../../core/encoding/der.ts";
import { parsePublicKeyPem, spkiSha256Hex, verifySignature } from "../../core/signature/public_key.ts";

const FIXTURES = `${FIXTURES_DIR}/`;
const VECTORS = `${FIXTURES}vectors/keys/`;
const PEER = `${FIXTURES}peer-skopeo/`;
const MSG = new TextEncoder().encode(
  '{"critical":{"identity":{"docker-reference":"registry.test:5000/a/single:v1"},"image":{"docker-manifest-digest":"sha256:b33f49aedaae75a483f0d675abd8d9b4b8ab44c0e75329e35dd1c2a5e10dbe6d"},"type":"cosign container image signature"},"optional":null}',
);
/** No environment, no terminal: only the sources a test gives explicitly. */
const QUIET: PassphraseOptions = { env: () => undefined, isTerminal: () => false };

const VECTOR_KEYS: { file: string; passphrase: string; algorithm: string; pemType: string; N: number }[] = [
  {
    file: "cosign_generated_encrypted_empty_private.key",
    passphrase: "",
    algorithm: "ecdsa",
    pemType: SIGSTORE_KEY_PEM_TYPE,
    N: 65536,
  },
  {
    file: "ecdsa_encrypted_private.key",
    passphrase: "123",
    algorithm: "ecdsa",
    pemType: COSIGN_KEY_PEM_TYPE,
    N: 32768,
  },
  { file: "rsa_encrypted_private.key", passphrase: "123", algorithm: "rsa", pemType: "", N: 0 },
  { file: "ed25519_encrypted_private.key", passphrase: "123", algorithm: "ed25519", pemType: "", N: 0 },
];

async function signAndVerify(key: KeyBackend): Promise<void> {
  const pub = parsePublicKeyPem(await key.publicKey());
  const sig = await key.sign(MSG);
  assert(await verifySignature(pub, MSG, sig), "signature verifies with the key's public key");
  assert(!await verifySignature(pub, MSG.subarray(1), sig), "not over another message");
}

const TMP = await Deno.makeTempDir({ prefix: "airlock-file-test-" });
globalThis.addEventListener("unload", () => Deno.removeSync(TMP, { recursive: true }));

async function tempDir(): Promise<string> {
  return await Deno.makeTempDir({ dir: TMP });
}

/** Rewrites the JSON envelope of a key file (for crafted copies in a temp dir). */
async function craftKey(
  source: string,
  edit: (env: Record<string, unknown>) => Record<string, unknown>,
  pemType?: string,
): Promise<string> {
  const block = decodePem(await Deno.readTextFile(source))!;
  const env = edit(JSON.parse(new TextDecoder().decode(block.bytes)));
  const dir = await tempDir();
  const path = `${dir}/crafted.key`;
  await Deno.writeTextFile(
    path,
    encodePem(pemType ?? block.type, new TextEncoder().encode(JSON.stringify(env))),
  );
  return path;
}

async function rejectsWith(
  fn: () => Promise<unknown>,
  code: string,
  includes: string,
  secret?: string,
): Promise<AirlockError> {
  const e = await assertRejects(fn, AirlockError);
  assertEquals(e.code, code, e.message);
  assertStringIncludes(e.message, includes);
  if (secret) assert(!e.message.includes(secret), "the passphrase must not appear in the message");
  return e;
}

Deno.test("vector keys (sigstore-rs) open with their passphrases and sign verifiable signatures", async () => {
  for (const v of VECTOR_KEYS) {
    const key = await openKeyFile(VECTORS + v.file, { ...QUIET, passphrase: v.passphrase });
    try {
      assertEquals(parsePublicKeyPem(await key.publicKey()).algorithm, v.algorithm, v.file);
      await signAndVerify(key);
    } finally {
      await key.close();
    }
    if (v.pemType) {
      const block = decodePem(await Deno.readTextFile(VECTORS + v.file))!;
      assertEquals(block.type, v.pemType);
      assertEquals(parseKeyEnvelope(block.bytes, v.file).scrypt.N, v.N);
    }
  }
});

Deno.test("ed25519 PKCS#8 v2 key: the derived public key equals the one embedded in the key", async () => {
  const path = VECTORS + "ed25519_encrypted_private.key";
  const key = await openKeyFile(path, { passphrase: "123" });
  const spki = parsePublicKeyPem(await key.publicKey()).spki;
  const env = parseKeyEnvelope(decodePem(await Deno.readTextFile(path))!.bytes, path);
  const pkcs8 = await decryptKeyEnvelope(env, new TextEncoder().encode("123"), path);
  const els = readDer(readDerOne(pkcs8, DER.SEQUENCE).value);
  assertEquals(els[0].value, new Uint8Array([1]), "version 1 = PKCS#8 v2 (OneAsymmetricKey)");
  const embedded = els.find((e) => e.tag === 0x81)!;
  assertEquals(embedded.value.subarray(1), spki.subarray(spki.length - 32));
  // pure Ed25519 signatures are 64 bytes
  assertEquals((await key.sign(MSG)).length, 64);
});

Deno.test("peer-skopeo keys: passphrase files, fingerprints from cases.json, alice signs for alice.pub only", async () => {
  const cases = JSON.parse(await Deno.readTextFile(`${PEER}cases.json`));
  const pubs: Record<string, string> = {};
  for (const name of Object.keys(cases.keys)) pubs[name] = await Deno.readTextFile(`${PEER}keys/${name}.pub`);
  for (const [name, k] of Object.entries(cases.keys as Record<string, Record<string, string>>)) {
    const t = performance.now();
    const key = await openKeyFile(PEER + k.privateKey, { ...QUIET, passphraseFile: PEER + k.passphraseFile });
    const ms = performance.now() - t;
    console.log(`  open ${name}.key (scrypt N=65536): ${ms.toFixed(0)} ms`);
    const pem = await key.publicKey();
    assertEquals(spkiSha256Hex(parsePublicKeyPem(pem)), k.publicKeySpkiSha256, name);
    assertEquals(pem, pubs[name], `${name}: public key PEM byte-identical to skopeo's .pub`);
    const sig = await key.sign(MSG);
    for (const other of Object.keys(pubs)) {
      assertEquals(
        await verifySignature(parsePublicKeyPem(pubs[other]), MSG, sig),
        other === name,
        `${name}'s signature with ${other}.pub`,
      );
    }
    await key.close();
  }
});

Deno.test("signatures are ASN.1 DER for ECDSA, concurrent signing works, closed keys refuse", async () => {
  const key = await openKeyFile(VECTORS + "ecdsa_encrypted_private.key", { passphrase: "123" });
  const pub = parsePublicKeyPem(await key.publicKey());
  const sigs = await Promise.all(Array.from({ length: 50 }, () => key.sign(MSG)));
  for (const sig of sigs) {
    assertEquals(sig[0], 0x30, "DER SEQUENCE");
    assertEquals(sig[1], sig.length - 2);
    assert(await verifySignature(pub, MSG, sig));
  }
  await key.close();
  await rejectsWith(() => key.sign(MSG), "KEY_BACKEND", "closed");
});

Deno.test("wrong passphrase: KEY_PASSPHRASE, clear message without the passphrase", async () => {
  const secret = "not-the-right-passphrase-xyz";
  const path = VECTORS + "ecdsa_encrypted_private.key";
  await rejectsWith(
    () => openKeyFile(path, { passphrase: secret }),
    "KEY_PASSPHRASE",
    `decryption failed: wrong passphrase for key ${path}?`,
    secret,
  );
  // the empty-passphrase key with a non-empty passphrase, and a passphrase key with an empty one
  await rejectsWith(
    () => openKeyFile(VECTORS + "cosign_generated_encrypted_empty_private.key", { passphrase: "123" }),
    "KEY_PASSPHRASE",
    "wrong passphrase",
  );
  await rejectsWith(() => openKeyFile(path, { passphrase: "" }), "KEY_PASSPHRASE", "wrong passphrase");
});

Deno.test("corrupt files: no PEM, garbage envelope, flipped ciphertext, truncated base64, missing file", async () => {
  const dir = await tempDir();
  const secret = "123";
  await Deno.writeTextFile(`${dir}/none.key`, "this is not a key\n");
  await rejectsWith(
    () => openKeyFile(`${dir}/none.key`, { passphrase: secret }),
    "KEY_INVALID",
    "invalid pem block",
  );

  const good = await Deno.readTextFile(VECTORS + "ecdsa_encrypted_private.key");
  await Deno.writeTextFile(`${dir}/cut.key`, good.slice(0, 200)); // no END line
  await rejectsWith(
    () => openKeyFile(`${dir}/cut.key`, { passphrase: secret }),
    "KEY_INVALID",
    "invalid pem block",
  );

  await Deno.writeTextFile(
    `${dir}/json.key`,
    encodePem(COSIGN_KEY_PEM_TYPE, new TextEncoder().encode("{nope")),
  );
  await rejectsWith(
    () => openKeyFile(`${dir}/json.key`, { passphrase: secret }),
    "KEY_INVALID",
    "invalid encrypted key envelope",
  );

  const flipped = await craftKey(VECTORS + "ecdsa_encrypted_private.key", (env) => {
    const ct = base64Decode(env.ciphertext as string)!;
    ct[ct.length - 1] ^= 1;
    return { ...env, ciphertext: btoa(String.fromCharCode(...ct)) };
  });
  await rejectsWith(
    () => openKeyFile(flipped, { passphrase: secret }),
    "KEY_PASSPHRASE",
    "decryption failed",
  );

  const badSalt = await craftKey(VECTORS + "ecdsa_encrypted_private.key", (env) => ({
    ...env,
    kdf: { ...(env.kdf as object), salt: "%%%" },
  }));
  await rejectsWith(() => openKeyFile(badSalt, { passphrase: secret }), "KEY_INVALID", "kdf.salt");

  await rejectsWith(
    () => openKeyFile(`${dir}/missing.key`, { passphrase: secret }),
    "IO_ERROR",
    "failed to read",
  );
});

Deno.test("unsupported scrypt parameters, kdf, cipher, nonce size: refused before any passphrase is asked", async () => {
  const src = VECTORS + "ecdsa_encrypted_private.key";
  // a prompt that must never be reached: the file is rejected before the passphrase is resolved
  const neverAsk: PassphraseOptions = {
    env: () => undefined,
    isTerminal: () => true,
    prompt: () => Promise.reject(new Error("prompt must not be called")),
  };
  const withParams = (params: object) => (env: Record<string, unknown>) => ({
    ...env,
    kdf: { ...(env.kdf as object), params },
  });
  for (
    const params of [{ N: 16384, r: 8, p: 1 }, { N: 65536, r: 4, p: 1 }, { N: 65536, r: 8, p: 2 }, {
      N: 262144,
      r: 8,
      p: 1,
    }]
  ) {
    const path = await craftKey(src, withParams(params));
    await rejectsWith(() => openKeyFile(path, neverAsk), "KEY_UNSUPPORTED", "unsupported scrypt parameters");
  }
  const kdf = await craftKey(src, (env) => ({ ...env, kdf: { ...(env.kdf as object), name: "pbkdf2" } }));
  await rejectsWith(
    () => openKeyFile(kdf, neverAsk),
    "KEY_UNSUPPORTED",
    'encrypted: unknown kdf name "pbkdf2"',
  );
  const cipher = await craftKey(
    src,
    (env) => ({ ...env, cipher: { ...(env.cipher as object), name: "aes" } }),
  );
  await rejectsWith(
    () => openKeyFile(cipher, neverAsk),
    "KEY_UNSUPPORTED",
    'encrypted: unknown cipher name "aes"',
  );
  const nonce = await craftKey(
    src,
    (env) => ({ ...env, cipher: { ...(env.cipher as object), nonce: "AAAA" } }),
  );
  await rejectsWith(() => openKeyFile(nonce, neverAsk), "KEY_INVALID", "encrypted: incorrect nonce size");
});

Deno.test("unsupported PEM type: KEY_UNSUPPORTED 'unsupported pem type: <T>'", async () => {
  const path = await craftKey(VECTORS + "ecdsa_encrypted_private.key", (env) => env, "ENCRYPTED PRIVATE KEY");
  await rejectsWith(
    () => openKeyFile(path, { passphrase: "123" }),
    "KEY_UNSUPPORTED",
    "unsupported pem type: ENCRYPTED PRIVATE KEY",
    "123x",
  );
  const pub = `${PEER}keys/alice.pub`;
  await rejectsWith(() => openKeyFile(pub, QUIET), "KEY_UNSUPPORTED", "unsupported pem type: PUBLIC KEY");
});

Deno.test("envelope keys match case-insensitively (Go encoding/json) and unknown keys are ignored", async () => {
  const path = await craftKey(VECTORS + "ecdsa_encrypted_private.key", (env) => {
    const kdf = env.kdf as Record<string, unknown>;
    const params = kdf.params as Record<string, unknown>;
    const cipher = env.cipher as Record<string, unknown>;
    return {
      KDF: { Name: kdf.name, PARAMS: { n: params.N, R: params.r, P: params.p }, Salt: kdf.salt },
      Cipher: { NAME: cipher.name, Nonce: cipher.nonce },
      CipherText: env.ciphertext,
      comment: "ignored",
    };
  });
  const key = await openKeyFile(path, { passphrase: "123" });
  await signAndVerify(key);
});

Deno.test("empty passphrase key opens with '', with COSIGN_PASSWORD='' and with an empty passphrase file", async () => {
  const path = VECTORS + "cosign_generated_encrypted_empty_private.key";
  await signAndVerify(await openKeyFile(path, { ...QUIET, passphrase: "" }));
  await signAndVerify(
    await openKeyFile(path, {
      env: (n) => n === "COSIGN_PASSWORD" ? "" : undefined,
      isTerminal: () => false,
    }),
  );
  const dir = await tempDir();
  await Deno.writeTextFile(`${dir}/empty.pass`, "");
  await signAndVerify(await openKeyFile(path, { ...QUIET, passphraseFile: `${dir}/empty.pass` }));
});

Deno.test("passphrase file: first line, trailing \\n or \\r\\n removed", async () => {
  const dir = await tempDir();
  const cases: [string, string][] = [
    ["pass\n", "pass"],
    ["pass\r\n", "pass"],
    ["pass\nsecond\n", "pass"],
    ["pass", "pass"],
    ["", ""],
    ["\n", ""],
    ["\r\n", ""],
    [" pass \n", " pass "],
    ["pa\rss\n", "pa\rss"],
  ];
  for (const [i, [content, want]] of cases.entries()) {
    await Deno.writeTextFile(`${dir}/${i}.pass`, content);
    const r = await resolvePassphrase("k", { ...QUIET, passphraseFile: `${dir}/${i}.pass` });
    assertEquals(new TextDecoder().decode(r.passphrase), want, JSON.stringify(content));
    assertEquals(r.source, "file");
    assertEquals(new TextDecoder().decode(firstLine(new TextEncoder().encode(content))), want);
  }
  // end to end: "123\r\n" opens the key whose passphrase is "123"
  await Deno.writeTextFile(`${dir}/crlf.pass`, "123\r\nsecond line\r\n");
  await signAndVerify(
    await openKeyFile(VECTORS + "ecdsa_encrypted_private.key", {
      ...QUIET,
      passphraseFile: `${dir}/crlf.pass`,
    }),
  );
  await rejectsWith(
    () => resolvePassphrase("k", { ...QUIET, passphraseFile: `${dir}/missing.pass` }),
    "IO_ERROR",
    `failed to read "${dir}/missing.pass"`,
  );
});

Deno.test("passphrase sources: value > file > COSIGN_PASSWORD > prompt (terminal only) > error", async () => {
  const dir = await tempDir();
  await Deno.writeTextFile(`${dir}/p`, "from-file\n");
  const dec = (r: { passphrase: Uint8Array }) => new TextDecoder().decode(r.passphrase);
  const env = (n: string) => n === "COSIGN_PASSWORD" ? "from-env" : undefined;
  const prompts: string[] = [];
  const prompt = (m: string) => {
    prompts.push(m);
    return Promise.resolve("typed");
  };
  const all: PassphraseOptions = {
    passphrase: "value",
    passphraseFile: `${dir}/p`,
    env,
    prompt,
    isTerminal: () => true,
  };
  assertEquals(dec(await resolvePassphrase("k", all)), "value");
  assertEquals(
    (await resolvePassphrase("k", { ...all, passphrase: new Uint8Array([65]) })).passphrase,
    new Uint8Array([65]),
  );
  assertEquals(dec(await resolvePassphrase("k", { ...all, passphrase: undefined })), "from-file");
  const r = await resolvePassphrase("k", { ...all, passphrase: undefined, passphraseFile: undefined });
  assertEquals([dec(r), r.source], ["from-env", "env"]);
  const p = await resolvePassphrase("my.key", { env: () => undefined, prompt, isTerminal: () => true });
  assertEquals([dec(p), p.source], ["typed", "prompt"]);
  assertEquals(prompts, ['Enter the passphrase for key "my.key": ']);
  // not a terminal: never prompt, clear error
  const e = await rejectsWith(
    () => resolvePassphrase("my.key", { env: () => undefined, prompt, isTerminal: () => false }),
    "KEY_PASSPHRASE",
    'no passphrase for key "my.key"',
  );
  assertStringIncludes(e.message, "COSIGN_PASSWORD");
  assertEquals(prompts.length, 1);
  // through openKey: the prompt's answer decrypts the key
  const key = await openKey(VECTORS + "ecdsa_encrypted_private.key", {
    env: () => undefined,
    isTerminal: () => true,
    prompt: () => Promise.resolve("123"),
  });
  await signAndVerify(key);
});

Deno.test("openKey dispatches by scheme", async () => {
  await rejectsWith(() => openKey("k8s://x", QUIET), "KEY_UNSUPPORTED", "k8s:// keys are not supported yet");
  // Vault and cloud KMS references reach their backends (tested against fakes in <name>_test.ts)
  for (const scheme of ["hashivault://", "openbao://"]) {
    await rejectsWith(() => openKey(`${scheme}x`, QUIET), "CONFIG_INVALID", "_ADDR is not set");
  }
  for (
    const [scheme, what] of [["awskms://", "AWS KMS"], ["gcpkms://", "GCP KMS"], [
      "azurekms://",
      "Azure Key Vault",
    ]]
  ) {
    await rejectsWith(
      () => openKey(`${scheme}x`, QUIET),
      "INVALID_ARGUMENT",
      `invalid ${what} key reference`,
    );
  }
  // pkcs11: and plugins are tested in pkcs11_test.ts and plugin_test.ts
  await rejectsWith(
    () => openKey("pkcs11:token=t;object=k?module-path=/x.so", QUIET),
    "KEY_BACKEND",
    '"/x.so" does not exist',
  );
  await rejectsWith(() => openKey("mycorp://keys/k", QUIET), "KEY_UNSUPPORTED", "sigstore-kms-mycorp");
  // anything else is a file
  await rejectsWith(() => openKey("/nonexistent/dir/cosign.key", QUIET), "IO_ERROR", "failed to read");
  await signAndVerify(await openKey(VECTORS + "ecdsa_encrypted_private.key", { passphrase: "123" }));
});

// An OpenSSL-made P-384 key in SEC1 form (`openssl ecparam -name secp384r1 -genkey -noout`); test data only.
const OPENSSL_P384_SEC1 = `-----BEGIN EC PRIVATE KEY-----
MIGkAgEBBDDKh0XPF8pqeYgA6AWHrVeDEQjhBIweACMx75LGw3IUDvZP2/kN+7zU
v/12VFTy3yagBwYFK4EEACKhZANiAATqJ+B+VPZ+RXGC/tE84mAlBCFkMVMyYj6x
/6Y8+GdyL2MVWJdif+c8x16tZGmnLHOAFbmn21Ht0w98c7Qn2kBOILD9qLRSID0+
Mpp4LtWQTSryjOvrmx4choQhOVniwWQ=
-----END EC PRIVATE KEY-----
`;
const OPENSSL_P384_PUB = `-----BEGIN PUBLIC KEY-----
MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAE6ifgflT2fkVxgv7RPOJgJQQhZDFTMmI+
sf+mPPhnci9jFViXYn/nPMderWRppyxzgBW5p9tR7dMPfHO0J9pATiCw/ai0UiA9
PjKaeC7VkE0q8ozr65seHIaEITlZ4sFk
-----END PUBLIC KEY-----
`;

Deno.test("unencrypted PEMs (extension, only when allowed): EC PRIVATE KEY, PRIVATE KEY, RSA PRIVATE KEY; P-384 encrypted", async () => {
  // Refused by default, as cosign refuses them (issue 15 §5): the flag is required.
  await rejectsWith(
    () => loadPrivateKeyPem(OPENSSL_P384_SEC1, "p384.pem", QUIET),
    "KEY_UNSUPPORTED",
    'the private key is not encrypted (PEM "EC PRIVATE KEY")',
  );
  const PLAIN = { ...QUIET, allowUnencryptedKey: true };
  const sec1 = await loadPrivateKeyPem(OPENSSL_P384_SEC1, "p384.pem", PLAIN);
  assertEquals(await sec1.publicKey(), OPENSSL_P384_PUB);
  const sig = await sec1.sign(MSG);
  assert(await verifySignature(parsePublicKeyPem(OPENSSL_P384_PUB), MSG, sig));

  const rsa = await crypto.subtle.generateKey(
    {
      name: "RSASSA-PKCS1-v1_5",
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: "SHA-256",
    },
    true,
    ["sign", "verify"],
  );
  const rsaPkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", rsa.privateKey));
  const rsaSpki = new Uint8Array(await crypto.subtle.exportKey("spki", rsa.publicKey));
  const fromPkcs8 = await loadPrivateKeyPem(encodePem("PRIVATE KEY", rsaPkcs8), "rsa.pem", PLAIN);
  assertEquals(parsePublicKeyPem(await fromPkcs8.publicKey()).spki, rsaSpki);
  await signAndVerify(fromPkcs8);
  const pkcs1 = readDer(readDerOne(rsaPkcs8, DER.SEQUENCE).value)[2].value;
  const fromPkcs1 = await loadPrivateKeyPem(encodePem("RSA PRIVATE KEY", pkcs1), "rsa1.pem", PLAIN);
  assertEquals(parsePublicKeyPem(await fromPkcs1.publicKey()).spki, rsaSpki);

  // P-384 in an encrypted cosign key
  const ec = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-384" }, true, ["sign"]);
  const ecPkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", ec.privateKey));
  const pem = await encryptPrivateKey(ecPkcs8, new TextEncoder().encode("p384"), {
    pemType: SIGSTORE_KEY_PEM_TYPE,
    scryptN: 32768,
  });
  const p384 = await loadPrivateKeyPem(pem, "p384.key", { ...QUIET, passphrase: "p384" });
  assertEquals(parsePublicKeyPem(await p384.publicKey()).curve, "P-384");
  await signAndVerify(p384);

  // an X25519 key is not a signing key
  const x = derEncode(
    DER.SEQUENCE,
    derEncode(DER.INTEGER, new Uint8Array([0])),
    derEncode(DER.SEQUENCE, new Uint8Array([0x06, 0x03, 0x2b, 0x65, 0x6e])),
    derEncode(DER.OCTET_STRING, derEncode(DER.OCTET_STRING, new Uint8Array(32))),
  );
  await rejectsWith(
    () => loadPrivateKeyPem(encodePem("PRIVATE KEY", x), "x.pem", PLAIN),
    "KEY_UNSUPPORTED",
    "1.3.101.110",
  );
  await rejectsWith(
    () => loadPrivateKeyPem(encodePem("PRIVATE KEY", new Uint8Array([0x30, 0])), "y.pem", PLAIN),
    "KEY_INVALID",
    "parsing private key",
  );
});
