/**
 * Shows that each part of the test bed works against the real parts: docker-registry, openssl certificates,
 * token auth, the fault-injecting proxy, built images and the peer-skopeo fixture copy.
 *
 * @module
 */
import { join } from "node:path";
import { assert, assertEquals, assertMatch, assertRejects, assertStringIncludes } from "../assert.ts";
import { makeCa, makeLeaf, makeUntrustedCa } from "./certs.ts";
import { run } from "./exec.ts";
import { loadPeerSkopeoCases, PEER_SKOPEO_STORAGE, startPeerSkopeoRegistry } from "./fixtures.ts";
import { buildImage, buildMultiArchImage, pushImage, rawSink, type TestImage } from "./images.ts";
import { freePort } from "./ports.ts";
import {
  flipByteRule,
  forbiddenRule,
  harborNotFoundRule,
  resetRule,
  serverErrorRule,
  startProxy,
  tooManyRequestsRule,
} from "./proxy.ts";
import { childPidsNamed, liveRegistryPids, startRegistry, type TestRegistry } from "./registry.ts";
import { libtrustKeyId } from "./token_server.ts";
import { pemToDer, sha256Digest, tempDir } from "./util.ts";
import { MediaType } from "../../core/registry/types.ts";

const startedPids: number[] = [];

async function started(p: Promise<TestRegistry>): Promise<TestRegistry> {
  const reg = await p;
  startedPids.push(reg.pid);
  return reg;
}

function basic(user: string, password: string): string {
  return `Basic ${btoa(`${user}:${password}`)}`;
}

async function status(res: Response | Promise<Response>): Promise<number> {
  const r = await res;
  await r.body?.cancel();
  return r.status;
}

async function getBytes(
  reg: { fetch(path: string, init?: RequestInit): Promise<Response> },
  path: string,
  accept?: string,
) {
  const res = await reg.fetch(path, { headers: accept ? { accept } : {} });
  const bytes = new Uint8Array(await res.arrayBuffer());
  return { status: res.status, bytes, headers: res.headers };
}

const ALL_MANIFEST_TYPES = [
  MediaType.ociIndex,
  MediaType.ociManifest,
  MediaType.dockerManifestList,
  MediaType.dockerManifest,
].join(", ");

async function assertImageServed(reg: TestRegistry, repo: string, img: TestImage, tag: string) {
  for (const m of img.manifests) {
    const got = await getBytes(reg, `/v2/${repo}/manifests/${m.digest}`, ALL_MANIFEST_TYPES);
    assertEquals(got.status, 200, `manifest ${m.digest}`);
    assertEquals(got.bytes, m.bytes);
    assertEquals(got.headers.get("docker-content-digest"), m.digest);
    assertEquals(got.headers.get("content-type"), m.mediaType);
  }
  const byTag = await getBytes(reg, `/v2/${repo}/manifests/${tag}`, ALL_MANIFEST_TYPES);
  assertEquals(byTag.bytes, img.top.bytes);
  for (const [digest, bytes] of img.blobs) {
    const got = await getBytes(reg, `/v2/${repo}/blobs/${digest}`);
    assertEquals(got.status, 200);
    assertEquals(await sha256Digest(got.bytes), digest);
    assertEquals(got.bytes, bytes);
  }
}

Deno.test("freePort gives a bindable loopback port", () => {
  const port = freePort();
  assert(port > 0 && port < 65536);
  const l = Deno.listen({ hostname: "127.0.0.1", port });
  l.close();
});

Deno.test("certs: CA-signed CA:FALSE leaf with the loopback SANs; the untrusted CA does not verify it", async () => {
  await using tmp = await tempDir();
  const ca = await makeCa(tmp.path);
  const leaf = await makeLeaf(tmp.path, ca);
  const other = await makeUntrustedCa(tmp.path);
  const text = (await run("openssl", ["x509", "-in", leaf.certPath, "-noout", "-text"])).stdout;
  assertMatch(text, /CA:FALSE/);
  assertMatch(text, /IP Address:127\.0\.0\.1, DNS:localhost/);
  assertMatch((await run("openssl", ["x509", "-in", ca.certPath, "-noout", "-text"])).stdout, /CA:TRUE/);
  assertStringIncludes(leaf.keyPem, "BEGIN PRIVATE KEY");
  await run("openssl", ["verify", "-CAfile", ca.certPath, leaf.certPath]);
  await assertRejects(() => run("openssl", ["verify", "-CAfile", other.certPath, leaf.certPath]));
});

