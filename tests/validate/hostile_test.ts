/**
 * Hostile registries: crafted `.sig` tags must be rejected with a clear reason, never accepted, never crash.
 * Runs `validateImages` in-process against a real registry; the crafted tags are pushed with plain `fetch`.
 */
import { builtinDefaultConfig } from "../../core/config/registries_d.ts";
import { resolveImageList } from "../../core/image_list.ts";
import { parseImageList } from "../../core/image_list.ts";
import { RegistryClient } from "../../core/registry/client.ts";
import { hangarValidatePolicy, type LineValidateResult, validateImages } from "../../core/validate.ts";
import { assert, assertEquals, assertStringIncludes } from "../assert.ts";
import {
  buildImage,
  pushImage,
  rawSink,
  sha256Digest,
  startProxy,
  startRegistry,
  tempDir,
} from "../testbed/mod.ts";
import { makeSigner } from "../testbed/keys.ts";
import {
  cosignPayloadBytes as payload,
  pushSig,
  SIG_ANNOTATION,
  signedLayer,
} from "../testbed/signatures.ts";

const enc = new TextEncoder();

Deno.test("hostile .sig tags are rejected with clear reasons", async () => {
  await using reg = await startRegistry();
  await using tmp = await tempDir("airlock-validate-hostile-");
  const key = await makeSigner(tmp.path, "k");
  const sink = rawSink(reg.url);
  const images: Record<string, string> = {};
  const names = ["many", "huge", "b64", "dup", "unknown", "otherdigest", "notoci", "ok"];
  for (const n of names) {
    const img = await buildImage({ seed: `hostile-${n}` });
    images[n] = await pushImage(img, { registry: reg.host, repository: `h/${n}` }, "v1", sink);
  }
  const id = (n: string) => `${reg.host}/h/${n}:v1`;

  // 1001 layers (all the same valid signature): refused before any blob is fetched.
  await pushSig(reg, "h/many", images.many, [await signedLayer(key, payload(id("many"), images.many))], 1001);
  // A 5 MiB "signature" layer.
  const big = new Uint8Array(5 * 1024 * 1024).fill(0x20);
  await pushSig(reg, "h/huge", images.huge, [{ payload: big, annotations: { [SIG_ANNOTATION]: "AAAA" } }]);
  // Invalid base64 in the annotation.
  await pushSig(reg, "h/b64", images.b64, [{
    payload: payload(id("b64"), images.b64),
    annotations: { [SIG_ANNOTATION]: "%%%" },
  }]);
  // Validly signed payloads that break the strict parse.
  const dup = enc.encode(
    `{"critical":{"identity":{"docker-reference":"${
      id("dup")
    }"},"image":{"docker-manifest-digest":"${images.dup}"},"type":"cosign container image signature","type":"cosign container image signature"},"optional":null}`,
  );
  await pushSig(reg, "h/dup", images.dup, [await signedLayer(key, dup)]);
  const unknown = enc.encode(
    `{"critical":{"identity":{"docker-reference":"${
      id("unknown")
    }"},"image":{"docker-manifest-digest":"${images.unknown}"},"type":"cosign container image signature","extra":true},"optional":null}`,
  );
  await pushSig(reg, "h/unknown", images.unknown, [await signedLayer(key, unknown)]);
  // A valid signature over another digest.
  await pushSig(reg, "h/otherdigest", images.otherdigest, [
    await signedLayer(key, payload(id("otherdigest"), images.ok)),
  ]);
  // The .sig tag is an index, not an OCI manifest.
  const index = enc.encode(
    JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: [] }),
  );
  await sink.putManifest(
    { registry: reg.host, repository: "h/notoci", tag: images.notoci.replace(":", "-") + ".sig" },
    index,
    "application/vnd.oci.image.index.v1+json",
  );
  // The control: a good signature next to a foreign layer.
  await pushSig(reg, "h/ok", images.ok, [
    { payload: enc.encode("{}"), mediaType: "application/vnd.dsse.envelope.v1+json" },
    await signedLayer(key, payload(id("ok"), images.ok)),
  ]);

  const client = new RegistryClient({ tlsVerify: false });
  try {
    const report = await validateImages(resolveImageList(parseImageList(names.map(id).join("\n"))), {
      client,
      registriesD: builtinDefaultConfig(),
      policy: hangarValidatePolicy({ keyPath: key.pub }),
      jobs: 4,
      timeoutMs: 60_000,
    });
    const by = new Map<string, LineValidateResult>(names.map((n, i) => [n, report.lines[i]]));
    const reason = (n: string) => by.get(n)!.result?.targets[0]?.reason ?? by.get(n)!.error?.message ?? "";
    assertEquals(by.get("ok")!.status, "passed");
    for (const n of names.filter((n) => n !== "ok")) assertEquals(by.get(n)!.status, "failed", n);
    assertEquals(report.failed, names.filter((n) => n !== "ok").map(id));

    assertStringIncludes(reason("many"), "has 1001 layers, more than the 1000 accepted");
    assertStringIncludes(reason("huge"), `is ${big.length} bytes, more than the 4194304 accepted`);
    assertEquals(reason("b64"), "base64 decoding: illegal base64 data at input byte 0");
    assertEquals(reason("dup"), `Duplicate key "type"`);
    assertEquals(reason("unknown"), `Unknown key "extra"`);
    assertEquals(reason("otherdigest"), `Signature for digest ${images.ok} does not match`);
    // distribution answers "manifest unknown" to a GET that accepts only OCI manifests when the tag holds an
    // index, so this is "no signature"; a registry that sends the index anyway gets the media type refusal.
    assert(
      /A signature was required, but no signature exists|unexpected MIME type for sigstore attachment manifest/
        .test(reason("notoci")),
      reason("notoci"),
    );
    // The image error is hangar's chain around the reason.
    assertEquals(
      by.get("dup")!.error!.message,
      `failed to validate signature [docker://${id("dup")}]: sign validate: Duplicate key "type"`,
    );
    assert(by.get("many")!.result!.targets[0].code === "TOO_LARGE");
  } finally {
    client.close();
  }
});

