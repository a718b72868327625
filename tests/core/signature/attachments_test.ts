/**
 * The sigstore attachment layout: `.sig` manifests and configs rebuilt byte for byte as skopeo 1.14.5
 * (containers/image 5.29.4) wrote them into the peer-skopeo fixture registry, the dedupe rule, foreign layers,
 * Go re-serialisation of cosign-made configs, and the idempotency check.
 */
import { createHash, createPublicKey, verify as nodeVerify } from "node:crypto";
import { join } from "node:path";
import { AirlockError } from "../../../core/errors.ts";
import {
  FIXTURES_DIR,
  loadPeerSkopeoCases,
  peerSkopeoBlob,
  type PeerSkopeoSignatureLayer,
} from "../../testbed/fixtures.ts";
import {
  ANNOTATION_BUNDLE,
  ANNOTATION_CERTIFICATE,
  ANNOTATION_CHAIN,
  ANNOTATION_PREDICATE_TYPE,
  ANNOTATION_RFC3161_TIMESTAMP,
  ANNOTATION_SIGNATURE,
  appendSignatureLayers,
  attestationTag,
  classifyAttachmentLayers,
  type DecodedAttachmentLayer,
  decodeSignatureAnnotation,
  DSSE_ENVELOPE_MEDIA_TYPE,
  findEquivalentSignature,
  listAttachmentLayers,
  parseAttachmentTag,
  signatureTag,
  SIMPLE_SIGNING_MEDIA_TYPE,
} from "../../../core/signature/attachments.ts";
import {
  freshAttachmentState,
  parseAttachmentConfig,
  parseAttachmentManifest,
  serializeAttachmentConfig,
  serializeAttachmentManifest,
} from "../../../core/signature/attachment_manifest.ts";
import { buildSimpleSigningPayload } from "../../../core/signature/payload.ts";
import { assert, assertEquals, assertThrows } from "../../assert.ts";

const FIXTURES = FIXTURES_DIR;
const PEER = join(FIXTURES, "peer-skopeo");
const STORAGE = join(PEER, "registry", "docker", "registry", "v2");

const { cases } = await loadPeerSkopeoCases();
const sigTags = cases.flatMap((c) => c.signatureTags.map((t) => ({ id: c.id, repository: c.repository, t })));

const text = (b: Uint8Array) => new TextDecoder().decode(b);
const enc = (s: string) => new TextEncoder().encode(s);
const sha256 = (b: Uint8Array) => "sha256:" + createHash("sha256").update(b).digest("hex");

function tagDir(repository: string, tag: string): string {
  return join(STORAGE, "repositories", repository, "_manifests", "tags", tag);
}

function currentTagDigest(repository: string, tag: string): string {
  return Deno.readTextFileSync(join(tagDir(repository, tag), "current", "link")).trim();
}

/** Every manifest digest the tag ever pointed at (distribution keeps them under `index/`). */
function tagHistory(repository: string, tag: string): string[] {
  return [...Deno.readDirSync(join(tagDir(repository, tag), "index", "sha256"))].map((e) =>
    `sha256:${e.name}`
  );
}

function newLayer(l: PeerSkopeoSignatureLayer) {
  return {
    payload: peerSkopeoBlob(l.digest),
    annotations: { [ANNOTATION_SIGNATURE]: l.signatureAnnotation },
  };
}

Deno.test("signatureTag matches every .sig tag in cases.json; .att and parse back", () => {
  assert(sigTags.length >= 8);
  for (const { t } of sigTags) {
    assertEquals(signatureTag(t.manifestDigest), t.tag);
    assertEquals(parseAttachmentTag(t.tag), { digest: t.manifestDigest, suffix: "sig" });
    assertEquals(attestationTag(t.manifestDigest), t.tag.replace(/\.sig$/, ".att"));
    assertEquals(signatureTag(t.manifestDigest, "sbom"), t.tag.replace(/\.sig$/, ".sbom"));
  }
  assertEquals(parseAttachmentTag("v1"), undefined);
  assertEquals(parseAttachmentTag("sha256-abc.sig"), undefined);
  const e = assertThrows(() => signatureTag("sha256:xyz"), AirlockError);
  assertEquals(e.code, "INVALID_ARGUMENT");
});

