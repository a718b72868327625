/**
 * `airlock serve` signs through its API what `airlock sign` signs: a file key against a real TLS registry (the
 * server's own `--cert-dir` and registries.d). The written `.sig` layers are read back with plain `fetch` and
 * verified with the public key (airlock's verifier and openssl); the CLI, run afterwards on the same list with the
 * same key, finds every signature already there (so the API wrote exactly what the CLI would) and reports the same
 * digests and identities. Then `validate` and `verify` jobs pass, `verify` with a wrong annotation fails, and
 * `/v1/public-key` is the key's public half.
 *
 * @module
 */
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "../assert.ts";
import {
  airlock,
  ATTACHMENTS_ON,
  pushMulti,
  pushSingle,
  signArgs,
  startRegistry,
  tempDir,
  writeList,
  writeRegistriesD,
} from "../testbed/mod.ts";
import { startService } from "./helpers.ts";
import { listTags, readSig, sigTag, SIMPLE_SIGNING, verifyLayer } from "../testbed/signatures.ts";

Deno.test("serve: signing through the API equals the CLI (file key, TLS registry)", async () => {
  await using tmp = await tempDir("airlock-serve-sign-");
  await using reg = await startRegistry({ tls: true });
  const h = reg.host;
  const certDir = join(reg.certDir!, h);
  await using svc = await startService({ dir: tmp.path, registry: { certDir } });
  const key = svc.key!;

  const single = await pushSingle(reg, "srv/single", "v1", "serve-single");
  const multi = await pushMulti(reg, "srv/multi", "v1", "serve-multi");
  const images = [`${h}/srv/single:v1`, `${h}/srv/multi:v1`];

  const submitted = await svc.post("/v1/sign", { images, annotations: { build: "42" } });
  assertEquals(submitted.status, 202, JSON.stringify(submitted.body));
  const job = await svc.wait(submitted.body.id as string);
  assertEquals(job.state, "succeeded", JSON.stringify(job));
  assertEquals(job.submittedBy, "ci");
  assertEquals(job.images.map((i) => i.status), ["signed", "signed"]);
  assertEquals(job.images.map((i) => i.digest), [single.top.digest, multi.top.digest]);

  // Read back: every manifest has one layer that verifies and names its digest and identity.
  const expected = [
    ["srv/single", single.top.digest, `${h}/srv/single:v1`],
    ["srv/multi", multi.platforms[0].digest, `${h}/srv/multi:v1`],
    ["srv/multi", multi.platforms[1].digest, `${h}/srv/multi:v1`],
    ["srv/multi", multi.top.digest, `${h}/srv/multi:v1`],
  ];
  for (const [repo, digest, identity] of expected) {
    const sig = await readSig(reg, repo, digest);
    assert(sig, `${repo}@${digest} is signed`);
    assertEquals(sig.layers.length, 1);
    assertEquals(sig.layers[0].desc.mediaType, SIMPLE_SIGNING);
    assertEquals(sig.layers[0].json!.critical.image["docker-manifest-digest"], digest);
    assertEquals(sig.layers[0].json!.critical.identity["docker-reference"], identity);
    assertEquals(sig.layers[0].json!.optional.build, "42");
    assertEquals(await verifyLayer(key.publicPem, sig.layers[0], tmp.path), { airlock: true, openssl: true });
  }
  const apiTargets = job.images.flatMap((i) =>
    i.targets.map((t) => [t.digest, t.identity, t.kind, t.platform])
  );
  assertEquals(apiTargets.length, 4);

  // An audit line per signature: token name, image, digest, time; never the token itself.
  const audit = svc.log.filter((l) => l.includes("audit: signature written"));
  assertEquals(audit.length, 4);
  for (const [, digest, identity] of expected) {
    assert(
      audit.some((l) =>
        l.includes("token=ci ") && l.includes(`image=${identity} `) && l.includes(`digest=${digest} `) &&
        /time=\d{4}-\d\d-\d\dT/.test(l)
      ),
      `audit line for ${identity}`,
    );
  }
  assert(!svc.log.join("").includes(svc.tokens.ci), "a token appeared in the log");

  // The CLI with the same key and list: everything is there already, the same digests and identities.
  const rd = await writeRegistriesD(tmp.path, ATTACHMENTS_ON, "cli-registries.d");
  await writeList(join(tmp.path, "list.txt"), images);
  const r = await airlock(
    signArgs({
      list: "list.txt",
      key,
      certDir,
      registriesD: rd,
      extra: ["--annotation", "build=42", "--output", "json"],
    }),
    { cwd: tmp.path },
  );
  assertEquals(r.code, 0, r.stderr);
  const cli = JSON.parse(r.stdout) as {
    summary: Record<string, number>;
    images: {
      digest: string;
      signed: { digest: string; identity: string; kind: string; platform: string }[];
    }[];
  };
  assertEquals(cli.summary.unchanged, 2, r.stdout);
  assertEquals(cli.images.map((i) => i.digest), [single.top.digest, multi.top.digest]);
  assertEquals(
    cli.images.flatMap((i) => i.signed.map((t) => [t.digest, t.identity, t.kind, t.platform])),
    apiTargets,
  );
  assertEquals((await listTags(reg, "srv/single")).sort(), [sigTag(single.top.digest), "v1"].sort());

  // The same request again: unchanged, nothing added.
  const again = await svc.post("/v1/sign", { images, annotations: { build: "42" } });
  assertEquals((await svc.wait(again.body.id as string)).images.map((i) => i.status), [
    "unchanged",
    "unchanged",
  ]);

  // validate (containers-policy semantics) and verify (cosign semantics) with the service key.
  const v = await svc.post("/v1/validate", { images, requireIndexSignature: true });
  assertEquals(v.status, 202);
  const validated = await svc.wait(v.body.id as string);
  assertEquals(validated.state, "succeeded", JSON.stringify(validated));
  assertEquals(validated.images.map((i) => i.status), ["passed", "passed"]);
  assertEquals(validated.images[1].targets.length, 3);

  const ver = await svc.post("/v1/verify", { images, annotations: { build: "42" } });
  const verified = await svc.wait(ver.body.id as string);
  assertEquals(verified.state, "succeeded", JSON.stringify(verified));
  assertEquals(verified.images.map((i) => [i.status, i.digest]), [
    ["verified", single.top.digest],
    ["verified", multi.top.digest],
  ]);

  const wrong = await svc.post("/v1/verify", { images: [images[0]], annotations: { build: "43" } });
  const failed = await svc.wait(wrong.body.id as string);
  assertEquals(failed.state, "failed");
  assertEquals(failed.images[0].error?.code, "NO_MATCHING_SIGNATURES");

  const unsigned = await pushSingle(reg, "srv/unsigned", "v1", "serve-unsigned");
  const val2 = await svc.post("/v1/validate", { images: [`${h}/srv/unsigned:v1`] });
  const valFailed = await svc.wait(val2.body.id as string);
  assertEquals([valFailed.state, valFailed.images[0].status, valFailed.images[0].digest], [
    "failed",
    "failed",
    unsigned.top.digest,
  ]);

  // An image none of whose manifests matches the platforms: nothing validated fails, unless skipUnmatched.
  await pushSingle(reg, "srv/s390x", "v1", "serve-s390x", "linux/s390x");
  const unmatched = [`${h}/srv/s390x:v1`];
  const gate = await svc.wait((await svc.post("/v1/validate", { images: unmatched })).body.id as string);
  assertEquals([gate.state, gate.images[0].status, gate.images[0].error?.code], [
    "failed",
    "failed",
    "NOTHING_VALIDATED",
  ]);
  const skip = await svc.post("/v1/validate", { images: unmatched, skipUnmatched: true });
  const skipped = await svc.wait(skip.body.id as string);
  assertEquals([skipped.state, skipped.images[0].status], ["succeeded", "skipped"]);

  const pk = await svc.call("/v1/public-key");
  assertEquals(pk.status, 200);
  assertEquals(await pk.text(), key.publicPem);
  assertStringIncludes(svc.log.join(""), `job ${submitted.body.id} succeeded`);
});
