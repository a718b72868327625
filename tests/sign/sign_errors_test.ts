/**
 * `airlock sign` on bad input, through the real CLI: each case gives a clear error and a non-zero exit, the
 * failed list holds the original lines of the failed images in input order, no passphrase is ever printed, and
 * every signature already in the registry stays byte-identical.
 *
 * @module
 */
import { join } from "node:path";
import { RegistryClient } from "../../core/registry/client.ts";
import { assertEquals, assertRejects, assertStringIncludes } from "../assert.ts";
import {
  airlock,
  ATTACHMENTS_ON,
  buildImage,
  type CliResult,
  freePort,
  leaksSecret,
  loadPeerSkopeoCases,
  pushImage,
  pushMulti,
  pushSingle,
  signArgs,
  startRegistry,
  tempDir,
  writeList,
  writeRegistriesD,
} from "../testbed/mod.ts";
import { makeKey } from "../testbed/keys.ts";
import { listTags, readSig, sigSnapshot } from "../testbed/signatures.ts";

const REPOS = ["e/signed", "e/good", "e/blocked", "e/mblocked"];

Deno.test("sign CLI: every bad input fails clearly and leaves existing signatures intact", async (t) => {
  await using tmp = await tempDir("airlock-sign-err-");
  await using reg = await startRegistry({ tls: true });
  const key = await makeKey(tmp.path, "signer");
  const rd = await writeRegistriesD(tmp.path, ATTACHMENTS_ON);
  const h = reg.host;
  const certDir = join(reg.certDir!, h);
  const outputs: CliResult[] = [];
  const secrets = [key.passphrase, "airlock-wrong-passphrase-7f3a", "fixture-A-alice-passphrase"];
  const run = async (args: string[], env?: Record<string, string>) => {
    const r = await airlock(args, { cwd: tmp.path, env });
    outputs.push(r);
    return r;
  };
  const signList = (list: string, extra: string[] = []) =>
    signArgs({ list, key, certDir, registriesD: rd, extra });
  const readFailed = (name = "sign-failed.txt") => Deno.readTextFile(join(tmp.path, name));

  await pushSingle(reg, "e/signed", "v1", "err-signed");
  const good = await pushSingle(reg, "e/good", "v1", "err-good");
  await pushSingle(reg, "e/blocked", "v1", "err-blocked");
  await pushMulti(reg, "e/mblocked", "v1", "err-mblocked");
  await writeList(join(tmp.path, "signed.txt"), [`${h}/e/signed:v1`]);
  const first = await run(signList("signed.txt"));
  assertEquals(first.code, 0, first.stderr);
  const existing = await sigSnapshot(reg, REPOS);
  assertEquals(existing.size, 1);
  /** Runs a case that must not change any signature. */
  const unchanged = async () => assertEquals(await sigSnapshot(reg, REPOS), existing);

  await t.step("missing list file", async () => {
    const r = await run(signList("nope.txt"));
    assertEquals(r.code, 1);
    assertStringIncludes(r.stderr, `failed to open "nope.txt"`);
    await unchanged();
  });

  await t.step("empty list file (only comments)", async () => {
    await Deno.writeTextFile(join(tmp.path, "empty.txt"), "# nothing\n\n// here\n");
    const r = await run(signList("empty.txt"));
    assertEquals(r.code, 1);
    assertStringIncludes(r.stderr, `no images in image list "empty.txt"`);
    await unchanged();
  });

  await t.step(
    "malformed lines, unknown and unreachable registries: failed list in input order",
    async () => {
      const closed = `127.0.0.1:${freePort()}`;
      const lines = [
        `${h}/e/UPPER:v1`, // invalid repository name
        `${h}/e/signed:v1`, // already signed: unchanged
        `no-such-registry.invalid/e/x:v1`, // DNS failure
        `${h}/e/good:v1`, // signed now
        `${h}/e/x@sha256:1234`, // invalid digest
        `${closed}/e/x:v1`, // nothing listens
        `${h}/e/a ${h}/e/b v1`, // mirror format: ignored, not failed
      ];
      await Deno.writeTextFile(join(tmp.path, "sign-failed.txt"), "stale\n");
      await writeList(join(tmp.path, "mixed.txt"), lines);
      const r = await run(signList("mixed.txt", ["-j", "3"]));
      assertEquals(r.code, 1);
      assertEquals(await readFailed(), [lines[0], lines[2], lines[4], lines[5]].join("\n") + "\n");
      assertStringIncludes(r.stderr, "no-such-registry.invalid");
      assertStringIncludes(r.stderr, closed);
      assertStringIncludes(r.stderr, `Ignore image list line "${lines[6]}": invalid format`);
      assertStringIncludes(r.stderr, "some images failed to sign");
      // The good line was signed; the one already signed kept its .sig byte for byte.
      const sig = await readSig(reg, "e/good", good.top.digest);
      assertEquals(sig?.layers.length, 1);
      const after = await sigSnapshot(reg, REPOS);
      for (const [tag, manifest] of existing) assertEquals(after.get(tag), manifest);
      existing.clear();
      for (const [tag, manifest] of after) existing.set(tag, manifest);
      assertEquals(existing.size, 2);
    },
  );

  await t.step("a stale failed list is removed when nothing failed", async () => {
    const r = await run(signList("signed.txt"));
    assertEquals(r.code, 0, r.stderr);
    await assertRejects(() => Deno.stat(join(tmp.path, "sign-failed.txt")), Deno.errors.NotFound);
    await unchanged();
  });

  await t.step("wrong passphrase: fails before any registry write", async () => {
    await Deno.writeTextFile(join(tmp.path, "wrong.pass"), secrets[1]);
    const args = signList("signed.txt");
    args[args.indexOf(key.pass)] = "wrong.pass";
    const r = await run(args);
    assertEquals(r.code, 1);
    assertStringIncludes(r.stderr, "wrong passphrase");
    await unchanged();
  });

  await t.step("COSIGN_PASSWORD with a wrong value is not printed either", async () => {
    const args = ["sign", "-f", "signed.txt", "-k", key.key, "--cert-dir", certDir, "--registries.d", rd];
    const r = await run(args, { COSIGN_PASSWORD: secrets[1] });
    assertEquals(r.code, 1);
    assertStringIncludes(r.stderr, "wrong passphrase");
  });

  await t.step("unsupported KDF parameters and kdf name (crafted copies of a fixture key)", async () => {
    const fx = await loadPeerSkopeoCases();
    const alice = fx.keys.alice;
    const pem = await Deno.readTextFile(alice.privateKey);
    const craft = async (name: string, edit: (env: Record<string, unknown>) => void) => {
      const m = /-----BEGIN ([^-]+)-----\n([\s\S]+?)-----END/.exec(pem)!;
      const env = JSON.parse(atob(m[2].replace(/\s+/g, "")));
      edit(env);
      const body = btoa(JSON.stringify(env)).replace(/.{64}/g, "$&\n");
      const path = join(tmp.path, name);
      await Deno.writeTextFile(path, `-----BEGIN ${m[1]}-----\n${body}\n-----END ${m[1]}-----\n`);
      return path;
    };
    const cases: [string, (e: Record<string, { params?: { N: number }; name?: string }>) => void, string][] =
      [
        ["n16384.key", (e) => (e.kdf.params!.N = 16384), "unsupported scrypt parameters"],
        ["argon.key", (e) => (e.kdf.name = "argon2id"), `unknown kdf name "argon2id"`],
      ];
    for (const [name, edit, expected] of cases) {
      const path = await craft(name, edit as (e: Record<string, unknown>) => void);
      const r = await run(
        signArgs({
          list: "signed.txt",
          key: { key: path, pass: alice.passphraseFile },
          certDir,
          registriesD: rd,
        }),
      );
      assertEquals(r.code, 1, name);
      assertStringIncludes(r.stderr, expected);
    }
    await unchanged();
  });

  await t.step("--jobs 0 and 21", async () => {
    for (const j of ["0", "21"]) {
      const r = await run(signList("signed.txt", ["--jobs", j]));
      assertEquals(r.code, 1);
      assertStringIncludes(r.stderr, `invalid worker number ${j}: --jobs must be 1-20`);
    }
    await unchanged();
  });

  await t.step("--key together with --sigstore-key", async () => {
    const r = await run(signList("signed.txt", ["--key", key.key]));
    assertEquals(r.code, 1);
    assertStringIncludes(r.stderr, "--key and --sigstore-key are mutually exclusive");
    await unchanged();
  });

  await t.step(
    "registries.d use-sigstore-attachments false: fails before writing, names file and scope",
    async () => {
      const yaml = `${ATTACHMENTS_ON}docker:\n  ${h}/e/blocked:\n    use-sigstore-attachments: false\n` +
        `  ${h}/e/mblocked:v1:\n    use-sigstore-attachments: false\n`;
      const rdOff = await writeRegistriesD(tmp.path, yaml, "registries.d-off", "blocking.yaml");
      const lines = [`${h}/e/blocked:v1`, `${h}/e/signed:v1`, `${h}/e/mblocked:v1`];
      await writeList(join(tmp.path, "blocked.txt"), lines);
      const tagsBefore = [await listTags(reg, "e/blocked"), await listTags(reg, "e/mblocked")];
      const args = signList("blocked.txt");
      args[args.indexOf(rd)] = rdOff;
      const r = await run(args);
      assertEquals(r.code, 1);
      assertEquals(await readFailed(), `${lines[0]}\n${lines[2]}\n`);
      const file = join(rdOff, "blocking.yaml");
      assertStringIncludes(r.stderr, `docker "${h}/e/blocked" in ${file}`);
      // The tag's scope blocks every manifest of the multi-arch line: all carry (and are looked up under) the
      // tag identity, as containers/image writes them; none of its manifests was signed.
      assertStringIncludes(r.stderr, `docker "${h}/e/mblocked:v1" in ${file}`);
      assertEquals([await listTags(reg, "e/blocked"), await listTags(reg, "e/mblocked")], tagsBefore);
      await unchanged();
    },
  );

  await t.step("403 on push: token registry granting pull only", async () => {
    await using treg = await startRegistry({ tls: true, auth: { kind: "token", users: { alice: "pw" } } });
    const creds = { username: "alice", password: "pw" };
    const client = new RegistryClient({
      certDirs: [treg.certDir!],
      credentials: (r) => Promise.resolve(r === treg.host ? creds : undefined),
    });
    try {
      const img = await buildImage({ seed: "err-403" });
      await pushImage(img, { registry: treg.host, repository: "t/img" }, "v1", client);
      treg.tokenServer!.setGrants({ alice: { "t/img": ["pull"] } });
      const authfile = join(tmp.path, "auth.json");
      await Deno.writeTextFile(
        authfile,
        JSON.stringify({ auths: { [treg.host]: { auth: btoa("alice:pw") } } }),
      );
      await writeList(join(tmp.path, "denied.txt"), [`${treg.host}/t/img:v1`]);
      const r = await run(
        signArgs({
          list: "denied.txt",
          key,
          certDir: join(treg.certDir!, treg.host),
          registriesD: rd,
          extra: ["--authfile", authfile],
        }),
      );
      assertEquals(r.code, 1);
      assertEquals(await readFailed(), `${treg.host}/t/img:v1\n`);
      // distribution answers 401 insufficient_scope (Harbor and others: 403 DENIED); both must read as denied.
      assertStringIncludes(r.stderr, "access denied");
      treg.tokenServer!.setGrants(undefined);
      assertEquals((await client.listTags({ registry: treg.host, repository: "t/img" })).sort(), ["v1"]);
    } finally {
      client.close();
    }
  });

  await t.step("no output carries a passphrase", () => {
    assertEquals(outputs.map((o) => leaksSecret(o, secrets)).filter(Boolean), []);
  });
});
