/**
 * cosign's registry and upload flags on the cosign-style commands, against real registries: the command hangar
 * v1.8's documentation prints (`cosign verify --key="./sigstore.pub" --allow-http-registry=true
 * --insecure-ignore-tlog REGISTRY/repo@sha256:…`) runs unchanged against a plain-HTTP registry, on an image signed
 * by airlock and on images signed by skopeo 1.14.5 (containers/image, the code hangar v1.8 signs with: the
 * peer-skopeo fixture). `--allow-insecure-registry` skips certificate checks (https only), `--allow-http-registry`
 * allows plain http (certificates still checked), `--registry-username/--registry-password` are the credentials,
 * `--tlog-upload=false` and `-y` are accepted on `attest` and `sign-blob`.
 *
 * @module
 */
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "../assert.ts";
import {
  airlock,
  ATTACHMENTS_ON,
  buildImage,
  type CliResult,
  loadPeerSkopeoCases,
  pushImage,
  pushMulti,
  pushSingle,
  rawSink,
  show,
  signArgs,
  startPeerSkopeoRegistry,
  startRegistry,
  tempDir,
  writeList,
  writeRegistriesD,
} from "../testbed/mod.ts";
import { makeKey } from "../testbed/keys.ts";

/** hangar v1.8's documented check, verbatim but for the registry and digest (the shell removes the quotes). */
function hangarDocCommand(ref: string): string[] {
  return ["verify", `--key=./sigstore.pub`, "--allow-http-registry=true", "--insecure-ignore-tlog", ref];
}

/** The `docker-manifest-digest` of each signature `verify` printed. */
function verifiedDigests(r: CliResult): string[] {
  const printed = JSON.parse(r.stdout) as { critical: { image: { "docker-manifest-digest": string } } }[];
  return printed.map((p) => p.critical.image["docker-manifest-digest"]);
}

Deno.test("hangar's documented cosign verify command, verbatim, on a plain-HTTP registry (airlock- and skopeo-signed)", async () => {
  await using tmp = await tempDir("airlock-cosign-flags-");
  await using reg = await startRegistry(); // plain HTTP on 127.0.0.1
  const multi = await pushMulti(reg, "doc/multi", "v1", "cosign-flags-doc");
  const key = await makeKey(tmp.path, "sigstore");
  // The documentation's file name: ./sigstore.pub in the working directory.
  assertEquals(key.pub, join(tmp.path, "sigstore.pub"));
  const rd = await writeRegistriesD(tmp.path, ATTACHMENTS_ON);
  await writeList(join(tmp.path, "list.txt"), [`${reg.host}/doc/multi:v1`]);
  const signed = await airlock(signArgs({ list: "list.txt", key, registriesD: rd, insecure: true }), {
    cwd: tmp.path,
  });
  assertEquals(signed.code, 0, show(signed));

  // Every manifest airlock signed (each platform, the index): the command exits 0 and names the digest.
  for (const digest of [multi.top.digest, ...multi.platforms.map((p) => p.digest)]) {
    const r = await airlock(hangarDocCommand(`${reg.host}/doc/multi@${digest}`), { cwd: tmp.path });
    assertEquals(r.code, 0, show(r));
    assertEquals(verifiedDigests(r), [digest], show(r));
  }

  // The flag is what lets plain http through: without it (or with =false) airlock refuses http, even on 127.0.0.1.
  const ref = `${reg.host}/doc/multi@${multi.platforms[0].digest}`;
  for (
    const args of [
      ["verify", "--key=./sigstore.pub", "--insecure-ignore-tlog", ref],
      ["verify", "--key=./sigstore.pub", "--allow-http-registry=false", "--insecure-ignore-tlog", ref],
      ["verify", "--key=./sigstore.pub", "--allow-insecure-registry", "--insecure-ignore-tlog", ref],
    ]
  ) {
    const r = await airlock(args, { cwd: tmp.path });
    assertEquals(r.code, 1, show(r));
    assertStringIncludes(r.stderr, "--allow-http-registry", show(r));
    assertEquals(r.stdout, "", show(r));
  }
  // Both spellings: --tls-verify=false does the same; contradicting flags are refused.
  const legacy = await airlock([
    "verify",
    "--key=./sigstore.pub",
    "--tls-verify=false",
    "--insecure-ignore-tlog=true",
    ref,
  ], {
    cwd: tmp.path,
  });
  assertEquals(legacy.code, 0, show(legacy));
  const both = await airlock([
    "verify",
    "--key=./sigstore.pub",
    "--tls-verify=true",
    "--allow-http-registry",
    ref,
  ], {
    cwd: tmp.path,
  });
  assertEquals(both.code, 1, show(both));
  assertStringIncludes(both.stderr, "--tls-verify=true contradicts --allow-http-registry", show(both));

  // Signatures made by skopeo 1.14.5 (containers/image, as hangar v1.8 writes them), served over plain HTTP.
  const fx = await loadPeerSkopeoCases();
  await using peer = await startPeerSkopeoRegistry();
  let passing = 0;
  for (const c of fx.cases) {
    for (const check of c.checks) {
      const k = check as unknown as { check: string; key: string; manifestDigest: string; expect: string };
      if (k.check !== "cosign" || k.expect !== "pass") continue;
      await Deno.copyFile(fx.keys[k.key].publicKey, join(tmp.path, "sigstore.pub"));
      const r = await airlock(hangarDocCommand(`${peer.host}/${c.repository}@${k.manifestDigest}`), {
        cwd: tmp.path,
      });
      assertEquals(r.code, 0, `${c.id} ${k.key}\n${show(r)}`);
      assert(verifiedDigests(r).every((d) => d === k.manifestDigest), show(r));
      passing++;
    }
  }
  assert(passing >= 3, `only ${passing} passing cosign checks in the fixture`);
});

