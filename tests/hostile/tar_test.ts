/**
 * Hostile tar archives (issue 15 §2, §6): the named attacks (PAX sizes `-1536` and `abc`, malformed PAX records,
 * GNU long names, base-256 and non-octal sizes, bad checksums, unknown entry types, archives cut short) are each
 * refused by the tar reader with `ARCHIVE_INVALID`, in bounded time; seeded mutations of valid archives are
 * either read with every entry inside the file or refused the same way; and `airlock load` of such an archive,
 * run as a program against a real registry, exits 1 at once with the reason and pushes nothing (it used to loop
 * forever at full CPU and ignore SIGTERM).
 *
 * @module
 */
import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { indexTar, TarWriter } from "../../core/transfer/tar.ts";
import { airlock, show, startRegistry, tempDir } from "../testbed/mod.ts";
import {
  airlockWatched,
  baseSeed,
  caseCount,
  clearError,
  memorySource,
  reportCases,
  within,
} from "./harness.ts";
import { Rng } from "./rng.ts";
import { mutateTar, tarAttacks, validTar } from "./tar_gen.ts";

Deno.test("tar reader: every named malformed archive is refused with ARCHIVE_INVALID, in bounded time", async () => {
  for (const attack of tarAttacks()) {
    const e = await within(
      indexTar(memorySource(attack.bytes), attack.bytes.length, "t.tar").then(
        (entries) => new Error(`accepted, ${entries.size} entries: ${[...entries.keys()].join(", ")}`),
        (e) => e,
      ),
      5_000,
      attack.name,
    );
    const err = clearError(e, attack.name);
    assertEquals(err.code, "ARCHIVE_INVALID", `${attack.name}: ${err.message}`);
  }
});

Deno.test("tar reader: valid generated archives are read; seeded mutations are read inside the file or refused", async () => {
  const n = caseCount(300);
  const seed = baseSeed();
  for (let i = 0; i < n; i++) {
    const rng = new Rng(seed + i);
    const valid = validTar(rng);
    const entries = await indexTar(memorySource(valid), valid.length, "v.tar");
    assert(entries.size > 0, `seed ${seed + i}: a valid archive lists its files`);
    const bytes = mutateTar(new Rng(seed + i));
    const what = `mutated archive (seed ${seed + i})`;
    const got = await within(
      indexTar(memorySource(bytes), bytes.length, "m.tar").catch((e) => clearError(e, what)),
      5_000,
      what,
    );
    if (!(got instanceof Map)) {
      assertEquals(got.code, "ARCHIVE_INVALID", what);
      continue;
    }
    for (const [name, loc] of got) {
      assert(name.length > 0 && !name.includes("\0"), `${what}: entry name ${JSON.stringify(name)}`);
      assert(
        Number.isSafeInteger(loc.offset) && Number.isSafeInteger(loc.size) && loc.offset >= 512 &&
          loc.size >= 0 && loc.offset + loc.size <= bytes.length,
        `${what}: entry ${name} at ${loc.offset}+${loc.size} outside the ${bytes.length}-byte file`,
      );
    }
  }
  reportCases(n, "tar archives");
});

Deno.test("airlock load: malformed tar headers are clear errors, exit 1 at once, nothing pushed", async () => {
  await using tmp = await tempDir("airlock-hostile-tar-");
  await using reg = await startRegistry();
  const chosen = new Set([
    "PAX size=-1536",
    "PAX size=abc",
    "GNU long name over 1 MiB",
    "size field base-256 negative",
    "truncated header",
  ]);
  const attacks = tarAttacks().filter((a) => chosen.has(a.name));
  assertEquals(attacks.length, chosen.size);
  for (const attack of attacks) {
    const file = join(tmp.path, "attack.tar");
    await Deno.writeFile(file, attack.bytes);
    // The old reader looped forever and ignored SIGTERM: a hang is killed (SIGKILL) and fails the test.
    const r = await airlockWatched(["load", "-i", file, "-d", reg.host, "--tls-verify=false"], 60_000, {
      cwd: tmp.path,
    });
    assert(!r.killed, `${attack.name}: airlock load hung and was killed\n${show(r)}`);
    assertEquals(r.code, 1, `${attack.name}\n${show(r)}`);
    assertMatch(
      r.stderr,
      /FATA.*archive ".*attack\.tar" is (damaged|cut short)/,
      `${attack.name}\n${show(r)}`,
    );
    assert(!/TypeError|RangeError|at .*\.ts:\d+/.test(r.stderr), `${attack.name}: a crash\n${show(r)}`);
  }
  const cat = await (await reg.fetch("/v2/_catalog")).json();
  assertEquals(cat.repositories, [], "nothing was pushed");
});

Deno.test("airlock load: an archive whose index.json or manifests are not what they say is refused, nothing pushed", async () => {
  await using tmp = await tempDir("airlock-hostile-index-");
  await using reg = await startRegistry();
  const enc = new TextEncoder();
  const hex = "a".repeat(64);
  const indexes = [
    "[]",
    '{"schemaVersion":2,"manifests":"x"}',
    '{"schemaVersion":2,"manifests":[null]}',
    `{"schemaVersion":2,"manifests":[{"mediaType":"x","digest":"sha256:zz","size":1,"annotations":{"org.opencontainers.image.ref.name":"r.io/a/b:1"}}]}`,
    `{"schemaVersion":2,"manifests":[{"mediaType":"x","digest":"sha256:${hex}","size":"1","annotations":{"org.opencontainers.image.ref.name":"r.io/a/b:1"}}]}`,
    `{"schemaVersion":2,"manifests":[{"mediaType":"x","digest":"sha256:${hex}","size":1,"annotations":{"org.opencontainers.image.ref.name":7}}]}`,
  ];
  for (const index of indexes) {
    const file = join(tmp.path, "bad-index.tar");
    {
      using f = await Deno.open(file, { write: true, create: true, truncate: true });
      const tar = new TarWriter(f);
      await tar.addFile("oci-layout", enc.encode('{"imageLayoutVersion":"1.0.0"}'));
      await tar.addFile("index.json", enc.encode(index));
      await tar.close();
    }
    const r = await airlock(["load", "-i", file, "-d", reg.host, "--tls-verify=false"], { cwd: tmp.path });
    assertEquals(r.code, 1, `${index}\n${show(r)}`);
    assertMatch(
      r.stderr,
      /FATA.*archive ".*bad-index\.tar": index\.json is not a valid/,
      `${index}\n${show(r)}`,
    );
  }
  const cat = await (await reg.fetch("/v2/_catalog")).json();
  assertEquals(cat.repositories, [], "nothing was pushed");
});
