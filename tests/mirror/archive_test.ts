/**
 * `airlock save` / `airlock load` through the real CLI: a signed multi-arch and a single-arch image saved from a
 * plain registry and loaded into a TLS registry with basic authentication (a third registry), byte-exact, with
 * signatures, validating there with `--exact-repository`; an archive cut short refused before anything is pushed;
 * a load killed mid-way leaving nothing that validates, and a restarted load skipping the blobs already there
 * (requests counted by the testbed proxy). Plus the tar writer/reader on their own (PAX long names).
 *
 * @module
 */
import { join } from "node:path";
import { assert, assertEquals, assertMatch, assertRejects, assertStringIncludes } from "../assert.ts";
import { isAirlockError } from "../../core/errors.ts";
import { RegistryClient } from "../../core/registry/client.ts";
import { indexTar, TarWriter } from "../../core/transfer/tar.ts";
import {
  airlock,
  ATTACHMENTS_ON,
  pushMulti,
  pushSingle,
  startProxy,
  startRegistry,
  tempDir,
  validateArgs,
  writeAuthFile,
  writeList,
  writeRegistriesD,
} from "../testbed/mod.ts";
import { makeKey } from "../testbed/keys.ts";
import { readSig, signInProcess } from "../testbed/signatures.ts";
import { endpoint, rawManifest } from "./helpers.ts";

const enc = new TextEncoder();

Deno.test("tar: PAX long names and streamed entries round-trip; a cut archive is refused", async () => {
  await using tmp = await tempDir("airlock-tar-");
  const path = join(tmp.path, "t.tar");
  const long = `blobs/${"d".repeat(120)}/${"x".repeat(130)}`;
  {
    using f = await Deno.open(path, { write: true, create: true });
    const tar = new TarWriter(f);
    await tar.addFile("a.txt", enc.encode("hello"));
    await tar.addFile(long, enc.encode("long name"));
    await tar.addStream("s.bin", 3, ReadableStream.from([enc.encode("ab"), enc.encode("c")]));
    await assertRejects(() => tar.addStream("short.bin", 10, ReadableStream.from([enc.encode("xy")])));
    await tar.close();
  }
  {
    using f = await Deno.open(path);
    const size = (await f.stat()).size;
    const entries = await indexTar(f, size, "t.tar");
    assertEquals([...entries.keys()], ["a.txt", long, "s.bin", "short.bin"]);
    const read = async (n: string) => {
      const loc = entries.get(n)!;
      const buf = new Uint8Array(loc.size);
      await f.seek(loc.offset, Deno.SeekMode.Start);
      await f.read(buf);
      return new TextDecoder().decode(buf);
    };
    assertEquals(await read(long), "long name");
    assertEquals(await read("s.bin"), "abc");
    assertEquals(entries.get("short.bin")!.size, 10, "a failed stream is padded to its announced size");
    const e = await assertRejects(() => indexTar(f, size - 1024, "t.tar"));
    assert(isAirlockError(e, "ARCHIVE_INVALID"));
    assertMatch((e as Error).message, /cut short/);
  }
});

