/**
 * The Vault / OpenBao backend (`hashivault://`, `openbao://`) against a FAKE Vault (tests/testbed/fake_kms/vault.ts)
 * that speaks the transit engine's real HTTP API, checks `X-Vault-Token` and signs with real keys: sign + verify
 * (airlock and openssl) for ECDSA, RSA and Ed25519 keys, the exact request bodies (prehashed SHA-256, asn1,
 * pkcs1v15, the pinned version), OpenBao variables, namespaces, a custom mount, the token file, TLS options,
 * errors (bad token, denied policy, missing key, no address, unreachable) without the token in any message,
 * and `airlock public-key --key hashivault://…`.
 *
 * @module
 */
import { join } from "node:path";
import { openKey } from "../../backends/key_backend.ts";
import { parseVaultRef } from "../../backends/hashivault.ts";
import { base64Decode } from "../../core/encoding/base64.ts";
import { assertEquals } from "../assert.ts";
import { freePort, makeCa, makeLeaf, startFakeVault, tempDir } from "../testbed/mod.ts";
import { assertPublicKeyCli, envOf, rejectsWith, signAndVerify } from "./kms_test_util.ts";

const enc = new TextEncoder();
const TOKEN = "hvs.fake-good-token-0123456789";
const READ_TOKEN = "hvs.fake-read-only-token-42";

Deno.test("hashivault:// and openbao:// references parse as sigstore's regexp", async () => {
  assertEquals(parseVaultRef("hashivault://release"), { scheme: "hashivault", key: "release" });
  assertEquals(parseVaultRef("openbao://my-key.v2"), { scheme: "openbao", key: "my-key.v2" });
  for (const bad of ["hashivault://", "hashivault://a/b", "hashivault://-x", "openbao://k?x=1"]) {
    await rejectsWith(() => Promise.resolve().then(() => parseVaultRef(bad)), "INVALID_ARGUMENT", [bad]);
  }
});

