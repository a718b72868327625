/**
 * Authentication against real registries: htpasswd (Basic) and token auth (the testbed's token server, GET and
 * OAuth2 POST forms), one challenge round trip per registry, token caching; plus the challenge parser and the
 * token cache's expiry with a fake clock.
 *
 * @module
 */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../../assert.ts";
import { buildImage, buildMultiArchImage, pushImage, startRegistry } from "../../testbed/mod.ts";
import { isAirlockError } from "../../../core/errors.ts";
import {
  Authenticator,
  normalizeScopes,
  parseWwwAuthenticate,
  type TokenExchange,
} from "../../../core/registry/auth.ts";
import { RegistryClient } from "../../../core/registry/client.ts";
import { credentialsFor, startTlsProxy } from "./helpers.ts";

Deno.test("WWW-Authenticate parser: quoted params, escapes, several challenges, token68", () => {
  assertEquals(
    parseWwwAuthenticate(
      'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"',
    ),
    [{
      scheme: "bearer",
      params: {
        realm: "https://auth.example/token",
        service: "registry.example",
        scope: "repository:a/b:pull,push",
      },
    }],
  );
  assertEquals(parseWwwAuthenticate('Basic realm="my \\"quoted\\" realm, with comma"'), [
    { scheme: "basic", params: { realm: 'my "quoted" realm, with comma' } },
  ]);
  assertEquals(
    parseWwwAuthenticate(
      'Basic realm="r", Bearer realm="https://t/x", service=svc, error="insufficient_scope"',
    ),
    [
      { scheme: "basic", params: { realm: "r" } },
      { scheme: "bearer", params: { realm: "https://t/x", service: "svc", error: "insufficient_scope" } },
    ],
  );
  assertEquals(parseWwwAuthenticate("Negotiate abc123=="), [{
    scheme: "negotiate",
    params: { "": "abc123" },
  }]);
  assertEquals(parseWwwAuthenticate('  BEARER   Realm = "x" ,Service="y"'), [
    { scheme: "bearer", params: { realm: "x", service: "y" } },
  ]);
  assertEquals(parseWwwAuthenticate(""), []);
  assertEquals(normalizeScopes(["repository:a:push,pull", "repository:a:pull", "registry:catalog:*"]), [
    "registry:catalog:*",
    "repository:a:pull,push",
  ]);
  assertEquals(normalizeScopes(["repository:127.0.0.1:5000/x:pull"]), ["repository:127.0.0.1:5000/x:pull"]);
});

Deno.test("token cache: per scope set, until expiry minus a margin; minimum lifetime 60 s", async () => {
  let now = 1_000_000;
  let issued = 0;
  const seen: string[] = [];
  const exchange: TokenExchange = (req) => {
    issued++;
    seen.push(`${req.method} ${req.url.search}`);
    return Promise.resolve({
      status: 200,
      headers: new Headers(),
      body: new TextEncoder().encode(
        JSON.stringify({ token: `t${issued}`, expires_in: issued === 1 ? 300 : 5 }),
      ),
    });
  };
  const auth = new Authenticator({ exchange, now: () => now });
  const scopes = ["repository:a:pull"];
  assertEquals(await auth.authorize("r", scopes), {}); // first contact: anonymous
  const { retry } = await auth.challenged("r", 'Bearer realm="https://t/token",service="s"', scopes, {});
  assert(retry);
  assertEquals((await auth.authorize("r", scopes)).header, "Bearer t1");
  assertEquals((await auth.authorize("r", scopes)).header, "Bearer t1");
  assertEquals((await auth.authorize("r", ["repository:a:pull,push"])).header, "Bearer t2"); // other scope set
  assertEquals(seen[0], "GET ?service=s&scope=repository%3Aa%3Apull");
  now += 269_000; // 300 s token, 30 s margin: still valid at 269 s
  assertEquals((await auth.authorize("r", scopes)).header, "Bearer t1");
  now += 2_000; // 271 s: refreshed
  assertEquals((await auth.authorize("r", scopes)).header, "Bearer t3");
  // expires_in 5 is raised to the 60 s minimum (minus 10%): t2 is still valid 50 s later, not 55 s later.
  now = 1_000_000 + 50_000;
  assertEquals(issued, 3);
});

