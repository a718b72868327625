/**
 * Byte-level agreement with containers/image: airlock signs images of the peer-skopeo fixture registry (made by
 * skopeo 1.14.5) and the `.sig` manifest, config and payload it writes must be exactly what containers/image
 * writes. The expected bytes are rebuilt from the fixture's own skopeo-made bytes, substituting only the values
 * that must differ (identity, digest, creator, timestamp, signature); every layer is verified with the public key
 * by airlock's verifier and by `openssl`.
 *
 * @module
 */
import { join } from "node:path";
import { openKey } from "../../backends/key_backend.ts";
import { builtinDefaultConfig } from "../../core/config/registries_d.ts";
import { parseImageList, resolveImageList } from "../../core/image_list.ts";
import { RegistryClient } from "../../core/registry/client.ts";
import { signImages } from "../../core/sign.ts";
import { assert, assertEquals, assertMatch } from "../assert.ts";
import {
  loadPeerSkopeoCases,
  PEER_SKOPEO_STORAGE,
  sha256Digest as sha256,
  startPeerSkopeoRegistry,
  tempDir,
} from "../testbed/mod.ts";
import { readSig, SIG_ANNOTATION, SIMPLE_SIGNING, verifyLayer } from "../testbed/signatures.ts";

const dec = new TextDecoder();
const NOW = 1_800_000_123;

