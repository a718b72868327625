/**
 * The requests signing makes, as a proxy in front of a real registry sees them (the testbed proxy, a fake that
 * forwards and counts):
 * - a single-arch image, first signature: read the image and its config, one `GET` of the `.sig` tag, two
 *   monolithic `POST` + `PUT` uploads, one `PUT` of the `.sig` manifest, one confirmation `HEAD` — even when the
 *   registry is slow to answer the `.sig` read (well within S, so no second read);
 * - a multi-arch image (3 tags of one repository): the index, one tag listing instead of a `GET` per tag, then
 *   per signature the uploads, the `PUT` and one confirmation `HEAD`: 20 requests for 3 signatures (6.67 each);
 * - a re-run only reads (the payload blob, to compare);
 * - a write whose answer is lost is found in the registry and reported signed.
 * The image manifest is never written.
 *
 * @module
 */
import { openKey } from "../../backends/key_backend.ts";
import type { KeyBackend } from "../../backends/key_types.ts";
import { builtinDefaultConfig } from "../../core/config/registries_d.ts";
import { parseImageList, resolveImageList } from "../../core/image_list.ts";
import { RegistryClient } from "../../core/registry/client.ts";
import { signImages } from "../../core/sign.ts";
import { assertEquals } from "../assert.ts";
import { makeKey } from "../testbed/keys.ts";
import {
  buildImage,
  buildMultiArchImage,
  loseAnswerRule,
  pushImage,
  rawSink,
  startProxy,
  startRegistry,
  tempDir,
  type TestProxy,
} from "../testbed/mod.ts";
import { readSig } from "../testbed/signatures.ts";

/** A slow answer, though well within S (`WRITE_WINDOW.readMaxAgeMs`, 500 ms): it must not cause a second read. */
const SLOW_MS = 150;

/** Signs `repo:v1` through the proxy at `host`, as a one-line image list. */
function signLine(host: string, repo: string, key: KeyBackend, client: RegistryClient) {
  return signImages(resolveImageList(parseImageList(`${host}/${repo}:v1`)), {
    client,
    key,
    registriesD: builtinDefaultConfig(),
    jobs: 1,
    timeoutMs: 60_000,
  });
}

/** What the proxy saw from request `from` on, as "METHOD what status" for the requests of `repo` (not the ping). */
function seenFrom(proxy: TestProxy, repo: string, from: number): string[] {
  return proxy.requests.slice(from).filter((r) => r.path.startsWith(`/v2/${repo}/`)).map((r) => {
    const what = /\/manifests\/sha256-[0-9a-f]{64}\.sig$/.test(r.path)
      ? ".sig"
      : r.path === `/v2/${repo}/manifests/v1`
      ? "image"
      : r.path === `/v2/${repo}/tags/list`
      ? "tags"
      : r.path.startsWith(`/v2/${repo}/blobs/uploads/`)
      ? "upload"
      : r.path.startsWith(`/v2/${repo}/blobs/`)
      ? "blob"
      : r.path;
    return `${r.method} ${what} ${r.status}`;
  });
}

Deno.test("sign: a single-arch first signature costs exactly GET .sig, 2 × (POST + PUT), PUT .sig, HEAD .sig; a re-run only reads", async () => {
  await using tmp = await tempDir("airlock-sign-requests-");
  await using reg = await startRegistry();
  await using proxy = await startProxy(reg.url);
  const img = await buildImage({ seed: "requests" });
  const repo = "req/app";
  await pushImage(img, { registry: reg.host, repository: repo }, "v1", rawSink(reg.url));
  const sigPath = `/v2/${repo}/manifests/sha256-${img.top.digest.slice("sha256:".length)}.sig`;
  // The registry answers the read of the (absent) .sig tag slowly.
  const slow = proxy.addRule({
    method: "GET",
    path: sigPath,
    action: {
      kind: "rewrite",
      fn: async (res) => {
        await new Promise((r) => setTimeout(r, SLOW_MS));
        return res;
      },
    },
  });

  const files = await makeKey(tmp.path, "k", "pw");
  const key = await openKey(files.key, { passphrase: "pw", env: () => undefined });
  const client = new RegistryClient({ tlsVerify: false });
  try {
    const sign = () => signLine(proxy.host, repo, key, client);
    const seen = (from: number) => seenFrom(proxy, repo, from);

    const first = await sign();
    assertEquals(first.lines.map((l) => l.status), ["signed"]);
    assertEquals(
      slow.applied,
      1,
      "the .sig tag was read once, though its answer was slow",
    );
    const firstRun = seen(0);
    // The image and its config (the platform filter needs it), then the .sig tag.
    assertEquals(firstRun.slice(0, 3), ["GET image 200", "GET blob 200", "GET .sig 404"]);
    // The two blobs go up in parallel, so their requests may interleave; each is one POST and one PUT.
    assertEquals(firstRun.slice(3, 7).sort(), [
      "POST upload 202",
      "POST upload 202",
      "PUT upload 201",
      "PUT upload 201",
    ]);
    assertEquals(firstRun.slice(7), ["PUT .sig 201", "HEAD .sig 200"]);

    // A re-run finds the equal signature: it reads the image, its config, the tag and the payload blob, and
    // writes nothing.
    const mark = proxy.requests.length;
    const second = await sign();
    assertEquals(second.lines.map((l) => l.status), ["unchanged"]);
    assertEquals(seen(mark), ["GET image 200", "GET blob 200", "GET .sig 200", "GET blob 200"]);
  } finally {
    client.close();
    await key.close();
  }
});

