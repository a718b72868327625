/**
 * `airlock verify` against content a real registry would not hold, served by the fake static registry:
 * containers/image's real cosign fixtures (image manifests without their layer blobs), the referrers API offered
 * or not, and hostile `.sig` content. Expected output is written out by hand from the payload bytes and Go's
 * `encoding/json` rules, never produced by airlock's serialiser.
 *
 * @module
 */
import { assert, assertEquals } from "../assert.ts";
import {
  fixturePath,
  loadCosignFixture,
  putStaticBlob,
  putStaticManifest,
  sha256Digest,
  show,
  startStaticRegistry,
  type StaticContent,
  tempDir,
} from "../testbed/mod.ts";
import { makeSigner, type TestSigner } from "../testbed/keys.ts";
import { cosignPayload, ociManifest } from "../testbed/signatures.ts";
import { assertCleanFailure, assertNoCrash, cosignHeader, verify } from "./helpers.ts";

const CI = (name: string) => fixturePath("vectors", "containers-image", name);
const enc = new TextEncoder();
const dec = new TextDecoder();
const SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json";
const SIG = "dev.cosignproject.cosign/signature";

Deno.test("verify: containers/image cosign fixtures, served by the static fake registry", async () => {
  const content: StaticContent = new Map();
  const valid = await loadCosignFixture(content, "ci/valid", "v1", "valid");
  const rekor = await loadCosignFixture(content, "ci/key-rekor", "v1", "key-rekor-valid");
  const keyless = await loadCosignFixture(content, "ci/keyless", "v1", "fulcio-rekor-valid");
  // The fixture README: the image digest is sha256 of the manifest file.
  assertEquals(
    valid.digest,
    await sha256Digest(await Deno.readFile(CI("dir-img-cosign-valid-manifest.json"))),
  );
  await using tmp = await tempDir("airlock-verify-static-");
  await using reg = await startStaticRegistry(content);
  const cosign1 = CI("cosign.pub");
  const cosign2 = CI("cosign2.pub");

  // dir-img-cosign-valid: cosign.pub, key only. Its payload is cosign's own json.Marshal of the very struct cosign
  // prints (critical in struct order, "optional":null, nothing to escape), so cosign prints it unchanged.
  const validPayload = dec.decode(valid.signatures[0].payload);
  assertEquals(validPayload.endsWith(`,"type":"cosign container image signature"},"optional":null}`), true);
  const ref = `${reg.host}/ci/valid:v1`;
  let r = await verify(tmp.path, ["--key", cosign1, "--insecure-ignore-tlog", ref]);
  assertEquals(r.code, 0, show(r));
  assertEquals(r.stdout, `\n[${validPayload}]\n`);
  assertEquals(r.stderr, cosignHeader(ref));
  r = await verify(tmp.path, [
    "--key",
    cosign1,
    "--insecure-ignore-tlog",
    `${reg.host}/ci/valid@${valid.digest}`,
  ]);
  assertEquals(r.code, 0, show(r));
  r = await verify(tmp.path, ["--key", cosign2, "--insecure-ignore-tlog", ref]);
  assertCleanFailure(
    r,
    12,
    "no matching signatures:\ninvalid signature when validating ASN.1 encoded signature",
  );

  // dir-img-cosign-key-rekor-valid: cosign2.pub; the layer carries a Rekor bundle, which cosign adds to
  // "optional" as "Bundle" (the annotation is itself cosign's json.Marshal of bundle.RekorBundle, struct order).
  const rekorPayload = dec.decode(rekor.signatures[0].payload);
  const bundle = rekor.signatures[0].annotations["dev.sigstore.cosign/bundle"];
  assert(bundle.startsWith('{"SignedEntryTimestamp":"') && bundle.includes('"Payload":{"body":"'));
  const rekorRef = `${reg.host}/ci/key-rekor:v1`;
  r = await verify(tmp.path, ["--key", cosign2, "--insecure-ignore-tlog", rekorRef]);
  assertEquals(r.code, 0, show(r));
  assertEquals(
    r.stdout,
    `\n[${rekorPayload.replace(/"optional":null}$/, `"optional":{"Bundle":${bundle}}}`)}]\n`,
  );
  r = await verify(tmp.path, ["--key", cosign1, "--insecure-ignore-tlog", rekorRef]);
  assertCleanFailure(r, 12, "invalid signature when validating ASN.1 encoded signature");
  // Without the flag the SET is verified offline against the embedded public-good root (issue 5; more cases in
  // verify_keyless_test.ts): accepted, and the header says so.
  r = await verify(tmp.path, ["--key", cosign2, rekorRef]);
  assertEquals(r.code, 0, show(r));
  assert(
    r.stderr.includes("  - Existence of the claims in the transparency log was verified offline\n"),
    show(r),
  );

  // The keyless fixture was signed by a Fulcio certificate's key, not by either key file.
  r = await verify(tmp.path, [
    "--key",
    cosign1,
    "--insecure-ignore-tlog",
    `${reg.host}/ci/keyless@${keyless.digest}`,
  ]);
  assertCleanFailure(r, 12, "invalid signature when validating ASN.1 encoded signature");
});

