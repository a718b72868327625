/**
 * RegistryClient against the real distribution registry (docker-registry 2.8): round trips of every manifest
 * type and of blobs, tags with pagination, referrers, deletion, "not found" variants, limits, and request counts
 * measured through the proxy.
 *
 * @module
 */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../../assert.ts";
import {
  buildImage,
  buildMultiArchImage,
  harborNotFoundRule,
  pushImage,
  startRegistry,
  type TestImage,
} from "../../testbed/mod.ts";
import { isAirlockError } from "../../../core/errors.ts";
import { isManifestUnknown, RegistryClient, RegistryError } from "../../../core/registry/client.ts";
import { MediaType } from "../../../core/registry/types.ts";
import type { Reference } from "../../../core/reference.ts";
import { rate, startTlsProxy } from "./helpers.ts";

const enc = new TextEncoder();

async function assertImageRoundTrip(client: RegistryClient, repo: Reference, tag: string, img: TestImage) {
  const top = await client.getManifest({ ...repo, tag });
  assertEquals(top.bytes, img.top.bytes);
  assertEquals(top.digest, img.top.digest);
  assertEquals(top.mediaType, img.top.mediaType);
  for (const m of img.manifests) {
    const got = await client.getManifest({ ...repo, digest: m.digest });
    assertEquals(got.bytes, m.bytes, `bytes of ${m.digest}`);
    assertEquals(got.mediaType, m.mediaType);
    const head = await client.headManifest({ ...repo, digest: m.digest });
    assertEquals(head, { mediaType: m.mediaType, digest: m.digest, size: m.bytes.byteLength });
  }
  for (const [digest, bytes] of img.blobs) {
    assertEquals(await client.getBlob(repo, digest), bytes, `blob ${digest}`);
    assert(await client.hasBlob(repo, digest));
  }
}

Deno.test("round trip: OCI manifest, OCI index, Docker manifest, Docker list, blobs — byte equal", async () => {
  await using reg = await startRegistry({ tls: true });
  const client = new RegistryClient({ certDirs: [reg.certDir!] });
  try {
    const images: [string, TestImage, string][] = [
      ["oci-single", await buildImage({ seed: "a" }), MediaType.ociManifest],
      ["oci-multi", await buildMultiArchImage({ seed: "b" }), MediaType.ociIndex],
      ["docker-single", await buildImage({ seed: "c", format: "docker" }), MediaType.dockerManifest],
      [
        "docker-multi",
        await buildMultiArchImage({ seed: "d", format: "docker" }),
        MediaType.dockerManifestList,
      ],
    ];
    for (const [name, img, mediaType] of images) {
      const repo = { registry: reg.host, repository: `rt/${name}` };
      assertEquals(img.top.mediaType, mediaType);
      const digest = await pushImage(img, repo, "v1", client);
      assertEquals(digest, img.top.digest);
      await assertImageRoundTrip(client, repo, "v1", img);
      const head = await client.headManifest({ ...repo, tag: "v1" });
      assertEquals(head?.digest, img.top.digest);
    }
    const repo = { registry: reg.host, repository: "rt/oci-single" };
    assertEquals(await client.hasBlob(repo, `sha256:${"0".repeat(64)}`), false);
    // A larger blob (1 MiB of pseudo-random bytes) survives the round trip too.
    const big = crypto.getRandomValues(new Uint8Array(65536));
    const blob = new Uint8Array(1024 * 1024);
    for (let i = 0; i < 16; i++) blob.set(big, i * 65536);
    const up = await client.uploadBlob(repo, blob);
    assertEquals(up.size, blob.byteLength);
    assertEquals(await client.getBlob(repo, up.digest), blob);
  } finally {
    client.close();
  }
});

