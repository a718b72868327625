/**
 * `airlock mirror` with hangar v1.8's defaults, through the real CLI between two real registries: an image with
 * four platforms and buildx attestations (amd64, arm64, s390x, ppc64le), signed at the source, mirrored with the
 * default `--arch amd64,arm64`:
 *
 * - the platforms that pass the filter (and, `--provenance` being on, their attestations) are copied byte-exact
 *   with their `.sig` tags; the others are not copied; the destination index lists exactly them, its other fields
 *   and every entry as in the source; one warning says the source index's signature does not carry over;
 * - mirroring more platforms into the same tag merges them with the platforms the destination index lists, and
 *   once it lists every source platform the destination index is the source index, byte for byte, with its
 *   signature; `--overwrite` replaces the destination index instead;
 * - `--provenance=false` leaves the attestations out; an empty `--arch`/`--os` copies the index unchanged;
 *   `--filtered-index=false` fails such an image as before;
 * - with `--sigstore-private-key` (or `--key`), each image is signed at the destination: the new index and the
 *   platforms, with the destination's identity, accepted by `verify` and `sign validate` there.
 *
 * Expected digests and bytes come from the images the test builds, never from airlock's output.
 *
 * @module
 */
import { join } from "node:path";
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../assert.ts";
import { RegistryClient } from "../../core/registry/client.ts";
import {
  airlock,
  ATTACHMENTS_ON,
  buildMultiArchImage,
  type CliResult,
  pushTo,
  show,
  startRegistry,
  tempDir,
  validateArgs,
  writeList,
  writeRegistriesD,
} from "../testbed/mod.ts";
import { makeKey } from "../testbed/keys.ts";
import { readSig, signInProcess } from "../testbed/signatures.ts";
import { endpoint, rawManifest } from "./helpers.ts";

const dec = new TextDecoder();

interface IndexEntry {
  digest: string;
  platform?: { architecture: string; os: string; variant?: string };
  annotations?: Record<string, string>;
}

/** The warning `mirror` prints for an image whose destination index is not the source's. */
const CARRY_OVER = /the signature of the source index sha256:[0-9a-f]{64} does not carry over/g;