Deno.test("Vault backend against a fake Vault", async (t) => {
  await using tmp = await tempDir("airlock-vault-");
  await using vault = await startFakeVault({ tokens: { [TOKEN]: "sign", [READ_TOKEN]: "read" } });
  const env = envOf({ VAULT_ADDR: vault.url, VAULT_TOKEN: TOKEN });
  const msg = enc.encode('{"critical":{"identity":{"docker-reference":"r.example/a:b"}}}');

  await t.step(
    "ECDSA P-256: sign, verify with the exported key and openssl; the request Vault saw",
    async () => {
      const fakeKey = vault.addKey("ec", "ec-p256");
      const key = await openKey("hashivault://ec", { env });
      assertEquals(await key.publicKey(), fakeKey.publicPem);
      const sig = await signAndVerify(key, msg, tmp.path);
      assertEquals(sig[0], 0x30, "DER");
      const sign = vault.requests.at(-1)!;
      assertEquals(sign.path, "/v1/transit/sign/ec/sha2-256");
      assertEquals(sign.body?.prehashed, true);
      assertEquals(sign.body?.marshaling_algorithm, "asn1");
      assertEquals(sign.body?.key_version, 1);
      const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", msg));
      assertEquals([...base64Decode(String(sign.body?.input))!], [...digest]);
      await key.close();
      await rejectsWith(() => key.sign(msg), "KEY_BACKEND", ["closed"]);
    },
  );

  await t.step("RSA asks for pkcs1v15 (Vault's default is PSS); Ed25519 signs the message", async () => {
    vault.addKey("rsa", "rsa-2048");
    const rsa = await openKey("hashivault://rsa", { env });
    await signAndVerify(rsa, msg, tmp.path);
    assertEquals(vault.requests.at(-1)!.body?.signature_algorithm, "pkcs1v15");
    await rsa.close();
    vault.addKey("ed", "ed25519");
    const ed = await openKey("hashivault://ed", { env });
    const sig = await signAndVerify(ed, msg);
    assertEquals(sig.length, 64);
    assertEquals(vault.requests.at(-1)!.path, "/v1/transit/sign/ed");
    assertEquals(vault.requests.at(-1)!.body?.prehashed, undefined);
    await ed.close();
  });

  await t.step("the version read at open is pinned when the key rotates; 16 concurrent signs", async () => {
    vault.addKey("rot", "ec-p256");
    const key = await openKey("hashivault://rot", { env });
    vault.rotate("rot");
    const msgs = Array.from({ length: 16 }, (_, i) => enc.encode(`payload ${i}`));
    await Promise.all(msgs.map((m) => signAndVerify(key, m)));
    assertEquals(vault.requests.at(-1)!.body?.key_version, 1);
    await key.close();
    const fresh = await openKey("hashivault://rot", { env });
    assertEquals(await fresh.publicKey(), vault.keys.get("rot")![1].publicPem);
    await signAndVerify(fresh, msg);
    await fresh.close();
  });

  await t.step("openbao:// reads BAO_ADDR/BAO_TOKEN; the token file ~/.vault-token; namespace", async () => {
    const bao = await openKey("openbao://ec", { env: envOf({ BAO_ADDR: vault.url, BAO_TOKEN: TOKEN }) });
    await signAndVerify(bao, msg);
    await bao.close();
    const home = join(tmp.path, "home");
    await Deno.mkdir(home);
    await Deno.writeTextFile(join(home, ".vault-token"), `${TOKEN}\n`);
    const fromFile = await openKey("hashivault://ec", { env: envOf({ VAULT_ADDR: vault.url, HOME: home }) });
    await signAndVerify(fromFile, msg);
    await fromFile.close();

    await using ns = await startFakeVault({
      tokens: { [TOKEN]: "sign" },
      namespace: "team-a",
      mount: "pki-sign",
    });
    ns.addKey("k", "ec-p256");
    const base = { VAULT_ADDR: ns.url, VAULT_TOKEN: TOKEN, TRANSIT_SECRET_ENGINE_PATH: "/pki-sign/" };
    await rejectsWith(() => openKey("hashivault://k", { env: envOf(base) }), "KEY_AUTH_FAILED", [], [TOKEN]);
    const key = await openKey("hashivault://k", { env: envOf({ ...base, VAULT_NAMESPACE: "team-a" }) });
    await signAndVerify(key, msg);
    assertEquals(ns.requests.at(-1)!.path, "/v1/pki-sign/sign/k/sha2-256");
    await key.close();
  });

  await t.step("errors name what failed and never print the token", async () => {
    const bad = "hvs.this-token-is-wrong-77";
    await rejectsWith(
      () => openKey("hashivault://ec", { env: envOf({ VAULT_ADDR: vault.url, VAULT_TOKEN: bad }) }),
      "KEY_AUTH_FAILED",
      ["rejected the token", vault.url],
      [bad],
    );
    const ro = await openKey("hashivault://ec", {
      env: envOf({ VAULT_ADDR: vault.url, VAULT_TOKEN: READ_TOKEN }),
    });
    await rejectsWith(() => ro.sign(msg), "KEY_ACCESS_DENIED", ["policies do not allow", '"ec"'], [
      READ_TOKEN,
    ]);
    await ro.close();
    await rejectsWith(
      () => openKey("hashivault://nosuchkey", { env }),
      "KEY_NOT_FOUND",
      ['transit key "nosuchkey" not found', `${vault.url}/v1/transit`],
      [TOKEN],
    );
    await rejectsWith(
      () => openKey("hashivault://ec", { env: envOf({ VAULT_TOKEN: TOKEN }) }),
      "CONFIG_INVALID",
      ["VAULT_ADDR is not set"],
      [TOKEN],
    );
    await rejectsWith(
      () => openKey("openbao://ec", { env: envOf({ BAO_ADDR: vault.url, HOME: join(tmp.path, "nohome") }) }),
      "KEY_AUTH_FAILED",
      ["no Vault token", "BAO_TOKEN"],
    );
    await rejectsWith(
      () =>
        openKey("hashivault://ec", {
          env: envOf({ VAULT_ADDR: `http://127.0.0.1:${freePort()}`, VAULT_TOKEN: TOKEN }),
        }),
      "KEY_SERVICE_UNREACHABLE",
      ["cannot reach Vault", "connection refused"],
      [TOKEN],
    );
  });

  await t.step("airlock public-key --key hashivault://ec prints the fake's public key", async () => {
    await assertPublicKeyCli({
      ref: "hashivault://ec",
      home: tmp.path,
      env: { VAULT_ADDR: vault.url, VAULT_TOKEN: TOKEN },
      pem: vault.keys.get("ec")![0].publicPem,
      wrong: { variable: "VAULT_TOKEN", secret: "hvs.wrong-token-for-cli", reason: "rejected the token" },
    });
  });
});

Deno.test("Vault over TLS: VAULT_CACERT, VAULT_CAPATH, VAULT_SKIP_VERIFY", async () => {
  await using tmp = await tempDir("airlock-vault-tls-");
  const ca = await makeCa(tmp.path);
  const leaf = await makeLeaf(tmp.path, ca);
  await using vault = await startFakeVault({
    tokens: { [TOKEN]: "sign" },
    tls: { cert: leaf.certPem, key: leaf.keyPem },
  });
  vault.addKey("k", "ec-p256");
  const msg = enc.encode("tls payload");
  const base = { VAULT_ADDR: vault.url, VAULT_TOKEN: TOKEN };
  await rejectsWith(
    () => openKey("hashivault://k", { env: envOf(base) }),
    "TLS_ERROR",
    ["unknown authority", "VAULT_CACERT"],
    [TOKEN],
  );
  for (
    const extra of [{ VAULT_CACERT: ca.certPath }, { VAULT_CAPATH: tmp.path }, { VAULT_SKIP_VERIFY: "true" }]
  ) {
    const key = await openKey("hashivault://k", { env: envOf({ ...base, ...extra }) });
    await signAndVerify(key, msg);
    await key.close();
  }
});