Deno.test("a corrupted payload blob in transit is rejected, not accepted", async () => {
  await using reg = await startRegistry();
  await using tmp = await tempDir("airlock-validate-flip-");
  const key = await makeSigner(tmp.path, "k");
  const img = await buildImage({ seed: "flip" });
  const digest = await pushImage(img, { registry: reg.host, repository: "f/img" }, "v1", rawSink(reg.url));
  const p = payload(`${reg.host}/f/img:v1`, digest);
  await pushSig(reg, "f/img", digest, [await signedLayer(key, p)]);
  const payloadDigest = await sha256Digest(p);
  await using proxy = await startProxy(reg.url, {
    rules: [{ method: "GET", path: `/v2/f/img/blobs/${payloadDigest}`, action: { kind: "flipByte" } }],
  });
  const client = new RegistryClient({ tlsVerify: false });
  try {
    const opts = {
      client,
      registriesD: builtinDefaultConfig(),
      policy: hangarValidatePolicy({ keyPath: key.pub }),
      jobs: 1,
      timeoutMs: 60_000,
    };
    // Through the proxy (same repository and tag, other host): the flipped blob fails its digest check.
    const bad = await validateImages(resolveImageList(parseImageList(`${proxy.host}/f/img:v1`)), opts);
    assertEquals(bad.lines[0].status, "failed");
    assertEquals(bad.lines[0].result?.targets[0].code, "DIGEST_MISMATCH");
    // Directly: the same signature is fine (the identity names the registry's own host).
    const good = await validateImages(resolveImageList(parseImageList(`${reg.host}/f/img:v1`)), opts);
    assertEquals(good.lines[0].status, "passed");
  } finally {
    client.close();
  }
});