Deno.test("fixture .sig tags resolve to the manifests and configs cases.json names", () => {
  for (const { id, repository, t } of sigTags) {
    assertEquals(currentTagDigest(repository, t.tag), t.sigManifestDigest, id);
    const manifest = peerSkopeoBlob(t.sigManifestDigest);
    assertEquals(sha256(manifest), t.sigManifestDigest);
    assertEquals(JSON.parse(text(manifest)).config.digest, t.configDigest);
  }
});

Deno.test("appendSignatureLayers rebuilds every skopeo-made .sig manifest and config byte for byte", () => {
  let twoLayerCases = 0;
  for (const { id, repository, t } of sigTags) {
    const storedManifest = peerSkopeoBlob(t.sigManifestDigest);
    const storedConfig = peerSkopeoBlob(t.configDigest);
    if (t.layers.length === 1) {
      const r = appendSignatureLayers(undefined, [newLayer(t.layers[0])]);
      assertEquals(text(r.configBytes), text(storedConfig), `${id} config`);
      assertEquals(r.configDigest, t.configDigest);
      assertEquals(text(r.manifestBytes), text(storedManifest), `${id} manifest`);
      assertEquals(r.manifestDigest, t.sigManifestDigest);
      assertEquals(r.added, 1);
      assertEquals(r.layersToUpload.map((u) => u.digest), [t.layers[0].digest]);
      continue;
    }
    // A3: skopeo signed with alice (fresh tag), then with bob (appending onto the parsed first state).
    twoLayerCases++;
    assertEquals(t.layers.length, 2, id);
    const first = appendSignatureLayers(undefined, [newLayer(t.layers[0])]);
    const history = tagHistory(repository, t.tag);
    assert(
      history.includes(first.manifestDigest),
      `${id}: first state ${first.manifestDigest} not in ${history}`,
    );
    assert(first.manifestDigest !== t.sigManifestDigest);
    // Parse what the registry stored for the first state, as containers/image would on the second run.
    const firstManifest = parseAttachmentManifest(peerSkopeoBlob(first.manifestDigest), {
      contentType: "application/vnd.oci.image.manifest.v1+json",
    });
    const firstConfig = parseAttachmentConfig(
      peerSkopeoBlob(firstManifest.config.digest),
      firstManifest.config.digest,
    );
    const second = appendSignatureLayers({ manifest: firstManifest, config: firstConfig }, [
      newLayer(t.layers[1]),
    ]);
    assertEquals(text(second.configBytes), text(storedConfig), `${id} config`);
    assertEquals(second.configDigest, t.configDigest);
    assertEquals(second.configBytes.length, 227);
    assertEquals(text(second.manifestBytes), text(storedManifest), `${id} manifest`);
    assertEquals(second.manifestDigest, t.sigManifestDigest);
    assertEquals(second.added, 1);
    // Both at once from nothing gives the same bytes.
    const both = appendSignatureLayers(undefined, t.layers.map(newLayer));
    assertEquals(both.manifestDigest, t.sigManifestDigest);
  }
  assertEquals(twoLayerCases, 1);
});

Deno.test("parse + re-serialise of every stored .sig manifest and config is the identity", () => {
  for (const { id, t } of sigTags) {
    const m = peerSkopeoBlob(t.sigManifestDigest);
    const c = peerSkopeoBlob(t.configDigest);
    assertEquals(text(serializeAttachmentManifest(parseAttachmentManifest(m))), text(m), id);
    assertEquals(text(serializeAttachmentConfig(parseAttachmentConfig(c))), text(c), id);
  }
});

