/**
 * `airlock mirror` through the real CLI from a plain registry to a TLS registry with basic authentication:
 * multi- and single-arch images signed at the source by airlock's signer, byte-exact manifests and digests at the
 * destination, `.sig` and `.att` tags copied byte for byte, `sign validate` failing by default and passing with
 * `--exact-repository` at the destination, `verify` passing there, idempotent re-runs, `--remove-signatures`, the
 * platform filter (a filtered index by default, refused with `--filtered-index=false`), and a destination `.sig` that
 * already holds another signer's layer being merged, not overwritten.
 *
 * @module
 */
import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { MediaType } from "../../core/registry/types.ts";
import { RegistryClient } from "../../core/registry/client.ts";
import { attachmentRef, writeAttachment } from "../../core/signature/attachment_store.ts";
import { appendSignatureLayers } from "../../core/signature/attachments.ts";
import { parseReference } from "../../core/reference.ts";
import {
  airlock,
  ATTACHMENTS_ON,
  pushMulti,
  pushSingle,
  startRegistry,
  tempDir,
  writeAuthFile,
  writeList,
  writeRegistriesD,
} from "../testbed/mod.ts";
import { makeKey } from "../testbed/keys.ts";
import { listTags, readSig, signInProcess, sigTag } from "../testbed/signatures.ts";
import { endpoint, rawManifest } from "./helpers.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

