/**
 * The attachment writer against a real registry (and, for request sequences and faults, the testbed proxy — a
 * fake — in front of it):
 * - a stale write by a writer on "another host" (its own lock directory) that drops a layer is found by the
 *   confirmation and repaired; the confirmation comes no earlier than S + T after the write;
 * - a write built on a read older than S checks the tag first, and merges again when it changed (bounded
 *   staleness: no layer dropped at all);
 * - a tag that changed but still holds the layer is watched again until it stays put for S + T;
 * - one confirmation read serves every layer written to one tag;
 * - a PUT whose answer is lost is not sent again: the tag is read, and the layer found there;
 * - a confirmation read that fails is tried again a window later; one that keeps failing is an error;
 * - writers sharing a lock directory never drop each other's layers even when all start together.
 *
 * @module
 */
import { parseReference } from "../../../core/reference.ts";
import { RegistryClient } from "../../../core/registry/client.ts";
import { HostLock } from "../../../core/host_lock.ts";
import { readAttachment } from "../../../core/signature/attachment_store.ts";
import {
  type AttachmentAppend,
  AttachmentWriter,
  holdsLayer,
} from "../../../core/signature/attachment_writer.ts";
import { LatencyGauge, type WriteWindow } from "../../../core/signature/write_window.ts";
import { ANNOTATION_SIGNATURE } from "../../../core/signature/attachments.ts";
import { sha256Digest } from "../../../core/encoding/digest.ts";
import { isAirlockError } from "../../../core/errors.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../../assert.ts";
import {
  loseAnswerRule,
  pushSingle,
  serverErrorRule,
  startProxy,
  startRegistry,
  tempDir,
} from "../../testbed/mod.ts";

/** A short window: nothing but the test writes these tags. */
const WINDOW: WriteWindow = { readMaxAgeMs: 150, applyMinMs: 50 };

function layerAppend(host: string, digest: string, name: string): AttachmentAppend {
  const payload = new TextEncoder().encode(`{"payload of":"${name}"}`);
  return {
    repo: parseReference(`${host}/w/img`),
    digest,
    layer: { payload, annotations: { [ANNOTATION_SIGNATURE]: btoa(`signature of ${name}`) } },
    layerDigest: sha256Digest(payload),
    label: `layer ${name}`,
  };
}

/** A writer on its own "host": its own lock directory, so only the registry is shared with other writers. */
function hostWriter(client: RegistryClient, dir: string, window = WINDOW): AttachmentWriter {
  return new AttachmentWriter(client, { hostLock: new HostLock({ dir }), window });
}

/** S long enough that a read made before another writer's append is still young enough to write from. */
const LONG_S: WriteWindow = { readMaxAgeMs: 1000, applyMinMs: 50 };

Deno.test("attachment writer: a layer dropped by a stale write on another host is written again by confirm, S + T later", async () => {
  await using tmp = await tempDir("airlock-writer-");
  await using reg = await startRegistry();
  const img = await pushSingle(reg, "w/img", "v1", "writer-1");
  const client = new RegistryClient({ tlsVerify: false });
  const hostA = hostWriter(client, `${tmp.path}/a`, LONG_S);
  const hostB = hostWriter(client, `${tmp.path}/b`, LONG_S);
  const a = layerAppend(reg.host, img.top.digest, "A");
  const b = layerAppend(reg.host, img.top.digest, "B");
  try {
    // A reads (the tag does not exist yet), B appends and writes, then A writes what it read plus its layer —
    // within S of its read, as the rule allows.
    const staleForA = await hostA.readTag(a.repo, a.digest);
    assertEquals(staleForA.stored, undefined);
    const pendingB = await hostB.append(b);
    const pendingA = await hostA.appendLocked(a, { base: staleForA });
    const afterStale = await readAttachment(client, a.repo, a.digest);
    assertEquals(afterStale?.manifestDigest, pendingA.seen.manifestDigest);
    assert(!holdsLayer(afterStale, b), "the stale write was expected to drop B's layer");

    await hostB.confirm([pendingB]);
    const waited = performance.now() - pendingB.seen.at;
    assert(
      waited >= LONG_S.readMaxAgeMs + LONG_S.applyMinMs,
      `confirmed ${waited} ms after the write, before S + T`,
    );
    const final = await readAttachment(client, a.repo, a.digest);
    assert(holdsLayer(final, a), "A's layer was lost by the repair");
    assert(holdsLayer(final, b), "B's layer was not written again");
    assertEquals(final?.layers.length, 2);
    await hostA.confirm([pendingA]);
  } finally {
    client.close();
  }
});

