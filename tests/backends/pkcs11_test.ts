/**
 * The PKCS#11 backend against a real SoftHSM2 token (tests/testbed/softhsm.ts): every key type signs through
 * `openKey("pkcs11:…")` and the signatures verify with the exported public key (airlock's verifier and
 * `openssl dgst`), which must equal what `pkcs11-tool` exports; URI parsing; PIN sources; the error for each
 * way opening can fail (with its code, never the PIN); concurrent signers; key generation on the token, also
 * through `airlock generate-key-pair --key pkcs11:…`.
 *
 * @module
 */
import { join } from "node:path";
import { openKey } from "../../backends/key_backend.ts";
import { generatePkcs11KeyPair, openPkcs11Key } from "../../backends/pkcs11/key.ts";
import type { Pkcs11Options } from "../../backends/pkcs11/session.ts";
import { parsePkcs11Uri, pinValueWarning, redactPkcs11Uri } from "../../backends/pkcs11/uri.ts";
import { AirlockError } from "../../core/errors.ts";
import { parsePublicKeyPem, verifySignature } from "../../core/signature/public_key.ts";
import { assert, assertEquals } from "../assert.ts";
import { airlock, startSoftHsm, tempDir } from "../testbed/mod.ts";
import { opensslVerify } from "../testbed/signatures.ts";
import { rejectsWith } from "./kms_test_util.ts";

const enc = new TextEncoder();
const PIN = "730519";
const WRONG_PIN = "246813";
const MODULE = "/usr/lib/softhsm/libsofthsm2.so";
/** No environment, no terminal: only what a test passes counts. */
const QUIET: Pkcs11Options = { env: () => undefined, isTerminal: () => false };

/** Rejects with `code`, a message with every one of `includes`, and never a PIN. */
function rejects(fn: () => Promise<unknown>, code: string, ...includes: string[]): Promise<AirlockError> {
  return rejectsWith(fn, code, includes, [PIN, WRONG_PIN]);
}

/** Signs a few messages and checks each signature with the exported key and with openssl. */
async function signAndVerify(
  key: { sign(m: Uint8Array): Promise<Uint8Array>; publicKey(): Promise<string> },
  work: string,
): Promise<void> {
  const pem = await key.publicKey();
  const pub = parsePublicKeyPem(pem);
  for (const text of ["", "hello", "x".repeat(5000)]) {
    const msg = enc.encode(text);
    const sig = await key.sign(msg);
    assert(await verifySignature(pub, msg, sig), `airlock verify (${text.length} bytes)`);
    assert(await opensslVerify(pem, msg, sig, work), `openssl verify (${text.length} bytes)`);
    assert(!await verifySignature(pub, enc.encode(text + "!"), sig), "a signature over other data verifies");
  }
}

Deno.test("pkcs11 URI: RFC 7512 attributes, separators, percent-encoding, fallbacks", async () => {
  const noEnv = { env: () => undefined };
  const u = parsePkcs11Uri(
    "pkcs11:token=My%20Token;object=sig+key;id=%01%ff;serial=abc;type=private" +
      "?module-path=/usr/lib/x.so&pin-source=file:///run/pin%20file&x-vendor=1",
    noEnv,
  );
  assertEquals(u.token, "My Token");
  assertEquals(u.object, "sig+key"); // RFC 7512: + is not a space
  assertEquals([...u.id!], [1, 255]);
  assertEquals(u.serial, "abc");
  assertEquals(u.modulePath, "/usr/lib/x.so");
  assertEquals(u.pinSource, "/run/pin file");
  // & in the path and ; in the query, as cosign accepts; slot-id; the module path from the environment
  const v = parsePkcs11Uri("pkcs11:slot-id=42&id=%02?pin-value=12%2634;x=y", {
    env: (n) => n === "COSIGN_PKCS11_MODULE_PATH" ? "/env/module.so" : undefined,
  });
  assertEquals([v.slotId, [...v.id!], v.pinValue, v.modulePath], [42n, [2], "12&34", "/env/module.so"]);
  assertEquals(
    parsePkcs11Uri("pkcs11:token=t;object=k?pin-source=/p&module-path=/m.so", noEnv).pinSource,
    "/p",
  );

  const bad: [string, string][] = [
    ["pkcs11:object=k?module-path=/m.so", "one of token, slot-id or serial"],
    ["pkcs11:token=t?module-path=/m.so", "one of object and id"],
    ["pkcs11:token=t;object=k", "module-path or COSIGN_PKCS11_MODULE_PATH"],
    ["pkcs11:token=t;object=k;token=u?module-path=/m.so", "given twice"],
    ["pkcs11:token=t;object=k;colour=red?module-path=/m.so", 'unknown path attribute "colour"'],
    ["pkcs11:token=t;object=k;library-version=3?module-path=/m.so", "not supported"],
    ["pkcs11:token=t;object=%zz?module-path=/m.so", "bad percent-encoding"],
    ["pkcs11:slot-id=x1;object=k?module-path=/m.so", "is not a number"],
    [`pkcs11:token=t;object=k?module-path=/m.so&pin-value=${PIN}&pin-source=/p`, "not both"],
  ];
  for (const [ref, msg] of bad) {
    await rejects(() => Promise.resolve().then(() => parsePkcs11Uri(ref, noEnv)), "INVALID_ARGUMENT", msg);
  }

  const withPin = `pkcs11:token=t;object=k?module-path=/m.so&pin-value=${PIN}`;
  assertEquals(redactPkcs11Uri(withPin), "pkcs11:token=t;object=k?module-path=/m.so&pin-value=***");
  assert(pinValueWarning(withPin)?.includes("process listings"));
  assertEquals(pinValueWarning("pkcs11:token=t;object=k?pin-source=/p"), undefined);
});