Deno.test("dedupe: appending an identical layer adds nothing and rewrites the same bytes", () => {
  const a3 = sigTags.find((s) => s.t.layers.length === 2)!.t;
  const state = {
    manifest: parseAttachmentManifest(peerSkopeoBlob(a3.sigManifestDigest)),
    config: parseAttachmentConfig(peerSkopeoBlob(a3.configDigest)),
  };
  const again = appendSignatureLayers(state, [newLayer(a3.layers[1]), newLayer(a3.layers[0])]);
  assertEquals(again.added, 0);
  assertEquals(again.layersToUpload, []);
  assertEquals(again.manifestDigest, a3.sigManifestDigest);
  assertEquals(again.configDigest, a3.configDigest);

  // Same payload, different annotations: not the same layer (containers/image compares the whole map).
  const other = appendSignatureLayers(state, [{
    payload: peerSkopeoBlob(a3.layers[0].digest),
    annotations: { [ANNOTATION_SIGNATURE]: a3.layers[0].signatureAnnotation, extra: "x" },
  }]);
  assertEquals(other.added, 1);
  assertEquals(other.layersToUpload.length, 1);
  // Same payload, other media type: not the same layer either.
  assertEquals(
    appendSignatureLayers(state, [{ ...newLayer(a3.layers[0]), mediaType: "application/octet-stream" }])
      .added,
    1,
  );
  // The input state was not modified.
  assertEquals(state.manifest.layers!.length, 2);
  assertEquals(state.config.rootfs.diff_ids!.length, 2);
  // A duplicate inside one call is added once.
  const dup = appendSignatureLayers(undefined, [newLayer(a3.layers[0]), newLayer(a3.layers[0])]);
  assertEquals(dup.added, 1);
});

Deno.test("fresh config: 153 bytes for 1 signature, 227 for 2, +74 per extra (spec §5.5)", () => {
  const mk = (n: number) =>
    Array.from({ length: n }, (_, i) => ({
      payload: buildSimpleSigningPayload({
        dockerReference: "registry.test:5000/a/single:v1",
        manifestDigest: "sha256:" + "0".repeat(64),
        creator: "c",
        timestamp: 1700000000 + i,
      }),
      annotations: { [ANNOTATION_SIGNATURE]: "MEUCIQ==" },
    }));
  assertEquals(appendSignatureLayers(undefined, mk(1)).configBytes.length, 153);
  assertEquals(appendSignatureLayers(undefined, mk(2)).configBytes.length, 227);
  assertEquals(appendSignatureLayers(undefined, mk(3)).configBytes.length, 227 + 74);
  assertEquals(appendSignatureLayers(undefined, mk(5)).configBytes.length, 227 + 3 * 74);
  // Nothing to add to nothing: Go's nil slices.
  const none = appendSignatureLayers(undefined, []);
  assertEquals(
    text(none.configBytes),
    '{"architecture":"","os":"","config":{},"rootfs":{"type":"layers","diff_ids":null}}',
  );
  assert(text(none.manifestBytes).includes('"layers":null'));
  assertEquals(freshAttachmentState().manifest.layers, null);
});

// A cosign-made .sig config as spec/cosign.md §1.2 quotes it (233 bytes with one diff_id).
const FOREIGN_PAYLOAD = enc(
  '{"critical":{"identity":{"docker-reference":"r.test/x"},"image":{"docker-manifest-digest":"sha256:' +
    "1".repeat(64) + '"},"type":"cosign container image signature"},"optional":null}',
);
const FOREIGN_DIGEST = sha256(FOREIGN_PAYLOAD);
const COSIGN_CONFIG =
  '{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{"created":"0001-01-01T00:00:00Z"}],' +
  `"os":"","rootfs":{"type":"layers","diff_ids":["${FOREIGN_DIGEST}"]},"config":{}}`;