Deno.test("attachment writer: a write built on a read older than S checks the tag first and merges again, dropping nothing", async () => {
  await using tmp = await tempDir("airlock-writer-");
  await using reg = await startRegistry();
  const img = await pushSingle(reg, "w/img", "v1", "writer-2");
  const client = new RegistryClient({ tlsVerify: false });
  const hostA = hostWriter(client, `${tmp.path}/a`);
  const hostB = hostWriter(client, `${tmp.path}/b`);
  const a = layerAppend(reg.host, img.top.digest, "A");
  const b = layerAppend(reg.host, img.top.digest, "B");
  try {
    const staleForA = await hostA.readTag(a.repo, a.digest);
    await hostB.append(b);
    await new Promise((r) => setTimeout(r, WINDOW.readMaxAgeMs + 20));
    await hostA.appendLocked(a, { base: staleForA });
    // Without any confirmation: A's read was too old, so A looked again, saw B's write and kept it.
    const now = await readAttachment(client, a.repo, a.digest);
    assert(holdsLayer(now, a) && holdsLayer(now, b), "a write built on an old read dropped a layer");
    assertEquals(now?.layers.length, 2);
  } finally {
    client.close();
  }
});

Deno.test("attachment writer: one confirmation read per tag; a tag that changed but holds the layer is watched again", async () => {
  await using tmp = await tempDir("airlock-writer-");
  await using reg = await startRegistry();
  await using proxy = await startProxy(reg.url);
  const img = await pushSingle(reg, "w/img", "v1", "writer-3");
  const client = new RegistryClient({ tlsVerify: false });
  const writer = hostWriter(client, `${tmp.path}/a`);
  const other = hostWriter(client, `${tmp.path}/b`);
  const [x, y, z] = ["X", "Y", "Z"].map((n) => layerAppend(proxy.host, img.top.digest, n));
  const sigPath = `/v2/w/img/manifests/sha256-${img.top.digest.slice(7)}.sig`;
  try {
    // Two layers written to one tag by one writer: one HEAD confirms both.
    const px = await writer.append(x);
    const py = await writer.append(y);
    const mark = proxy.requests.length;
    await writer.confirm([px, py]);
    assertEquals(
      proxy.requests.slice(mark).map((r) =>
        `${r.method} ${r.path === sigPath ? ".sig" : r.path} ${r.status}`
      ),
      ["HEAD .sig 200"],
    );

    // Another writer appends after our write (keeping our layers): the confirmation sees a new manifest that
    // holds them, and waits for that one to stay put for S + T too, now reading every quarter window (others are
    // writing the tag) so that a further change would be seen early.
    const pz = await writer.append(z);
    const mark2 = proxy.requests.length;
    await other.append(layerAppend(proxy.host, img.top.digest, "W"));
    await writer.confirm([pz]);
    const seen = proxy.requests.slice(mark2).filter((r) => r.method !== "POST" && !r.path.includes("/blobs/"))
      .map((r) => `${r.method} ${r.path === sigPath ? ".sig" : r.path} ${r.status}`);
    assertEquals(seen.slice(0, 4), ["GET .sig 200", "PUT .sig 201", "HEAD .sig 200", "GET .sig 200"]);
    const polls = seen.slice(4);
    assert(polls.length >= 2 && polls.length <= 6, `${polls.length} reads after the change`);
    assert(polls.every((r) => r === "HEAD .sig 200"), polls.join(", "));
  } finally {
    client.close();
  }
});