Deno.test("mirror: plain → TLS+auth registry, byte-exact with signatures; validate and verify at the destination", async (t) => {
  await using tmp = await tempDir("airlock-mirror-");
  await using src = await startRegistry();
  await using dst = await startRegistry({ tls: true, auth: { kind: "basic", users: { alice: "pw-alice" } } });
  const key = await makeKey(tmp.path, "k1");
  const rd = await writeRegistriesD(tmp.path, ATTACHMENTS_ON);
  const authfile = await writeAuthFile(tmp.path, { [dst.host]: ["alice", "pw-alice"] });
  const S = endpoint(src);
  const D = endpoint(dst, ["alice", "pw-alice"]);
  const certDir = join(dst.certDir!, dst.host);
  const regFlags = [
    "--src-tls-verify=false",
    "--cert-dir",
    certDir,
    "--authfile",
    authfile,
    "--registries.d",
    rd,
  ];
  const dstFlags = ["--cert-dir", certDir, "--authfile", authfile, "--registries.d", rd];

  const multi = await pushMulti(src, "proj/multi", "v1", "m1");
  const single = await pushSingle(src, "proj/single", "v1", "s1");
  const srcClient = new RegistryClient({ tlsVerify: false });
  const dstClient = new RegistryClient({
    certDir,
    credentials: (h) =>
      Promise.resolve(h === dst.host ? { username: "alice", password: "pw-alice" } : undefined),
  });
  try {
    await signInProcess([`${src.host}/proj/multi:v1`, `${src.host}/proj/single:v1`], key, rd, srcClient);
    // An attestation tag (.att) on the single image: any OCI manifest there travels with the image.
    const att = appendSignatureLayers(undefined, [{
      payload: enc.encode('{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}'),
      mediaType: "application/vnd.dsse.envelope.v1+json",
      annotations: { predicateType: "https://slsa.dev/provenance/v1" },
    }]);
    const singleRef = parseReference(`${src.host}/proj/single:v1`);
    await writeAttachment(srcClient, attachmentRef(singleRef, single.top.digest, "att"), att);

    const mirror = async (lines: string[], extra: string[] = []) => {
      await writeList(join(tmp.path, "list.txt"), lines);
      return await airlock(
        ["mirror", "-f", "list.txt", "--source", src.host, "--destination", dst.host, ...regFlags, ...extra],
        { cwd: tmp.path },
      );
    };
    const validate = async (lines: string[], extra: string[] = []) => {
      await writeList(join(tmp.path, "validate.txt"), lines);
      return await airlock(
        [
          "sign",
          "validate",
          "-f",
          "validate.txt",
          "-p",
          key.pub,
          "--arch",
          "",
          "--os",
          "",
          ...dstFlags,
          ...extra,
        ],
        { cwd: tmp.path },
      );
    };

    const first = await mirror(["proj/multi:v1", `${src.host}/proj/single ${dst.host}/other/single v1`], [
      "-j",
      "2",
    ]);
    assertEquals(first.code, 0, first.stdout + first.stderr);
    assertMatch(first.stdout, /\[INFO\] Mirror summary: 2 mirrored, 0 skipped, 0 failed \(of 2 images\); /);

    await t.step("manifests are byte-exact at the destination, digests preserved", async () => {
      const top = await rawManifest(D, "proj/multi", "v1");
      assertEquals(top?.bytes, multi.top.bytes);
      assertEquals(top?.digest, multi.top.digest);
      for (const m of multi.manifests) {
        assertEquals((await rawManifest(D, "proj/multi", m.digest))?.bytes, m.bytes);
      }
      const s = await rawManifest(D, "other/single", "v1");
      assertEquals(s?.bytes, single.top.bytes);
      assertEquals(s?.type, MediaType.ociManifest);
    });

    await t.step(".sig and .att tags are copied byte for byte", async () => {
      for (const d of [...multi.platforms.map((p) => p.digest), multi.top.digest]) {
        const a = await readSig(S, "proj/multi", d);
        const b = await readSig(D, "proj/multi", d);
        assert(a && b, `.sig of ${d} at both ends`);
        assertEquals(b.manifestBytes, a.manifestBytes);
        assertEquals(b.layers.map((l) => l.payload), a.layers.map((l) => l.payload));
      }
      const a = await readSig(S, "proj/single", single.top.digest);
      assertEquals((await readSig(D, "other/single", single.top.digest))?.manifestBytes, a?.manifestBytes);
      const attTag = sigTag(single.top.digest).replace(/\.sig$/, ".att");
      assertEquals((await rawManifest(D, "other/single", attTag))?.bytes, att.manifestBytes);
    });

    await t.step(
      "validate fails by default at the destination and passes with --exact-repository",
      async () => {
        const plain = await validate([`${dst.host}/proj/multi:v1`]);
        assertEquals(plain.code, 1, plain.stdout + plain.stderr);
        assertMatch(plain.stderr, /not accepted/);
        const exact = await validate([`${dst.host}/proj/multi:v1`], [
          "--exact-repository",
          `${src.host}/proj/multi`,
        ]);
        assertEquals(exact.code, 0, exact.stdout + exact.stderr);
        const other = await validate([`${dst.host}/other/single:v1`], [
          "--exact-repository",
          `${src.host}/proj/single`,
        ]);
        assertEquals(other.code, 0, other.stdout + other.stderr);
      },
    );

    await t.step("verify (cosign semantics) passes at the destination", async () => {
      const r = await airlock([
        "verify",
        "--key",
        key.pub,
        "--insecure-ignore-tlog",
        "--cert-dir",
        certDir,
        "--authfile",
        authfile,
        `${dst.host}/proj/multi:v1`,
        `${dst.host}/other/single:v1`,
      ], { cwd: tmp.path });
      assertEquals(r.code, 0, r.stdout + r.stderr);
      // The payload still names the SOURCE: the identity is signed and travels unchanged.
      assert(r.stdout.includes(`"docker-reference":"${src.host}/proj/multi:v1"`), r.stdout);
      assertMatch(r.stderr, new RegExp(`Verification for ${dst.host}/proj/multi:v1`));
    });

    await t.step("a re-run copies nothing again", async () => {
      const r = await mirror(["proj/multi:v1", `${src.host}/proj/single ${dst.host}/other/single v1`]);
      assertEquals(r.code, 0, r.stderr);
      assertMatch(
        r.stdout,
        / 0 blobs uploaded .* 0 manifests written; signature tags: 0 copied, 0 merged/,
      );
    });

    await t.step("--remove-signatures copies the image without its signatures", async () => {
      const r = await mirror(["proj/multi:v1"], ["--destination-project", "nosig", "--remove-signatures"]);
      assertEquals(r.code, 0, r.stderr);
      assertEquals((await rawManifest(D, "nosig/multi", "v1"))?.bytes, multi.top.bytes);
      assertEquals((await listTags(D, "nosig/multi")).filter((x) => x.endsWith(".sig")), []);
      assertEquals(
        (await validate([`${dst.host}/nosig/multi:v1`], ["--exact-repository", `${src.host}/proj/multi`]))
          .code,
        1,
      );
    });

    await t.step(
      "platform filter: a filtered index by default, refused with --filtered-index=false",
      async () => {
        const refused = await mirror(["proj/multi:v1"], [
          "--destination-project",
          "amd",
          "--arch",
          "amd64",
          "--filtered-index=false",
        ]);
        assertEquals(refused.code, 1);
        assertMatch(refused.stderr, /leaves out linux\/arm64\/v8.*--filtered-index/s);
        assertEquals(await Deno.readTextFile(join(tmp.path, "mirror-failed.txt")), "proj/multi:v1\n");
        assertEquals(await rawManifest(D, "amd/multi", "v1"), undefined);

        const ok = await mirror(["proj/multi:v1"], ["--destination-project", "amd", "--arch", "amd64"]);
        assertEquals(ok.code, 0, ok.stderr);
        const idx = await rawManifest(D, "amd/multi", "v1");
        const doc = JSON.parse(dec.decode(idx!.bytes)) as { manifests: { digest: string }[] };
        const amd = multi.platforms.find((p) => p.platform === "linux/amd64")!.digest;
        const arm = multi.platforms.find((p) => p.platform !== "linux/amd64")!.digest;
        assertEquals(doc.manifests.map((m) => m.digest), [amd]);
        assertEquals(await rawManifest(D, "amd/multi", arm), undefined);
        assert(await readSig(D, "amd/multi", amd), "the amd64 child's signature is copied");
        assertEquals(await readSig(D, "amd/multi", idx!.digest!), undefined);
        const v = await validate([`${dst.host}/amd/multi:v1`], [
          "--exact-repository",
          `${src.host}/proj/multi`,
        ]);
        assertEquals(v.code, 0, v.stderr);
      },
    );

    await t.step("an existing destination .sig keeps its layers and gets the source's new ones", async () => {
      const other = await makeKey(tmp.path, "k2");
      await signInProcess([`${dst.host}/other/single:v1`], other, rd, dstClient); // a layer only the destination has
      const before = await readSig(D, "other/single", single.top.digest);
      assertEquals(before?.layers.length, 2);
      // A new source signature (another key) appears after the first mirror.
      const third = await makeKey(tmp.path, "k3");
      await signInProcess([`${src.host}/proj/single:v1`], third, rd, srcClient);
      const srcSig = await readSig(S, "proj/single", single.top.digest);
      assertEquals(srcSig?.layers.length, 2);
      const r = await mirror([`${src.host}/proj/single ${dst.host}/other/single v1`]);
      assertEquals(r.code, 0, r.stderr);
      assertMatch(r.stdout, /signature tags: 0 copied, 1 merged/);
      const after = await readSig(D, "other/single", single.top.digest);
      const digests = after!.layers.map((l) => l.desc.digest);
      assertEquals(
        digests.slice(0, 2),
        before!.layers.map((l) => l.desc.digest),
        "destination layers first, kept",
      );
      assertEquals(digests.length, 3);
      assert(srcSig!.layers.every((l) => digests.includes(l.desc.digest)), "every source layer is there");
    });
  } finally {
    srcClient.close();
    dstClient.close();
  }
});
