/**
 * End to end: the real `airlock sign` CLI signs an image in a real registry with a key on a SoftHSM2 token
 * (`--key pkcs11:…`) and with a key behind a KMS plugin (`--key testkms://…`); each written signature layer
 * must verify with the public key the backend exports (airlock's verifier and openssl).
 *
 * @module
 */
import { join } from "node:path";
import { openKey } from "../../backends/key_backend.ts";
import { assert, assertEquals } from "../assert.ts";
import {
  ATTACHMENTS_ON,
  pushSingle,
  softHsmPinFileKey,
  startRegistry,
  startSoftHsm,
  tempDir,
  writeList,
  writeRegistriesD,
} from "../testbed/mod.ts";
import { assertOneLayerPerKey, cliSignList } from "./kms_test_util.ts";
import { installTestKms, makeTestKmsKey } from "./testkms.ts";

const PIN = "481516";

Deno.test("airlock sign --key pkcs11:… and --key testkms://… write signatures that verify", async () => {
  await using tmp = await tempDir("airlock-keys-e2e-");
  await using reg = await startRegistry();
  await using hsm = await startSoftHsm();
  const { token, ref: pkcs11Ref } = await softHsmPinFileKey(hsm, tmp.path, {
    token: "e2e",
    label: "signer",
    id: "07",
    pin: PIN,
  });
  const bin = join(tmp.path, "bin");
  const path = `${bin}:${Deno.env.get("PATH")}`;
  await installTestKms(bin);
  const kmsRef = await makeTestKmsKey(tmp.path, bin);

  const rd = await writeRegistriesD(tmp.path, ATTACHMENTS_ON);
  const img = await pushSingle(reg, "e2e/app", "v1", "keys-e2e");
  await writeList(join(tmp.path, "list.txt"), [`${reg.host}/e2e/app:v1`]);

  // the public keys, exported by the backends themselves
  const pems: string[] = [];
  for (const ref of [pkcs11Ref, kmsRef]) {
    const key = await openKey(ref, { env: (n) => n === "PATH" ? path : undefined });
    pems.push(await key.publicKey());
    await key.close();
  }
  assertEquals(pems[0], await hsm.publicKeyPem(token, "07"));

  for (const [i, ref] of [pkcs11Ref, kmsRef].entries()) {
    const r = await cliSignList(tmp.path, ref, rd, i, { ...hsm.env, PATH: path });
    assert(!r.stderr.includes(PIN) && !r.stdout.includes(PIN), "the PIN was printed");
  }

  assertEquals(pems.length, 2);
  await assertOneLayerPerKey(reg, {
    repo: "e2e/app",
    digest: img.top.digest,
    reference: `${reg.host}/e2e/app:v1`,
    pems,
    label: (k) => `key ${k}`,
    workDir: tmp.path,
  });
});
