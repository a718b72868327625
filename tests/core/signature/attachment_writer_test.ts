/**
 * The attachment writer against a real registry: a stale write by a writer on "another host" (its own lock
 * directory) that drops a layer is found by the confirmation and repaired; writers sharing a lock directory never
 * drop each other's layers even when both read before either writes; the confirmation waits follow the spans.
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
  confirmWaitMs,
  holdsLayer,
} from "../../../core/signature/attachment_writer.ts";
import { ANNOTATION_SIGNATURE } from "../../../core/signature/attachments.ts";
import { sha256Digest } from "../../../core/encoding/digest.ts";
import { assert, assertEquals } from "../../assert.ts";
import { pushSingle, startRegistry, tempDir } from "../../testbed/mod.ts";

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

Deno.test("attachment writer: a layer dropped by a stale write on another host is written again by confirm", async () => {
  await using tmp = await tempDir("airlock-writer-");
  await using reg = await startRegistry();
  const img = await pushSingle(reg, "w/img", "v1", "writer-1");
  const client = new RegistryClient({ tlsVerify: false });
  // Two "hosts": separate lock directories, so only the confirmation protects them from each other.
  const hostA = new AttachmentWriter(client, {
    hostLock: new HostLock({ dir: `${tmp.path}/a` }),
    confirmDelayMs: 20,
  });
  const hostB = new AttachmentWriter(client, {
    hostLock: new HostLock({ dir: `${tmp.path}/b` }),
    confirmDelayMs: 20,
  });
  const a = layerAppend(reg.host, img.top.digest, "A");
  const b = layerAppend(reg.host, img.top.digest, "B");

  // A reads (the tag does not exist yet), B appends and writes, then A writes what it read plus its layer.
  const staleForA = await readAttachment(client, a.repo, a.digest);
  assertEquals(staleForA, undefined);
  const pendingB = await hostB.append(b);
  const digestA = await hostA.appendTo(a, staleForA);
  const afterStale = await readAttachment(client, a.repo, a.digest);
  assertEquals(afterStale?.manifestDigest, digestA);
  assert(!holdsLayer(afterStale, b), "the stale write was expected to drop B's layer");

  await hostB.confirm([pendingB]);
  const final = await readAttachment(client, a.repo, a.digest);
  assert(holdsLayer(final, a), "A's layer was lost by the repair");
  assert(holdsLayer(final, b), "B's layer was not written again");
  assertEquals(final?.layers.length, 2);
});

Deno.test("attachment writer: 6 writers of one host, started together, each keep their layer without confirming", async () => {
  await using tmp = await tempDir("airlock-writer-");
  await using reg = await startRegistry();
  const img = await pushSingle(reg, "w/img", "v1", "writer-2");
  const writers = Array.from(
    { length: 6 },
    () =>
      new AttachmentWriter(new RegistryClient({ tlsVerify: false }), {
        hostLock: new HostLock({ dir: tmp.path }),
      }),
  );
  const appends = writers.map((_, i) => layerAppend(reg.host, img.top.digest, `W${i}`));
  await Promise.all(writers.map((w, i) => w.append(appends[i])));
  const final = await readAttachment(
    new RegistryClient({ tlsVerify: false }),
    appends[0].repo,
    img.top.digest,
  );
  assertEquals(appends.filter((p) => !holdsLayer(final, p)).map((p) => p.label), []);
  assertEquals(final?.layers.length, 6);
});

Deno.test("attachment writer: the confirmation waits 1.5 times the slowest read-to-write span, never less than the base", () => {
  // Unloaded registry: spans well under the base, so the base decides.
  assertEquals(confirmWaitMs([{ spanMs: 12 }, { spanMs: 30 }], 100), 100);
  // Loaded registry: the slowest write of the batch decides (1.5 × 400 ms).
  assertEquals(confirmWaitMs([{ spanMs: 120 }, { spanMs: 400 }, { spanMs: 250 }], 100), 600);
  // Nothing written: only the base.
  assertEquals(confirmWaitMs([], 100), 100);
});