Deno.test("--allow-insecure-registry skips certificate checks; --allow-http-registry does not", async () => {
  await using tmp = await tempDir("airlock-cosign-tls-");
  await using reg = await startRegistry({ tls: true }); // its CA is not given to airlock
  const img = await pushSingle(reg, "tls/single", "v1", "cosign-flags-tls");
  const key = await makeKey(tmp.path, "k");
  const rd = await writeRegistriesD(tmp.path, ATTACHMENTS_ON);
  await writeList(join(tmp.path, "list.txt"), [`${reg.host}/tls/single:v1`]);
  const signed = await airlock(
    signArgs({ list: "list.txt", keyFlag: "--key", key, registriesD: rd, insecure: true }),
    { cwd: tmp.path },
  );
  assertEquals(signed.code, 0, show(signed));
  const ref = `${reg.host}/tls/single@${img.top.digest}`;
  const base = ["verify", "--key", key.pub, "--insecure-ignore-tlog"];

  const insecure = await airlock([...base, "--allow-insecure-registry", ref], { cwd: tmp.path });
  assertEquals(insecure.code, 0, show(insecure));
  assertEquals(verifiedDigests(insecure), [img.top.digest]);
  const insecureTrue = await airlock([...base, "--allow-insecure-registry=true", ref], { cwd: tmp.path });
  assertEquals(insecureTrue.code, 0, show(insecureTrue));

  for (const extra of [[], ["--allow-http-registry"], ["--allow-insecure-registry=false"]]) {
    const r = await airlock([...base, ...extra, ref], { cwd: tmp.path });
    assertEquals(r.code, 1, `${extra}\n${show(r)}`);
    assertStringIncludes(r.stderr, "certificate", show(r));
  }
  // With the CA given, no flag is needed.
  const trusted = await airlock([...base, "--cert-dir", join(reg.certDir!, reg.host), ref], {
    cwd: tmp.path,
  });
  assertEquals(trusted.code, 0, show(trusted));
});

