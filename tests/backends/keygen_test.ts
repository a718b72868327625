import { assert, assertEquals, assertMatch, assertRejects } from "../assert.ts";
import { AirlockError } from "../../core/errors.ts";
import {
  COSIGN_KEY_PEM_TYPE,
  openKeyFile,
  parseKeyEnvelope,
  SIGSTORE_KEY_PEM_TYPE,
} from "../../backends/file.ts";
import { generateKeyPair, keyPairPaths, writeKeyPair } from "../../backends/keygen.ts";
import { base64Decode } from "../../core/encoding/base64.ts";
import { decodePem } from "../../core/encoding/pem.ts";
import { parsePublicKeyPem, verifySignature } from "../../core/signature/public_key.ts";

const TMP = await Deno.makeTempDir({ prefix: "airlock-keygen-test-" });
globalThis.addEventListener("unload", () => Deno.removeSync(TMP, { recursive: true }));
const QUIET = { env: () => undefined, isTerminal: () => false };
const MSG = new TextEncoder().encode("payload");

Deno.test("generateKeyPair: encrypted P-256 PKCS#8 in cosign's format, round trip through the file backend", async () => {
  const pair = await generateKeyPair({ passphrase: "s3cret" });
  // PEM framing as Go writes it
  assertMatch(pair.privatePem, /^-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n/);
  assertMatch(pair.privatePem, /\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n$/);
  const lines = pair.privatePem.trimEnd().split("\n").slice(1, -1);
  for (const l of lines.slice(0, -1)) assertEquals(l.length, 64);
  assert(lines.at(-1)!.length <= 64);
  assertMatch(pair.publicPem, /^-----BEGIN PUBLIC KEY-----\n[A-Za-z0-9+/=\n]+-----END PUBLIC KEY-----\n$/);

  // the envelope: Go field order, scrypt 65536/8/1, 32-byte salt, 24-byte nonce
  const block = decodePem(pair.privatePem)!;
  const json = new TextDecoder().decode(block.bytes);
  assertMatch(
    json,
    /^\{"kdf":\{"name":"scrypt","params":\{"N":65536,"r":8,"p":1\},"salt":"[^"]+"\},"cipher":\{"name":"nacl\/secretbox","nonce":"[^"]+"\},"ciphertext":"[^"]+"\}$/,
  );
  const env = parseKeyEnvelope(block.bytes, "generated");
  assertEquals(env.salt.length, 32);
  assertEquals(env.nonce.length, 24);
  assertEquals(base64Decode(JSON.parse(json).ciphertext)!.length, env.ciphertext.length);

  const path = `${TMP}/gen.key`;
  await Deno.writeTextFile(path, pair.privatePem);
  const key = await openKeyFile(path, { ...QUIET, passphrase: "s3cret" });
  assertEquals(await key.publicKey(), pair.publicPem);
  const pub = parsePublicKeyPem(pair.publicPem);
  assertEquals(pub.curve, "P-256");
  assert(await verifySignature(pub, MSG, await key.sign(MSG)));
  const e = await assertRejects(() => openKeyFile(path, { ...QUIET, passphrase: "wrong" }), AirlockError);
  assertEquals(e.code, "KEY_PASSPHRASE");

  // fresh salt and nonce every time
  const again = await generateKeyPair({ passphrase: "s3cret", scryptN: 32768 });
  const env2 = parseKeyEnvelope(decodePem(again.privatePem)!.bytes, "again");
  assertEquals(env2.scrypt.N, 32768);
  assert(env2.salt.some((b, i) => b !== env.salt[i]));
  assert(env2.nonce.some((b, i) => b !== env.nonce[i]));
});

Deno.test("generateKeyPair: hangar/skopeo PEM type and an empty passphrase", async () => {
  const pair = await generateKeyPair({ passphrase: "", pemType: COSIGN_KEY_PEM_TYPE, scryptN: 32768 });
  assertEquals(decodePem(pair.privatePem)!.type, COSIGN_KEY_PEM_TYPE);
  const path = `${TMP}/empty.key`;
  await Deno.writeTextFile(path, pair.privatePem);
  const key = await openKeyFile(path, { ...QUIET, passphrase: "" });
  assertEquals(await key.publicKey(), pair.publicPem);
  assertEquals(SIGSTORE_KEY_PEM_TYPE, "ENCRYPTED SIGSTORE PRIVATE KEY");
  const bad = await assertRejects(() => generateKeyPair({ passphrase: "x", scryptN: 1024 }), AirlockError);
  assertEquals(bad.code, "INVALID_ARGUMENT");
});

Deno.test("writeKeyPair: key file 0600, public 0644, never overwrites unless told", async () => {
  const dir = await Deno.makeTempDir({ dir: TMP });
  const paths = keyPairPaths(`${dir}/cosign`);
  assertEquals(paths, { keyFile: `${dir}/cosign.key`, pubFile: `${dir}/cosign.pub` });
  assertEquals(keyPairPaths("p", "skopeo"), { keyFile: "p.private", pubFile: "p.pub" });
  const pair = await generateKeyPair({ passphrase: "pw", scryptN: 32768 });
  await writeKeyPair(pair, paths);
  assertEquals((await Deno.stat(paths.keyFile)).mode! & 0o777, 0o600);
  assertEquals((await Deno.stat(paths.pubFile)).mode! & 0o077, (0o644 & ~Deno.umask()) & 0o077);
  assertEquals(await Deno.readTextFile(paths.keyFile), pair.privatePem);
  assertEquals(await Deno.readTextFile(paths.pubFile), pair.publicPem);

  // refuse: nothing is changed
  const other = await generateKeyPair({ passphrase: "pw2", scryptN: 32768 });
  const e = await assertRejects(() => writeKeyPair(other, paths), AirlockError);
  assertEquals(e.code, "FILE_EXISTS");
  assertEquals(e.message, `file "${paths.keyFile}" already exists`);
  assertEquals(await Deno.readTextFile(paths.keyFile), pair.privatePem);

  // only the public key exists: still refused, and no key file is left behind
  const lone = keyPairPaths(`${dir}/lone`);
  await Deno.writeTextFile(lone.pubFile, "keep me");
  const e2 = await assertRejects(() => writeKeyPair(other, lone), AirlockError);
  assertEquals(e2.code, "FILE_EXISTS");
  assertEquals(await Deno.readTextFile(lone.pubFile), "keep me");
  await assertRejects(() => Deno.stat(lone.keyFile), Deno.errors.NotFound);

  // overwrite: replaced, and the key file is 0600 even if the old one was world-readable
  await Deno.chmod(paths.keyFile, 0o644);
  await writeKeyPair(other, paths, { overwrite: true });
  assertEquals(await Deno.readTextFile(paths.keyFile), other.privatePem);
  assertEquals(await Deno.readTextFile(paths.pubFile), other.publicPem);
  assertEquals((await Deno.stat(paths.keyFile)).mode! & 0o777, 0o600);
  assertEquals([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
    "cosign.key",
    "cosign.pub",
    "lone.pub",
  ]);
  const key = await openKeyFile(paths.keyFile, { ...QUIET, passphrase: "pw2" });
  assertEquals(await key.publicKey(), other.publicPem);

  // a directory that does not exist: IO_ERROR
  const e3 = await assertRejects(
    () => writeKeyPair(pair, keyPairPaths(`${dir}/no/such/dir/k`)),
    AirlockError,
  );
  assertEquals(e3.code, "IO_ERROR");
});