Deno.test("plain registry: /v2/ 200, multi-arch OCI and Docker images round-trip byte for byte", async () => {
  await using reg = await started(startRegistry());
  assertEquals(await status(reg.fetch("/v2/")), 200);
  assertMatch(reg.host, /^127\.0\.0\.1:\d+$/);
  const sink = rawSink(reg.url);

  const oci = await buildMultiArchImage({ seed: "plain" });
  assertEquals(oci.manifests.length, 3);
  assertEquals(oci.top.mediaType, MediaType.ociIndex);
  const index = JSON.parse(new TextDecoder().decode(oci.top.bytes));
  assertEquals(index.manifests.map((m: { platform: { architecture: string } }) => m.platform.architecture), [
    "amd64",
    "arm64",
  ]);
  const digest = await pushImage(oci, { registry: reg.host, repository: "t/multi" }, "v1", sink);
  assertEquals(digest, oci.top.digest);
  await assertImageServed(reg, "t/multi", oci, "v1");

  const docker = await buildMultiArchImage({ seed: "plain", format: "docker" });
  assertEquals(docker.top.mediaType, MediaType.dockerManifestList);
  await pushImage(docker, { registry: reg.host, repository: "t/docker" }, "v1", sink);
  await assertImageServed(reg, "t/docker", docker, "v1");

  const noPlatform = await buildMultiArchImage({ seed: "np", omitPlatform: [1] });
  const npIndex = JSON.parse(new TextDecoder().decode(noPlatform.top.bytes));
  assert(npIndex.manifests[0].platform && !("platform" in npIndex.manifests[1]));
  await pushImage(noPlatform, { registry: reg.host, repository: "t/np" }, "v1", sink);
  await assertImageServed(reg, "t/np", noPlatform, "v1");

  const single = await buildImage({ platform: "linux/arm/v7", format: "docker", seed: "s" });
  const config = JSON.parse(new TextDecoder().decode(
    single.blobs.get(JSON.parse(new TextDecoder().decode(single.top.bytes)).config.digest)!,
  ));
  assertEquals([config.os, config.architecture, config.variant], ["linux", "arm", "v7"]);
  await pushImage(single, { registry: reg.host, repository: "t/single" }, undefined, sink);
  await assertImageServed(reg, "t/single", single, single.top.digest);

  // Built twice with the same inputs, an image has the same digests (within one run).
  assertEquals((await buildMultiArchImage({ seed: "plain" })).top.digest, oci.top.digest);
  assert((await buildMultiArchImage({ seed: "other" })).top.digest !== oci.top.digest);
});

Deno.test("TLS registry: refuses clients without the CA or with another CA, serves those that trust it", async () => {
  await using reg = await started(startRegistry({ tls: true }));
  assert(reg.url.startsWith("https://127.0.0.1:"));
  await assertRejects(() => fetch(`${reg.url}/v2/`));
  await using tmp = await tempDir();
  const other = await makeUntrustedCa(tmp.path);
  using wrong = Deno.createHttpClient({ caCerts: [other.certPem] });
  await assertRejects(() => fetch(`${reg.url}/v2/`, { client: wrong }));
  using right = Deno.createHttpClient({ caCerts: [reg.caCertPem!] });
  assertEquals(await status(fetch(`${reg.url}/v2/`, { client: right })), 200);
  assertEquals(await status(fetch(`https://localhost:${reg.port}/v2/`, { client: right })), 200);
  assertEquals(await Deno.readTextFile(join(reg.certDir!, reg.host, "ca.crt")), reg.caCertPem);
  const img = await buildImage({ seed: "tls" });
  await pushImage(
    img,
    { registry: reg.host, repository: "t/tls" },
    "v1",
    rawSink(reg.url, undefined, reg.client),
  );
  await assertImageServed(reg, "t/tls", img, "v1");
});

