/**
 * The pieces of `airlock serve` that need no network: token files (parsing, hashing, constant-time comparison,
 * reloads that revoke, fail-closed on a vanished file), listen rules, rate limits, request parsing, HTML escaping
 * of the page, and the job store's history bound and shutdown drain.
 *
 * @module
 */
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes, assertThrows } from "../assert.ts";
import { tempDir } from "../testbed/mod.ts";
import { AirlockError } from "../../core/errors.ts";
import { silentLogger } from "../../core/report.ts";
import {
  addToken,
  constantTimeEqual,
  generateToken,
  hashTokenHex,
  parseTokenFile,
  TokenStore,
} from "../../server/tokens.ts";
import { checkListenRules, isLoopback, parseListenAddress } from "../../server/serve.ts";
import { parseRateLimit, RateLimiter } from "../../server/rate_limit.ts";
import { parseJobRequest } from "../../server/requests.ts";
import { escapeHtml, renderJobsPage } from "../../server/page.ts";
import { JobStore } from "../../server/jobs.ts";
import { httpStatusFor } from "../../server/errors.ts";

Deno.test("serve tokens: parse, hash, compare, reload and revoke", async () => {
  const hash = "ab".repeat(32);
  const parsed = parseTokenFile(
    `# comment\n\nci ${hash}\nbad\nci ${hash}\nx!y ${hash}\nz ${"g".repeat(64)}\n`,
  );
  assertEquals(parsed.entries.map((e) => e.name), ["ci"]);
  assertEquals(parsed.problems.length, 4);
  assert(constantTimeEqual(new Uint8Array([1, 2, 3]), new Uint8Array([1, 2, 3])));
  assert(!constantTimeEqual(new Uint8Array([1, 2, 3]), new Uint8Array([1, 2, 4])));
  assert(!constantTimeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2, 3])));
  const t = generateToken();
  assert(/^airlock_[A-Za-z0-9_-]{43}$/.test(t));
  assert(generateToken() !== t);
  // the well-known SHA-256 of "abc"
  assertEquals(await hashTokenHex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

  await using tmp = await tempDir("airlock-serve-units-");
  const file = join(tmp.path, "tokens");
  const a = (await addToken(file, "a")).token;
  const b = (await addToken(file, "b")).token;
  let now = 0;
  const store = await TokenStore.open(file, {
    logger: silentLogger(),
    checkIntervalMs: 1000,
    now: () => now,
  });
  assertEquals([await store.authenticate(a), await store.authenticate(b)], ["a", "b"]);
  assertEquals(await store.authenticate("airlock_x"), undefined);
  assertEquals(await store.authenticate(""), undefined);
  assertEquals(await store.authenticate("x".repeat(10_000)), undefined);
  // revoke b: seen at the next check
  await Deno.writeTextFile(
    file,
    (await Deno.readTextFile(file)).split("\n").filter((l) => !l.startsWith("b ")).join("\n"),
  );
  assertEquals(await store.authenticate(b), "b", "not re-read before the interval");
  now += 1000;
  assertEquals(await store.authenticate(b), undefined);
  assertEquals(await store.authenticate(a), "a");
  // a vanished file revokes everything
  await Deno.remove(file);
  now += 1000;
  assertEquals(await store.authenticate(a), undefined);
  assertEquals(store.size, 0);
  // start-up refuses a missing file and bad lines
  await assertRejectsCode(() => TokenStore.open(file), "CONFIG_INVALID");
  await Deno.writeTextFile(file, "oops\n");
  await assertRejectsCode(() => TokenStore.open(file), "CONFIG_INVALID");
});

async function assertRejectsCode(fn: () => Promise<unknown>, code: string): Promise<void> {
  try {
    await fn();
  } catch (e) {
    assertEquals((e as AirlockError).code, code);
    return;
  }
  throw new Error(`expected ${code}`);
}