Deno.test("cosign-made config: Go drops nothing known and re-orders to struct order", () => {
  assertEquals(enc(COSIGN_CONFIG).length, 233);
  const c = parseAttachmentConfig(enc(COSIGN_CONFIG));
  assertEquals(
    text(serializeAttachmentConfig(c)),
    '{"created":"0001-01-01T00:00:00Z","architecture":"","os":"","config":{},' +
      `"rootfs":{"type":"layers","diff_ids":["${FOREIGN_DIGEST}"]},"history":[{"created":"0001-01-01T00:00:00Z"}]}`,
  );
  // Every known field, unknown ones dropped, Go forms for times, sets and maps.
  const full = '{"zzz":1,"history":[{"empty_layer":true,"comment":"c","author":"a","created_by":"b",' +
    '"created":"2023-01-20T12:00:00.500000+00:00","x":1},null],"rootfs":{"diff_ids":[],"type":"layers","q":1},' +
    '"config":{"Labels":{"b":"2","a":"1"},"StopSignal":"SIGTERM","ArgsEscaped":true,"Volumes":{"/v":{}},' +
    '"WorkingDir":"/w","Cmd":["c"],"Entrypoint":["e"],"Env":["A=1"],"ExposedPorts":{"80/tcp":{},"443/tcp":{}},' +
    '"User":"u","Unknown":"x"},"variant":"v8","os.features":["f"],"os.version":"10","os":"linux",' +
    '"architecture":"arm64","author":"me","created":"2024-02-29T23:59:59.123456789-05:30","container":"abc"}';
  assertEquals(
    text(serializeAttachmentConfig(parseAttachmentConfig(enc(full)))),
    '{"created":"2024-02-29T23:59:59.123456789-05:30","author":"me","architecture":"arm64","os":"linux",' +
      '"os.version":"10","os.features":["f"],"variant":"v8","config":{"User":"u","ExposedPorts":{"443/tcp":{},' +
      '"80/tcp":{}},"Env":["A=1"],"Entrypoint":["e"],"Cmd":["c"],"Volumes":{"/v":{}},"WorkingDir":"/w",' +
      '"Labels":{"a":"1","b":"2"},"StopSignal":"SIGTERM","ArgsEscaped":true},"rootfs":{"type":"layers","diff_ids":[]},' +
      '"history":[{"created":"2023-01-20T12:00:00.5Z","created_by":"b","author":"a","comment":"c","empty_layer":true},{}]}',
  );
  const bad = assertThrows(
    () => parseAttachmentConfig(enc('{"rootfs":{"diff_ids":"x"}}'), "sha256:cfg"),
    AirlockError,
  );
  assertEquals(bad.code, "ATTACHMENT_INVALID");
  assert(
    bad.message.startsWith("parsing sigstore attachment config sha256:cfg: json: cannot unmarshal string"),
  );
  assertThrows(() => parseAttachmentConfig(enc('{"created":"2023-02-30T00:00:00Z"}')), AirlockError);
});