Deno.test("TLS registry with given certificate files", async () => {
  await using tmp = await tempDir();
  const ca = await makeCa(tmp.path);
  const leaf = await makeLeaf(tmp.path, ca, { sans: ["IP:127.0.0.1"] });
  await using reg = await started(
    startRegistry({ tls: { cert: leaf.certPath, key: leaf.keyPath, caCertPem: ca.certPem } }),
  );
  assertEquals(await status(reg.fetch("/v2/")), 200);
});

Deno.test("basic-auth registry: 401 without or with a wrong password, 200 and push with the right one", async () => {
  await using reg = await started(startRegistry({ auth: { kind: "basic", users: { alice: "s3cret" } } }));
  const res = await reg.fetch("/v2/");
  await res.body?.cancel();
  assertEquals(res.status, 401);
  assertStringIncludes(res.headers.get("www-authenticate") ?? "", "Basic realm=");
  const htpasswd = await Deno.readTextFile(join(reg.dir, "htpasswd"));
  assertMatch(htpasswd, /^alice:\$2[aby]\$04\$/);
  const wrong = await reg.fetch("/v2/", { headers: { authorization: basic("alice", "nope") } });
  assertEquals(wrong.status, 401);
  assertStringIncludes(await wrong.text(), "UNAUTHORIZED");
  assertEquals(
    await status(reg.fetch("/v2/", { headers: { authorization: basic("alice", "s3cret") } })),
    200,
  );
  const img = await buildImage({ seed: "basic" });
  const sink = rawSink(reg.url, { authorization: basic("alice", "s3cret") });
  await pushImage(img, { registry: reg.host, repository: "t/basic" }, "v1", sink);
  await assertRejects(
    () => pushImage(img, { registry: reg.host, repository: "t/basic" }, "v2", rawSink(reg.url)),
    Error,
    "401",
  );
});