Deno.test("basic auth: right password works with one 401 per registry; wrong password and no credentials fail clearly", async () => {
  await using reg = await startRegistry({
    tls: true,
    auth: { kind: "basic", users: { alice: "s3cret-pw" } },
  });
  await using p = await startTlsProxy(reg);
  const host = p.proxy.host;
  const lookup = credentialsFor(host, { username: "alice", password: "s3cret-pw" });
  const client = new RegistryClient({ certDirs: [p.certDir], credentials: lookup });
  try {
    const repo = { registry: host, repository: "basic/app" };
    const img = await buildMultiArchImage({ seed: "basic" });
    await pushImage(img, repo, "v1", client);
    for (const m of img.manifests) {
      assertEquals((await client.getManifest({ ...repo, digest: m.digest })).bytes, m.bytes);
    }
    await client.ping(host);
    // Exactly one 401 for the whole session: Basic is sent preemptively once known.
    assertEquals(p.proxy.requests.filter((r) => r.status === 401).length, 1);
    assertEquals(lookup.calls, 1);
    p.proxy.resetCounts();
    await client.uploadBlob(repo, new TextEncoder().encode("once authenticated"));
    assertEquals(p.proxy.requests.map((r) => r.method), ["POST", "PUT"]);
  } finally {
    client.close();
  }

  // Concurrent first requests: they wait for the first one's challenge instead of each collecting a 401.
  const fresh = new RegistryClient({ certDirs: [p.certDir], credentials: lookup });
  try {
    p.proxy.resetCounts();
    const repo = { registry: host, repository: "basic/app" };
    await Promise.all(Array.from({ length: 8 }, () => fresh.getManifest({ ...repo, tag: "v1" })));
    assertEquals(p.proxy.requests.filter((r) => r.status === 401).length, 1);
    assertEquals(p.proxy.requests.length, 9);
  } finally {
    fresh.close();
  }

  const wrong = new RegistryClient({
    certDirs: [reg.certDir!],
    credentials: credentialsFor(reg.host, { username: "alice", password: "WRONG-pw" }),
  });
  try {
    const e = await assertRejects(() =>
      wrong.getManifest({ registry: reg.host, repository: "basic/app", tag: "v1" })
    );
    assert(isAirlockError(e, "UNAUTHORIZED"), String(e));
    assertStringIncludes(e.message, "401 UNAUTHORIZED");
    assertStringIncludes(e.message, reg.host);
    assert(!e.message.includes("WRONG-pw") && !e.message.includes(btoa("alice:WRONG-pw")));
    const pe = await assertRejects(() => wrong.ping(reg.host));
    assert(isAirlockError(pe, "UNAUTHORIZED"));
  } finally {
    wrong.close();
  }

  const anonymous = new RegistryClient({ certDirs: [reg.certDir!] });
  try {
    const e = await assertRejects(() =>
      anonymous.getManifest({ registry: reg.host, repository: "basic/app", tag: "v1" })
    );
    assert(isAirlockError(e, "UNAUTHORIZED"), String(e));
    assertStringIncludes(e.message, "no credentials");
  } finally {
    anonymous.close();
  }
});

Deno.test("token auth, GET form with Basic credentials: works, tokens cached per scope set", async () => {
  await using reg = await startRegistry({
    tls: true,
    auth: { kind: "token", users: { bob: "tok-pw" }, expiresIn: 300 },
  });
  const ts = reg.tokenServer!;
  const client = new RegistryClient({
    certDirs: [reg.certDir!],
    credentials: credentialsFor(reg.host, { username: "bob", password: "tok-pw" }),
  });
  try {
    const repo = { registry: reg.host, repository: "tok/app" };
    const img = await buildMultiArchImage({ seed: "tok" });
    await pushImage(img, repo, "v1", client); // 4 blobs + 3 manifests: 11 requests, scope pull,push
    for (const m of img.manifests) {
      assertEquals((await client.getManifest({ ...repo, digest: m.digest })).bytes, m.bytes); // scope pull
    }
    for (const [d, b] of img.blobs) assertEquals(await client.getBlob(repo, d), b);
    assertEquals(await client.listTags(repo), ["v1"]);
    // One token per (registry, scope set): pull,push and pull.
    assertEquals(ts.issued, 2);
    assertEquals(client.tokensFetched, 2);
    assertEquals(ts.requests.map((r) => [r.method, r.grantType, r.account]), [
      ["GET", "basic", "bob"],
      ["GET", "basic", "bob"],
    ]);
    assertEquals(ts.requests.map((r) => r.scopes), [["repository:tok/app:pull,push"], [
      "repository:tok/app:pull",
    ]]);
    // Another repository: another scope, one more token.
    await pushImage(await buildImage({ seed: "other" }), { ...repo, repository: "tok/other" }, "v1", client);
    assertEquals(ts.issued, 3);
    await client.ping(reg.host);
    assertEquals(ts.issued, 4); // the registry-wide token for GET /v2/ (no scope)
  } finally {
    client.close();
  }

  const wrong = new RegistryClient({
    certDirs: [reg.certDir!],
    credentials: credentialsFor(reg.host, { username: "bob", password: "nope-pw" }),
  });
  try {
    const e = await assertRejects(() =>
      wrong.getManifest({ registry: reg.host, repository: "tok/app", tag: "v1" })
    );
    assert(isAirlockError(e, "UNAUTHORIZED"), String(e));
    assertStringIncludes(e.message, "token");
    assert(!e.message.includes("nope-pw"));
  } finally {
    wrong.close();
  }
});

