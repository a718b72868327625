/**
 * The Azure Key Vault backend (`azurekms://`) against a FAKE Key Vault with its own Microsoft Entra ID token
 * endpoint (tests/testbed/fake_kms/azure.ts), which checks tenant, client id and client secret (or a workload
 * identity assertion) and the scope, then requires its bearer token on every vault call. Sign + verify (airlock
 * and openssl) for EC P-256 (raw `r‖s` → DER) and RSA keys, the current version pinned at open, explicit
 * versions, workload identity, errors (wrong secret, unknown client or tenant, a get-only client, missing key,
 * no credentials) without the secret in any message, and `airlock public-key --key azurekms://…`.
 *
 * @module
 */
import { join } from "node:path";
import { azureScope, parseAzureKmsRef } from "../../backends/azurekms.ts";
import { openKey } from "../../backends/key_backend.ts";
import { assertEquals } from "../assert.ts";
import { startFakeAzureKeyVault, tempDir } from "../testbed/mod.ts";
import { assertPublicKeyCli, envOf, rejectsWith, signAndVerify } from "./kms_test_util.ts";

const enc = new TextEncoder();
const TENANT = "72f988bf-0000-4000-8000-fakefaketen";
const CLIENT = "11111111-2222-3333-4444-555555555555";
const SECRET = "fake~AzureClientSecret.0123456789";
const READER = "99999999-2222-3333-4444-555555555555";
const READER_SECRET = "fake~ReaderSecret.987654321";
const WORKLOAD = "77777777-2222-3333-4444-555555555555";
const FEDERATED = "eyJhbGciOiJSUzI1NiJ9.fake-federated-token.sig";
const VAULT = "airlock-test.vault.azure.net";

Deno.test("azurekms:// references parse; the scope follows the vault's cloud", async () => {
  assertEquals(parseAzureKmsRef(`azurekms://${VAULT}/release`), { vault: VAULT, key: "release" });
  assertEquals(parseAzureKmsRef(`azurekms://${VAULT}/release/0123abcdef`).version, "0123abcdef");
  for (const bad of ["azurekms://vault/key", `azurekms://${VAULT}/`, `azurekms://${VAULT}/a/b/c`]) {
    await rejectsWith(() => Promise.resolve().then(() => parseAzureKmsRef(bad)), "INVALID_ARGUMENT", [bad]);
  }
  assertEquals(azureScope(VAULT), "https://vault.azure.net/.default");
  assertEquals(azureScope("v.vault.azure.cn"), "https://vault.azure.cn/.default");
  assertEquals(azureScope("h.managedhsm.azure.net"), "https://managedhsm.azure.net/.default");
});