Deno.test("serve listen rules: loopback by default, TLS elsewhere", () => {
  assertEquals(parseListenAddress("127.0.0.1:8080"), { hostname: "127.0.0.1", port: 8080 });
  assertEquals(parseListenAddress("[::1]:0"), { hostname: "::1", port: 0 });
  assertEquals(parseListenAddress(":9000"), { hostname: "127.0.0.1", port: 9000 });
  for (const bad of ["8080", "host:99999", "a b:1", "[::1]"]) assertThrows(() => parseListenAddress(bad));
  for (const h of ["127.0.0.1", "127.1.2.3", "::1", "localhost"]) assert(isLoopback(h), h);
  for (const h of ["0.0.0.0", "::", "10.0.0.1", "127.0.0.256", "localhost.example.com"]) {
    assert(!isLoopback(h), h);
  }
  checkListenRules({ hostname: "127.0.0.1", port: 1 }, {});
  checkListenRules({ hostname: "0.0.0.0", port: 1 }, { tlsCert: "c", tlsKey: "k" });
  checkListenRules({ hostname: "0.0.0.0", port: 1 }, { insecureListen: true });
  assertThrows(() => checkListenRules({ hostname: "0.0.0.0", port: 1 }, {}), AirlockError, "without TLS");
  assertThrows(() => checkListenRules({ hostname: "127.0.0.1", port: 1 }, { tlsKey: "k" }), AirlockError);
});

Deno.test("serve rate limit: a burst of one minute, then refill", () => {
  assertEquals(parseRateLimit("120/min"), 120);
  assertEquals(parseRateLimit("2/s"), 120);
  assertEquals(parseRateLimit("60/h"), 1);
  assertEquals(parseRateLimit("30"), 30);
  for (const bad of ["0/min", "x", "5/week", "-1"]) assertThrows(() => parseRateLimit(bad));
  let now = 0;
  const l = new RateLimiter({ perMinute: 2, now: () => now });
  assertEquals([l.take("a").ok, l.take("a").ok, l.take("a").ok, l.take("b").ok], [true, true, false, true]);
  const refused = l.take("a");
  assert(!refused.ok && refused.retryAfterSeconds === 30, JSON.stringify(refused));
  now += 30_000;
  assertEquals(l.take("a").ok, true);
});

Deno.test("serve requests: defaults, CLI parsing of arch/os/timeout, refusals", () => {
  const r = parseJobRequest("sign", { images: ["reg.io/a/b:1", "nginx"] }, { maxImages: 5 });
  assert(r.kind === "sign");
  assertEquals([r.arch, r.os, r.signIndex, r.force, r.jobs, r.timeoutMs], [
    ["amd64", "arm64"],
    ["linux"],
    true,
    false,
    1,
    600_000,
  ]);
  assertEquals(r.lines.map((l) => l.status === "ok" && l.reference.repository), ["a/b", "library/nginx"]);
  const r2 = parseJobRequest("sign", {
    images: ["reg.io/a/b:1"],
    arch: ["amd64,s390x"],
    os: "linux",
    timeout: "1m30s",
    signIndex: false,
  }, { maxImages: 5 });
  assert(r2.kind === "sign");
  assertEquals([r2.arch, r2.os, r2.timeoutMs, r2.signIndex], [["amd64", "s390x"], ["linux"], 90_000, false]);
  const bad = (body: unknown, text: string, kind: "sign" | "validate" | "verify" = "sign") =>
    assertThrows(() => parseJobRequest(kind, body, { maxImages: 2 }), AirlockError, text);
  bad({ images: ["a:1"], keyRef: "x" }, "chosen by the operator");
  bad({ images: ["a:1"], PKCS11_MODULE: "x" }, "chosen by the operator");
  bad({ images: ["a:1"], exactRepository: "r/x" }, `unknown field "exactRepository"`);
  bad({ images: ["a:1"], exactRepository: "NOT VALID" }, `"exactRepository"`, "validate");
  bad({ images: ["a:1"], timeout: "2h" }, "at most 1h");
  bad({ images: ["a:1"], timeout: "0" }, "more than 0");
  bad({ images: ["a:1"], arch: 5 }, `"arch"`);
  bad({ images: ["# comment"] }, "not an image reference");
  const tooMany = () => parseJobRequest("verify", { images: ["a", "b", "c"] }, { maxImages: 2 });
  assertThrows(tooMany, AirlockError, "at most 2");
  try {
    tooMany();
  } catch (e) {
    assertEquals(httpStatusFor(e), 413);
  }
  // "__proto__" stays a plain annotation key
  const p = parseJobRequest("sign", JSON.parse('{"images":["a:1"],"annotations":{"__proto__":"x"}}'), {
    maxImages: 1,
  });
  assert(p.kind === "sign");
  assertEquals(Object.getPrototypeOf(p.annotations), Object.prototype);
  assertEquals(Object.keys(p.annotations!), ["__proto__"]);
});