Deno.test("missing manifests: NOT_FOUND; isManifestUnknown follows containers/image (Harbor yes, NAME_UNKNOWN no)", async () => {
  await using reg = await startRegistry({ tls: true });
  await using p = await startTlsProxy(reg);
  const client = new RegistryClient({ certDirs: [reg.certDir!, p.certDir] });
  try {
    const repo = { registry: reg.host, repository: "nf/app" };
    await pushImage(await buildImage(), repo, "v1", client);

    const missingTag = await assertRejects(
      () => client.getManifest({ ...repo, tag: "sha256-abc.sig" }),
      RegistryError,
    );
    assertEquals(missingTag.code, "NOT_FOUND");
    assertEquals(missingTag.errors[0].code, "MANIFEST_UNKNOWN");
    assert(isManifestUnknown(missingTag));
    assertStringIncludes(missingTag.message, "sha256-abc.sig");
    assertStringIncludes(missingTag.message, "MANIFEST_UNKNOWN");

    // docker-registry answers MANIFEST_UNKNOWN for a manifest of an unknown repository, NAME_UNKNOWN for its tags.
    const missingRepo = await assertRejects(
      () => client.listTags({ registry: reg.host, repository: "nf/none" }),
      RegistryError,
    );
    assertEquals(missingRepo.code, "NOT_FOUND");
    assertEquals(missingRepo.errors[0].code, "NAME_UNKNOWN");
    assertEquals(isManifestUnknown(missingRepo), false);

    assertEquals(await client.headManifest({ ...repo, tag: "nope" }), undefined);

    // Harbor's wording through the proxy: UNKNOWN "artifact … not found".
    const viaProxy = { registry: p.proxy.host, repository: "nf/app" };
    p.proxy.addRule(harborNotFoundRule());
    const harbor = await assertRejects(
      () => client.getManifest({ ...viaProxy, tag: "sha256-x.sig" }),
      RegistryError,
    );
    assertEquals(harbor.errors[0].code, "UNKNOWN");
    assertEquals(harbor.code, "NOT_FOUND");
    assert(isManifestUnknown(harbor));
    p.proxy.clearRules();

    // NAME_UNKNOWN on a manifest (as other registries answer for a missing repository): not "manifest unknown".
    p.proxy.addRule({
      path: /manifests\/nameunknown$/,
      action: {
        kind: "respond",
        status: 404,
        body: JSON.stringify({
          errors: [{ code: "NAME_UNKNOWN", message: "repository name not known to registry" }],
        }),
      },
    });
    const nameUnknown = await assertRejects(
      () => client.getManifest({ ...viaProxy, tag: "nameunknown" }),
      RegistryError,
    );
    assertEquals(nameUnknown.code, "NOT_FOUND");
    assertEquals(isManifestUnknown(nameUnknown), false);

    // A 404 whose body is not an errcode document.
    p.proxy.addRule({
      path: /manifests\/plain404$/,
      action: { kind: "respond", status: 404, body: "not here" },
    });
    const plain = await assertRejects(
      () => client.getManifest({ ...viaProxy, tag: "plain404" }),
      RegistryError,
    );
    assertEquals(plain.errors.length, 0);
    assert(isManifestUnknown(plain));
  } finally {
    client.close();
  }
});

