/**
 * Key commands through the real CLI: `generate-key-pair` (COSIGN_PASSWORD, no overwrite without `-y`),
 * `generate-sigstore-key -p PREFIX --passphrase-file F`, `public-key` (same PEM as the `.pub`, the skopeo fixture
 * keys too), wrong passphrases; plus `airlock --help` and `airlock version`.
 *
 * The generated private keys are checked independently of airlock: the envelope is decrypted here (scrypt +
 * NaCl secretbox, spec/hangar.md §7.1) and the PKCS#8 key inside must be the one whose public half is the `.pub`.
 *
 * @module
 */
import { scryptSync } from "node:crypto";
import { join } from "node:path";
import { secretbox } from "@noble/ciphers/salsa.js";
import { assert, assertEquals, assertNotEquals, assertStringIncludes } from "../assert.ts";
import {
  airlock,
  type CliResult,
  importP256,
  loadPeerSkopeoCases,
  pemToDer,
  show,
  tempDir,
} from "../testbed/mod.ts";
import { VERSION } from "../../core/version.ts";

function ok(r: CliResult, what: string): void {
  assertEquals(r.code, 0, `${what} should succeed:\n${show(r)}`);
}

function fails(r: CliResult, what: string, ...needles: string[]): void {
  assert(r.code !== 0, `${what} should fail:\n${show(r)}`);
  for (const n of needles) assertStringIncludes(r.stderr, n, `${what}:\n${show(r)}`);
}

function b64(s: string): Uint8Array {
  return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
}

/** Decrypts an encrypted cosign/sigstore key file with `passphrase` and returns the SPKI DER of its key. */
async function spkiOfPrivateKey(pem: string, passphrase: string): Promise<Uint8Array> {
  const m = /-----BEGIN (ENCRYPTED (?:COSIGN|SIGSTORE) PRIVATE KEY)-----/.exec(pem);
  assert(m, `unexpected PEM type:\n${pem.slice(0, 80)}`);
  const env = JSON.parse(new TextDecoder().decode(pemToDer(pem)));
  assertEquals(env.kdf.name, "scrypt");
  assertEquals(env.kdf.params, { N: 65536, r: 8, p: 1 });
  assertEquals(env.cipher.name, "nacl/secretbox");
  const salt = b64(env.kdf.salt);
  const nonce = b64(env.cipher.nonce);
  assertEquals([salt.length, nonce.length], [32, 24]);
  const key = scryptSync(new TextEncoder().encode(passphrase), salt, 32, {
    N: 65536,
    r: 8,
    p: 1,
    maxmem: 256 * 1024 * 1024,
  });
  const pkcs8 = secretbox(new Uint8Array(key), nonce).open(b64(env.ciphertext));
  return (await importP256(pkcs8)).spki;
}

async function mode(path: string): Promise<number> {
  return (await Deno.stat(path)).mode! & 0o777;
}

Deno.test("airlock --help and version exit 0", async () => {
  await using home = await tempDir("airlock-cli-keys-");
  const [help, version] = await Promise.all([
    airlock(["--help"], { home: home.path }),
    airlock(["version"], { home: home.path }),
  ]);
  ok(help, "--help");
  for (
    const cmd of ["inspect", "login", "logout", "generate-key-pair", "generate-sigstore-key", "public-key"]
  ) {
    assertStringIncludes(help.stdout, cmd);
  }
  ok(version, "version");
  assertStringIncludes(version.stdout, `airlock ${VERSION}`);
});