Deno.test("token registry: Bearer challenge, GET and POST token forms, refresh tokens, pull-only push refused", async () => {
  await using reg = await started(startRegistry({
    auth: {
      kind: "token",
      users: { alice: "a-pw", bob: "b-pw" },
      grants: { alice: { "*": ["pull", "push", "delete"] }, bob: { "*": ["pull"] } },
    },
  }));
  const ts = reg.tokenServer!;
  const challenge = await reg.fetch("/v2/");
  await challenge.body?.cancel();
  assertEquals(challenge.status, 401);
  assertEquals(
    challenge.headers.get("www-authenticate"),
    `Bearer realm="${ts.realm}",service="${ts.service}"`,
  );
  assertEquals(ts.keyId, await libtrustKeyId(await spkiOfCert(ts.certPath)));

  // GET form with Basic credentials.
  const scope = "repository:t/token:pull,push";
  const q = `service=${encodeURIComponent(ts.service)}&scope=${encodeURIComponent(scope)}&account=alice`;
  const noCreds = await fetch(`${ts.realm}?${q}`);
  await noCreds.body?.cancel();
  assertEquals(noCreds.status, 401);
  const badCreds = await fetch(`${ts.realm}?${q}`, { headers: { authorization: basic("alice", "x") } });
  await badCreds.body?.cancel();
  assertEquals(badCreds.status, 401);
  const got = await (await fetch(`${ts.realm}?${q}`, { headers: { authorization: basic("alice", "a-pw") } }))
    .json();
  assertEquals(got.expires_in, 300);
  const [h, c] = (got.token as string).split(".").slice(0, 2).map((p) =>
    JSON.parse(atob(p.replace(/-/g, "+").replace(/_/g, "/")))
  );
  assertEquals(h, { typ: "JWT", alg: "ES256", kid: ts.keyId });
  assertEquals([c.iss, c.sub, c.aud], [ts.issuer, "alice", ts.service]);
  assertEquals(c.access, [{ type: "repository", name: "t/token", actions: ["pull", "push"] }]);
  assertEquals(await status(reg.fetch("/v2/", { headers: { authorization: `Bearer ${got.token}` } })), 200);
  const img = await buildImage({ seed: "token" });
  await pushImage(
    img,
    { registry: reg.host, repository: "t/token" },
    "v1",
    rawSink(reg.url, { authorization: `Bearer ${got.token}` }),
  );
  assertEquals(ts.issued, 1);

  // POST form: password grant answers a refresh token, which then works as a grant of its own.
  const post = (form: Record<string, string>) =>
    fetch(ts.realm, { method: "POST", body: new URLSearchParams({ service: ts.service, ...form }) });
  const pw = await (await post({ grant_type: "password", username: "alice", password: "a-pw", scope }))
    .json();
  assert(typeof pw.access_token === "string" && typeof pw.refresh_token === "string");
  const rt = await (await post({ grant_type: "refresh_token", refresh_token: pw.refresh_token, scope }))
    .json();
  assertEquals(
    await status(reg.fetch(`/v2/t/token/manifests/v1`, {
      method: "HEAD",
      headers: { authorization: `Bearer ${rt.access_token}`, accept: MediaType.ociManifest },
    })),
    200,
  );
  assertEquals(await status(post({ grant_type: "refresh_token", refresh_token: "bogus", scope })), 400);
  assertEquals(await status(post({ grant_type: "password", username: "alice", password: "no", scope })), 401);
  assertEquals(ts.issued, 3);

  // bob may only pull: his token carries pull only, and the registry refuses the upload with it.
  const bobTok = await (await fetch(`${ts.realm}?${q.replace("alice", "bob")}`, {
    headers: { authorization: basic("bob", "b-pw") },
  })).json();
  const bobClaims = JSON.parse(atob(bobTok.token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
  assertEquals(bobClaims.access, [{ type: "repository", name: "t/token", actions: ["pull"] }]);
  const pull = await reg.fetch(`/v2/t/token/manifests/v1`, {
    headers: { authorization: `Bearer ${bobTok.token}`, accept: MediaType.ociManifest },
  });
  assertEquals(new Uint8Array(await pull.arrayBuffer()), img.top.bytes);
  const push = await reg.fetch(`/v2/t/token/blobs/uploads/`, {
    method: "POST",
    headers: { authorization: `Bearer ${bobTok.token}` },
  });
  const pushBody = await push.text();
  // distribution answers a missing action with 401 + error="insufficient_scope" (not 403 DENIED; the proxy's
  // forbiddenRule makes a 403 for clients that must handle one).
  assertEquals(push.status, 401);
  assertStringIncludes(push.headers.get("www-authenticate") ?? "", `error="insufficient_scope"`);
  assertStringIncludes(pushBody, "UNAUTHORIZED");
  assertEquals(ts.requests.filter((r) => r.status === 200).length, 4);
  const viaHelper = await ts.getToken(["repository:t/token:pull"], "bob", "b-pw");
  assertEquals(await status(reg.fetch("/v2/", { headers: { authorization: `Bearer ${viaHelper}` } })), 200);
  assertEquals(ts.issued, 5);
});

async function spkiOfCert(certPath: string): Promise<Uint8Array> {
  const pem = (await run("openssl", ["x509", "-in", certPath, "-noout", "-pubkey"])).stdout;
  return pemToDer(pem);
}

Deno.test("token server: anonymous pulls when allowed, and grants can change at run time", async () => {
  await using reg = await started(startRegistry({ auth: { kind: "token", anonymous: true, expiresIn: 60 } }));
  const ts = reg.tokenServer!;
  const anon = await (await fetch(`${ts.realm}?service=${ts.service}&scope=repository:x/y:pull,push`)).json();
  assertEquals(anon.expires_in, 60);
  const claims = JSON.parse(atob(anon.token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
  assertEquals(claims.access, [{ type: "repository", name: "x/y", actions: ["pull"] }]);
  ts.setGrants({ "": {} });
  const none = await (await fetch(`${ts.realm}?service=${ts.service}&scope=repository:x/y:pull`)).json();
  assertEquals(JSON.parse(atob(none.token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))).access, []);
});

Deno.test("proxy: byte flip, Harbor 404, 429/500/403, reset and cut body; counts requests; push through it", async () => {
  await using reg = await started(startRegistry());
  await using proxy = await startProxy(reg.url);
  const img = await buildMultiArchImage({ seed: "proxy" });
  // Uploads go through the proxy too: the registry's Location is rewritten to the proxy.
  await pushImage(img, { registry: proxy.host, repository: "t/p" }, "v1", rawSink(proxy.url));
  assertEquals(proxy.count("POST", "/v2/t/p/blobs/uploads/"), img.blobs.size);
  assertEquals(proxy.count("PUT", /^\/v2\/t\/p\/blobs\/uploads\/.+/), img.blobs.size);
  assertEquals(proxy.count("PUT", /\/manifests\//), 3);
  proxy.resetCounts();

  const child = img.manifests[0];
  const path = `/v2/t/p/manifests/${child.digest}`;
  const rule = proxy.addRule(flipByteRule({ path, times: 1 }));
  const flipped = await getBytes(proxy, path, ALL_MANIFEST_TYPES);
  assertEquals(flipped.headers.get("docker-content-digest"), child.digest);
  assertEquals(flipped.headers.get("content-length"), String(child.bytes.length));
  assertEquals(flipped.bytes.length, child.bytes.length);
  assert((await sha256Digest(flipped.bytes)) !== child.digest);
  assertEquals(rule.applied, 1);
  const clean = await getBytes(proxy, path, ALL_MANIFEST_TYPES);
  assertEquals(clean.bytes, child.bytes);
  assertEquals(proxy.count("GET", path), 2);
  const head = await proxy.fetch(path, { method: "HEAD", headers: { accept: ALL_MANIFEST_TYPES } });
  assertEquals(head.headers.get("content-length"), String(child.bytes.length));
  await head.body?.cancel();

  const [blobDigest, blob] = [...img.blobs][0];
  proxy.addRule(flipByteRule({ path: `/v2/t/p/blobs/${blobDigest}`, times: 1 }, 0));
  const badBlob = await getBytes(proxy, `/v2/t/p/blobs/${blobDigest}`);
  assertEquals(badBlob.bytes[0], blob[0] ^ 1);
  assertEquals(badBlob.bytes.slice(1), blob.slice(1));

  proxy.addRule(harborNotFoundRule());
  const nf = await proxy.fetch("/v2/t/p/manifests/sha256-abc.sig");
  assertEquals(nf.status, 404);
  assertEquals(await nf.json(), {
    errors: [{ code: "UNKNOWN", message: "artifact t/p:sha256-abc.sig not found" }],
  });
  proxy.clearRules();

  proxy.addRule(tooManyRequestsRule(2, 3, { path: "/v2/" }));
  for (let i = 0; i < 2; i++) {
    const r = await fetch(`${proxy.url}/v2/`);
    assertEquals([r.status, r.headers.get("retry-after")], [429, "3"]);
    assertStringIncludes(await r.text(), "TOOMANYREQUESTS");
  }
  assertEquals(await status(fetch(`${proxy.url}/v2/`)), 200);

  proxy.addRule(serverErrorRule(1, { method: "GET" }));
  assertEquals(await status(fetch(`${proxy.url}/v2/`)), 500);
  assertEquals(await status(fetch(`${proxy.url}/v2/`)), 200);

  const deny = proxy.addRule(forbiddenRule({ method: "PUT" }));
  const denied = await fetch(`${proxy.url}/v2/t/p/manifests/x`, { method: "PUT", body: "{}" });
  assertEquals(denied.status, 403);
  assertStringIncludes(await denied.text(), "DENIED");
  deny.remove();

  // Deno's fetch silently retries a request once when a reused keep-alive connection closes without an answer:
  // one reset on a pooled connection is invisible to it, two in a row fail the fetch.
  const reset = proxy.addRule(resetRule(1, { path: "/v2/" }));
  assertEquals(await status(fetch(`${proxy.url}/v2/`)), 200);
  assertEquals(reset.applied, 1);
  const resets = proxy.addRule(resetRule(undefined, { path: "/v2/" }));
  await assertRejects(() => fetch(`${proxy.url}/v2/`), TypeError);
  assertEquals(resets.applied, 2);
  resets.remove();
  assertEquals(await status(fetch(`${proxy.url}/v2/`)), 200);

  proxy.addRule({ path, times: 1, action: { kind: "cutBody" } });
  const cut = await fetch(`${proxy.url}${path}`, { headers: { accept: ALL_MANIFEST_TYPES } });
  assertEquals(cut.status, 200);
  await assertRejects(() => cut.arrayBuffer());

  assertEquals(proxy.count("GET", "/v2/"), 10);
  assertEquals(proxy.counts().get("GET /v2/"), 10);
});

Deno.test("proxy in front of a TLS registry, serving TLS itself", async () => {
  await using reg = await started(startRegistry({ tls: true }));
  await using tmp = await tempDir();
  const ca = await makeCa(tmp.path);
  const leaf = await makeLeaf(tmp.path, ca);
  await using proxy = await startProxy(reg.url, {
    upstreamClient: reg.client,
    tls: { certPem: leaf.certPem, keyPem: leaf.keyPem },
  });
  assert(proxy.url.startsWith("https://"));
  using client = Deno.createHttpClient({ caCerts: [ca.certPem] });
  assertEquals(await status(fetch(`${proxy.url}/v2/`, { client })), 200);
  await assertRejects(() => fetch(`${proxy.url}/v2/`));
});

Deno.test("peer-skopeo copy: serves every case's manifests with matching digests; the fixture is not written", async () => {
  const { cases } = await loadPeerSkopeoCases();
  const a1 = cases.find((c) => c.id === "A1")!;
  assert(a1.digest.startsWith("sha256:b33f49aedaae"));
  const before = (await run("find", [PEER_SKOPEO_STORAGE, "-type", "f"])).stdout;
  await using reg = await started(startPeerSkopeoRegistry());
  assert(reg.storageDir !== PEER_SKOPEO_STORAGE);
  for (const c of cases) {
    const top = await getBytes(reg, `/v2/${c.repository}/manifests/${c.tag}`, ALL_MANIFEST_TYPES);
    assertEquals(top.status, 200, c.id);
    assertEquals(await sha256Digest(top.bytes), c.digest, c.id);
    for (const p of c.platforms) {
      const m = await getBytes(reg, `/v2/${c.repository}/manifests/${p.digest}`, ALL_MANIFEST_TYPES);
      assertEquals(await sha256Digest(m.bytes), p.digest);
    }
    for (const s of c.signatureTags) {
      const sig = await getBytes(reg, `/v2/${c.repository}/manifests/${s.tag}`, ALL_MANIFEST_TYPES);
      assertEquals(await sha256Digest(sig.bytes), s.sigManifestDigest, s.tag);
    }
  }
  // Writing to the copy leaves the fixture alone.
  await pushImage(
    await buildImage({ seed: "w" }),
    { registry: reg.host, repository: "a/new" },
    "v1",
    rawSink(reg.url),
  );
  assertEquals((await run("find", [PEER_SKOPEO_STORAGE, "-type", "f"])).stdout, before);
});

Deno.test("startRegistry: a registry that cannot start fails with its output, and leaves nothing behind", async () => {
  const before = new Set(childPidsNamed("docker-registry"));
  const err = await assertRejects(() =>
    startRegistry({ tls: { cert: "/nonexistent/cert.pem", key: "/nonexistent/key.pem" } })
  );
  assertStringIncludes(err.message, "did not start");
  assertStringIncludes(err.message, "/nonexistent/cert.pem");
  assertEquals(childPidsNamed("docker-registry").filter((p) => !before.has(p)), []);
});

Deno.test("every registry started here has stopped (no docker-registry child left)", () => {
  assert(startedPids.length >= 8);
  assertEquals(liveRegistryPids().filter((p) => startedPids.includes(p)), []);
  assertEquals(childPidsNamed("docker-registry").filter((p) => startedPids.includes(p)), []);
  for (const pid of startedPids) {
    let alive = true;
    try {
      Deno.statSync(`/proc/${pid}`);
    } catch {
      alive = false;
    }
    assert(!alive, `docker-registry ${pid} still running`);
  }
});