Deno.test("tags: Link pagination with a small page size; referrers: undefined on this registry; delete", async () => {
  await using reg = await startRegistry({ tls: true });
  await using p = await startTlsProxy(reg);
  const client = new RegistryClient({ certDirs: [p.certDir] });
  try {
    const repo = { registry: p.proxy.host, repository: "tags/app" };
    const img = await buildImage({ seed: "tags" });
    await pushImage(img, repo, "t0", client);
    const want = ["t0"];
    for (let i = 1; i < 7; i++) {
      await client.putManifest({ ...repo, tag: `t${i}` }, img.top.bytes, img.top.mediaType);
      want.push(`t${i}`);
    }
    // docker-registry 2.8 ignores `n`/`last` (pagination came with distribution 3), so the proxy paginates its
    // complete answer the way the distribution spec says (sorted, `n` per page, `Link: <…>; rel="next"`).
    p.proxy.addRule({
      method: "GET",
      path: /\/tags\/list$/,
      action: {
        kind: "rewrite",
        fn: (res, req) => {
          const n = Number(req.url.searchParams.get("n") ?? 0);
          if (!n) return res;
          const last = req.url.searchParams.get("last");
          const all = (JSON.parse(new TextDecoder().decode(res.body)).tags as string[]).sort();
          const rest = last ? all.filter((t) => t > last) : all;
          const page = rest.slice(0, n);
          const headers = new Headers(res.headers);
          if (rest.length > n) {
            headers.set("link", `<${req.path}?n=${n}&last=${page.at(-1)}>; rel="next"`);
          }
          return { ...res, headers, body: enc.encode(JSON.stringify({ name: "tags/app", tags: page })) };
        },
      },
    });
    p.proxy.resetCounts();
    const tags = await client.listTags(repo, { pageSize: 2 });
    assertEquals(tags, want);
    assertEquals(p.proxy.requests.map((r) => r.search), [
      "?n=2",
      "?n=2&last=t1",
      "?n=2&last=t3",
      "?n=2&last=t5",
    ]);
    assertEquals((await client.listTags(repo)).sort(), want);

    // Referrers: this registry has no API -> undefined; a manifest with `subject` is accepted anyway.
    assertEquals(await client.referrers(repo, img.top.digest), undefined);
    const config = await client.uploadBlob(repo, enc.encode("{}"));
    const artifact = enc.encode(JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      artifactType: "application/vnd.example+json",
      config: { mediaType: MediaType.ociEmpty, digest: config.digest, size: 2 },
      layers: [{ mediaType: MediaType.ociEmpty, digest: config.digest, size: 2 }],
      subject: { mediaType: img.top.mediaType, digest: img.top.digest, size: img.top.bytes.byteLength },
    }));
    const artifactDigest = await client.putManifest(
      { ...repo, tag: "artifact" },
      artifact,
      MediaType.ociManifest,
    );
    assertEquals(
      await client.referrers(repo, img.top.digest, { artifactType: "application/vnd.example+json" }),
      undefined,
    );

    // Delete by digest: gone afterwards; deleting again is NOT_FOUND.
    await client.deleteManifest(repo, artifactDigest);
    assertEquals(await client.headManifest({ ...repo, digest: artifactDigest }), undefined);
    const again = await assertRejects(() => client.deleteManifest(repo, artifactDigest), RegistryError);
    assertEquals(again.code, "NOT_FOUND");
  } finally {
    client.close();
  }
});

Deno.test("limits: manifest and blob size limits; schema 1 refused; digest pinned by the reference", async () => {
  await using reg = await startRegistry({ tls: true });
  await using p = await startTlsProxy(reg);
  const client = new RegistryClient({ certDirs: [reg.certDir!, p.certDir], maxManifestBytes: 256 });
  try {
    const repo = { registry: reg.host, repository: "lim/app" };
    const img = await buildMultiArchImage({ seed: "lim" });
    const pusher = new RegistryClient({ certDirs: [reg.certDir!] });
    await pushImage(img, repo, "v1", pusher).finally(() => pusher.close());
    const tooBig = await assertRejects(() => client.getManifest({ ...repo, tag: "v1" }));
    assert(isAirlockError(tooBig, "TOO_LARGE"), String(tooBig));
    const layer = [...img.blobs.entries()].sort((a, b) => b[1].byteLength - a[1].byteLength)[0];
    const blobErr = await assertRejects(() => client.getBlob(repo, layer[0], { maxBytes: 10 }));
    assert(isAirlockError(blobErr, "TOO_LARGE"), String(blobErr));
    assertStringIncludes(blobErr.message, "10 bytes");

    // A too-long tag list page, a malformed digest, an invalid repository: refused before any request.
    await assertRejects(() => client.getBlob(repo, "sha256:xyz"), Error, "malformed digest");
    await assertRejects(
      () => client.getManifest({ ...repo, repository: "UPPER/case", tag: "v1" }),
      Error,
      "invalid repository",
    );

    // Schema 1 served (rewritten by the proxy, digest header removed): recognised and refused.
    const viaProxy = { registry: p.proxy.host, repository: "lim/app" };
    const schema1 = JSON.stringify({
      schemaVersion: 1,
      name: "lim/app",
      tag: "v1",
      fsLayers: [],
      history: [],
    });
    p.proxy.addRule({
      path: "/v2/lim/app/manifests/old",
      action: {
        kind: "respond",
        status: 200,
        headers: { "content-type": MediaType.dockerSchema1Signed },
        body: schema1,
      },
    });
    const big = new RegistryClient({ certDirs: [p.certDir] });
    try {
      const s1 = await assertRejects(() => big.getManifest({ ...viaProxy, tag: "old" }));
      assert(isAirlockError(s1, "UNSUPPORTED_MEDIA_TYPE"), String(s1));
      assertStringIncludes(s1.message, "schema 1");
      // Asking for a digest the bytes do not have: DIGEST_MISMATCH.
      const wrong = `sha256:${"1".repeat(64)}`;
      p.proxy.addRule({
        path: `/v2/lim/app/manifests/${wrong}`,
        action: {
          kind: "respond",
          status: 200,
          headers: { "content-type": MediaType.ociManifest },
          body: "{}",
        },
      });
      const mm = await assertRejects(() => big.getManifest({ ...viaProxy, digest: wrong }));
      assert(isAirlockError(mm, "DIGEST_MISMATCH"), String(mm));
    } finally {
      big.close();
    }
  } finally {
    client.close();
  }
});