Deno.test("key commands through the CLI", async (t) => {
  await using home = await tempDir("airlock-cli-keys-");
  const cwd = home.path;
  const run = (args: string[], env?: Record<string, string>) => airlock(args, { home: cwd, env });

  await t.step("generate-key-pair with COSIGN_PASSWORD; no overwrite without -y", async () => {
    const pass = "gkp-Passphrase-7c1d";
    const r = await run(["generate-key-pair"], { COSIGN_PASSWORD: pass });
    ok(r, "generate-key-pair");
    assert(!r.stdout.includes(pass) && !r.stderr.includes(pass), "passphrase not printed");
    const keyPath = join(cwd, "cosign.key");
    const pubPath = join(cwd, "cosign.pub");
    assertEquals(await mode(keyPath), 0o600);
    const keyPem = await Deno.readTextFile(keyPath);
    const pubPem = await Deno.readTextFile(pubPath);
    assertStringIncludes(pubPem, "-----BEGIN PUBLIC KEY-----");
    assertEquals(
      await spkiOfPrivateKey(keyPem, pass),
      pemToDer(pubPem),
      "cosign.pub is the key's public half",
    );

    // Again without -y: refused, files untouched.
    const again = await run(["generate-key-pair"], { COSIGN_PASSWORD: "other-pass" });
    fails(again, "generate-key-pair over existing files", "already exists");
    assertEquals(await Deno.readTextFile(keyPath), keyPem);
    assertEquals(await Deno.readTextFile(pubPath), pubPem);

    // With -y: a new pair replaces the old one.
    const forced = await run(["generate-key-pair", "-y"], { COSIGN_PASSWORD: "other-pass" });
    ok(forced, "generate-key-pair -y");
    const newPub = await Deno.readTextFile(pubPath);
    assertNotEquals(newPub, pubPem);
    assertEquals(await mode(keyPath), 0o600);
    assertEquals(await spkiOfPrivateKey(await Deno.readTextFile(keyPath), "other-pass"), pemToDer(newPub));

    // No passphrase source and stdin not a terminal: a clear error, no prompt, nothing written.
    const noPass = await airlock(["generate-key-pair", "--output-key-prefix", "nopass"], { home: cwd });
    fails(noPass, "generate-key-pair without a passphrase", "COSIGN_PASSWORD");
    await Deno.stat(join(cwd, "nopass.key")).then(() => assert(false, "nopass.key written"), () => {});
  });

  await t.step("generate-sigstore-key -p x --passphrase-file f; public-key prints the same PEM", async () => {
    const passFile = join(cwd, "f");
    await Deno.writeTextFile(passFile, "sigstore-Pass-42e9\nsecond line is ignored\n");
    const gen = await run(["generate-sigstore-key", "-p", "x", "--passphrase-file", passFile]);
    ok(gen, "generate-sigstore-key");
    assertEquals(await mode(join(cwd, "x.key")), 0o600);
    const pubPem = await Deno.readTextFile(join(cwd, "x.pub"));
    // The passphrase is the file's first line.
    assertEquals(
      await spkiOfPrivateKey(await Deno.readTextFile(join(cwd, "x.key")), "sigstore-Pass-42e9"),
      pemToDer(pubPem),
    );
    fails(
      await run(["generate-sigstore-key", "-p", "x", "--passphrase-file", passFile]),
      "generate-sigstore-key over existing files",
      "already exists",
    );

    const pk = await run(["public-key", "--key", "x.key", "--passphrase-file", passFile]);
    ok(pk, "public-key");
    assertEquals(pk.stdout, pubPem);

    const wrongFile = join(cwd, "wrong");
    await Deno.writeTextFile(wrongFile, "not-The-Passphrase-91\n");
    const wrong = await run(["public-key", "--key", "x.key", "--passphrase-file", wrongFile]);
    fails(wrong, "public-key with a wrong passphrase", "x.key");
    assert(/passphrase|decrypt/i.test(wrong.stderr), show(wrong));
    assertEquals(wrong.stdout, "");
    for (const secret of ["not-The-Passphrase-91", "sigstore-Pass-42e9"]) {
      assert(!wrong.stderr.includes(secret) && !wrong.stdout.includes(secret), "passphrase not printed");
    }
    const wrongEnv = await run(["public-key", "--key", "x.key"], { COSIGN_PASSWORD: "env-Wrong-77" });
    fails(wrongEnv, "public-key with a wrong COSIGN_PASSWORD", "x.key");
    assert(!wrongEnv.stderr.includes("env-Wrong-77"), "passphrase not printed");
    fails(
      await run(["public-key", "--key", "missing.key", "--passphrase-file", passFile]),
      "public-key of a missing file",
      "missing.key",
    );
  });

  await t.step("public-key of the skopeo-made fixture keys equals their .pub", async () => {
    const { keys } = await loadPeerSkopeoCases();
    const results = await Promise.all(
      Object.values(keys).map((k) =>
        run(["public-key", "--key", k.privateKey, "--passphrase-file", k.passphraseFile])
      ),
    );
    for (const [i, k] of Object.values(keys).entries()) {
      ok(results[i], `public-key ${k.privateKey}`);
      assertEquals(pemToDer(results[i].stdout), pemToDer(await Deno.readTextFile(k.publicKey)));
      assert(!results[i].stdout.includes(k.passphrase) && !results[i].stderr.includes(k.passphrase));
    }
  });
});
