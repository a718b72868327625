/**
 * airlock's own signatures verify with `airlock verify` (cosign semantics): `airlock sign` with its own
 * registries.d against a real registry, then `verify` of the tag (which names the index: airlock signs it too) and
 * of each platform digest, with `-a` annotations given at signing time, a wrong key, and a private key reference
 * as `--key`. Expected identities, digests and annotations come from the test's inputs.
 *
 * @module
 */
import { join } from "node:path";
import { assert, assertEquals } from "../assert.ts";
import {
  airlock,
  ATTACHMENTS_ON,
  pushMulti,
  pushSingle,
  show,
  signArgs,
  startRegistry,
  tempDir,
  writeList,
  writeRegistriesD,
} from "../testbed/mod.ts";
import { assertCleanFailure, assertNoCrash, cosignHeader, verify } from "./helpers.ts";
import { makeKey } from "../testbed/keys.ts";

interface Printed {
  critical: {
    identity: { "docker-reference": string };
    image: { "docker-manifest-digest": string };
    type: string;
  };
  optional: Record<string, unknown> | null;
}

Deno.test("verify: airlock's own signatures (index, platforms, annotations, wrong key, private key ref)", async () => {
  await using tmp = await tempDir("airlock-verify-sign-");
  await using reg = await startRegistry();
  const multi = await pushMulti(reg, "rt/multi", "v1", "verify-rt-multi");
  const single = await pushSingle(reg, "rt/single", "v1", "verify-rt-single");
  const [k1, k2] = await Promise.all([makeKey(tmp.path, "k1"), makeKey(tmp.path, "k2")]);
  const rd = await writeRegistriesD(tmp.path, ATTACHMENTS_ON);
  await writeList(join(tmp.path, "list.txt"), [`${reg.host}/rt/multi:v1`, `${reg.host}/rt/single:v1`]);
  const s = await airlock(
    signArgs({
      list: "list.txt",
      key: k1,
      registriesD: rd,
      insecure: true,
      extra: ["--annotation", "env=prod", "--annotation", "team=a&b"],
    }),
    { cwd: tmp.path },
  );
  assertEquals(s.code, 0, s.stderr);

  const ok = ["--key", k1.pub, "--insecure-ignore-tlog"];
  // The tag resolves to the index, which airlock signs with the tag's identity.
  const tagRef = `${reg.host}/rt/multi:v1`;
  let r = await verify(tmp.path, [...ok, tagRef]);
  assertEquals(r.code, 0, show(r));
  assertEquals(r.stderr, cosignHeader(tagRef));
  let printed = JSON.parse(r.stdout) as Printed[];
  assertEquals(printed.length, 1);
  assertEquals(printed[0].critical.image["docker-manifest-digest"], multi.top.digest);
  assertEquals(printed[0].critical.identity["docker-reference"], tagRef);
  assertEquals(printed[0].critical.type, "cosign container image signature");
  assertEquals(printed[0].optional?.env, "prod");
  assertEquals(printed[0].optional?.team, "a&b");
  // Go escapes & when cosign re-marshals "optional".
  assert(r.stdout.includes('"team":"a\\u0026b"'), r.stdout);

  // Each platform digest: its own signature, with the line's identity (the tag), as skopeo copy --all writes.
  assertEquals(multi.platforms.length, 2);
  for (const p of multi.platforms) {
    const ref = `${reg.host}/rt/multi@${p.digest}`;
    r = await verify(tmp.path, [...ok, ref]);
    assertEquals(r.code, 0, `${p.platform}\n${show(r)}`);
    printed = JSON.parse(r.stdout) as Printed[];
    assertEquals(printed.map((x) => x.critical.image["docker-manifest-digest"]), [p.digest]);
    assertEquals(printed[0].critical.identity["docker-reference"], tagRef);
  }
  // The index digest as a digest reference, and a single-arch image.
  r = await verify(tmp.path, [...ok, `${reg.host}/rt/multi@${multi.top.digest}`, `${reg.host}/rt/single:v1`]);
  assertEquals(r.code, 0, show(r));
  assertEquals(r.stdout.split("\n").filter((l) => l.startsWith("[")).length, 2);
  assert(r.stdout.includes(single.top.digest));

  // -a: matching, non-matching value, missing key.
  r = await verify(tmp.path, [...ok, "-a", "env=prod", "-a", "team=a&b", tagRef]);
  assertEquals(r.code, 0, show(r));
  assertEquals(r.stderr, cosignHeader(tagRef, true));
  assertCleanFailure(
    await verify(tmp.path, [...ok, "-a", "env=dev", tagRef]),
    12,
    "missing or incorrect annotation",
  );
  assertCleanFailure(
    await verify(tmp.path, [...ok, "-a", "owner=x", tagRef]),
    12,
    "missing or incorrect annotation",
  );

  // Wrong key, and an unsigned digest in the same repository.
  assertCleanFailure(
    await verify(tmp.path, ["--key", k2.pub, "--insecure-ignore-tlog", tagRef]),
    12,
    "invalid signature when validating ASN.1 encoded signature",
  );
  const unsigned = await pushSingle(reg, "rt/multi", "unsigned", "verify-rt-unsigned");
  assertCleanFailure(
    await verify(tmp.path, [...ok, `${reg.host}/rt/multi@${unsigned.top.digest}`]),
    10,
    "no signatures found",
  );

  // --key may be any key reference airlock signs with: here the encrypted private key, passphrase from the env.
  const pk = await airlock(
    ["verify", "--tls-verify=false", "--key", k1.key, "--insecure-ignore-tlog", tagRef],
    { home: tmp.path, env: { COSIGN_PASSWORD: k1.passphrase } },
  );
  assertEquals(pk.code, 0, show(pk));
  assertNoCrash(pk);
  // A public key file is used directly (no passphrase asked for), a missing file is a clean error.
  assertCleanFailure(
    await verify(tmp.path, ["--key", "nope.pub", "--insecure-ignore-tlog", tagRef]),
    1,
    "nope.pub",
  );
});
