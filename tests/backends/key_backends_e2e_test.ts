/**
 * End to end: the real `airlock sign` CLI signs an image in a real registry with a key on a SoftHSM2 token
 * (`--key pkcs11:…`) and with a key behind a KMS plugin (`--key testkms://…`); each written signature layer
 * must verify with the public key the backend exports (airlock's verifier and openssl).
 *
 * @module
 */
import { join } from "node:path";
import { openKey } from "../../backends/key_backend.ts";
import { parsePublicKeyPem, verifySignature } from "../../core/signature/public_key.ts";
import { assert, assertEquals } from "../assert.ts";
import { startRegistry, startSoftHsm, tempDir } from "../testbed/mod.ts";
import {
  ATTACHMENTS_ON,
  b64decode,
  pushSingle,
  readSig,
  runCli,
  SIG_ANNOTATION,
  SIMPLE_SIGNING,
  verifyLayer,
  writeList,
  writeRegistriesD,
} from "../sign/helpers.ts";
import { installTestKms, makeTestKmsKey } from "./testkms.ts";

const PIN = "481516";

Deno.test("airlock sign --key pkcs11:… and --key testkms://… write signatures that verify", async () => {
  await using tmp = await tempDir("airlock-keys-e2e-");
  await using reg = await startRegistry();
  await using hsm = await startSoftHsm();
  const token = await hsm.initToken("e2e", { pin: PIN });
  await hsm.generateKey(token, { type: "EC:prime256v1", label: "signer", id: "07" });
  const pinFile = join(tmp.path, "pin");
  await Deno.writeTextFile(pinFile, PIN, { mode: 0o600 });
  const pkcs11Ref = `pkcs11:token=e2e;object=signer?module-path=${hsm.modulePath}&pin-source=${pinFile}`;
  const bin = join(tmp.path, "bin");
  await installTestKms(bin);
  const kmsRef = await makeTestKmsKey(tmp.path, bin);

  const rd = await writeRegistriesD(tmp.path, ATTACHMENTS_ON);
  const img = await pushSingle(reg, "e2e/app", "v1", "keys-e2e");
  await writeList(join(tmp.path, "list.txt"), [`${reg.host}/e2e/app:v1`]);

  // the public keys, exported by the backends themselves
  const pems: string[] = [];
  for (const ref of [pkcs11Ref, kmsRef]) {
    const key = await openKey(ref, {
      env: (n) => n === "PATH" ? `${bin}:${Deno.env.get("PATH")}` : undefined,
    });
    pems.push(await key.publicKey());
    await key.close();
  }
  assertEquals(pems[0], await hsm.publicKeyPem(token, "07"));

  for (const [i, ref] of [pkcs11Ref, kmsRef].entries()) {
    const r = await runCli(
      [
        "sign",
        "-f",
        "list.txt",
        "--key",
        ref,
        "--tls-verify=false",
        "--registries.d",
        rd,
        "-o",
        `failed-${i}.txt`,
      ],
      { cwd: tmp.path, env: { ...hsm.env, PATH: `${bin}:${Deno.env.get("PATH")}` } },
    );
    assertEquals(r.code, 0, `sign with ${ref}: ${r.stderr}`);
    assert(!r.stderr.includes(PIN) && !r.stdout.includes(PIN), "the PIN was printed");
  }

  const sig = await readSig(reg, "e2e/app", img.top.digest);
  const layers = sig?.layers.filter((l) => l.desc.mediaType === SIMPLE_SIGNING) ?? [];
  assertEquals(layers.length, 2);
  for (const [k, pem] of pems.entries()) {
    const pub = parsePublicKeyPem(pem);
    const matching = [];
    for (const l of layers) {
      if (await verifySignature(pub, l.payload, b64decode(l.desc.annotations?.[SIG_ANNOTATION] ?? ""))) {
        matching.push(l);
      }
    }
    assertEquals(matching.length, 1, `key ${k} verifies ${matching.length} layers`);
    assertEquals(await verifyLayer(pem, matching[0], tmp.path), { airlock: true, openssl: true });
    assertEquals(matching[0].json?.critical.image["docker-manifest-digest"], img.top.digest);
    assertEquals(matching[0].json?.critical.identity["docker-reference"], `${reg.host}/e2e/app:v1`);
  }
});