Deno.test("save → load: round trip into a third registry, cut archives, interrupted and resumed loads", async (t) => {
  await using tmp = await tempDir("airlock-archive-");
  await using src = await startRegistry();
  await using dst = await startRegistry({ tls: true, auth: { kind: "basic", users: { bob: "pw-bob" } } });
  await using plain = await startRegistry();
  const key = await makeKey(tmp.path, "k");
  const rd = await writeRegistriesD(tmp.path, ATTACHMENTS_ON);
  const authfile = await writeAuthFile(tmp.path, { [dst.host]: ["bob", "pw-bob"] });
  const certDir = join(dst.certDir!, dst.host);
  const D = endpoint(dst, ["bob", "pw-bob"]);
  const multi = await pushMulti(src, "proj/multi", "v1", "am");
  const single = await pushSingle(src, "proj/single", "v1", "as");
  const extra: string[] = [];
  for (let i = 0; i < 5; i++) {
    await pushMulti(src, `proj/more${i}`, "v1", `more${i}`);
    extra.push(`${src.host}/proj/more${i}:v1`);
  }
  const client = new RegistryClient({ tlsVerify: false });
  try {
    await signInProcess(
      [`${src.host}/proj/multi:v1`, `${src.host}/proj/single:v1`, ...extra],
      key,
      rd,
      client,
    );
  } finally {
    client.close();
  }
  const validate = async (host: string, repo: string, flags: string[]) => {
    await writeList(join(tmp.path, "v.txt"), [`${host}/${repo}:v1`]);
    return await airlock(
      validateArgs({
        list: "v.txt",
        pub: key.pub,
        registriesD: rd,
        extra: ["--exact-repository", `${src.host}/${repo}`, ...flags],
      }),
      { cwd: tmp.path },
    );
  };

  await writeList(join(tmp.path, "list.txt"), [
    `${src.host}/proj/multi:v1`,
    `${src.host}/proj/single:v1`,
    ...extra,
  ]);
  const save = await airlock(
    ["save", "-f", "list.txt", "-d", "images.tar", "--tls-verify=false", "--registries.d", rd],
    { cwd: tmp.path },
  );
  assertEquals(save.code, 0, save.stdout + save.stderr);
  // 6 multi-arch images (index + 2 platforms signed) and one single-arch image: 6 × 3 + 1 signature manifests.
  assertMatch(
    save.stdout,
    /\[INFO\] Save summary: 7 saved, 0 skipped, 0 failed \(of 7 images\); 19 signature manifests; archive "images\.tar": \d+ blobs, [\d.]+ MB; [\d.]+s\n/,
  );
  assertStringIncludes(
    save.stdout,
    `[INFO] [IMG:2] Saved [${src.host}/proj/single:v1] (${single.top.digest}): 1 signature manifest\n`,
  );
  const archive = join(tmp.path, "images.tar");

  await t.step(
    "load into a TLS+auth registry: byte-exact, signed, validates with --exact-repository",
    async () => {
      const r = await airlock(
        [
          "load",
          "-i",
          "images.tar",
          "-d",
          dst.host,
          "--cert-dir",
          certDir,
          "--authfile",
          authfile,
          "-j",
          "4",
        ],
        { cwd: tmp.path },
      );
      assertEquals(r.code, 0, r.stdout + r.stderr);
      assertEquals((await rawManifest(D, "proj/multi", "v1"))?.bytes, multi.top.bytes);
      for (const m of multi.manifests) {
        assertEquals(
          (await rawManifest(D, "proj/multi", m.digest))?.bytes,
          m.bytes,
        );
      }
      assertEquals((await rawManifest(D, "proj/single", "v1"))?.bytes, single.top.bytes);
      const srcSig = await readSig(endpoint(src), "proj/multi", multi.top.digest);
      assertEquals((await readSig(D, "proj/multi", multi.top.digest))?.manifestBytes, srcSig?.manifestBytes);
      const flags = ["--cert-dir", certDir, "--authfile", authfile];
      assertEquals((await validate(dst.host, "proj/multi", flags)).code, 0);
      assertEquals((await validate(dst.host, "proj/single", flags)).code, 0);
    },
  );

  await t.step("an archive cut short is refused before anything is pushed", async () => {
    const bytes = await Deno.readFile(archive);
    await Deno.writeFile(join(tmp.path, "cut.tar"), bytes.subarray(0, Math.floor(bytes.length / 2)));
    const r = await airlock(["load", "-i", "cut.tar", "-d", plain.host, "--tls-verify=false"], {
      cwd: tmp.path,
    });
    assertEquals(r.code, 1);
    assertMatch(r.stderr, /cut short/);
    const cat = await (await fetch(`${plain.url}/v2/_catalog`)).json();
    assertEquals(cat.repositories, [], "nothing was pushed");
  });

  await t.step(
    "a load killed mid-way leaves nothing that validates; the restart skips present blobs",
    async () => {
      await using proxy = await startProxy(plain.url);
      // Slow down blob uploads so that the kill lands in the middle of the load.
      const slow = proxy.addRule({
        method: "PUT",
        path: /\/blobs\/uploads\//,
        action: { kind: "rewrite", fn: async (res) => (await new Promise((r) => setTimeout(r, 60)), res) },
      });
      const uploads = () =>
        proxy.requests.filter((q) =>
          q.method === "PUT" && /\/blobs\/uploads\//.test(q.path) && q.status === 201
        ).length;
      const first = await airlock(["load", "-i", "images.tar", "-d", proxy.host, "--tls-verify=false"], {
        cwd: tmp.path,
        onStart: (p) => {
          const watch = setInterval(() => {
            if (uploads() >= 6) {
              clearInterval(watch);
              try {
                p.kill("SIGKILL");
              } catch { /* gone */ }
            }
          }, 5);
          p.status.finally(() => clearInterval(watch));
        },
      });
      assert(first.code !== 0, "the first load was killed");
      // An upload the killed load had in flight may still complete at the registry: count it.
      await proxy.settled();
      const before = uploads();
      assert(before >= 6, `${before} blobs were uploaded before the kill`);
      const flags = ["--tls-verify=false"];
      assertEquals(
        (await validate(proxy.host, "proj/multi", flags)).code,
        1,
        "a half-loaded image does not validate",
      );
      slow.remove();
      proxy.resetCounts();
      const second = await airlock(["load", "-i", "images.tar", "-d", proxy.host, "--tls-verify=false"], {
        cwd: tmp.path,
      });
      assertEquals(second.code, 0, second.stdout + second.stderr);
      const after = uploads();
      // A complete load into a fresh project counts the blobs a whole load uploads.
      proxy.resetCounts();
      const full = await airlock(
        [
          "load",
          "-i",
          "images.tar",
          "-d",
          proxy.host,
          "--destination-project",
          "fresh",
          "--tls-verify=false",
        ],
        { cwd: tmp.path },
      );
      assertEquals(full.code, 0, full.stderr);
      const total = uploads();
      assertEquals(
        before + after,
        total,
        `no blob uploaded twice: ${before} before the kill + ${after} after`,
      );
      assert(after < total, "the restart skipped what the killed load had pushed");
      const third = await airlock(["load", "-i", "images.tar", "-d", proxy.host, "--tls-verify=false"], {
        cwd: tmp.path,
      });
      assertEquals(third.code, 0);
      assertMatch(third.stdout, / 0 blobs uploaded/);
      assertEquals((await validate(proxy.host, "proj/multi", flags)).code, 0);
      assertEquals((await rawManifest(endpoint(plain), "proj/multi", "v1"))?.bytes, multi.top.bytes);
    },
  );
});