Deno.test("pkcs11 backend on SoftHSM2", async (t) => {
  await using hsm = await startSoftHsm();
  await using tmp = await tempDir("airlock-pkcs11-");
  const token = await hsm.initToken("airlock-test", { pin: PIN, soPin: "112233" });
  const other = await hsm.initToken("other-token", { pin: "999000" });
  const keys = [
    { type: "EC:prime256v1", label: "ec-p256", id: "01", alg: "ecdsa", curve: "P-256" },
    { type: "EC:secp384r1", label: "ec-p384", id: "02", alg: "ecdsa", curve: "P-384" },
    { type: "rsa:2048", label: "rsa-2048", id: "03", alg: "rsa", curve: undefined },
  ] as const;
  for (const k of keys) await hsm.generateKey(token, k);
  const uri = (key: { object?: string; id?: string; pin?: boolean }) => hsm.uri(token, key);

  await t.step("every key type signs; signatures verify with the exported key and openssl", async () => {
    for (const k of keys) {
      const key = await openKey(uri({ object: k.label }), QUIET);
      try {
        const pem = await key.publicKey();
        assertEquals(
          pem,
          await hsm.publicKeyPem(token, k.id),
          `${k.label}: public key differs from pkcs11-tool's`,
        );
        const pub = parsePublicKeyPem(pem);
        assertEquals([pub.algorithm, pub.curve], [k.alg, k.curve]);
        await signAndVerify(key, tmp.path);
      } finally {
        await key.close();
      }
    }
  });

  await t.step("selection by id, by label and id, by slot-id and by serial", async () => {
    const slot = await hsm.slotOf(token.label);
    const refs = [
      uri({ id: "02" }),
      uri({ object: "ec-p384", id: "02" }),
      `pkcs11:slot-id=${slot};object=ec-p384?module-path=${MODULE}&pin-value=${PIN}`,
    ];
    const expected = await hsm.publicKeyPem(token, "02");
    for (const ref of refs) {
      const key = await openKey(ref, QUIET);
      assertEquals(await key.publicKey(), expected, ref);
      await key.close();
    }
    // the serial, as C_GetTokenInfo reports it (read through a key opened by label)
    const { stdout } = await new Deno.Command("softhsm2-util", {
      args: ["--show-slots"],
      env: hsm.env,
      stdout: "piped",
    })
      .output().then((o) => ({ stdout: new TextDecoder().decode(o.stdout) }));
    const block = stdout.split(/^Slot /m).find((b) => /Label:\s*airlock-test\s*$/m.test(b))!;
    const serial = block.match(/Serial number:\s*(\S+)/)![1];
    const key = await openKey(`pkcs11:serial=${serial};id=%01?module-path=${MODULE}&pin-value=${PIN}`, QUIET);
    assertEquals(await key.publicKey(), await hsm.publicKeyPem(token, "01"));
    await key.close();
  });

  await t.step(
    "errors: wrong PIN, missing token, slot, object, module; each with its code, never the PIN",
    async () => {
      const e = await rejects(
        () => openKey(hsm.uri({ ...token, pin: WRONG_PIN }, { object: "ec-p256" }), QUIET),
        "KEY_PASSPHRASE",
        "wrong PIN",
        "CKR_PIN_INCORRECT",
        '"airlock-test"',
      );
      assert(!(String(e.cause).includes(WRONG_PIN)));
      await rejects(
        () => openKey(hsm.uri({ ...token, label: "no-such-token" }, { object: "ec-p256" }), QUIET),
        "KEY_NOT_FOUND",
        'no PKCS#11 token with label "no-such-token"',
        '"airlock-test"',
        '"other-token"',
      );
      await rejects(
        () => openKey(`pkcs11:slot-id=4242;object=k?module-path=${MODULE}&pin-value=${PIN}`, QUIET),
        "KEY_NOT_FOUND",
        "slot 4242",
      );
      await rejects(
        () => openKey(uri({ object: "no-such-key" }), QUIET),
        "KEY_NOT_FOUND",
        'no private key with label "no-such-key"',
      );
      await rejects(() => openKey(uri({ object: "ec-p256", id: "02" }), QUIET), "KEY_NOT_FOUND", "id 02");
      await rejects(
        () =>
          openKey(
            `pkcs11:token=airlock-test;object=k?module-path=/nonexistent/libnope.so&pin-value=${PIN}`,
            QUIET,
          ),
        "KEY_BACKEND",
        '"/nonexistent/libnope.so" does not exist',
      );
      const notALibrary = join(tmp.path, "not-a-module.so");
      await Deno.writeTextFile(notALibrary, "not an ELF file");
      await rejects(
        () =>
          openKey(`pkcs11:token=airlock-test;object=k?module-path=${notALibrary}&pin-value=${PIN}`, QUIET),
        "KEY_BACKEND",
        `cannot load PKCS#11 module "${notALibrary}"`,
      );
      // a shared library that is not a PKCS#11 module
      const libz = "/usr/lib/x86_64-linux-gnu/libz.so.1";
      if (await Deno.stat(libz).then(() => true, () => false)) {
        await rejects(
          () => openKey(`pkcs11:token=airlock-test;object=k?module-path=${libz}&pin-value=${PIN}`, QUIET),
          "KEY_BACKEND",
          `cannot load PKCS#11 module "${libz}"`,
          "C_GetFunctionList",
        );
      }
      // no PIN at all, and stdin is not a terminal
      await rejects(
        () => openKey(uri({ object: "ec-p256", pin: false }), QUIET),
        "KEY_PASSPHRASE",
        'no PIN for PKCS#11 token "airlock-test"',
        "pin-source",
      );
    },
  );

  await t.step("PIN sources: pin-source file (path and file: URI), COSIGN_PKCS11_PIN, prompt", async () => {
    const pinFile = join(tmp.path, "pin.txt");
    await Deno.writeTextFile(pinFile, `${PIN}\n`, { mode: 0o600 });
    const base = `pkcs11:token=airlock-test;object=ec-p256?module-path=${MODULE}`;
    for (const ref of [`${base}&pin-source=${pinFile}`, `${base}&pin-source=file://${pinFile}`]) {
      const key = await openKey(ref, QUIET);
      await signAndVerify(key, tmp.path);
      await key.close();
    }
    await rejects(
      () => openKey(`${base}&pin-source=${join(tmp.path, "missing")}`, QUIET),
      "IO_ERROR",
      "missing",
    );
    // environment fallbacks: the PIN and the module path
    const env = (n: string) =>
      ({ COSIGN_PKCS11_PIN: PIN, COSIGN_PKCS11_MODULE_PATH: MODULE } as Record<string, string>)[n];
    const key = await openKey("pkcs11:token=airlock-test;object=rsa-2048", { env, isTerminal: () => false });
    await signAndVerify(key, tmp.path);
    await key.close();
    // the real process environment is the default source
    Deno.env.set("COSIGN_PKCS11_PIN", PIN);
    Deno.env.set("COSIGN_PKCS11_MODULE_PATH", MODULE);
    try {
      const k2 = await openKey("pkcs11:token=airlock-test;id=%01", { isTerminal: () => false });
      await signAndVerify(k2, tmp.path);
      await k2.close();
    } finally {
      Deno.env.delete("COSIGN_PKCS11_PIN");
      Deno.env.delete("COSIGN_PKCS11_MODULE_PATH");
    }
    // a prompt, only on a terminal
    const asked: string[] = [];
    const k3 = await openKey(uri({ object: "ec-p256", pin: false }), {
      env: () => undefined,
      isTerminal: () => true,
      prompt: (m) => {
        asked.push(m);
        return Promise.resolve(PIN);
      },
    });
    await signAndVerify(k3, tmp.path);
    await k3.close();
    assertEquals(asked.length, 1);
    assert(asked[0].includes('"airlock-test"') && asked[0].includes("ec-p256"), asked[0]);
  });

  await t.step(
    "8 concurrent signs verify: one session (serialised) and a pool of 4 nonblocking sessions",
    async () => {
      for (const sessions of [1, 4]) {
        for (const k of keys) {
          const key = await openPkcs11Key(uri({ object: k.label }), { ...QUIET, sessions });
          try {
            const pub = parsePublicKeyPem(await key.publicKey());
            const msgs = Array.from({ length: 8 }, (_, i) => enc.encode(`payload ${i} ${k.label}`));
            const sigs = await Promise.all(msgs.map((m) => key.sign(m)));
            for (let i = 0; i < 8; i++) {
              assert(await verifySignature(pub, msgs[i], sigs[i]), `${k.label} sessions=${sessions} #${i}`);
            }
          } finally {
            await key.close();
          }
        }
      }
    },
  );

  await t.step("two keys on one token share the login; closing one leaves the other working", async () => {
    const a = await openKey(uri({ object: "ec-p256" }), QUIET);
    const b = await openKey(uri({ object: "rsa-2048" }), QUIET);
    await a.close();
    await signAndVerify(b, tmp.path);
    await b.close();
    await a.close(); // idempotent
    await rejects(() => a.sign(enc.encode("x")), "KEY_BACKEND", "closed");
    // and the module can be loaded again after the last close
    const c = await openKey(uri({ object: "ec-p256" }), QUIET);
    await signAndVerify(c, tmp.path);
    await c.close();
  });

  await t.step("generatePkcs11KeyPair: P-256 on the token, refuses to overwrite", async () => {
    const ref = uri({ object: "generated", id: "a1b2" });
    const made = await generatePkcs11KeyPair(ref, QUIET);
    assertEquals([...made.id], [0xa1, 0xb2]);
    assertEquals(made.publicPem, await hsm.publicKeyPem(token, "a1b2"));
    const key = await openKey(ref, QUIET);
    assertEquals(await key.publicKey(), made.publicPem);
    await signAndVerify(key, tmp.path);
    await key.close();
    await rejects(() => generatePkcs11KeyPair(ref, QUIET), "KEY_EXISTS", "generated");
    await rejects(
      () => generatePkcs11KeyPair(uri({ object: "other", id: "01" }), QUIET),
      "KEY_EXISTS",
      "id 01",
    );
  });

  await t.step("airlock generate-key-pair --key pkcs11:… then public-key and sign", async () => {
    await using home = await tempDir("airlock-pkcs11-cli-");
    const pinFile = join(home.path, "pin");
    const ref = `pkcs11:token=other-token;object=cli-key?module-path=${MODULE}&pin-source=${pinFile}`;
    await Deno.writeTextFile(pinFile, "999000");
    const gen = await airlock(["generate-key-pair", "--key", ref, "--output-key-prefix", "hsm"], {
      home: home.path,
      env: hsm.env,
    });
    assertEquals(gen.code, 0, gen.stderr);
    const pem = await Deno.readTextFile(join(home.path, "hsm.pub"));
    await Deno.lstat(join(home.path, "hsm.key")).then(
      () => assert(false, "a private key file was written"),
      () => {},
    );
    const pub = await airlock(["public-key", "--key", ref], { home: home.path, env: hsm.env });
    assertEquals([pub.code, pub.stdout], [0, pem], pub.stderr);
    const key = await openKey(ref, QUIET);
    assertEquals(await key.publicKey(), pem);
    await signAndVerify(key, tmp.path);
    await key.close();
    // again: the .pub exists → refused before touching the token; with -y the token still refuses
    const again = await airlock(["generate-key-pair", "--key", ref, "--output-key-prefix", "hsm"], {
      home: home.path,
      env: hsm.env,
    });
    assert(again.code !== 0 && again.stderr.includes("already exists"), again.stderr);
    const forced = await airlock(["generate-key-pair", "--key", ref, "--output-key-prefix", "hsm", "-y"], {
      home: home.path,
      env: hsm.env,
    });
    assert(forced.code !== 0 && forced.stderr.includes("exists on PKCS#11 token"), forced.stderr);
    // a pin-value on the command line draws a warning, and the PIN is printed nowhere
    const warned = await airlock(
      [
        "public-key",
        "--key",
        `pkcs11:token=other-token;object=cli-key?module-path=${MODULE}&pin-value=999000`,
      ],
      { home: home.path, env: hsm.env },
    );
    assertEquals(warned.code, 0, warned.stderr);
    assert(warned.stderr.includes("process listings"), warned.stderr);
    assert(!warned.stderr.includes("999000") && !warned.stdout.includes("999000"));
  });
  assertEquals(other.label, "other-token");
});
