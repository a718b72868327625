/**
 * `airlock sign` through the real CLI (a child process, its own HOME and registries.d) against a real TLS
 * registry: single- and multi-arch images read back byte by byte and verified with the public key (airlock's
 * verifier and openssl), idempotent re-runs, foreign layers kept, `--output json`, `--sign-index=false`,
 * `--arch`, index entries without platform, digest-pinned multi-arch lines, `--annotation`, a stale failed list,
 * and Harbor's "artifact … not found" answer through the fault proxy.
 *
 * @module
 */
import { join } from "node:path";
import { assert, assertEquals, assertMatch, assertRejects } from "../assert.ts";
import {
  airlock,
  ATTACHMENTS_ON,
  type CliResult,
  harborNotFoundRule,
  leaksSecret,
  pushMulti,
  pushSingle,
  rawSink,
  sha256Digest as sha256,
  signArgs,
  startProxy,
  startRegistry,
  tempDir,
  type TestImage,
  writeList,
  writeRegistriesD,
} from "../testbed/mod.ts";
import { makeKey } from "../testbed/keys.ts";
import {
  listTags,
  readSig,
  sigSnapshot,
  sigTag,
  SIMPLE_SIGNING,
  verifyLayer,
} from "../testbed/signatures.ts";

const enc = new TextEncoder();