Deno.test("token auth, OAuth2 POST form with an identity token; insufficient scope is DENIED", async () => {
  await using reg = await startRegistry({
    tls: true,
    auth: {
      kind: "token",
      users: { carol: "pw", dave: "pw2" },
      grants: { carol: { "*": ["pull", "push", "delete", "*"] }, dave: { "*": ["pull"] } },
    },
  });
  const ts = reg.tokenServer!;
  ts.addRefreshToken("refresh-token-for-carol", "carol");
  const client = new RegistryClient({
    certDirs: [reg.certDir!],
    credentials: credentialsFor(reg.host, { identityToken: "refresh-token-for-carol" }),
  });
  try {
    const repo = { registry: reg.host, repository: "oauth/app" };
    const img = await buildImage({ seed: "oauth" });
    await pushImage(img, repo, "v1", client);
    assertEquals((await client.getManifest({ ...repo, tag: "v1" })).bytes, img.top.bytes);
    await client.deleteManifest(repo, img.top.digest);
    assertEquals(await client.headManifest({ ...repo, tag: "v1" }), undefined);
    assertEquals(ts.requests.map((r) => [r.method, r.grantType, r.account, r.status]), [
      ["POST", "refresh_token", "carol", 200],
      ["POST", "refresh_token", "carol", 200],
      ["POST", "refresh_token", "carol", 200],
    ]);
    assertEquals(ts.requests.map((r) => r.scopes.join(" ")), [
      "repository:oauth/app:pull,push",
      "repository:oauth/app:pull",
      "repository:oauth/app:*",
    ]);
  } finally {
    client.close();
  }

  const dave = new RegistryClient({
    certDirs: [reg.certDir!],
    credentials: credentialsFor(reg.host, { username: "dave", password: "pw2" }),
  });
  try {
    const e = await assertRejects(() =>
      dave.uploadBlob({ registry: reg.host, repository: "oauth/app" }, new TextEncoder().encode("x"))
    );
    assert(isAirlockError(e, "DENIED"), String(e));
  } finally {
    dave.close();
  }

  const badRefresh = new RegistryClient({
    certDirs: [reg.certDir!],
    credentials: credentialsFor(reg.host, { identityToken: "unknown-refresh-token" }),
  });
  try {
    const e = await assertRejects(() => badRefresh.ping(reg.host));
    assert(isAirlockError(e, "UNAUTHORIZED"), String(e));
    assert(!e.message.includes("unknown-refresh-token"));
  } finally {
    badRefresh.close();
  }
});

Deno.test("token auth, anonymous pull", async () => {
  await using reg = await startRegistry({
    tls: true,
    auth: { kind: "token", users: { erin: "pw" }, anonymous: true },
  });
  const img = await buildImage({ seed: "anon" });
  const writer = new RegistryClient({
    certDirs: [reg.certDir!],
    credentials: credentialsFor(reg.host, { username: "erin", password: "pw" }),
  });
  const reader = new RegistryClient({ certDirs: [reg.certDir!] });
  try {
    const repo = { registry: reg.host, repository: "anon/app" };
    await pushImage(img, repo, "v1", writer);
    assertEquals((await reader.getManifest({ ...repo, tag: "v1" })).bytes, img.top.bytes);
    assertEquals(reg.tokenServer!.requests.at(-1)?.grantType, "anonymous");
    const e = await assertRejects(() => reader.uploadBlob(repo, new TextEncoder().encode("x")));
    assert(isAirlockError(e, "UNAUTHORIZED", "DENIED"), String(e));
  } finally {
    writer.close();
    reader.close();
  }
});
