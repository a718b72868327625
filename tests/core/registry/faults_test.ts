/**
 * Faults injected by the testbed proxy in front of a real registry: flipped bytes (digest mismatch), 403, 429 with
 * Retry-After, 500 (retried, then given up), connection resets, the upload pair retry, cancellation and timeouts.
 * Request counts come from the proxy's log.
 *
 * @module
 */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../../assert.ts";
import {
  buildImage,
  flipByteRule,
  forbiddenRule,
  loseAnswerRule,
  pushImage,
  resetRule,
  serverErrorRule,
  startRegistry,
  type TestImage,
  tooManyRequestsRule,
} from "../../testbed/mod.ts";
import { isAirlockError } from "../../../core/errors.ts";
import { RegistryClient } from "../../../core/registry/client.ts";
import { startTlsProxy, type TlsProxy } from "./helpers.ts";

const enc = new TextEncoder();

async function setup(): Promise<
  & { p: TlsProxy; client: RegistryClient; img: TestImage; repo: { registry: string; repository: string } }
  & AsyncDisposable
> {
  const reg = await startRegistry({ tls: true });
  const p = await startTlsProxy(reg);
  const client = new RegistryClient({ certDirs: [p.certDir], retryBaseDelayMs: 20 });
  const repo = { registry: p.proxy.host, repository: "faults/app" };
  const img = await buildImage({ seed: "faults" });
  await pushImage(img, repo, "v1", client);
  p.proxy.resetCounts();
  return {
    p,
    client,
    img,
    repo,
    async [Symbol.asyncDispose]() {
      client.close();
      await p[Symbol.asyncDispose]();
      await reg.stop();
    },
  };
}