Deno.test("request counts per operation through the proxy, and sequential request rate", async () => {
  await using reg = await startRegistry({ tls: true });
  await using p = await startTlsProxy(reg);
  const client = new RegistryClient({ certDirs: [p.certDir] });
  try {
    const repo = { registry: p.proxy.host, repository: "count/app" };
    const counted = async (op: () => Promise<unknown>) => {
      p.proxy.resetCounts();
      await op();
      return p.proxy.requests.map((r) => `${r.method} ${r.path.replace(/[0-9a-f]{64}/, "<hex>")}`);
    };
    const payload = enc.encode(`{"critical":{}}`);
    assertEquals(await counted(() => client.uploadBlob(repo, payload)), [
      "POST /v2/count/app/blobs/uploads/",
      `PUT /v2/count/app/blobs/uploads/${p.proxy.requests.at(-1)?.path.split("/").at(-1)}`,
    ]);
    const img = await buildImage({ seed: "count" });
    const pushed = await counted(() => pushImage(img, repo, "v1", client));
    assertEquals(pushed.length, 2 * img.blobs.size + 1);
    assertEquals(await counted(() => client.getManifest({ ...repo, tag: "v1" })), [
      "GET /v2/count/app/manifests/v1",
    ]);
    assertEquals(await counted(() => client.headManifest({ ...repo, tag: "v1" })), [
      "HEAD /v2/count/app/manifests/v1",
    ]);
    assertEquals(await counted(() => client.hasBlob(repo, img.top.digest)), [
      "HEAD /v2/count/app/blobs/sha256:<hex>",
    ]);
    assertEquals(
      await counted(() => client.getBlob(repo, [...img.blobs.keys()][0])),
      ["GET /v2/count/app/blobs/sha256:<hex>"],
    );
    assertEquals(
      await counted(() => client.putManifest({ ...repo, tag: "v2" }, img.top.bytes, img.top.mediaType)),
      ["PUT /v2/count/app/manifests/v2"],
    );
    assertEquals(await counted(() => client.getManifest({ ...repo, tag: "absent" }).catch(() => {})), [
      "GET /v2/count/app/manifests/absent",
    ]);

    // Throughput, direct to the registry (no proxy), one request in flight.
    const direct = new RegistryClient({ certDirs: [reg.certDir!] });
    try {
      const r = { registry: reg.host, repository: "count/app" };
      await direct.getManifest({ ...r, tag: "v1" });
      const gets = await rate(200, () => direct.getManifest({ ...r, tag: "v1" }));
      const uploads = await rate(50, () => direct.uploadBlob(r, crypto.getRandomValues(new Uint8Array(300))));
      console.log(`  manifest GET: ${gets} req/s; uploadBlob (POST+PUT): ${uploads} blobs/s`);
      assert(gets > 50, `manifest GET rate ${gets}/s`);
    } finally {
      direct.close();
    }
  } finally {
    client.close();
  }
});