Deno.test("verify: the referrers API is looked at first when offered; a bad bundle there is refused, no fallback", async () => {
  const content: StaticContent = new Map();
  const plain = await loadCosignFixture(content, "ci/plain", "v1", "valid");
  const withBundle = await loadCosignFixture(content, "ci/bundled", "v1", "valid");
  // A cosign v3 referrer (spec/cosign.md §2.8): artifactType sigstore bundle, subject = the image.
  const bundleBlob = await putStaticBlob(content, "ci/bundled", enc.encode("{}"));
  await putStaticManifest(content, "ci/bundled", {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    artifactType: "application/vnd.dev.sigstore.bundle.v0.3+json",
    config: {
      mediaType: "application/vnd.oci.empty.v1+json",
      digest: "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
      size: 2,
    },
    layers: [{ mediaType: "application/vnd.dev.sigstore.bundle.v0.3+json", digest: bundleBlob, size: 2 }],
    subject: {
      mediaType: "application/vnd.docker.distribution.manifest.v2+json",
      digest: withBundle.digest,
      size: 1,
    },
  });
  await using tmp = await tempDir("airlock-verify-static-");
  const args = ["--key", CI("cosign.pub"), "--insecure-ignore-tlog"];
  {
    await using reg = await startStaticRegistry(content, { referrers: true });
    const r = await verify(tmp.path, [...args, `${reg.host}/ci/plain:v1`]);
    assertEquals(r.code, 0, show(r));
    assert(reg.requests.includes(`GET /v2/ci/plain/referrers/${plain.digest}`), reg.requests.join("\n"));
    // cosign v3 verifies referrer bundles instead of the .sig tag: this one ("{}") is not a bundle.
    const b = await verify(tmp.path, [...args, `${reg.host}/ci/bundled:v1`]);
    assertCleanFailure(b, 12, "no matching signatures:\nreferrer ");
  }
  {
    // Not offered (404, as distribution 2.8): the .sig tag is used.
    await using reg = await startStaticRegistry(content, { referrers: false });
    const r = await verify(tmp.path, [...args, `${reg.host}/ci/bundled:v1`]);
    assertEquals(r.code, 0, show(r));
    assert(reg.requests.includes(`GET /v2/ci/bundled/referrers/${withBundle.digest}`));
  }
});

/** Hostile content: one repository per case, each with an image and a crafted `.sig`. */
interface Layer {
  mediaType?: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

class Hostile {
  readonly content: StaticContent = new Map();
  constructor(readonly signer: TestSigner) {}

  /** An image (a manifest whose blobs are absent) in `repo`, tagged v1; returns its digest. */
  image(repo: string): Promise<string> {
    return putStaticManifest(
      this.content,
      repo,
      ociManifest({ digest: "sha256:" + "0".repeat(64), size: 2 }, [], { annotations: { repo } }),
      { tag: "v1" },
    );
  }

  /** A signed layer for `payload` (stored as a blob). */
  async layer(
    repo: string,
    payload: string | Uint8Array,
    annotations?: Record<string, string>,
  ): Promise<Layer> {
    const bytes = typeof payload === "string" ? enc.encode(payload) : payload;
    const digest = await putStaticBlob(this.content, repo, bytes);
    return {
      digest,
      size: bytes.length,
      annotations: annotations ?? { [SIG]: this.signer.signB64(bytes) },
    };
  }