Deno.test("foreign layers (cosign signature, attestation) are kept in order; new ones appended", () => {
  const attPayload = enc('{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}');
  const cosignLayer = {
    mediaType: SIMPLE_SIGNING_MEDIA_TYPE,
    digest: FOREIGN_DIGEST,
    size: FOREIGN_PAYLOAD.length,
    annotations: {
      [ANNOTATION_SIGNATURE]: "MEUCIQ==",
      [ANNOTATION_BUNDLE]: '{"SignedEntryTimestamp":"x","Payload":{"logIndex":1}}',
      [ANNOTATION_CERTIFICATE]: "-----BEGIN CERTIFICATE-----\nMII=\n-----END CERTIFICATE-----\n",
      [ANNOTATION_CHAIN]: "",
    },
  };
  const attLayer = {
    mediaType: DSSE_ENVELOPE_MEDIA_TYPE,
    digest: sha256(attPayload),
    size: attPayload.length,
    annotations: {
      [ANNOTATION_SIGNATURE]: "",
      [ANNOTATION_PREDICATE_TYPE]: "https://slsa.dev/provenance/v1",
    },
  };
  // cosign's manifest shape plus fields Go keeps (annotations, subject, artifactType) and one it drops.
  const foreignManifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: {
      mediaType: "application/vnd.oci.image.config.v1+json",
      size: 233,
      digest: sha256(enc(COSIGN_CONFIG)),
    },
    layers: [attLayer, cosignLayer],
    annotations: { "org.example": "1" },
    subject: { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: FOREIGN_DIGEST, size: 10 },
    artifactType: "application/x-test",
    unknownField: { a: 1 },
  });
  const state = {
    manifest: parseAttachmentManifest(enc(foreignManifest)),
    config: parseAttachmentConfig(enc(COSIGN_CONFIG)),
  };
  const mine = buildSimpleSigningPayload({
    dockerReference: "r.test/x:1",
    manifestDigest: "sha256:" + "1".repeat(64),
    creator: "airlock 0.1.0",
    timestamp: 1700000000,
  });
  const r = appendSignatureLayers(state, [
    { payload: FOREIGN_PAYLOAD, annotations: cosignLayer.annotations }, // already there: skipped
    { payload: mine, annotations: { [ANNOTATION_SIGNATURE]: "MEQCIA==" } },
  ]);
  assertEquals(r.added, 1);
  assertEquals(r.layersToUpload.map((u) => u.digest), [sha256(mine)]);
  const expectedConfig = '{"created":"0001-01-01T00:00:00Z","architecture":"","os":"","config":{},' +
    `"rootfs":{"type":"layers","diff_ids":["${FOREIGN_DIGEST}","${sha256(mine)}"]},` +
    '"history":[{"created":"0001-01-01T00:00:00Z"}]}';
  assertEquals(text(r.configBytes), expectedConfig);
  const desc = (
    d: { mediaType: string; digest: string; size: number; annotations: Record<string, string> },
  ) =>
    `{"mediaType":"${d.mediaType}","digest":"${d.digest}","size":${d.size},"annotations":{` +
    Object.keys(d.annotations).sort().map((k) => `${JSON.stringify(k)}:${JSON.stringify(d.annotations[k])}`)
      .join(",") +
    "}}";
  const expectedManifest = '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",' +
    '"artifactType":"application/x-test",' +
    `"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"${
      sha256(enc(expectedConfig))
    }",` +
    `"size":${enc(expectedConfig).length}},"layers":[${desc(attLayer)},${desc(cosignLayer)},` +
    desc({
      mediaType: SIMPLE_SIGNING_MEDIA_TYPE,
      digest: sha256(mine),
      size: mine.length,
      annotations: { [ANNOTATION_SIGNATURE]: "MEQCIA==" },
    }) +
    `],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"${FOREIGN_DIGEST}","size":10},` +
    '"annotations":{"org.example":"1"}}';
  assertEquals(text(r.manifestBytes), expectedManifest);

  // Reading the layers back: classification and annotations.
  const layers = listAttachmentLayers(r.manifest);
  assertEquals(layers.map((l) => l.isSignature), [false, true, true]);
  assertEquals(layers[0].predicateType, "https://slsa.dev/provenance/v1");
  assertEquals(layers[0].signature, "");
  assertEquals(layers[1].bundle, cosignLayer.annotations[ANNOTATION_BUNDLE]);
  assertEquals(layers[1].certificate, cosignLayer.annotations[ANNOTATION_CERTIFICATE]);
  assertEquals(layers[1].chain, "");
  assertEquals(layers[1].rfc3161Timestamp, undefined);
  assertEquals(layers[2].index, 2);
  const { signatures, nonSignatureAttachments } = classifyAttachmentLayers(layers);
  assertEquals(signatures.map((l) => l.index), [1, 2]);
  assertEquals(nonSignatureAttachments, 1);
  assertEquals(ANNOTATION_RFC3161_TIMESTAMP, "dev.sigstore.cosign/rfc3161timestamp");
});

Deno.test("parseAttachmentManifest: media type and ambiguity checks", () => {
  const a1 = sigTags[0].t;
  const bytes = peerSkopeoBlob(a1.sigManifestDigest);
  const e = assertThrows(
    () =>
      parseAttachmentManifest(bytes, {
        contentType: "application/vnd.docker.distribution.manifest.v2+json",
        tag: "a/single:x.sig",
      }),
    AirlockError,
  );
  assertEquals(e.code, "UNSUPPORTED_MEDIA_TYPE");
  assertEquals(
    e.message,
    'unexpected MIME type for sigstore attachment manifest a/single:x.sig: "application/vnd.docker.distribution.manifest.v2+json"',
  );
  const body = JSON.parse(text(bytes));
  const amb = assertThrows(
    () => parseAttachmentManifest(enc(JSON.stringify({ ...body, manifests: [] }))),
    AirlockError,
  );
  assertEquals(amb.code, "ATTACHMENT_INVALID");
  assert(amb.message.startsWith("rejecting ambiguous manifest"));
  const badSize = assertThrows(
    () => parseAttachmentManifest(enc(JSON.stringify({ ...body, config: { ...body.config, size: 1.5 } }))),
    AirlockError,
  );
  assertEquals(badSize.code, "ATTACHMENT_INVALID");
});