Deno.test("attachment writer: a PUT whose answer is lost is not sent again blindly: the tag is read and the layer found", async () => {
  await using tmp = await tempDir("airlock-writer-");
  await using reg = await startRegistry();
  await using proxy = await startProxy(reg.url);
  const img = await pushSingle(reg, "w/img", "v1", "writer-4");
  const client = new RegistryClient({ tlsVerify: false, retryBaseDelayMs: 10 });
  // S far longer than the test: on a loaded machine the 404 read must not age into an extra HEAD, so the
  // requests seen are only those of the lost answer.
  const writer = hostWriter(client, `${tmp.path}/a`, { readMaxAgeMs: 3_000, applyMinMs: 50 });
  const a = layerAppend(proxy.host, img.top.digest, "A");
  const sigPath = `/v2/w/img/manifests/sha256-${img.top.digest.slice(7)}.sig`;
  // The registry stores the manifest; its answer never arrives (twice: Deno's HTTP client sends a request once
  // more by itself when a kept-alive connection closes without an answer).
  proxy.addRule(loseAnswerRule(2, { method: "PUT", path: sigPath }));
  try {
    const p = await writer.append(a);
    const ops = proxy.requests.filter((r) => r.path === sigPath).map((r) => `${r.method} ${r.status}`);
    assertEquals(ops, ["GET 404", "PUT 201", "PUT 201", "GET 200"]);
    assert(holdsLayer(await readAttachment(client, a.repo, a.digest), a));
    await writer.confirm([p]);
  } finally {
    client.close();
  }
});

Deno.test("attachment writer: a failing confirmation read is tried again a window later; one that keeps failing is an error", async () => {
  await using tmp = await tempDir("airlock-writer-");
  await using reg = await startRegistry();
  await using proxy = await startProxy(reg.url);
  const img = await pushSingle(reg, "w/img", "v1", "writer-5");
  const client = new RegistryClient({ tlsVerify: false, retryBaseDelayMs: 5, retries: 1 });
  const writer = hostWriter(client, `${tmp.path}/a`);
  const sigPath = `/v2/w/img/manifests/sha256-${img.top.digest.slice(7)}.sig`;
  try {
    // Four 500s: the first confirmation read (1 + 1 retry) and the second fail, the third succeeds.
    const p = await writer.append(layerAppend(proxy.host, img.top.digest, "A"));
    const rule = proxy.addRule(serverErrorRule(4, { method: "HEAD", path: sigPath }));
    await writer.confirm([p]);
    assertEquals(rule.applied, 4);

    proxy.addRule(serverErrorRule(1000, { method: "HEAD", path: sigPath }));
    const q = await writer.append(layerAppend(proxy.host, img.top.digest, "B"));
    const e = await assertRejects(() => writer.confirm([q]));
    assert(isAirlockError(e, "REGISTRY_ERROR"), String(e));
    assertStringIncludes(e.message, "layer B was written but could not be confirmed");
  } finally {
    client.close();
  }
});

Deno.test("attachment writer: 6 writers of one host, started together, each keep their layer without confirming", async () => {
  await using tmp = await tempDir("airlock-writer-");
  await using reg = await startRegistry();
  const img = await pushSingle(reg, "w/img", "v1", "writer-6");
  const clients = Array.from({ length: 6 }, () => new RegistryClient({ tlsVerify: false }));
  const writers = clients.map((c) => new AttachmentWriter(c, { hostLock: new HostLock({ dir: tmp.path }) }));
  const appends = writers.map((_, i) => layerAppend(reg.host, img.top.digest, `W${i}`));
  try {
    await Promise.all(writers.map((w, i) => w.append(appends[i])));
    const final = await readAttachment(clients[0], appends[0].repo, img.top.digest);
    assertEquals(appends.filter((p) => !holdsLayer(final, p)).map((p) => p.label), []);
    assertEquals(final?.layers.length, 6);
  } finally {
    for (const c of clients) c.close();
  }
});

Deno.test("write window: T is the least apply time, or twice the slowest request of the last minute", () => {
  let now = 0;
  const gauge = new LatencyGauge({ readMaxAgeMs: 500, applyMinMs: 500 }, () => now);
  assertEquals(gauge.applyMs(), 500);
  gauge.record(40);
  assertEquals(gauge.applyMs(), 500);
  gauge.record(900);
  assertEquals(gauge.applyMs(), 1800);
  // S + T + margin.
  assertEquals(gauge.settleMs(), 500 + 1800 + 20);
  // A minute later the slow request no longer counts.
  now += 61_000;
  gauge.record(10);
  assertEquals(gauge.applyMs(), 500);
});
