/**
 * The HTTP helper the Vault and cloud KMS backends share (backends/kms_http.ts), against a small local server
 * written for the test: retries of throttled answers, the time limit, unreachable hosts, secret scrubbing,
 * base64url, endpoint rules and the token cache.
 *
 * @module
 */
import {
  base64UrlDecode,
  base64UrlEncode,
  endpointUrl,
  KmsHttpClient,
  scrub,
  TokenCache,
} from "../../backends/kms_http.ts";
import { assertEquals } from "../assert.ts";
import { freePort } from "../testbed/mod.ts";
import { startFakeServer } from "../testbed/fake_kms/common.ts";
import { rejectsWith } from "./kms_test_util.ts";

Deno.test("KmsHttpClient: 503 is tried again, a slow answer times out, a closed port is unreachable", async () => {
  let hits = 0;
  await using srv = await startFakeServer(async (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/slow") {
      await new Promise((r) => setTimeout(r, 1500));
      return new Response("late");
    }
    hits++;
    return hits < 3 ? new Response("busy", { status: 503 }) : Response.json({ ok: true });
  });
  const http = await KmsHttpClient.create({ service: "Test KMS", timeoutMs: 300 });
  try {
    const res = await http.send("POST", new URL(`${srv.url}/sign`), { body: "{}" });
    assertEquals([res.status, res.json, hits], [200, { ok: true }, 3]);
    await rejectsWith(() => http.send("GET", new URL(`${srv.url}/slow`)), "TIMEOUT", ["Test KMS", "0.3 s"]);
    await rejectsWith(
      () => http.send("GET", new URL(`http://127.0.0.1:${freePort()}/`)),
      "KEY_SERVICE_UNREACHABLE",
      ["cannot reach Test KMS", "connection refused"],
    );
  } finally {
    http.close();
  }
});

Deno.test("kms_http helpers: scrub, base64url, endpoint rules, token cache", async () => {
  assertEquals(
    scrub("token s.abcdef rejected; s.abcdef again", ["s.abcdef", undefined, "x"]),
    "token *** rejected; *** again",
  );
  const bytes = new Uint8Array([0xfb, 0xff, 0x00, 0x10]);
  assertEquals(base64UrlEncode(bytes), "-_8AEA");
  assertEquals([...base64UrlDecode("-_8AEA")!], [...bytes]);
  assertEquals(base64UrlDecode("not base64!"), undefined);
  assertEquals(endpointUrl("http://127.0.0.1:8200", "X").host, "127.0.0.1:8200");
  assertEquals(endpointUrl("https://kms.example", "X").protocol, "https:");
  await rejectsWith(
    () => Promise.resolve().then(() => endpointUrl("http://kms.example", "X")),
    "CONFIG_INVALID",
    [
      "https://",
    ],
  );
  let fetched = 0;
  const cache = new TokenCache(() => {
    fetched++;
    return new Promise((r) =>
      setTimeout(() => r({ token: `t${fetched}`, expiresAt: Date.now() + 3600_000 }), 10)
    );
  });
  assertEquals(await Promise.all([cache.get(), cache.get(), cache.get()]), ["t1", "t1", "t1"]);
  cache.clear();
  assertEquals(await cache.get(), "t2");
  assertEquals(cache.secrets(), ["t2"]);
});