Deno.test("mirror with hangar's defaults: filtered platforms, merged destination index, provenance, signing", async (t) => {
  await using tmp = await tempDir("airlock-mirror-hangar-");
  await using src = await startRegistry();
  await using dst = await startRegistry();
  const S = endpoint(src);
  const D = endpoint(dst);
  const key = await makeKey(tmp.path, "src-key");
  const rd = await writeRegistriesD(tmp.path, ATTACHMENTS_ON);
  const image = await buildMultiArchImage({
    seed: "mirror-hangar",
    platforms: ["linux/amd64", "linux/arm64/v8", "linux/s390x", "linux/ppc64le"],
    attestations: true,
    annotations: { "org.opencontainers.image.source": "https://example.test/app" },
  });
  await pushTo(src, "proj/app", "1", image);
  const srcClient = new RegistryClient({ tlsVerify: false });
  try {
    await signInProcess([`${src.host}/proj/app:1`], key, rd, srcClient); // the index and all four platforms
  } finally {
    srcClient.close();
  }
  const sourceIndex = JSON.parse(dec.decode(image.top.bytes)) as Record<string, unknown> & {
    manifests: IndexEntry[];
  };
  const digestOf = (platform: string) => image.platforms.find((p) => p.platform === platform)!.digest;
  const attestationOf = (digest: string) => image.attestations!.find((a) => a.describes === digest)!.digest;
  const [amd, arm, s390x, ppc] = ["linux/amd64", "linux/arm64/v8", "linux/s390x", "linux/ppc64le"].map(
    digestOf,
  );

  const mirror = async (repo: string, extra: string[] = []): Promise<CliResult> => {
    await writeList(join(tmp.path, "list.txt"), [`${src.host}/proj/app ${dst.host}/${repo} 1`]);
    return await airlock(
      ["mirror", "-f", "list.txt", "--tls-verify=false", "--registries.d", rd, ...extra],
      { cwd: tmp.path },
    );
  };
  const destinationIndex = async (repo: string) => {
    const m = await rawManifest(D, repo, "1");
    assert(m, `no index at ${repo}:1`);
    return { ...m, doc: JSON.parse(dec.decode(m.bytes)) as typeof sourceIndex };
  };
  /** The source's entries for these image digests (with their attestations), in source order. */
  const sourceEntries = (digests: string[]) => {
    const wanted = new Set([...digests, ...digests.map(attestationOf)]);
    return sourceIndex.manifests.filter((e) => wanted.has(e.digest));
  };
  /** Each copied manifest byte-exact at the destination, each left-out one absent; .sig tags likewise. */
  const assertCopied = async (repo: string, present: string[], absent: string[]) => {
    for (const m of image.manifests.filter((m) => m !== image.top)) {
      const at = await rawManifest(D, repo, m.digest);
      const expected = present.includes(m.digest) || present.map(attestationOf).includes(m.digest);
      if (expected) assertEquals(at?.bytes, m.bytes, `${repo}@${m.digest} is byte-exact`);
      else if (absent.includes(m.digest) || absent.map(attestationOf).includes(m.digest)) {
        assertEquals(at, undefined, `${repo}@${m.digest} was not to be copied`);
      }
    }
    for (const d of present) {
      const s = await readSig(S, "proj/app", d);
      assertEquals((await readSig(D, repo, d))?.manifestBytes, s!.manifestBytes, `${repo}: .sig of ${d}`);
    }
    for (const d of absent) assertEquals(await readSig(D, repo, d), undefined);
  };

  await t.step(
    "default --arch amd64,arm64: those platforms and their attestations, one warning",
    async () => {
      const r = await mirror("m/app");
      assertEquals(r.code, 0, show(r));
      assertEquals([...r.stdout.matchAll(CARRY_OVER), ...r.stderr.matchAll(CARRY_OVER)].length, 1, show(r));
      assertStringIncludes(r.stdout + r.stderr, "leaves out linux/s390x, linux/ppc64le", show(r));
      const idx = await destinationIndex("m/app");
      assertEquals(idx.doc.manifests, sourceEntries([amd, arm]));
      const { manifests: _a, ...rest } = idx.doc;
      const { manifests: _b, ...sourceRest } = sourceIndex;
      assertEquals(rest, sourceRest, "every other field of the index as in the source");
      assert(idx.digest !== image.top.digest);
      await assertCopied("m/app", [amd, arm], [s390x, ppc]);
      assertEquals(
        await readSig(D, "m/app", idx.digest!),
        undefined,
        "no signature copied for the new index",
      );
      assertEquals(await readSig(D, "m/app", image.top.digest), undefined);
      // A second run changes nothing and warns again (the index is still not the source's).
      const again = await mirror("m/app");
      assertEquals(again.code, 0, show(again));
      assertEquals((await destinationIndex("m/app")).digest, idx.digest);
    },
  );

  await t.step(
    "more platforms into the same tag merge with the destination's; all of them give the source index",
    async () => {
      const r = await mirror("m/app", ["--arch", "s390x"]);
      assertEquals(r.code, 0, show(r));
      assertStringIncludes(
        r.stdout + r.stderr,
        "keeps linux/amd64, linux/arm64/v8 of the destination's index",
      );
      const idx = await destinationIndex("m/app");
      // hangar's order: the destination's entries first, then the copied ones.
      assertEquals(idx.doc.manifests, [...sourceEntries([amd, arm]), ...sourceEntries([s390x])]);
      await assertCopied("m/app", [amd, arm, s390x], [ppc]);

      const all = await mirror("m/app", ["--arch", "ppc64le"]);
      assertEquals(all.code, 0, show(all));
      assertEquals(
        [...all.stdout.matchAll(CARRY_OVER), ...all.stderr.matchAll(CARRY_OVER)].length,
        0,
        show(all),
      );
      const full = await destinationIndex("m/app");
      assertEquals(full.bytes, image.top.bytes, "the source index, byte for byte");
      assertEquals(full.digest, image.top.digest);
      assertEquals(
        (await readSig(D, "m/app", image.top.digest))?.manifestBytes,
        (await readSig(S, "proj/app", image.top.digest))!.manifestBytes,
        "its signature is copied with it",
      );
    },
  );

  await t.step("--overwrite replaces the destination index instead of merging", async () => {
    const r = await mirror("m/app", ["--arch", "amd64", "--overwrite"]);
    assertEquals(r.code, 0, show(r));
    assertEquals((await destinationIndex("m/app")).doc.manifests, sourceEntries([amd]));
  });

  await t.step("--provenance=false leaves the attestations out", async () => {
    const r = await mirror("noprov/app", ["--provenance=false"]);
    assertEquals(r.code, 0, show(r));
    const idx = await destinationIndex("noprov/app");
    assertEquals(
      idx.doc.manifests,
      sourceIndex.manifests.filter((e) => e.digest === amd || e.digest === arm),
    );
    assertEquals(await rawManifest(D, "noprov/app", attestationOf(amd)), undefined);
  });

  await t.step("an empty --arch/--os copies the index unchanged, with every signature", async () => {
    const r = await mirror("all/app", ["--arch", "", "--os", ""]);
    assertEquals(r.code, 0, show(r));
    assertEquals([...r.stdout.matchAll(CARRY_OVER), ...r.stderr.matchAll(CARRY_OVER)].length, 0, show(r));
    assertEquals((await destinationIndex("all/app")).bytes, image.top.bytes);
    await assertCopied("all/app", [amd, arm, s390x, ppc], []);
    assert(await readSig(D, "all/app", image.top.digest), "the index signature is copied");
  });

  await t.step("--filtered-index=false fails such an image, as before, and writes nothing", async () => {
    const r = await mirror("strict/app", ["--filtered-index=false"]);
    assertEquals(r.code, 1, show(r));
    assertMatch(r.stderr, /leaves out linux\/s390x, linux\/ppc64le.*--filtered-index/s);
    assertEquals(
      await Deno.readTextFile(join(tmp.path, "mirror-failed.txt")),
      `${src.host}/proj/app ${dst.host}/strict/app 1\n`,
    );
    assertEquals(await rawManifest(D, "strict/app", "1"), undefined);
  });

  await t.step(
    "--sigstore-private-key / --key: the new index and the platforms signed at the destination",
    async () => {
      const signer = await makeKey(tmp.path, "mirror-key");
      for (
        const [repo, flags] of [["signed/app", ["--sigstore-private-key", signer.key]], ["signed2/app", [
          "--key",
          signer.key,
        ]]]
      ) {
        const r = await mirror(repo as string, [
          ...flags as string[],
          "--sigstore-passphrase-file",
          signer.pass,
        ]);
        assertEquals(r.code, 0, show(r));
        assertStringIncludes(r.stdout + r.stderr, "it is signed with the given key", show(r));
        assert(!(r.stdout + r.stderr).includes(signer.passphrase), "the passphrase is never printed");
        const idx = await destinationIndex(repo as string);
        const ref = `${dst.host}/${repo}:1`;
        // The new index: signed with the mirror key under the destination's identity.
        const v = await airlock([
          "verify",
          "--key",
          signer.pub,
          "--insecure-ignore-tlog",
          "--tls-verify=false",
          ref,
        ], {
          cwd: tmp.path,
        });
        assertEquals(v.code, 0, show(v));
        const printed = JSON.parse(v.stdout) as {
          critical: { identity: { "docker-reference": string }; image: { "docker-manifest-digest": string } };
        }[];
        assertEquals(printed.map((p) => p.critical.image["docker-manifest-digest"]), [idx.digest]);
        assertEquals(printed[0].critical.identity["docker-reference"], ref);
        // Each platform: the source's signature (copied byte-exact) and the mirror key's.
        for (const d of [amd, arm]) {
          const sig = await readSig(D, repo as string, d);
          assertEquals(sig?.layers.length, 2, `${repo}@${d}: the source's layer and the new one`);
          const pv = await airlock(
            [
              "verify",
              "--key",
              signer.pub,
              "--insecure-ignore-tlog",
              "--tls-verify=false",
              `${dst.host}/${repo}@${d}`,
            ],
            { cwd: tmp.path },
          );
          assertEquals(pv.code, 0, show(pv));
        }
        // hangar's check at the destination, by default rules, passes with the mirror key.
        await writeList(join(tmp.path, "validate.txt"), [ref]);
        const val = await airlock(
          validateArgs({ list: "validate.txt", pub: signer.pub, registriesD: rd, insecure: true }),
          { cwd: tmp.path },
        );
        assertEquals(val.code, 0, show(val));
      }
      const both = await mirror("x/app", ["--key", signer.key, "--sigstore-private-key", signer.key]);
      assertEquals(both.code, 1, show(both));
      assertStringIncludes(both.stderr, "mutually exclusive");
    },
  );
});