Deno.test("Azure Key Vault backend against a fake Key Vault and token endpoint", async (t) => {
  await using tmp = await tempDir("airlock-azurekms-");
  await using az = await startFakeAzureKeyVault({
    tenant: TENANT,
    clients: {
      [CLIENT]: { secret: SECRET },
      [READER]: { secret: READER_SECRET, policy: "get" },
      [WORKLOAD]: { federatedToken: FEDERATED },
    },
  });
  const vars = {
    AZURE_TENANT_ID: TENANT,
    AZURE_CLIENT_ID: CLIENT,
    AZURE_CLIENT_SECRET: SECRET,
    AZURE_AUTHORITY_HOST: az.url,
    AIRLOCK_AZUREKMS_ENDPOINT: az.url,
  };
  const env = envOf(vars);
  const secrets = [SECRET, READER_SECRET, FEDERATED];
  const msg = enc.encode('{"critical":{"identity":{"docker-reference":"r.example/a:b"}}}');
  const ec1 = az.addKey("release", "ec-p256");

  await t.step("EC P-256: ES256 over the digest, raw r‖s converted to DER; openssl verifies", async () => {
    const key = await openKey(`azurekms://${VAULT}/release`, { env });
    assertEquals(await key.publicKey(), ec1.key.publicPem);
    const sig = await signAndVerify(key, msg, tmp.path);
    assertEquals(sig[0], 0x30);
    const ec2 = az.addKey("release", "ec-p256"); // a new version after open: the opened one stays pinned
    await Promise.all(Array.from({ length: 8 }, (_, i) => signAndVerify(key, enc.encode(`p${i}`))));
    assertEquals(az.calls.at(-1)!.path, `/keys/release/${ec1.version}/sign`);
    await key.close();
    const latest = await openKey(`azurekms://${VAULT}/release`, { env });
    assertEquals(await latest.publicKey(), ec2.key.publicPem);
    await latest.close();
    const old = await openKey(`azurekms://${VAULT}/release/${ec1.version}`, { env });
    assertEquals(await old.publicKey(), ec1.key.publicPem);
    await signAndVerify(old, msg);
    await old.close();
    assertEquals(az.issued.length, 3, "one token per opened key");
  });

  await t.step("RSA keys sign RS256; workload identity (federated token file)", async () => {
    const rsa = az.addKey("rsa", "rsa-2048");
    const key = await openKey(`azurekms://${VAULT}/rsa`, { env });
    assertEquals(await key.publicKey(), rsa.key.publicPem);
    await signAndVerify(key, msg, tmp.path);
    await key.close();
    const tokenFile = join(tmp.path, "azure-identity-token");
    await Deno.writeTextFile(tokenFile, `${FEDERATED}\n`);
    const wi = await openKey(`azurekms://${VAULT}/release`, {
      env: envOf({
        ...vars,
        AZURE_CLIENT_ID: WORKLOAD,
        AZURE_CLIENT_SECRET: undefined,
        AZURE_FEDERATED_TOKEN_FILE: tokenFile,
      }),
    });
    await signAndVerify(wi, msg);
    await wi.close();
    assertEquals(az.issued.at(-1), WORKLOAD);
  });

  await t.step(
    "errors: wrong secret, unknown client and tenant, get-only client, missing key, no credentials",
    async () => {
      const wrong = "fake~WrongSecret.000000000";
      await rejectsWith(
        () => openKey(`azurekms://${VAULT}/release`, { env: envOf({ ...vars, AZURE_CLIENT_SECRET: wrong }) }),
        "KEY_AUTH_FAILED",
        ["refused a token", "invalid_client", "AADSTS7000215", CLIENT],
        [wrong, ...secrets],
      );
      await rejectsWith(
        () => openKey(`azurekms://${VAULT}/release`, { env: envOf({ ...vars, AZURE_CLIENT_ID: "nobody" }) }),
        "KEY_AUTH_FAILED",
        ["AADSTS700016"],
        secrets,
      );
      await rejectsWith(
        () =>
          openKey(`azurekms://${VAULT}/release`, {
            env: envOf({ ...vars, AZURE_TENANT_ID: "other-tenant" }),
          }),
        "KEY_AUTH_FAILED",
        ["AADSTS90002"],
        secrets,
      );
      const ro = await openKey(`azurekms://${VAULT}/release`, {
        env: envOf({ ...vars, AZURE_CLIENT_ID: READER, AZURE_CLIENT_SECRET: READER_SECRET }),
      });
      await rejectsWith(
        () => ro.sign(msg),
        "KEY_ACCESS_DENIED",
        ["may not sign with the key", "Forbidden"],
        secrets,
      );
      await ro.close();
      await rejectsWith(() => openKey(`azurekms://${VAULT}/nosuch`, { env }), "KEY_NOT_FOUND", [
        "KeyNotFound",
      ], secrets);
      await rejectsWith(
        () => openKey(`azurekms://${VAULT}/release`, { env: envOf({ AZURE_TENANT_ID: TENANT }) }),
        "KEY_AUTH_FAILED",
        ["no Azure credentials", "AZURE_CLIENT_SECRET"],
      );
    },
  );

  await t.step("airlock public-key --key azurekms://… prints the fake's public key", async () => {
    await assertPublicKeyCli({
      ref: `azurekms://${VAULT}/rsa`,
      home: tmp.path,
      env: vars,
      pem: az.keys.get("rsa")![0].key.publicPem,
      wrong: { variable: "AZURE_CLIENT_SECRET", secret: "fake~cli-wrong-secret", reason: "AADSTS7000215" },
    });
  });
});
