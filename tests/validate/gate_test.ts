/**
 * `sign validate` as a gate with no hole, and `sign` writing nothing when nothing matches, through the real CLI
 * against a real registry:
 * - a single image whose config names a platform outside `--arch/--os` (`unknown/unknown`, what a buildx
 *   attestation manifest or an attacker's image carries) fails with `nothing validated` and lands in the failed
 *   list; so does an index none of whose children match; `--skip-unmatched` restores hangar's warning and exit 0;
 * - index children the filter leaves out stay skipped while one platform of the line was validated;
 * - `sign` of such images writes no `.sig` tag at all (not even the index's): hangar's warning, `skipped`, exit 0.
 */
import { join } from "node:path";
import {
  airlock,
  ATTACHMENTS_ON,
  type CliResult,
  pushMulti,
  pushSingle,
  show,
  startRegistry,
  tempDir,
  writeList,
  writeRegistriesD,
} from "../testbed/mod.ts";
import { makeKey } from "../testbed/keys.ts";
import { listTags, sigTag } from "../testbed/signatures.ts";
import { assert, assertEquals, assertStringIncludes } from "../assert.ts";

Deno.test("gate: nothing validated fails, --skip-unmatched skips, sign writes nothing when nothing matches", async (t) => {
  await using tmp = await tempDir("airlock-gate-");
  await using reg = await startRegistry();
  const h = reg.host;
  const key = await makeKey(tmp.path, "gate");
  const rd = await writeRegistriesD(tmp.path, ATTACHMENTS_ON);
  const run = async (args: string[], lines: string[]): Promise<CliResult> => {
    await writeList(join(tmp.path, "list.txt"), lines);
    return await airlock([...args, "-f", "list.txt", "--registries.d", rd, "--tls-verify=false"], {
      cwd: tmp.path,
    });
  };
  const signArgs = ["sign", "-k", key.key, "--sigstore-passphrase-file", key.pass];
  const validateArgs = ["sign", "validate", "-p", key.pub];

  const unknown = await pushSingle(reg, "g/attest", "v1", "gate-unknown", "unknown/unknown");
  const s390x = await pushMulti(reg, "g/s390x", "v1", "gate-s390x", {
    platforms: ["linux/s390x", "linux/ppc64le"],
  });
  const mixed = await pushMulti(reg, "g/mixed", "v1", "gate-mixed", {
    platforms: ["linux/amd64", "linux/s390x", "unknown/unknown"],
  });
  const lines = [`${h}/g/attest:v1`, `${h}/g/s390x:v1`, `${h}/g/mixed:v1`];

  await t.step("sign: no matching platform writes nothing at all, not even the index; exit 0", async () => {
    const r = await run([...signArgs, "--output", "json"], lines);
    assertEquals(r.code, 0, show(r));
    const doc = JSON.parse(r.stdout);
    assertEquals(doc.images.map((i: { status: string }) => i.status), ["skipped", "skipped", "signed"]);
    for (const l of lines.slice(0, 2)) {
      assertStringIncludes(r.stderr, `Skip sign image [${l}]: no available image for specified arch and os`);
    }
    assertEquals(await listTags(reg, "g/attest"), ["v1"]);
    assertEquals(await listTags(reg, "g/s390x"), ["v1"]);
    // The line with one matching platform: that platform and the index, nothing else.
    assertEquals(
      (await listTags(reg, "g/mixed")).sort(),
      ["v1", sigTag(mixed.platforms[0].digest), sigTag(mixed.top.digest)].sort(),
    );
    assertEquals(unknown.platforms, []);
    assertEquals(s390x.platforms.map((p) => p.platform), ["linux/s390x", "linux/ppc64le"]);
  });

  await t.step(
    "validate: a line on which nothing was validated fails, in the failed list, exit 1",
    async () => {
      const r = await run([...validateArgs, "--output", "json"], lines);
      assertEquals(r.code, 1, show(r));
      const doc = JSON.parse(r.stdout);
      assertEquals(doc.images.map((i: { status: string }) => i.status), ["failed", "failed", "passed"]);
      assertEquals(
        doc.images[0].error.message,
        `nothing validated: no manifest of ${lines[0]} matches --arch amd64,arm64 --os linux`,
      );
      assertEquals(doc.images[0].error.code, "NOTHING_VALIDATED");
      assertStringIncludes(
        r.stderr,
        `[ERRO] error occurred on [IMG: 2] [${lines[1]}]: nothing validated: no manifest of ${
          lines[1]
        } matches ` +
          `--arch amd64,arm64 --os linux`,
      );
      // The mixed line: its amd64 platform was validated; the s390x and unknown/unknown children stay skipped.
      assertEquals(doc.images[2].targets.map((t: { platform: string }) => t.platform), ["linux/amd64"]);
      assertStringIncludes(r.stderr, `[INFO] [IMG:3] PASS: [${lines[2]}]`);
      assertEquals(
        await Deno.readTextFile(join(tmp.path, "validate-failed.txt")),
        `${lines[0]}\n${lines[1]}\n`,
      );
      // The arch/os lists named are the ones given.
      const narrow = await run([...validateArgs, "--arch", "arm64", "--os", "linux,windows"], [lines[2]]);
      assertEquals(narrow.code, 1, show(narrow));
      assertStringIncludes(
        narrow.stderr,
        `nothing validated: no manifest of ${lines[2]} matches --arch arm64 --os linux,windows`,
      );
    },
  );

  await t.step("validate --skip-unmatched: hangar's warning, no failure, exit 0", async () => {
    const r = await run([...validateArgs, "--skip-unmatched", "--output", "json"], lines);
    assertEquals(r.code, 0, show(r));
    const doc = JSON.parse(r.stdout);
    assertEquals(doc.images.map((i: { status: string }) => i.status), ["skipped", "skipped", "passed"]);
    for (const l of lines.slice(0, 2)) {
      assertStringIncludes(
        r.stderr,
        `Skip validate image signature [${l}]: no available image for specified arch and os`,
      );
    }
    assert(!r.stderr.includes("nothing validated"), r.stderr);
  });

  await t.step(
    "sign: a registries.d directory that leaves attachments unset: named, nothing written",
    async () => {
      const unset = await writeRegistriesD(
        tmp.path,
        "docker:\n  other.example:\n    lookaside: x\n",
        "rd-unset",
      );
      const img = await pushSingle(reg, "g/unset", "v1", "gate-unset");
      await writeList(join(tmp.path, "unset.txt"), [`${h}/g/unset:v1`]);
      const r = await airlock([
        ...signArgs,
        "-f",
        "unset.txt",
        "--registries.d",
        unset,
        "--tls-verify=false",
      ], { cwd: tmp.path });
      assertEquals(r.code, 1, show(r));
      assertStringIncludes(
        r.stderr,
        `writing sigstore attachments is disabled by configuration for ${h}/g/unset:v1 (use-sigstore-attachments ` +
          `is not set for it in any file of the registries.d directory ${unset}); add "use-sigstore-attachments: ` +
          `true" under default-docker`,
      );
      assertEquals(await listTags(reg, "g/unset"), ["v1"]);
      assertEquals(img.platforms, []);
    },
  );

  await t.step("--arch '' --os '' (no filter) validates the unknown/unknown image: unsigned", async () => {
    const r = await run([...validateArgs, "--arch", "", "--os", ""], [lines[0]]);
    assertEquals(r.code, 1, show(r));
    assertStringIncludes(r.stderr, "A signature was required, but no signature exists");
  });
});