Deno.test("decodeSignatureAnnotation: DER signatures from the fixtures; containers/image's errors", () => {
  for (const { t } of sigTags) {
    for (const l of t.layers) {
      const sig = decodeSignatureAnnotation({ [ANNOTATION_SIGNATURE]: l.signatureAnnotation });
      assertEquals(sig[0], 0x30); // ASN.1 SEQUENCE
      assertEquals(sig.length, sig[1] + 2);
    }
  }
  assertThrows(
    () => decodeSignatureAnnotation({}),
    AirlockError,
    "missing dev.cosignproject.cosign/signature annotation",
  );
  const bad = (s: string, at: number) =>
    assertEquals(
      assertThrows(() => decodeSignatureAnnotation({ [ANNOTATION_SIGNATURE]: s }), AirlockError).message,
      `base64 decoding: illegal base64 data at input byte ${at}`,
    );
  bad("MEU!", 3);
  bad("MEUCIQ", 4); // unpadded final quantum
  bad("MEUCIQ=", 7); // not enough padding
  bad("MEUCIQ==x", 8); // trailing data
  bad("M===", 1);
  assertEquals(decodeSignatureAnnotation({ [ANNOTATION_SIGNATURE]: "TWFu\nTWE=" }), enc("ManMa"));
});

Deno.test("findEquivalentSignature: same key, digest and identity means no new layer", async () => {
  const a3 = sigTags.find((s) => s.t.layers.length === 2)!.t;
  const layers: DecodedAttachmentLayer[] = a3.layers.map((l) => ({
    mediaType: l.mediaType,
    digest: l.digest,
    annotations: { [ANNOTATION_SIGNATURE]: l.signatureAnnotation },
    payload: peerSkopeoBlob(l.digest),
  }));
  const key = (name: string) => createPublicKey(Deno.readTextFileSync(join(PEER, "keys", `${name}.pub`)));
  const verifier = (name: string) => {
    const k = key(name);
    return (payload: Uint8Array, sig: Uint8Array) => nodeVerify("sha256", payload, k, sig);
  };
  const query = {
    manifestDigest: a3.layers[0].payloadManifestDigest,
    dockerReference: a3.layers[0].identity,
  };

  const alice = await findEquivalentSignature(layers, { ...query, verify: verifier("alice") });
  assertEquals(alice?.index, a3.layers.findIndex((l) => l.verifiesWithKeys.includes("alice")));
  const bob = await findEquivalentSignature(layers, { ...query, verify: verifier("bob") });
  assertEquals(bob?.index, a3.layers.findIndex((l) => l.verifiesWithKeys.includes("bob")));
  assertEquals(bob?.payload.dockerReference, a3.layers[0].identity);
  assertEquals(await findEquivalentSignature(layers, { ...query, verify: verifier("mallory") }), undefined);

  // Other identity, other digest, other annotations: a new layer is due.
  const v = verifier("alice");
  assertEquals(
    await findEquivalentSignature(layers, {
      ...query,
      dockerReference: "registry.test:5000/a/twokeys:v2",
      verify: v,
    }),
    undefined,
  );
  assertEquals(
    await findEquivalentSignature(layers, {
      ...query,
      manifestDigest: "sha256:" + "0".repeat(64),
      verify: v,
    }),
    undefined,
  );
  assertEquals(
    await findEquivalentSignature(layers, { ...query, annotations: { env: "prod" }, verify: v }),
    undefined,
  );

  // Layers that cannot match are skipped without calling verify or failing.
  let calls = 0;
  const counted = (p: Uint8Array, s: Uint8Array) => {
    calls++;
    return v(p, s);
  };
  const noisy: DecodedAttachmentLayer[] = [
    { ...layers[0], mediaType: DSSE_ENVELOPE_MEDIA_TYPE },
    { ...layers[0], annotations: {} },
    { ...layers[0], annotations: { [ANNOTATION_SIGNATURE]: "!!" } },
    { ...layers[0], digest: "sha256:" + "0".repeat(64) },
    { ...layers[1] }, // bob's: verify says no
    layers[0],
  ];
  const found = await findEquivalentSignature(noisy, { ...query, verify: counted });
  assertEquals(found?.index, 5);
  assertEquals(calls, 2);
  const throwing = await findEquivalentSignature(layers, {
    ...query,
    verify: () => {
      throw new Error("bad DER");
    },
  });
  assertEquals(throwing, undefined);
});
