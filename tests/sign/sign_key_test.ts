/**
 * The key opens while the first images are read (issue 18: scrypt overlapped with the first registry reads), yet
 * nothing is written before it is open: with a wrong passphrase, `airlock sign` fails with the key's error and
 * the registry — behind the testbed proxy (a fake) that logs every request — received no write at all.
 *
 * @module
 */
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "../assert.ts";
import {
  airlock,
  ATTACHMENTS_ON,
  pushMulti,
  startProxy,
  startRegistry,
  tempDir,
  writeList,
  writeRegistriesD,
} from "../testbed/mod.ts";
import { makeKey } from "../testbed/keys.ts";

Deno.test("sign: a wrong passphrase fails the run before any write, though images are read meanwhile", async () => {
  await using tmp = await tempDir("airlock-sign-key-");
  await using reg = await startRegistry();
  await using proxy = await startProxy(reg.url);
  const rd = await writeRegistriesD(tmp.path, ATTACHMENTS_ON);
  const key = await makeKey(tmp.path, "k");
  const repos = Array.from({ length: 6 }, (_, i) => `key/app${i}`);
  await Promise.all(repos.map((r, i) => pushMulti(reg, r, "v1", `sign-key-${i}`)));
  await writeList(join(tmp.path, "list.txt"), repos.map((r) => `${proxy.host}/${r}:v1`));
  await Deno.writeTextFile(join(tmp.path, "wrong.pass"), "not-the-passphrase");
  const args = [
    "sign",
    "-f",
    "list.txt",
    "-k",
    key.key,
    "--tls-verify=false",
    "--registries.d",
    rd,
    "-j",
    "4",
  ];

  const r = await airlock([...args, "--sigstore-passphrase-file", "wrong.pass"], { cwd: tmp.path });
  await proxy.settled();
  assertEquals(r.code, 1, r.stderr);
  assertStringIncludes(r.stderr, "wrong passphrase");
  const writes = proxy.requests.filter((q) => q.method !== "GET" && q.method !== "HEAD");
  assertEquals(writes.map((q) => `${q.method} ${q.path}`), []);
  console.log(`reads made before the key failed to open: ${proxy.requests.length}`);

  // The right passphrase signs everything (the same overlap, then the writes).
  const ok = await airlock([...args, "--sigstore-passphrase-file", key.pass], { cwd: tmp.path });
  assertEquals(ok.code, 0, ok.stderr);
  assert(proxy.requests.some((q) => q.method === "PUT" && q.path.endsWith(".sig")));
});
