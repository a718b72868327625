/**
 * The jobs page of `airlock serve`, rendered by a real browser: Debian's headless Chromium (`--dump-dom`, flags of
 * spec/testbed.md §7) opens `/?token=…`, is redirected to `/` with the token in an HttpOnly cookie, and the DOM it
 * built must hold a row per job and per image with their states. A registry (through the fault proxy) answers one
 * image with an error message full of HTML: the page must show it as text, so the DOM has no element it injected.
 * Without a token (or with a wrong one) the browser gets the sign-in page, which names no image.
 *
 * Chromium must be installed (scripts/ensure_deps.sh installs it); when it is missing this test fails.
 *
 * @module
 */
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "../assert.ts";
import { pushMulti, pushSingle, startProxy, startRegistry, tempDir } from "../testbed/mod.ts";
import { startService } from "./helpers.ts";

const CHROMIUM = "chromium";
const HOSTILE = `<script>document.title='owned'</script><img src=x onerror="document.title='owned'">`;

async function dumpDom(url: string, profile: string): Promise<string> {
  const out = await new Deno.Command(CHROMIUM, {
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      `--user-data-dir=${profile}`,
      "--dump-dom",
      url,
    ],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(30_000),
  }).output();
  const dom = new TextDecoder().decode(out.stdout);
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  return dom;
}

Deno.test("serve: the jobs page in headless Chromium shows the job rows, escaped; needs a token", async () => {
  await using tmp = await tempDir("airlock-serve-page-");
  await using reg = await startRegistry();
  await using proxy = await startProxy(reg.url);
  proxy.addRule({
    path: /^\/v2\/page\/evil\/manifests\//,
    action: {
      kind: "respond",
      status: 403,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ errors: [{ code: "DENIED", message: HOSTILE }] }),
    },
  });
  await using svc = await startService({ dir: tmp.path });
  const h = proxy.host;
  const single = await pushSingle(reg, "page/app", "v1", "serve-page-app");
  const multi = await pushMulti(reg, "page/multi", "v1", "serve-page-multi");
  const images = [`${h}/page/app:v1`, `${h}/page/multi:v1`, `${h}/page/evil:v1`];
  const signed = await svc.post("/v1/sign", { images });
  const signJob = await svc.wait(signed.body.id as string);
  assertEquals(signJob.images.map((i) => i.status), ["signed", "signed", "failed"]);
  assertStringIncludes(signJob.images[2].error!.message, "<script>", "the hostile message reaches the job");
  const verified = await svc.post("/v1/verify", { images: images.slice(0, 2) });
  const verifyJob = await svc.wait(verified.body.id as string);
  assertEquals(verifyJob.state, "succeeded");

  const dom = await dumpDom(
    `${svc.url}/?token=${encodeURIComponent(svc.tokens.ci)}`,
    join(tmp.path, "profile1"),
  );
  assertStringIncludes(dom, "airlock serve");
  // one row per job, newest first, with its state
  const jobRows = [...dom.matchAll(/<tr class="job"[^>]*data-job-id="([^"]+)"[^>]*data-state="([^"]+)"/g)]
    .map((m) => [m[1], m[2]]);
  assertEquals(jobRows, [[verifyJob.id, "succeeded"], [signJob.id, "failed"]]);
  // one row per image, with its status
  const imageRows = [
    ...dom.matchAll(/<tr class="image" data-job-id="([^"]+)" data-index="(\d+)" data-status="([^"]+)"/g),
  ].map((m) => [m[1], Number(m[2]), m[3]]);
  assertEquals(imageRows, [
    [verifyJob.id, 0, "verified"],
    [verifyJob.id, 1, "verified"],
    [signJob.id, 0, "signed"],
    [signJob.id, 1, "signed"],
    [signJob.id, 2, "failed"],
  ]);
  for (const image of images) assertStringIncludes(dom, `<code class="image-name">${image}</code>`);
  assertStringIncludes(dom, single.top.digest);
  assertStringIncludes(dom, multi.top.digest);
  // The hostile message is text: no element came out of it, the title is untouched.
  assert(!/<script/i.test(dom), "a script element was injected");
  assert(!/<img/i.test(dom), "an img element was injected");
  assertStringIncludes(dom, "&lt;script&gt;document.title='owned'&lt;/script&gt;");
  assertStringIncludes(dom, "<title>airlock serve: recent jobs</title>");
  // the token never appears in the page
  assert(!dom.includes(svc.tokens.ci), "the token is in the page");

  // Without a token, and with a wrong one: the sign-in page, no image names, no job ids.
  for (
    const [url, profile] of [[`${svc.url}/`, "profile2"], [`${svc.url}/?token=airlock_nope`, "profile3"]]
  ) {
    const denied = await dumpDom(url, join(tmp.path, profile));
    assertStringIncludes(denied, 'name="token"');
    assert(!denied.includes("page/app") && !denied.includes(signJob.id), "the sign-in page shows jobs");
  }

  // The page's cookie is HttpOnly and SameSite=Strict, and the redirect drops the token from the address.
  const res = await fetch(`${svc.url}/?token=${encodeURIComponent(svc.tokens.ci)}`, { redirect: "manual" });
  await res.body?.cancel();
  assertEquals([res.status, res.headers.get("location")], [303, "/"]);
  const cookie = res.headers.get("set-cookie") ?? "";
  assertStringIncludes(cookie, "HttpOnly");
  assertStringIncludes(cookie, "SameSite=Strict");
  const page = await fetch(`${svc.url}/`, { headers: { cookie: cookie.split(";")[0] } });
  assertEquals(page.status, 200);
  assertStringIncludes(page.headers.get("content-security-policy") ?? "", "default-src 'none'");
  await page.body?.cancel();
  const bearerOnly = await fetch(`${svc.url}/`, { headers: { authorization: `Bearer ${svc.tokens.ci}` } });
  assertEquals(bearerOnly.status, 401);
  await bearerOnly.body?.cancel();
  // a bearer header alone does not open the page (only the cookie does), and the cookie opens no API
  const api = await fetch(`${svc.url}/v1/jobs`, { headers: { cookie: cookie.split(";")[0] } });
  assertEquals(api.status, 401);
  await api.body?.cancel();
});
