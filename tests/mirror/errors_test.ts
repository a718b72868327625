/**
 * `airlock mirror` on bad inputs, through the real CLI: a missing source image, a destination that answers 403
 * to manifest writes, and a source blob whose bytes do not match its digest. Each gives a clear error, exit 1, a
 * failed list in input order, the other images still copied, and nothing at the destination that would pass
 * validation.
 *
 * @module
 */
import { join } from "node:path";
import { assertEquals, assertMatch } from "../assert.ts";
import { RegistryClient } from "../../core/registry/client.ts";
import {
  airlock,
  ATTACHMENTS_ON,
  flipByteRule,
  forbiddenRule,
  pushMulti,
  pushSingle,
  startProxy,
  startRegistry,
  tempDir,
  validateArgs,
  writeList,
  writeRegistriesD,
} from "../testbed/mod.ts";
import { makeKey } from "../testbed/keys.ts";
import { signInProcess } from "../testbed/signatures.ts";
import { endpoint, rawManifest } from "./helpers.ts";

Deno.test("mirror: missing image, 403 at the destination, corrupt blob → clear errors and a failed list", async (t) => {
  await using tmp = await tempDir("airlock-mirror-errors-");
  await using src = await startRegistry();
  await using dst = await startRegistry();
  await using srcProxy = await startProxy(src.url);
  await using dstProxy = await startProxy(dst.url);
  const key = await makeKey(tmp.path, "k");
  const rd = await writeRegistriesD(tmp.path, ATTACHMENTS_ON);
  const good = await pushMulti(src, "proj/good", "v1", "g");
  const single = await pushSingle(src, "proj/bad", "v1", "b");
  const client = new RegistryClient({ tlsVerify: false });
  try {
    await signInProcess([`${src.host}/proj/good:v1`, `${src.host}/proj/bad:v1`], key, rd, client);
  } finally {
    client.close();
  }
  const D = endpoint(dst);
  const mirror = async (project: string, lines: string[]) => {
    await writeList(join(tmp.path, "list.txt"), lines);
    return await airlock([
      "mirror",
      "-f",
      "list.txt",
      "-s",
      srcProxy.host,
      "-d",
      dstProxy.host,
      "--destination-project",
      project,
      "--tls-verify=false",
      "--registries.d",
      rd,
    ], { cwd: tmp.path });
  };
  const validates = async (repo: string) => {
    await writeList(join(tmp.path, "v.txt"), [`${dst.host}/${repo}:v1`]);
    const r = await airlock(
      validateArgs({
        list: "v.txt",
        pub: key.pub,
        registriesD: rd,
        insecure: true,
        extra: ["--exact-repository", `${src.host}/proj/${repo.split("/")[1]}`],
      }),
      { cwd: tmp.path },
    );
    return r.code === 0;
  };

  await t.step("a missing source image fails alone; the failed list keeps input order", async () => {
    const r = await mirror("m", ["proj/nope:v1", "proj/good:v1", "proj/gone:v2"]);
    assertEquals(r.code, 1);
    assertMatch(r.stderr, /proj\/nope:v1.*(not found|unknown)/i);
    assertEquals(
      await Deno.readTextFile(join(tmp.path, "mirror-failed.txt")),
      "proj/nope:v1\nproj/gone:v2\n",
    );
    assertEquals((await rawManifest(D, "m/good", "v1"))?.bytes, good.top.bytes);
    assertEquals(await validates("m/good"), true);
  });

  await t.step("403 on manifest writes: clear error, no tag written, nothing validates", async () => {
    const rule = dstProxy.addRule(forbiddenRule({ method: "PUT", path: /\/manifests\// }));
    const r = await mirror("f", ["proj/bad:v1"]);
    rule.remove();
    assertEquals(r.code, 1);
    assertMatch(r.stderr, /denied/i);
    assertEquals(await rawManifest(D, "f/bad", "v1"), undefined);
    assertEquals(await validates("f/bad"), false);
  });

  await t.step("a corrupt source blob is refused: no manifest names it at the destination", async () => {
    const layer = [...single.blobs.entries()].sort((a, b) => b[1].length - a[1].length)[0][0];
    const rule = srcProxy.addRule(flipByteRule({ path: `/v2/proj/bad/blobs/${layer}` }));
    const r = await mirror("c", ["proj/bad:v1"]);
    rule.remove();
    assertEquals(r.code, 1);
    assertMatch(r.stderr, /digest mismatch/i);
    assertEquals(await rawManifest(D, "c/bad", single.top.digest), undefined);
    assertEquals(await rawManifest(D, "c/bad", "v1"), undefined);
    assertEquals(await validates("c/bad"), false);
    // Once the source is sound again, the same command completes.
    const again = await mirror("c", ["proj/bad:v1"]);
    assertEquals(again.code, 0, again.stderr);
    assertEquals(await validates("c/bad"), true);
  });
});
