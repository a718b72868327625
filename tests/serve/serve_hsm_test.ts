/**
 * `airlock serve --key pkcs11:…`: the service signs with a key on a SoftHSM2 token (PIN from a file) against a
 * real registry. The layers verify with the public key the token exports (`pkcs11-tool`, converted by openssl),
 * `/v1/public-key` is that key, the CLI with the same key reference finds the signatures already there, and the
 * PIN is never logged.
 *
 * @module
 */
import { join } from "node:path";
import { assert, assertEquals } from "../assert.ts";
import {
  airlock,
  ATTACHMENTS_ON,
  pushMulti,
  softHsmPinFileKey,
  startRegistry,
  startSoftHsm,
  tempDir,
  writeList,
  writeRegistriesD,
} from "../testbed/mod.ts";
import { startService } from "./helpers.ts";
import { readSig, verifyLayer } from "../testbed/signatures.ts";

const PIN = "731904";

Deno.test("serve: signing through the API with a SoftHSM2 key equals the CLI", async () => {
  await using tmp = await tempDir("airlock-serve-hsm-");
  await using reg = await startRegistry();
  await using hsm = await startSoftHsm();
  const { token, ref: keyRef } = await softHsmPinFileKey(hsm, tmp.path, {
    token: "serve",
    label: "service",
    id: "0a",
    pin: PIN,
  });
  const publicPem = await hsm.publicKeyPem(token, "0a");

  await using svc = await startService({ dir: tmp.path, keyRef });
  const multi = await pushMulti(reg, "hsm/app", "v1", "serve-hsm");
  const image = `${reg.host}/hsm/app:v1`;
  const submitted = await svc.post("/v1/sign", { images: [image], arch: "amd64" });
  assertEquals(submitted.status, 202);
  const job = await svc.wait(submitted.body.id as string);
  assertEquals(job.state, "succeeded", JSON.stringify(job));
  // --arch amd64: the amd64 child and the index
  const amd = multi.platforms.find((p) => p.platform === "linux/amd64")!;
  assertEquals(job.images[0].targets.map((t) => [t.digest, t.identity]), [
    [amd.digest, image],
    [multi.top.digest, image],
  ]);
  for (const t of job.images[0].targets) {
    const sig = await readSig(reg, "hsm/app", t.digest);
    assertEquals(sig?.layers.length, 1);
    assertEquals(sig!.layers[0].json!.critical.identity["docker-reference"], t.identity);
    assertEquals(await verifyLayer(publicPem, sig!.layers[0], tmp.path), { airlock: true, openssl: true });
  }
  assertEquals(await (await svc.call("/v1/public-key")).text(), publicPem);

  // The CLI with the same key reference: nothing to add, same digests and identities.
  const rd = await writeRegistriesD(tmp.path, ATTACHMENTS_ON, "cli-registries.d");
  await writeList(join(tmp.path, "list.txt"), [image]);
  const r = await airlock(
    [
      "sign",
      "-f",
      "list.txt",
      "--key",
      keyRef,
      "--arch",
      "amd64",
      "--tls-verify=false",
      "--registries.d",
      rd,
      "--output",
      "json",
    ],
    { cwd: tmp.path, env: hsm.env },
  );
  assertEquals(r.code, 0, r.stderr);
  const cli = JSON.parse(r.stdout);
  assertEquals(cli.summary.unchanged, 1);
  assertEquals(
    cli.images[0].signed.map((t: { digest: string; identity: string }) => [t.digest, t.identity]),
    job.images[0].targets.map((t) => [t.digest, t.identity]),
  );

  const verify = await svc.post("/v1/verify", { images: [image] });
  assertEquals((await svc.wait(verify.body.id as string)).images[0].status, "verified");
  assert(!svc.log.join("").includes(PIN), "the PIN was logged");
  assertEquals(svc.log.filter((l) => l.includes("audit: signature written")).length, 2);
});