Deno.test("serve page: every value is escaped", () => {
  assertEquals(escapeHtml(`<a href="x">&'`), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
  const html = renderJobsPage([{
    id: `"><script>x</script>`,
    kind: "sign",
    state: "failed",
    submittedBy: "<x-by>",
    createdAt: "2025-01-01T00:00:00.000Z",
    startedAt: null,
    finishedAt: null,
    summary: { total: 1, done: 1, failed: 1 },
    images: [{
      image: "<img src=x>",
      status: `"onmouseover="x`,
      reference: null,
      digest: "<x-digest>",
      targets: [],
      error: { code: "X", message: "<svg onload=alert(1)>" },
    }],
    error: null,
  }], { version: "<x-v>", renderedAt: "<x-t>", viewer: "<x-u>" });
  for (const raw of ["<script>x", "<img", "<svg", "<x-", `"onmouseover`]) {
    assert(!html.includes(raw), `unescaped ${raw}`);
  }
  assertStringIncludes(html, "&lt;svg onload=alert(1)&gt;");
});

Deno.test("serve jobs: bounded history, queue limit, drain cancels late jobs", async () => {
  const store = new JobStore({ concurrency: 1, history: 2, maxQueued: 1 });
  const quick = (image: string) =>
    store.submit({
      kind: "verify",
      submittedBy: "t",
      images: [image],
      work: (ctx) => {
        ctx.report(0, {
          image,
          status: "verified",
          reference: image,
          digest: null,
          targets: [],
          error: null,
        });
        return Promise.resolve();
      },
    });
  const ids = [quick("a"), quick("b")].map((j) => j.id);
  assertThrows(() => quick("c"), AirlockError, "too many jobs waiting");
  await store.drain(1000);
  ids.push(
    ...[1, 2].map(() => {
      try {
        return quick("x").id;
      } catch (e) {
        assertEquals(httpStatusFor(e), 503);
        return "refused";
      }
    }),
  );
  assertEquals(ids.slice(2), ["refused", "refused"]);
  assertEquals(store.list().map((j) => j.state), ["succeeded", "succeeded"]);

  const s2 = new JobStore({ concurrency: 2, history: 1, maxQueued: 10 });
  for (const image of ["a", "b", "c"]) {
    s2.submit({
      kind: "verify",
      submittedBy: "t",
      images: [image],
      work: (ctx) => {
        ctx.report(0, { image, status: "verified", reference: null, digest: null, targets: [], error: null });
        return Promise.resolve();
      },
    });
  }
  await s2.drain(1000);
  assertEquals(s2.list().map((j) => j.images[0].image), ["c"], "only the last finished job is remembered");

  // a job that does not finish within the grace period is aborted and ends cancelled
  const s3 = new JobStore({ concurrency: 1, history: 10, maxQueued: 10 });
  const job = s3.submit({
    kind: "sign",
    submittedBy: "t",
    images: ["slow"],
    work: (ctx) =>
      new Promise<void>((resolve) => {
        ctx.signal.addEventListener("abort", () => resolve());
      }),
  });
  assertEquals(await s3.drain(50, 1000), true);
  assertEquals(s3.get(job.id)?.state, "cancelled");
});