/** A blob of the fixture storage, read from disk (the checked-in bytes skopeo wrote). */
async function fixtureBlob(digest: string): Promise<string> {
  const hex = digest.slice("sha256:".length);
  return dec.decode(
    await Deno.readFile(
      join(PEER_SKOPEO_STORAGE, "docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex, "data"),
    ),
  );
}

/** Replaces every occurrence of `from` (which must occur) by `to`. */
function sub(text: string, from: string, to: string): string {
  assert(text.includes(from), `template does not contain ${from}`);
  return text.replaceAll(from, to);
}

Deno.test("sign: .sig layout and payload are byte-identical to containers/image's (peer-skopeo A4, A1)", async () => {
  const fx = await loadPeerSkopeoCases();
  const a1 = fx.cases.find((c) => c.id === "A1")!;
  const a3 = fx.cases.find((c) => c.id === "A3")!;
  const a4 = fx.cases.find((c) => c.id === "A4")!;
  const bob = fx.keys.bob;
  const bobPub = await Deno.readTextFile(bob.publicKey);
  const a1Tag = a1.signatureTags[0];
  const a1Layer = a1Tag.layers[0];
  const a1Manifest = await fixtureBlob(a1Tag.sigManifestDigest);
  const a1Config = await fixtureBlob(a1Tag.configDigest);
  const a1Payload = await fixtureBlob(a1Layer.digest);
  const a1Timestamp = String(JSON.parse(a1Payload).optional.timestamp);
  const a3Config = await fixtureBlob(a3.signatureTags[0].configDigest);
  // The fixture templates are what the spec says (§5.5): 153 bytes for one signature, 227 for two.
  assertEquals([a1Config.length, a3Config.length], [153, 227]);

  await using tmp = await tempDir("airlock-sign-layout-");
  await using reg = await startPeerSkopeoRegistry();
  const client = new RegistryClient({ tlsVerify: false });
  const key = await openKey(bob.privateKey, { passphraseFile: bob.passphraseFile, env: () => undefined });
  try {
    const lines = [`${reg.host}/${a4.repository}:${a4.tag}`, `${reg.host}/${a1.repository}:${a1.tag}`];
    const run = () =>
      signImages(resolveImageList(parseImageList(lines.join("\n"))), {
        client,
        key,
        registriesD: builtinDefaultConfig(),
        jobs: 2,
        timeoutMs: 60_000,
        now: () => NOW,
        window: { readMaxAgeMs: 500, applyMinMs: 20 },
      });
    const report = await run();
    assertEquals(report.failed, []);
    assertEquals(report.lines.map((l) => l.status), ["signed", "signed"]);

    // --- A4: a fresh .sig, one signature.
    const sig4 = (await readSig(reg, a4.repository, a4.digest))!;
    assert(sig4, "A4 has a .sig tag after signing");
    assertEquals(sig4.contentType, "application/vnd.oci.image.manifest.v1+json");
    assertEquals(sig4.layers.length, 1);
    const ours4 = sig4.layers[0];
    const creator = ours4.json!.optional.creator as string;
    assertMatch(creator, /^airlock \S+$/);
    const expectedPayload4 = [
      [`registry.test:5000/${a1.repository}:${a1.tag}`, `${reg.host}/${a4.repository}:${a4.tag}`],
      [a1.digest, a4.digest],
      ["containers/image 5.29.4", creator],
      [a1Timestamp, String(NOW)],
    ].reduce((t, [f, to]) => sub(t, f, to), a1Payload);
    assertEquals(dec.decode(ours4.payload), expectedPayload4, "payload bytes");
    const payloadDigest4 = await sha256(ours4.payload);
    const expectedConfig4 = sub(a1Config, a1Layer.digest, payloadDigest4);
    assertEquals(dec.decode(sig4.configBytes), expectedConfig4, "config bytes");
    assertEquals(sig4.configBytes.length, 153);
    const sigValue4 = ours4.desc.annotations![SIG_ANNOTATION];
    const expectedManifest4 = [
      [a1Tag.configDigest, await sha256(sig4.configBytes)],
      [a1Layer.digest, payloadDigest4],
      [`"size":${a1Layer.size}`, `"size":${ours4.payload.length}`],
      [a1Layer.signatureAnnotation!, sigValue4],
    ].reduce((t, [f, to]) => sub(t, f, to), a1Manifest);
    assertEquals(sig4.manifestText, expectedManifest4, "manifest bytes");
    assertEquals(await verifyLayer(bobPub, ours4, tmp.path), { airlock: true, openssl: true });

    // --- A1: alice's layer stays first and byte-identical; ours is appended; config grows to 227 bytes.
    const sig1 = (await readSig(reg, a1.repository, a1.digest))!;
    assertEquals(sig1.layers.length, 2);
    const aliceDesc = JSON.stringify(JSON.parse(a1Manifest).layers[0]);
    assert(
      sig1.manifestText.includes(`"layers":[${aliceDesc},{`),
      "alice's descriptor is kept verbatim, first",
    );
    assertEquals(dec.decode(sig1.layers[0].payload), a1Payload);
    const ours1 = sig1.layers[1];
    const payloadDigest1 = await sha256(ours1.payload);
    const expectedPayload1 = [
      [`registry.test:5000/${a1.repository}:${a1.tag}`, `${reg.host}/${a1.repository}:${a1.tag}`],
      ["containers/image 5.29.4", creator],
      [a1Timestamp, String(NOW)],
    ].reduce((t, [f, to]) => sub(t, f, to), a1Payload);
    assertEquals(dec.decode(ours1.payload), expectedPayload1);
    // Expected config: skopeo's own two-signature config (A3) with the diff_ids swapped.
    const a3Diff = a3.signatureTags[0].layers.map((l) => l.digest);
    const expectedConfig1 = sub(sub(a3Config, a3Diff[0], a1Layer.digest), a3Diff[1], payloadDigest1);
    assertEquals(dec.decode(sig1.configBytes), expectedConfig1);
    assertEquals(sig1.configBytes.length, 227);
    const ourDesc1 = sub(
      sub(
        sub(aliceDesc, a1Layer.digest, payloadDigest1),
        `"size":${a1Layer.size}`,
        `"size":${ours1.payload.length}`,
      ),
      a1Layer.signatureAnnotation!,
      ours1.desc.annotations![SIG_ANNOTATION],
    );
    const expectedManifest1 = sub(
      sub(sub(a1Manifest, a1Tag.configDigest, await sha256(sig1.configBytes)), `"size":153`, `"size":227`),
      `${aliceDesc}]`,
      `${aliceDesc},${ourDesc1}]`,
    );
    assertEquals(sig1.manifestText, expectedManifest1);
    const alicePub = await Deno.readTextFile(fx.keys.alice.publicKey);
    assertEquals(await verifyLayer(alicePub, sig1.layers[0], tmp.path), { airlock: true, openssl: true });
    assertEquals(await verifyLayer(bobPub, sig1.layers[0], tmp.path), { airlock: false, openssl: false });
    assertEquals(await verifyLayer(bobPub, ours1, tmp.path), { airlock: true, openssl: true });
    for (const l of [...sig4.layers, ...sig1.layers]) assertEquals(l.desc.mediaType, SIMPLE_SIGNING);

    // --- A re-run adds nothing: both .sig manifests stay byte-identical.
    const again = await run();
    assertEquals(again.lines.map((l) => l.status), ["unchanged", "unchanged"]);
    assertEquals((await readSig(reg, a4.repository, a4.digest))!.manifestText, sig4.manifestText);
    assertEquals((await readSig(reg, a1.repository, a1.digest))!.manifestText, sig1.manifestText);
  } finally {
    await key.close();
    client.close();
  }
});
