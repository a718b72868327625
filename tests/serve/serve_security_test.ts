/**
 * What `airlock serve` refuses, over real HTTP: requests without a token, with a wrong one, or with one whose line
 * was deleted from the token file while the server runs (401, nothing signed: the registry's tags stay as they
 * were); requests that try to name a key, a passphrase, a file, a directory or a module (400, saying so); unknown
 * fields, wrong types and malformed JSON (400 with the reason); an oversized body or image list (413); a body that
 * is not JSON (415); a token over its rate limit (429).
 *
 * @module
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../assert.ts";
import { pushSingle, startRegistry, tempDir } from "../testbed/mod.ts";
import { startService } from "./helpers.ts";
import { listTags } from "../testbed/signatures.ts";
import { addToken } from "../../server/tokens.ts";

Deno.test("serve: tokens, refused fields and limits", async (t) => {
  await using tmp = await tempDir("airlock-serve-sec-");
  await using reg = await startRegistry();
  await using svc = await startService({ dir: tmp.path, tokenNames: ["ci", "laptop"] });
  const img = await pushSingle(reg, "sec/app", "v1", "serve-sec");
  const image = `${reg.host}/sec/app:v1`;
  const tagsBefore = await listTags(reg, "sec/app");
  const body = JSON.stringify({ images: [image] });
  const json = { "content-type": "application/json" };

  const expectError = async (res: Response, status: number, code: string, text?: string | RegExp) => {
    assertEquals(res.status, status);
    const b = await res.json();
    assertEquals(b.error.code, code, JSON.stringify(b));
    if (typeof text === "string") assertStringIncludes(b.error.message, text);
    else if (text) assertMatch(b.error.message, text);
    return b;
  };

  await t.step("no token, a wrong token, a malformed header: 401 and nothing signed", async () => {
    for (
      const auth of [undefined, "Bearer airlock_wrong", `Basic ${btoa("ci:" + svc.tokens.ci)}`, "Bearer"]
    ) {
      const headers: Record<string, string> = { ...json };
      if (auth) headers.authorization = auth;
      const res = await svc.call("/v1/sign", { method: "POST", headers, body, as: null });
      assertEquals(res.headers.get("www-authenticate"), 'Bearer realm="airlock"');
      await expectError(res, 401, "UNAUTHENTICATED");
    }
    for (const path of ["/v1/jobs", "/v1/public-key", "/metrics", "/v1/jobs/x/events"]) {
      await expectError(await svc.call(path, { as: null }), 401, "UNAUTHENTICATED");
    }
    // the token of one name does not work with another's hash, and case matters
    await expectError(
      await svc.call("/v1/jobs", { headers: { authorization: `Bearer ${svc.tokens.ci.toUpperCase()}` } }),
      401,
      "UNAUTHENTICATED",
    );
    await new Promise((r) => setTimeout(r, 300));
    assertEquals(await listTags(reg, "sec/app"), tagsBefore);
  });

  await t.step(
    "a revoked token (its line deleted while running) gets 401; the other still works",
    async () => {
      assertEquals((await svc.call("/v1/jobs", { as: "laptop" })).status, 200);
      const text = await Deno.readTextFile(svc.tokenFile);
      await Deno.writeTextFile(
        svc.tokenFile,
        text.split("\n").filter((l) => !l.startsWith("laptop ")).join("\n"),
      );
      const res = await svc.call("/v1/sign", { method: "POST", headers: json, body, as: "laptop" });
      await expectError(res, 401, "UNAUTHENTICATED");
      await new Promise((r) => setTimeout(r, 300));
      assertEquals(await listTags(reg, "sec/app"), tagsBefore, "nothing was signed");
      assertEquals((await svc.call("/v1/jobs", { as: "ci" })).status, 200);
      // a token added while running works without a restart
      const added = await addToken(svc.tokenFile, "late");
      const late = await svc.call("/v1/jobs", {
        headers: { authorization: `Bearer ${added.token}` },
        as: null,
      });
      assertEquals(late.status, 200);
      assertStringIncludes(svc.log.join(""), "reloaded");
    },
  );

  await t.step("fields that would name a key, file, directory or module: 400", async () => {
    const attempts: Record<string, unknown>[] = [
      { key: "/etc/other.key" },
      { sigstoreKey: "cosign.key" },
      { sigstorePassphraseFile: "/etc/pass" },
      { passphrase: "x" },
      { policy: "/etc/containers/policy.json" },
      { registriesD: "/tmp/rd" },
      { "registries.d": "/tmp/rd" },
      { pkcs11: "pkcs11:token=x" },
      { modulePath: "/usr/lib/evil.so" },
      { certDir: "/tmp" },
      { authfile: "/root/.docker/config.json" },
      { tlsVerify: false },
      { file: "/etc/shadow" },
    ];
    for (const extra of attempts) {
      const res = await svc.call("/v1/sign", {
        method: "POST",
        headers: json,
        body: JSON.stringify({ images: [image], ...extra }),
      });
      const field = Object.keys(extra)[0];
      const b = await expectError(res, 400, "INVALID_ARGUMENT", "chosen by the operator");
      assertStringIncludes(b.error.message, `"${field}"`);
    }
    const v = await svc.call("/v1/verify", {
      method: "POST",
      headers: json,
      body: JSON.stringify({ images: [image], key: "other.pub" }),
    });
    await expectError(v, 400, "INVALID_ARGUMENT", "chosen by the operator");
    const val = await svc.call("/v1/validate", {
      method: "POST",
      headers: json,
      body: JSON.stringify({ images: [image], sigstorePubkey: "other.pub" }),
    });
    await expectError(val, 400, "INVALID_ARGUMENT", "chosen by the operator");
  });

  await t.step("unknown fields, wrong types, bad images, malformed JSON: 400 with the reason", async () => {
    const cases: [string, string | RegExp][] = [
      [JSON.stringify({ images: [image], colour: "blue" }), `unknown field "colour"`],
      [
        JSON.stringify({ images: [image], requireIndexSignature: true }),
        `unknown field "requireIndexSignature"`,
      ],
      [JSON.stringify({ images: [image], jobs: 0 }), `"jobs" must be an integer from 1 to 20`],
      [JSON.stringify({ images: [image], force: "yes" }), `"force" must be true or false`],
      [JSON.stringify({ images: [image], timeout: "soon" }), `"timeout"`],
      [JSON.stringify({ images: [image], annotations: { a: 1 } }), `annotation "a" must be a string`],
      [JSON.stringify({ images: image }), `"images" is required`],
      [JSON.stringify({ images: [] }), `"images" is empty`],
      [JSON.stringify({ images: ["a b c"] }), "images[0] is not an image reference"],
      [JSON.stringify({ images: ["UPPER/Case:1"] }), /^images\[0\]: /],
      [JSON.stringify({ images: [`${image}\nother/img:1`] }), "control characters"],
      [JSON.stringify([image]), "must be a JSON object"],
      ['{"images": [', "malformed JSON"],
      ["", "malformed JSON"],
    ];
    for (const [payload, reason] of cases) {
      const res = await svc.call("/v1/sign", { method: "POST", headers: json, body: payload });
      await expectError(res, 400, "INVALID_ARGUMENT", reason);
    }
    const bad = await svc.call("/v1/verify", {
      method: "POST",
      headers: json,
      body: JSON.stringify({ images: ["not a reference"] }),
    });
    await expectError(bad, 400, "INVALID_ARGUMENT", "images[0]");
  });

  await t.step("oversized body and image list: 413; not JSON: 415", async () => {
    const big = JSON.stringify({ images: [image], annotations: { pad: "x".repeat(70 * 1024) } });
    await expectError(
      await svc.call("/v1/sign", { method: "POST", headers: json, body: big }),
      413,
      "TOO_LARGE",
      "request body over 65536 bytes",
    );
    // the same without Content-Length (a stream): counted while read
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < 80; i++) c.enqueue(new TextEncoder().encode("x".repeat(1024)));
        c.close();
      },
    });
    await expectError(
      await svc.call("/v1/sign", { method: "POST", headers: json, body: stream }),
      413,
      "TOO_LARGE",
    );
    const many = JSON.stringify({ images: Array.from({ length: 51 }, (_, i) => `${reg.host}/sec/a${i}:v1`) });
    await expectError(
      await svc.call("/v1/sign", { method: "POST", headers: json, body: many }),
      413,
      "TOO_LARGE",
      "at most 50",
    );
    await expectError(
      await svc.call("/v1/sign", { method: "POST", headers: { "content-type": "text/plain" }, body }),
      415,
      "UNSUPPORTED_MEDIA_TYPE",
    );
    await new Promise((r) => setTimeout(r, 300));
    assertEquals(await listTags(reg, "sec/app"), tagsBefore, "nothing was signed by refused requests");
  });

  await t.step("nothing was queued by any refused request; the API lists no job", async () => {
    const res = await svc.call("/v1/jobs");
    assertEquals((await res.json()).jobs, []);
    assert(!svc.log.join("").includes(svc.tokens.ci), "a token appeared in the log");
    const m = await (await svc.call("/metrics")).text();
    assertMatch(m, /airlock_requests_rejected_total\{reason="unauthenticated"\} \d+/);
    assertMatch(m, /airlock_requests_rejected_total\{reason="invalid"\} \d+/);
    assertMatch(m, /airlock_requests_rejected_total\{reason="too_large"\} 3/);
    assertEquals(img.top.digest.startsWith("sha256:"), true);
  });
});

Deno.test("serve: per-token rate limit answers 429 with Retry-After", async () => {
  await using tmp = await tempDir("airlock-serve-rate-");
  await using reg = await startRegistry();
  await using svc = await startService({
    dir: tmp.path,
    tokenNames: ["a", "b"],
    config: { ratePerMinute: 3 },
  });
  await pushSingle(reg, "rate/app", "v1", "serve-rate");
  const req = { images: [`${reg.host}/rate/app:v1`] };
  const statuses: number[] = [];
  const ids: string[] = [];
  for (let i = 0; i < 4; i++) {
    const r = await svc.post("/v1/verify", req, "a");
    statuses.push(r.status);
    if (r.status === 202) ids.push(r.body.id as string);
  }
  assertEquals(statuses, [202, 202, 202, 429]);
  const res = await svc.call("/v1/verify", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(req),
    as: "a",
  });
  assertEquals(res.status, 429);
  assert(Number(res.headers.get("retry-after")) >= 1);
  await res.body?.cancel();
  // another token has its own bucket
  assertEquals((await svc.post("/v1/verify", req, "b")).status, 202);
  for (const id of ids) await svc.wait(id);
});