  /** Stores the `.sig` manifest of `digest` with these layers. */
  async sig(repo: string, digest: string, layers: Layer[]): Promise<void> {
    await putStaticManifest(
      this.content,
      repo,
      ociManifest(
        { digest: "sha256:" + "1".repeat(64), size: 2 },
        layers.map((l) => ({ mediaType: l.mediaType ?? SIMPLE_SIGNING, ...l })),
      ),
      { tag: digest.replace(":", "-") + ".sig" },
    );
  }
}

Deno.test("verify: hostile .sig content is refused cleanly, never accepted, never a crash", async () => {
  await using tmp = await tempDir("airlock-verify-hostile-");
  const signer = await makeSigner(tmp.path, "k");
  const h = new Hostile(signer);
  const MiB = 1024 * 1024;
  /** A valid payload for `d` followed by spaces up to 10 MiB (still JSON). */
  const bigPayload = (d: string) => {
    const big = new Uint8Array(10 * MiB).fill(0x20);
    big.set(enc.encode(cosignPayload("x/y", d)));
    return big;
  };
  const cases: { repo: string; code: number; message: string }[] = [];

  // 5000 layers (cosign writes at most 1000), each a valid signature: refused before any blob is read.
  {
    const d = await h.image("h/layers5000");
    const l = await h.layer("h/layers5000", cosignPayload("x/y", d));
    await h.sig("h/layers5000", d, Array.from({ length: 5000 }, () => l));
    cases.push({ repo: "h/layers5000", code: 1, message: "has 5000 layers, more than the 1000 accepted" });
  }
  // A validly signed 10 MiB payload (JSON + whitespace): over the 4 MiB limit, refused without fetching it.
  {
    const d = await h.image("h/big");
    await h.sig("h/big", d, [await h.layer("h/big", bigPayload(d))]);
    cases.push({ repo: "h/big", code: 12, message: "is 10485760 bytes, more than the 4194304 accepted" });
  }
  // A descriptor that claims 300 bytes for a 10 MiB blob: reading stops at the limit.
  {
    const d = await h.image("h/biglie");
    const l = await h.layer("h/biglie", bigPayload(d));
    await h.sig("h/biglie", d, [{ ...l, size: 300 }]);
    cases.push({ repo: "h/biglie", code: 12, message: "no matching signatures:\n" });
  }
  // Signature annotation that is not base64.
  {
    const d = await h.image("h/b64");
    await h.sig("h/b64", d, [await h.layer("h/b64", cosignPayload("x/y", d), { [SIG]: "MEUC!!notbase64" })]);
    cases.push({ repo: "h/b64", code: 12, message: "illegal base64 data at input byte 4" });
  }
  // Duplicate keys, validly signed: Go would take the last "image" (the right digest); airlock refuses.
  {
    const d = await h.image("h/dup");
    const other = "sha256:" + "a".repeat(64);
    const p =
      `{"critical":{"identity":{"docker-reference":"x/y"},"image":{"docker-manifest-digest":"${other}"},` +
      `"image":{"docker-manifest-digest":"${d}"},"type":"cosign container image signature"},"optional":null}`;
    await h.sig("h/dup", d, [await h.layer("h/dup", p)]);
    cases.push({ repo: "h/dup", code: 12, message: 'duplicate key "image"' });
  }
  // A member that only case-folds to a field name (Go would read it as "critical").
  {
    const d = await h.image("h/fold");
    await h.sig("h/fold", d, [
      await h.layer("h/fold", cosignPayload("x/y", d).replace('"critical"', '"Critical"')),
    ]);
    cases.push({ repo: "h/fold", code: 12, message: 'payload: key "Critical" is not spelled "critical"' });
  }
  // Not JSON at all, validly signed.
  {
    const d = await h.image("h/notjson");
    await h.sig("h/notjson", d, [await h.layer("h/notjson", "not json")]);
    cases.push({
      repo: "h/notjson",
      code: 12,
      message: "invalid character 'o' in literal null (expecting 'u')",
    });
  }
  // A valid signature over a payload naming another digest (a .sig copied from another image).
  {
    const d = await h.image("h/otherdigest");
    const other = await h.image("h/otherdigest-donor");
    await h.sig("h/otherdigest", d, [await h.layer("h/otherdigest", cosignPayload("x/y", other))]);
    cases.push({ repo: "h/otherdigest", code: 12, message: `invalid or missing digest in claim: ${other}` });
  }
  // The registry serves other bytes than the layer digest names, signed by the key: must not be accepted.
  {
    const d = await h.image("h/swap");
    const honest = await h.layer("h/swap", cosignPayload("x/y", d));
    const evil = enc.encode(cosignPayload("x/y", d, '{"evil":"1"}'));
    await putStaticBlob(h.content, "h/swap", evil, honest.digest); // stored under the honest digest
    await h.sig("h/swap", d, [{
      digest: honest.digest,
      size: evil.length,
      annotations: { [SIG]: signer.signB64(evil) },
    }]);
    cases.push({ repo: "h/swap", code: 12, message: `digest mismatch, expected ${honest.digest}` });
  }
  // The layer blob is missing.
  {
    const d = await h.image("h/noblob");
    const p = enc.encode(cosignPayload("x/y", d));
    await h.sig("h/noblob", d, [{
      digest: await sha256Digest(p),
      size: p.length,
      annotations: { [SIG]: signer.signB64(p) },
    }]);
    cases.push({ repo: "h/noblob", code: 12, message: "BLOB_UNKNOWN" });
  }
  // Not a signature layer, and a signature annotation missing.
  {
    const d = await h.image("h/other");
    const l = await h.layer("h/other", cosignPayload("x/y", d));
    await h.sig("h/other", d, [{ ...l, mediaType: "application/octet-stream" }, { ...l, annotations: {} }]);
    cases.push({ repo: "h/other", code: 12, message: "is not a simple-signing signature" });
  }
  // An empty .sig manifest: no signatures (cosign: exit 10).
  {
    const d = await h.image("h/empty");
    await h.sig("h/empty", d, []);
    cases.push({ repo: "h/empty", code: 10, message: "no signatures found" });
  }

  await using reg = await startStaticRegistry(h.content);
  const results = await Promise.all(
    cases.map((c) =>
      verify(tmp.path, ["--key", signer.pub, "--insecure-ignore-tlog", `${reg.host}/${c.repo}:v1`])
    ),
  );
  for (const [i, c] of cases.entries()) {
    assertCleanFailure(results[i], c.code, c.message);
  }
  // The oversized blobs were never downloaded in full: the declared one not at all.
  assert(!reg.requests.some((q) => q.startsWith("GET /v2/h/big/blobs/")), "the 10 MiB blob was fetched");
  assert(
    !reg.requests.some((q) => q.startsWith("GET /v2/h/layers5000/blobs/")),
    "a blob of the 5000 was fetched",
  );
});

Deno.test("verify: one good layer among hostile ones is accepted alone; Go re-marshalling of 'optional'", async () => {
  await using tmp = await tempDir("airlock-verify-hostile-");
  const signer = await makeSigner(tmp.path, "k");
  const h = new Hostile(signer);
  const d = await h.image("h/mixed");
  const good = await h.layer(
    "h/mixed",
    // Unknown members are ignored (cosign's lenient reading); optional keys out of order, characters Go escapes,
    // numbers Go re-formats, a nested object with its own key order, a non-string value.
    `{"critical":{"identity":{"docker-reference":"x/y"},"image":{"docker-manifest-digest":"${d}","extra":1},` +
      `"type":"anything","unknown":[1]},"optional":{"z":"<a&b>","a":{"y":true,"b":null},"n":1.50,` +
      `"e":1E21,"s":0.0000001,"neg":-0,"env":"prod","num":7,"u":"\\u00e9\\u2028"},"more":{}}`,
  );
  const evil = enc.encode(cosignPayload("x/y", d, '{"evil":"1"}'));
  const wrongKey = await makeSigner(tmp.path, "other");
  const layers: Layer[] = [
    { ...good, annotations: { [SIG]: "%%%" } },
    { digest: good.digest, size: evil.length, annotations: { [SIG]: signer.signB64(evil) } }, // bytes ≠ digest
    await h.layer("h/mixed", cosignPayload("x/y", d), {
      [SIG]: wrongKey.signB64(enc.encode(cosignPayload("x/y", d))),
    }),
    good,
  ];
  await h.sig("h/mixed", d, layers);
  await using reg = await startStaticRegistry(h.content);
  const ref = `${reg.host}/h/mixed:v1`;
  const r = await verify(tmp.path, ["--key", signer.pub, "--insecure-ignore-tlog", ref]);
  assertEquals(r.code, 0, show(r));
  assertNoCrash(r);
  // Go: struct order for critical (unknown members dropped), sorted map keys, <>& escaped, U+2028 escaped,
  // é kept, 1.50 → 1.5, 1E21 → 1e+21, 0.0000001 → 1e-7, -0 → -0.
  const expected =
    `{"critical":{"identity":{"docker-reference":"x/y"},"image":{"docker-manifest-digest":"${d}"},` +
    `"type":"anything"},"optional":{"a":{"b":null,"y":true},"e":1e+21,"env":"prod","n":1.5,"neg":-0,"num":7,` +
    `"s":1e-7,"u":"é\\u2028","z":"\\u003ca\\u0026b\\u003e"}}`;
  assertEquals(r.stdout, `\n[${expected}]\n`);
  assertEquals(r.stderr, cosignHeader(ref));

  // -a: string equality only; a number never matches; every key must be present.
  const a = (...kv: string[]) =>
    verify(tmp.path, ["--key", signer.pub, "--insecure-ignore-tlog", ...kv.flatMap((x) => ["-a", x]), ref]);
  const ok = await a("env=prod");
  assertEquals(ok.code, 0, show(ok));
  assertEquals(ok.stderr, cosignHeader(ref, true));
  const okComma = await a("env=prod,z=<a&b>");
  assertEquals(okComma.code, 0, show(okComma));
  assertCleanFailure(await a("num=7"), 12, "missing or incorrect annotation");
  assertCleanFailure(await a("env=prod", "missing=x"), 12, "missing or incorrect annotation");
  assertCleanFailure(await a("env=prod=x"), 1, "unable to parse annotation: env=prod=x");
});