Deno.test("digest mismatch: a flipped byte in a blob or a manifest is an error, never returned", async () => {
  await using s = await setup();
  const { p, client, img, repo } = s;
  const [blobDigest] = [...img.blobs.keys()];
  p.proxy.addRule(flipByteRule({ path: `/v2/faults/app/blobs/${blobDigest}` }));
  const e1 = await assertRejects(() => client.getBlob(repo, blobDigest));
  assert(isAirlockError(e1, "DIGEST_MISMATCH"), String(e1));
  assertStringIncludes(e1.message, blobDigest);
  p.proxy.clearRules();

  // By tag: caught by Docker-Content-Digest. By digest: caught by the reference.
  p.proxy.addRule(flipByteRule({ path: /\/manifests\// }));
  const e2 = await assertRejects(() => client.getManifest({ ...repo, tag: "v1" }));
  assert(isAirlockError(e2, "DIGEST_MISMATCH"), String(e2));
  const e3 = await assertRejects(() => client.getManifest({ ...repo, digest: img.top.digest }));
  assert(isAirlockError(e3, "DIGEST_MISMATCH"), String(e3));
  // Not retried: a wrong answer is not a transient failure.
  assertEquals(p.proxy.count("GET", /\/manifests\//), 2);
});

Deno.test("403 DENIED: not retried, message carries the registry's code and what was asked", async () => {
  await using s = await setup();
  const { p, client, repo } = s;
  p.proxy.addRule(forbiddenRule({ method: "PUT" }));
  const e = await assertRejects(() =>
    client.putManifest({ ...repo, tag: "v2" }, s.img.top.bytes, s.img.top.mediaType)
  );
  assert(isAirlockError(e, "DENIED"), String(e));
  assertStringIncludes(e.message, "403 DENIED: requested access to the resource is denied");
  assertStringIncludes(e.message, "writing manifest v2 in");
  assertEquals(p.proxy.count("PUT", "/v2/faults/app/manifests/v2"), 1);
});

Deno.test("429 with Retry-After: honoured, then success; RATE_LIMITED when it never ends", async () => {
  await using s = await setup();
  const { p, client, repo } = s;
  p.proxy.addRule(tooManyRequestsRule(1, 1, { method: "GET" }));
  const t0 = performance.now();
  await client.getManifest({ ...repo, tag: "v1" });
  const waited = performance.now() - t0;
  assert(waited >= 950, `waited ${waited} ms, Retry-After said 1 s`);
  assertEquals(p.proxy.count("GET", "/v2/faults/app/manifests/v1"), 2);

  // Retry-After as an HTTP date, and a cap: retryMaxDelayMs bounds the wait.
  const capped = new RegistryClient({ certDirs: [p.certDir], retries: 2, retryMaxDelayMs: 50 });
  try {
    p.proxy.clearRules();
    p.proxy.resetCounts();
    p.proxy.addRule({
      action: {
        kind: "respond",
        status: 429,
        headers: { "retry-after": new Date(Date.now() + 3_600_000).toUTCString() },
        body: JSON.stringify({ errors: [{ code: "TOOMANYREQUESTS", message: "slow down" }] }),
      },
    });
    const t1 = performance.now();
    const e = await assertRejects(() => capped.getManifest({ ...repo, tag: "v1" }));
    assert(performance.now() - t1 < 2000);
    assert(isAirlockError(e, "RATE_LIMITED"), String(e));
    assertStringIncludes(e.message, "429 TOOMANYREQUESTS: slow down");
    assertEquals(p.proxy.requests.length, 3);
  } finally {
    capped.close();
  }
});

Deno.test("500: retried then succeeds; gives up after 1 + retries attempts", async () => {
  await using s = await setup();
  const { p, client, repo, img } = s;
  p.proxy.addRule(serverErrorRule(2));
  assertEquals((await client.getManifest({ ...repo, tag: "v1" })).bytes, img.top.bytes);
  assertEquals(p.proxy.requests.map((r) => r.status), [500, 500, 200]);

  p.proxy.resetCounts();
  p.proxy.addRule(serverErrorRule(100));
  const e = await assertRejects(() => client.getManifest({ ...repo, tag: "v1" }));
  assert(isAirlockError(e, "REGISTRY_ERROR"), String(e));
  assertStringIncludes(e.message, "500 UNKNOWN: unknown error");
  assertEquals(p.proxy.requests.length, 4); // 1 + 3 retries
});

Deno.test("upload: a failed PUT retries the POST+PUT pair; the pair is exactly 2 requests otherwise", async () => {
  await using s = await setup();
  const { p, client, repo } = s;
  p.proxy.addRule(serverErrorRule(1, { method: "PUT", path: /\/blobs\/uploads\// }));
  const bytes = enc.encode("pair retry payload");
  const up = await client.uploadBlob(repo, bytes);
  assertEquals(p.proxy.requests.map((r) => `${r.method} ${r.status}`), [
    "POST 202",
    "PUT 500",
    "POST 202",
    "PUT 201",
  ]);
  assertEquals(await client.getBlob(repo, up.digest), bytes);
  p.proxy.resetCounts();
  await client.uploadBlob(repo, enc.encode("another"));
  assertEquals(p.proxy.requests.map((r) => `${r.method} ${r.status}`), ["POST 202", "PUT 201"]);
});

Deno.test("upload: a final PUT whose answer is lost on a kept-alive connection restarts from the POST", async () => {
  await using s = await setup();
  const { p, client, repo } = s;
  // The registry commits the upload, its answer never arrives; the HTTP client sends the PUT again on a new
  // connection, and the registry no longer knows the session (404 BLOB_UPLOAD_UNKNOWN).
  p.proxy.addRule(loseAnswerRule(1, { method: "PUT", path: /\/blobs\/uploads\// }));
  const bytes = enc.encode("lost answer payload");
  const up = await client.uploadBlob(repo, bytes);
  // The HTTP client's own re-send of the PUT is what the registry answers 404; then a fresh POST + PUT.
  assertEquals(p.proxy.requests.map((r) => `${r.method} ${r.status}`), [
    "POST 202",
    "PUT 201",
    "PUT 404",
    "POST 202",
    "PUT 201",
  ]);
  assertEquals(await client.getBlob(repo, up.digest), bytes);
});

Deno.test("connection resets: retried; REGISTRY_UNREACHABLE naming the host when they persist", async () => {
  await using s = await setup();
  const { p, client, repo, img } = s;
  p.proxy.addRule(resetRule(2, { path: "/v2/faults/app/manifests/v1" }));
  assertEquals((await client.getManifest({ ...repo, tag: "v1" })).bytes, img.top.bytes);
  p.proxy.clearRules();
  p.proxy.addRule(resetRule(undefined, { path: "/v2/faults/app/manifests/v1" }));
  const e = await assertRejects(() => client.getManifest({ ...repo, tag: "v1" }));
  assert(isAirlockError(e, "REGISTRY_UNREACHABLE"), String(e));
  assertStringIncludes(e.message, p.proxy.host);
});

Deno.test("cancellation and per-request timeout", async () => {
  await using s = await setup();
  const { p, repo } = s;
  p.proxy.addRule({
    path: "/v2/faults/app/manifests/slow",
    action: {
      kind: "rewrite",
      fn: async (res) => {
        await new Promise((r) => setTimeout(r, 400));
        return res;
      },
    },
  });
  const quick = new RegistryClient({ certDirs: [p.certDir], requestTimeoutMs: 100, retries: 0 });
  try {
    const e = await assertRejects(() => quick.getManifest({ ...repo, tag: "slow" }));
    assert(isAirlockError(e, "TIMEOUT"), String(e));
    assertStringIncludes(e.message, "timed out after 0.1 s");
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const c = await assertRejects(() =>
      s.client.getManifest({ ...repo, tag: "slow" }, { signal: ac.signal })
    );
    assert(isAirlockError(c, "CANCELLED"), String(c));
    // A wait for Retry-After is cancellable too.
    p.proxy.addRule(tooManyRequestsRule(1, 30, { path: "/v2/faults/app/manifests/v1" }));
    const ac2 = new AbortController();
    setTimeout(() => ac2.abort(), 100);
    const t0 = performance.now();
    const c2 = await assertRejects(() =>
      s.client.getManifest({ ...repo, tag: "v1" }, { signal: ac2.signal })
    );
    assert(isAirlockError(c2, "CANCELLED"), String(c2));
    assert(performance.now() - t0 < 2000);
  } finally {
    quick.close();
  }
  // Let the proxy finish the slow answers before it stops.
  await new Promise((r) => setTimeout(r, 450));
});