Deno.test("--registry-username/--registry-password on attest, verify-attestation, download attestation", async () => {
  await using tmp = await tempDir("airlock-cosign-auth-");
  const users = { alice: "s3cret-alice-pw" };
  await using reg = await startRegistry({ auth: { kind: "basic", users } });
  const basic = { authorization: `Basic ${btoa("alice:s3cret-alice-pw")}` };
  const img = await buildImage({ seed: "cosign-flags-auth", platform: "linux/amd64" });
  await pushImage(img, { registry: reg.host, repository: "auth/single" }, "v1", rawSink(reg.url, basic));
  const key = await makeKey(tmp.path, "k");
  await Deno.writeTextFile(join(tmp.path, "predicate.json"), '{"built":"yes"}');
  const ref = `${reg.host}/auth/single@${img.top.digest}`;
  const creds = ["--registry-username", "alice", "--registry-password", users.alice];
  const env = { COSIGN_PASSWORD: key.passphrase };

  // cosign attest's usual flags for an offline key: --tlog-upload=false and -y.
  const attest = await airlock(
    [
      "attest",
      "--key",
      key.key,
      "--predicate",
      "predicate.json",
      "--type",
      "custom",
      "--allow-http-registry",
      "--tlog-upload=false",
      "-y",
      ...creds,
      ref,
    ],
    { cwd: tmp.path, env },
  );
  assertEquals(attest.code, 0, show(attest));
  const va = await airlock(
    [
      "verify-attestation",
      "--key",
      key.pub,
      "--insecure-ignore-tlog=true",
      "--allow-http-registry=true",
      ...creds,
      ref,
    ],
    { cwd: tmp.path },
  );
  assertEquals(va.code, 0, show(va));
  const envelope = JSON.parse(va.stdout.trim()) as { payload: string };
  const statement = JSON.parse(atob(envelope.payload)) as { subject: { digest: { sha256: string } }[] };
  assertEquals(`sha256:${statement.subject[0].digest.sha256}`, img.top.digest);
  const dl = await airlock(["download", "attestation", "--allow-http-registry", ...creds, ref], {
    cwd: tmp.path,
  });
  assertEquals(dl.code, 0, show(dl));
  assertEquals(dl.stdout.trim().split("\n").length, 1, show(dl));

  // Without credentials, with a wrong password, or with half of them: refused, and the password never printed.
  for (
    const [args, message] of [
      [[], "401"],
      [["--registry-username", "alice", "--registry-password", "wrong-pw-xyz"], "401"],
      [["--registry-username", "alice"], "--registry-username and --registry-password go together"],
    ] as [string[], string][]
  ) {
    const r = await airlock(["download", "attestation", "--allow-http-registry", ...args, ref], {
      cwd: tmp.path,
    });
    assertEquals(r.code, 1, show(r));
    assert(r.stderr.includes(message) || /unauthori[sz]ed|authentication/i.test(r.stderr), show(r));
    assert(!r.stderr.includes("wrong-pw-xyz") && !r.stderr.includes(users.alice), show(r));
  }

  // --tlog-upload (true) is refused on attest and sign-blob; -y/--yes is accepted by sign-blob.
  const attestWith = (
    tlog: string,
  ) => ["attest", "--key", key.key, "--predicate", "predicate.json", tlog, "--allow-http-registry", ref];
  for (
    const args of [
      attestWith("--tlog-upload"),
      attestWith("--tlog-upload=true"),
      ["sign-blob", "--key", key.key, "--tlog-upload", "predicate.json"],
    ]
  ) {
    const r = await airlock(args, { cwd: tmp.path, env });
    assertEquals(r.code, 1, show(r));
    assertStringIncludes(r.stderr, "does not upload to a transparency log", show(r));
  }
  const blob = await airlock([
    "sign-blob",
    "--key",
    key.key,
    "--tlog-upload=false",
    "--yes",
    "predicate.json",
  ], {
    cwd: tmp.path,
    env,
  });
  assertEquals(blob.code, 0, show(blob));
  const vb = await airlock(
    [
      "verify-blob",
      "--key",
      key.pub,
      "--signature",
      blob.stdout.trim(),
      "--insecure-ignore-tlog=true",
      "predicate.json",
    ],
    { cwd: tmp.path },
  );
  assertEquals(vb.code, 0, show(vb));
  assertStringIncludes(vb.stderr, "Verified OK");
});
