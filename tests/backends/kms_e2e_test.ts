/**
 * End to end: the real `airlock sign` CLI signs an image in a real registry (tests/testbed startRegistry) with a
 * key behind each Vault / cloud KMS backend — each one a FAKE service on 127.0.0.1 (tests/testbed/fake_kms/)
 * that checks the request authentication and signs with a real key: `hashivault://`, `awskms://`, `gcpkms://`,
 * `azurekms://`. Every written signature layer must verify with the public key the backend exports (airlock's
 * verifier and openssl), and no secret may appear in the output.
 *
 * @module
 */
import { join } from "node:path";
import { openKey } from "../../backends/key_backend.ts";
import { assert, assertEquals } from "../assert.ts";
import {
  ATTACHMENTS_ON,
  leaksSecret,
  pushSingle,
  startFakeAwsKms,
  startFakeAzureKeyVault,
  startFakeGcpKms,
  startFakeVault,
  startRegistry,
  tempDir,
  writeList,
  writeRegistriesD,
} from "../testbed/mod.ts";
import { assertOneLayerPerKey, cliSignList } from "./kms_test_util.ts";

const VAULT_TOKEN = "hvs.e2e-fake-vault-token-1234";
const AWS_SECRET = "fake/e2e-aws-secret-access-key";
const AZURE_SECRET = "fake~e2e-azure-client-secret";

Deno.test("airlock sign --key hashivault:// | awskms:// | gcpkms:// | azurekms:// against fakes", async () => {
  await using tmp = await tempDir("airlock-kms-e2e-");
  await using reg = await startRegistry();
  await using vault = await startFakeVault({ tokens: { [VAULT_TOKEN]: "sign" } });
  await using aws = await startFakeAwsKms({ credentials: { AKIAE2EFAKE000000001: { secret: AWS_SECRET } } });
  await using gcp = await startFakeGcpKms();
  await using az = await startFakeAzureKeyVault({
    tenant: "e2e-tenant",
    clients: { "e2e-app": { secret: AZURE_SECRET } },
  });

  vault.addKey("release", "ec-p256");
  aws.addKey("ec-p256", { alias: "release" });
  const cryptoKey = "projects/e2e/locations/global/keyRings/airlock/cryptoKeys/release";
  gcp.addVersion(cryptoKey, "rsa-2048");
  const sa = await gcp.makeServiceAccount(tmp.path);
  az.addKey("release", "ec-p256");

  const backends: { ref: string; env: Record<string, string> }[] = [
    { ref: "hashivault://release", env: { VAULT_ADDR: vault.url, VAULT_TOKEN } },
    {
      ref: "awskms:///alias/release",
      env: {
        AWS_ACCESS_KEY_ID: "AKIAE2EFAKE000000001",
        AWS_SECRET_ACCESS_KEY: AWS_SECRET,
        AWS_REGION: "us-east-1",
        AWS_ENDPOINT_URL_KMS: aws.url,
      },
    },
    {
      ref: `gcpkms://${cryptoKey}`,
      env: { GOOGLE_APPLICATION_CREDENTIALS: sa.path, AIRLOCK_GCPKMS_ENDPOINT: gcp.url },
    },
    {
      ref: "azurekms://e2e.vault.azure.net/release",
      env: {
        AZURE_TENANT_ID: "e2e-tenant",
        AZURE_CLIENT_ID: "e2e-app",
        AZURE_CLIENT_SECRET: AZURE_SECRET,
        AZURE_AUTHORITY_HOST: az.url,
        AIRLOCK_AZUREKMS_ENDPOINT: az.url,
      },
    },
  ];

  const rd = await writeRegistriesD(tmp.path, ATTACHMENTS_ON);
  const img = await pushSingle(reg, "e2e/kms", "v1", "kms-e2e");
  await writeList(join(tmp.path, "list.txt"), [`${reg.host}/e2e/kms:v1`]);

  const pems: string[] = [];
  for (const [i, b] of backends.entries()) {
    const key = await openKey(b.ref, { env: (n) => b.env[n] });
    pems.push(await key.publicKey());
    await key.close();
    const r = await cliSignList(tmp.path, b.ref, rd, i, b.env);
    assertEquals(leaksSecret(r, [VAULT_TOKEN, AWS_SECRET, AZURE_SECRET]), undefined, "a secret was printed");
  }

  assertEquals(pems.length, backends.length);
  await assertOneLayerPerKey(reg, {
    repo: "e2e/kms",
    digest: img.top.digest,
    reference: `${reg.host}/e2e/kms:v1`,
    pems,
    label: (k) => backends[k].ref,
    workDir: tmp.path,
  });
  assert(vault.requests.some((r) => r.path === "/v1/transit/sign/release/sha2-256" && r.status === 200));
  assert(aws.requests.some((r) => r.operation === "Sign" && r.status === 200));
  assert(gcp.calls.some((c) => c.path.endsWith(":asymmetricSign") && c.status === 200));
  assert(az.calls.some((c) => c.path.endsWith("/sign") && c.status === 200));
});