Deno.test("sign CLI: signs, reads back, verifies, and honours its flags", async (t) => {
  await using tmp = await tempDir("airlock-sign-cli-");
  await using reg = await startRegistry({ tls: true });
  const key = await makeKey(tmp.path, "signer");
  const rd = await writeRegistriesD(tmp.path, ATTACHMENTS_ON);
  const h = reg.host;
  const outputs: CliResult[] = [];
  const sign = async (listName: string, lines: string[], extra: string[] = []) => {
    await writeList(join(tmp.path, listName), lines);
    const r = await airlock(
      signArgs({ list: listName, key, certDir: join(reg.certDir!, h), registriesD: rd, extra }),
      { cwd: tmp.path },
    );
    outputs.push(r);
    return r;
  };
  /** Checks one written signature: one verifying layer naming `digest` with `identity`. */
  const checkSigned = async (repo: string, digest: string, identity: string, layers = 1) => {
    const sig = await readSig(reg, repo, digest);
    assert(sig, `${repo}@${digest} has a .sig tag`);
    assertEquals(sig.contentType, "application/vnd.oci.image.manifest.v1+json");
    assertEquals(sig.layers.length, layers);
    const ours = sig.layers[layers - 1];
    assertEquals(ours.desc.mediaType, SIMPLE_SIGNING);
    assertEquals(ours.json!.critical.image["docker-manifest-digest"], digest);
    assertEquals(ours.json!.critical.identity["docker-reference"], identity);
    assertEquals(await verifyLayer(key.publicPem, ours, tmp.path), { airlock: true, openssl: true });
    return sig;
  };

  const single = await pushSingle(reg, "a/single", "v1", "cli-single");
  const multi = await pushMulti(reg, "a/multi", "v1", "cli-multi");
  const [amd, arm] = multi.platforms;

  await t.step("single + multi-arch, --output json, stale failed list removed", async () => {
    await Deno.writeTextFile(join(tmp.path, "sign-failed.txt"), "stale\n");
    const r = await sign("basic.txt", [`${h}/a/single:v1`, `${h}/a/multi:v1`], ["--output", "json"]);
    assertEquals(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout); // the whole of stdout is one JSON document
    assertEquals(doc.summary, { signed: 2, unchanged: 0, skipped: 0, failed: 0, ignored: 0 });
    assertEquals(doc.images.map((i: { status: string }) => i.status), ["signed", "signed"]);
    assertMatch(r.stderr, /Signing \[/); // logs go to stderr with --output json
    await checkSigned("a/single", single.top.digest, `${h}/a/single:v1`);
    // Every manifest of the multi-arch line carries the line's reference, as `skopeo copy --all --sign-by…` writes
    // it (DESIGN.md): podman and CRI-O pulling `a/multi:v1` judge each platform under that tag.
    await checkSigned("a/multi", amd.digest, `${h}/a/multi:v1`);
    await checkSigned("a/multi", arm.digest, `${h}/a/multi:v1`);
    await checkSigned("a/multi", multi.top.digest, `${h}/a/multi:v1`);
    // Nothing but .sig tags was added; the image manifests were not re-pushed (same digest at the tag).
    assertEquals(
      (await listTags(reg, "a/multi")).sort(),
      ["v1", sigTag(amd.digest), sigTag(arm.digest), sigTag(multi.top.digest)].sort(),
    );
    await assertRejects(() => Deno.stat(join(tmp.path, "sign-failed.txt")), Deno.errors.NotFound);
  });

  await t.step("a re-run adds nothing", async () => {
    const before = await sigSnapshot(reg, ["a/single", "a/multi"]);
    const r = await sign("basic.txt", [`${h}/a/single:v1`, `${h}/a/multi:v1`], ["--output", "json"]);
    assertEquals(r.code, 0, r.stderr);
    assertEquals(JSON.parse(r.stdout).summary.unchanged, 2);
    assertEquals(await sigSnapshot(reg, ["a/single", "a/multi"]), before);
    assertEquals(before.size, 4);
  });

  await t.step("foreign layers (another tool's, another media type) are preserved, first", async () => {
    const img = await pushSingle(reg, "a/foreign", "v1", "cli-foreign");
    const foreignManifest = await pushForeignSig(reg, "a/foreign", img);
    const r = await sign("foreign.txt", [`${h}/a/foreign:v1`]);
    assertEquals(r.code, 0, r.stderr);
    const sig = await checkSigned("a/foreign", img.top.digest, `${h}/a/foreign:v1`, 2);
    const foreignDesc = JSON.stringify(JSON.parse(foreignManifest).layers[0]);
    assert(sig.manifestText.includes(`"layers":[${foreignDesc},{`), sig.manifestText);
  });

  await t.step("--sign-index=false signs only the children", async () => {
    const img = await pushMulti(reg, "a/noindex", "v1", "cli-noindex");
    const r = await sign("noindex.txt", [`${h}/a/noindex:v1`], ["--sign-index=false"]);
    assertEquals(r.code, 0, r.stderr);
    for (const p of img.platforms) await checkSigned("a/noindex", p.digest, `${h}/a/noindex:v1`);
    assertEquals(await readSig(reg, "a/noindex", img.top.digest), undefined);
  });

  await t.step("--arch amd64 signs only the amd64 child and the index", async () => {
    const img = await pushMulti(reg, "a/arch", "v1", "cli-arch");
    const r = await sign("arch.txt", [`${h}/a/arch:v1`], ["--arch", "amd64"]);
    assertEquals(r.code, 0, r.stderr);
    const [a, b] = img.platforms;
    assertEquals([a.platform, b.platform], ["linux/amd64", "linux/arm64/v8"]);
    await checkSigned("a/arch", a.digest, `${h}/a/arch:v1`);
    await checkSigned("a/arch", img.top.digest, `${h}/a/arch:v1`);
    assertEquals(await readSig(reg, "a/arch", b.digest), undefined);
  });

  await t.step(
    "index entries without platform are signed (hangar panics: documented difference)",
    async () => {
      const img = await pushMulti(reg, "a/noplat", "v1", "cli-noplat", {
        platforms: ["linux/amd64", "linux/s390x"],
        omitPlatform: [1],
      });
      const r = await sign("noplat.txt", [`${h}/a/noplat:v1`]);
      assertEquals(r.code, 0, r.stderr);
      // linux/s390x would be filtered out by the default arch list; without a platform the entry passes.
      const noPlat = img.platforms[1].digest;
      await checkSigned("a/noplat", noPlat, `${h}/a/noplat:v1`);
      await checkSigned("a/noplat", img.platforms[0].digest, `${h}/a/noplat:v1`);
    },
  );

  await t.step("a digest-pinned multi-arch line signs the children and the index", async () => {
    const img = await pushMulti(reg, "a/pinned", undefined, "cli-pinned");
    const r = await sign("pinned.txt", [`${h}/a/pinned@${img.top.digest}`]);
    assertEquals(r.code, 0, r.stderr);
    // A digest-pinned line: its own (index) digest in every payload, as `skopeo copy --all` to a digest writes.
    for (const p of img.platforms) await checkSigned("a/pinned", p.digest, `${h}/a/pinned@${img.top.digest}`);
    await checkSigned("a/pinned", img.top.digest, `${h}/a/pinned@${img.top.digest}`);
  });

  await t.step("--annotation k=v lands in the payload's optional", async () => {
    const img = await pushSingle(reg, "a/annot", "v1", "cli-annot");
    const r = await sign("annot.txt", [`${h}/a/annot:v1`], [
      "--annotation",
      "team=platform",
      "--annotation",
      "ticket=OPS-1=2",
    ]);
    assertEquals(r.code, 0, r.stderr);
    const sig = await checkSigned("a/annot", img.top.digest, `${h}/a/annot:v1`);
    const optional = sig.layers[0].json!.optional;
    assertEquals(optional.team, "platform");
    assertEquals(optional["ticket"], "OPS-1=2");
    assertEquals(Object.keys(optional).sort(), ["creator", "team", "ticket", "timestamp"]);
  });

  await t.step("Harbor's UNKNOWN 'artifact … not found' counts as no signature yet", async () => {
    await using plain = await startRegistry();
    await using proxy = await startProxy(plain.url);
    const rule = proxy.addRule(harborNotFoundRule());
    const img = await pushSingle(plain, "h/img", "v1", "cli-harbor");
    await writeList(join(tmp.path, "harbor.txt"), [`${proxy.host}/h/img:v1`]);
    const r = await airlock(signArgs({ list: "harbor.txt", key, registriesD: rd, insecure: true }), {
      cwd: tmp.path,
    });
    outputs.push(r);
    assertEquals(r.code, 0, r.stderr);
    assert(rule.applied >= 1, "the proxy answered Harbor's body at least once");
    const sig = await readSig(plain, "h/img", img.top.digest);
    assertEquals(sig?.layers.length, 1);
    assertEquals(await verifyLayer(key.publicPem, sig!.layers[0], tmp.path), {
      airlock: true,
      openssl: true,
    });
  });

  await t.step("no output carries the passphrase", () => {
    assertEquals(outputs.map((o) => leaksSecret(o, [key.passphrase])).filter(Boolean), []);
  });
});

/**
 * Writes a `.sig` tag for `img` as another tool could: one layer of another media type with its own annotations
 * (an in-toto/DSSE envelope), a config with `created`, in containers/image's layout. Returns the manifest text.
 */
async function pushForeignSig(
  reg: { host: string; url: string; client?: Deno.HttpClient },
  repo: string,
  img: TestImage,
): Promise<string> {
  const blob = enc.encode('{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}');
  const blobDigest = await sha256(blob);
  const config = enc.encode(
    `{"created":"2024-01-02T03:04:05Z","architecture":"","os":"","config":{},"rootfs":{"type":"layers","diff_ids":["${blobDigest}"]}}`,
  );
  const configDigest = await sha256(config);
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: {
      mediaType: "application/vnd.oci.image.config.v1+json",
      digest: configDigest,
      size: config.length,
    },
    layers: [{
      mediaType: "application/vnd.dsse.envelope.v1+json",
      digest: blobDigest,
      size: blob.length,
      annotations: { predicateType: "https://slsa.dev/provenance/v1", "x.example/tool": "other" },
    }],
  });
  const sink = rawSink(reg.url, undefined, reg.client);
  const base = { registry: reg.host, repository: repo };
  await sink.uploadBlob(base, blob, { digest: blobDigest });
  await sink.uploadBlob(base, config, { digest: configDigest });
  await sink.putManifest(
    { ...base, tag: sigTag(img.top.digest) },
    enc.encode(manifest),
    "application/vnd.oci.image.manifest.v1+json",
  );
  return manifest;
}