Deno.test("sign: a signature whose write answer was lost is found in the registry and reported signed, not failed", async () => {
  await using tmp = await tempDir("airlock-sign-lost-");
  await using reg = await startRegistry();
  await using proxy = await startProxy(reg.url);
  const img = await buildImage({ seed: "lost-answer" });
  const repo = "lost/app";
  await pushImage(img, { registry: reg.host, repository: repo }, "v1", rawSink(reg.url));
  const sigPath = `/v2/${repo}/manifests/sha256-${img.top.digest.slice("sha256:".length)}.sig`;
  // The registry stores the .sig manifest but every answer to a PUT of it is lost (Deno's HTTP client sends a
  // request again by itself once when a kept-alive connection closes without an answer; sending the same PUT
  // again and again would never learn that it landed).
  proxy.addRule(loseAnswerRule(undefined, { method: "PUT", path: sigPath }));
  const files = await makeKey(tmp.path, "k", "pw");
  const key = await openKey(files.key, { passphrase: "pw", env: () => undefined });
  const client = new RegistryClient({ tlsVerify: false, retryBaseDelayMs: 10 });
  try {
    const report = await signLine(proxy.host, repo, key, client);
    assertEquals(report.failed, []);
    assertEquals(report.lines.map((l) => l.status), ["signed"]);
    // Written once (and re-sent once by the HTTP client), then read to see whether it landed: it had.
    assertEquals(
      proxy.requests.filter((r) => r.path === sigPath && r.method !== "HEAD").map((r) => r.method),
      [
        "GET",
        "PUT",
        "PUT",
        "GET",
      ],
    );
    const sig = await readSig(reg, repo, img.top.digest);
    assertEquals(sig?.layers.length, 1);
  } finally {
    client.close();
    await key.close();
  }
});

Deno.test("sign: a multi-arch image costs its index, one tag listing, then per signature 2 × (POST + PUT), PUT .sig, HEAD .sig", async () => {
  await using tmp = await tempDir("airlock-sign-requests-multi-");
  await using reg = await startRegistry();
  await using proxy = await startProxy(reg.url);
  const img = await buildMultiArchImage({ seed: "requests-multi" });
  const repo = "req/multi";
  await pushImage(img, { registry: reg.host, repository: repo }, "v1", rawSink(reg.url));
  const files = await makeKey(tmp.path, "k", "pw");
  const key = await openKey(files.key, { passphrase: "pw", env: () => undefined });
  const client = new RegistryClient({ tlsVerify: false });
  try {
    const sign = () => signLine(proxy.host, repo, key, client);
    const seen = (from: number) => seenFrom(proxy, repo, from);

    const first = await sign();
    assertEquals(first.lines.map((l) => l.status), ["signed"]);
    assertEquals(first.lines[0].result?.targets.length, 3);
    const run = seen(0);
    // The index, then one listing that says none of the 3 .sig tags exists: no GET of any of them.
    assertEquals(run.slice(0, 2), ["GET image 200", "GET tags 200"]);
    // The three signatures go up in parallel: their uploads and PUTs interleave.
    assertEquals(run.slice(2, 17).sort(), [
      ...Array(6).fill("POST upload 202"),
      ...Array(3).fill("PUT .sig 201"),
      ...Array(6).fill("PUT upload 201"),
    ]);
    // One confirmation HEAD per tag, S + T after the writes.
    assertEquals(run.slice(17), Array(3).fill("HEAD .sig 200"));
    assertEquals(run.length, 20, "6.67 requests per signature");

    // A re-run: the index, the listing (all three present), then each tag and its payload, to compare. No write.
    const mark = proxy.requests.length;
    const second = await sign();
    assertEquals(second.lines.map((l) => l.status), ["unchanged"]);
    const again = seen(mark);
    assertEquals(again.slice(0, 2), ["GET image 200", "GET tags 200"]);
    assertEquals(again.slice(2).sort(), [...Array(3).fill("GET .sig 200"), ...Array(3).fill("GET blob 200")]);
  } finally {
    client.close();
    await key.close();
  }
});
