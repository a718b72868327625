/**
 * Signatures written are accounted for (issue 15 §4): `airlock serve` shutting down with a grace period much
 * shorter than its jobs cancels only work not yet sent. Every signature that reached the registry is audited
 * (`audit:` line) and reported `signed` by its image; an image whose writes never went out is reported failed
 * with nothing in the registry. The registry sits behind the testbed proxy (a fake) that slows the `.sig` manifest
 * writes down, so that the shutdown lands in the middle of the job.
 *
 * @module
 */
import { parsePublicKeyPem, verifySignature } from "../../core/signature/public_key.ts";
import { assert, assertEquals } from "../assert.ts";
import { pushSingle, startProxy, startRegistry, tempDir } from "../testbed/mod.ts";
import { b64decode, readSig, SIG_ANNOTATION, type SigLayer } from "../testbed/signatures.ts";
import { startService } from "./helpers.ts";

const IMAGES = 8;

Deno.test("serve: a shutdown shorter than the job cancels no signature already sent; each is audited and reported signed", async () => {
  await using tmp = await tempDir("airlock-serve-shutdown-");
  await using reg = await startRegistry();
  await using proxy = await startProxy(reg.url);
  // Every .sig manifest write takes 300 ms to be answered: the job is still writing when the grace period ends.
  proxy.addRule({
    method: "PUT",
    path: /\/manifests\/sha256-[0-9a-f]+\.sig$/,
    action: {
      kind: "rewrite",
      fn: async (res) => {
        await new Promise((r) => setTimeout(r, 300));
        return res;
      },
    },
  });
  const repos = Array.from({ length: IMAGES }, (_, i) => `shutdown/app${i}`);
  const images = await Promise.all(repos.map((r, i) => pushSingle(reg, r, "v1", `serve-shutdown-${i}`)));
  const svc = await startService({ dir: tmp.path, config: { shutdownTimeoutMs: 50 } });
  const publicKey = parsePublicKeyPem(await (await svc.call("/v1/public-key")).text());

  const submitted = await svc.post("/v1/sign", {
    images: repos.map((r) => `${proxy.host}/${r}:v1`),
    jobs: 2,
  });
  assertEquals(submitted.status, 202);
  const id = submitted.body.id as string;
  // Shut down as soon as the first signature write has been sent.
  while (proxy.count("PUT", /\.sig$/) === 0) await new Promise((r) => setTimeout(r, 5));
  await svc.server.shutdown();

  const job = svc.server.jobs.get(id)!;
  assertEquals(job.state, "cancelled");
  const audits = svc.log.filter((l) => l.includes("audit: signature written"));
  let inRegistry = 0;
  for (const [i, img] of images.entries()) {
    const sig = await readSig(reg, repos[i], img.top.digest);
    const ours: SigLayer[] = [];
    for (const l of sig?.layers ?? []) {
      const s = b64decode(l.desc.annotations?.[SIG_ANNOTATION] ?? "");
      if (await verifySignature(publicKey, l.payload, s)) ours.push(l);
    }
    const result = job.images[i];
    if (ours.length > 0) {
      inRegistry++;
      assertEquals(
        result.status,
        "signed",
        `${repos[i]} is signed in the registry: ${JSON.stringify(result)}`,
      );
      assertEquals(result.targets.map((t) => t.layerDigest), [ours[0].desc.digest]);
      assert(
        audits.some((a) =>
          a.includes(`digest=${img.top.digest}`) && a.includes(`layer=${ours[0].desc.digest}`)
        ),
        `no audit line for ${repos[i]}`,
      );
    } else {
      assertEquals(result.status, "failed", `${repos[i]} has no signature: ${JSON.stringify(result)}`);
    }
  }
  assert(inRegistry > 0, "nothing was written before the shutdown: the test proves nothing");
  assert(inRegistry < IMAGES, "everything was written before the shutdown: the test proves nothing");
  assertEquals(audits.length, inRegistry, audits.join("\n"));
});
