/**
 * The verdict cache with a scripted registry and a hand-moved clock: verdicts and tag resolutions expire with the
 * TTL, refusals are kept at most 30 s, failures never, concurrent checks share one evaluation, and an evaluation
 * that outlives its review still fills the cache. (The registry tests prove the same with the fault proxy.)
 *
 * @module
 */
import { assertEquals } from "../assert.ts";
import type { Verdict } from "../../core/admission/evaluate.ts";
import { VerdictCache } from "../../core/admission/verdicts.ts";
import { parseReference, type Reference } from "../../core/reference.ts";

const D1 = "sha256:" + "1".repeat(64);
const D2 = "sha256:" + "2".repeat(64);

function harness(
  o: { ttlMs?: number; verdict?: (ref: Reference, digest: string | undefined) => Verdict } = {},
) {
  let now = 1_000_000;
  const calls = { resolve: 0, evaluate: 0 };
  let tagDigest = D1;
  const gates: (() => void)[] = [];
  let hold = false;
  const cache = new VerdictCache({
    ttlMs: o.ttlMs ?? 60_000,
    now: () => now,
    resolve: () => {
      calls.resolve++;
      return Promise.resolve(tagDigest);
    },
    evaluate: async (ref, digest) => {
      calls.evaluate++;
      if (hold) await new Promise<void>((r) => gates.push(r));
      return o.verdict?.(ref, digest) ??
        { allowed: true, digest: digest ?? ref.digest, reason: "ok", kind: "verified" };
    },
  });
  return {
    cache,
    calls,
    advance: (ms: number) => now += ms,
    moveTag: (d: string) => tagDigest = d,
    hold: (on: boolean) => hold = on,
    release: () => gates.splice(0).forEach((g) => g()),
  };
}

Deno.test("verdict cache: hits within the TTL, a moved tag seen after it, digests judged by digest", async () => {
  const h = harness({ ttlMs: 60_000 });
  const tag = parseReference("reg.io/app:1");
  let v = await h.cache.check(tag);
  assertEquals([v.allowed, v.digest, v.cached], [true, D1, false]);
  assertEquals(h.calls, { resolve: 1, evaluate: 1 });
  v = await h.cache.check(tag);
  assertEquals([v.cached, h.calls.resolve, h.calls.evaluate], [true, 1, 1]);

  // The tag moves: within the TTL the old resolution stands (by design, at most the TTL).
  h.moveTag(D2);
  h.advance(59_000);
  assertEquals((await h.cache.check(tag)).digest, D1);
  // After the TTL the tag is resolved again and the new digest judged.
  h.advance(2_000);
  v = await h.cache.check(tag);
  assertEquals([v.digest, v.cached, h.calls.resolve, h.calls.evaluate], [D2, false, 2, 2]);

  // A digest reference (with or without a tag beside it) is judged by its digest alone, no resolution.
  v = await h.cache.check(parseReference(`reg.io/app:1@${D1}`));
  assertEquals([v.digest, v.cached, h.calls.resolve], [D1, false, 2]);
  v = await h.cache.check(parseReference(`reg.io/app@${D1}`));
  assertEquals([v.cached, h.calls.evaluate], [true, 3]);
  assertEquals(h.cache.stats.hits >= 3, true);
});

Deno.test("verdict cache: refusals kept at most 30 s, failures never, TTL 0 keeps nothing", async () => {
  let kind: Verdict["kind"] = "rejected";
  const h = harness({
    ttlMs: 300_000,
    verdict: (_r, d) => ({ allowed: false, digest: d, reason: "no signatures found", kind }),
  });
  const ref = parseReference("reg.io/unsigned:1");
  await h.cache.check(ref);
  assertEquals((await h.cache.check(ref)).cached, true);
  h.advance(30_001);
  assertEquals((await h.cache.check(ref)).cached, false);
  assertEquals(h.calls.evaluate, 2);
  kind = "error";
  h.advance(30_001);
  await h.cache.check(ref);
  assertEquals((await h.cache.check(ref)).cached, false);
  assertEquals(h.calls.evaluate, 4);

  const none = harness({ ttlMs: 0 });
  await none.cache.check(ref);
  await none.cache.check(ref);
  assertEquals(none.calls, { resolve: 2, evaluate: 2 });
});

Deno.test("verdict cache: concurrent checks share one evaluation, which fills the cache after its callers left", async () => {
  const h = harness();
  h.hold(true);
  const ref = parseReference("reg.io/app:1");
  const all = Promise.all(Array.from({ length: 20 }, () => h.cache.check(ref)));
  await new Promise((r) => setTimeout(r, 10));
  assertEquals(h.calls, { resolve: 1, evaluate: 1 });
  h.release();
  const vs = await all;
  assertEquals(vs.every((v) => v.allowed && v.digest === D1), true);
  assertEquals((await h.cache.check(ref)).cached, true);
  assertEquals(h.calls.evaluate, 1);
});

Deno.test("verdict cache: close() refuses what is waiting and what comes later", async () => {
  const h = harness();
  h.cache.close();
  const v = await h.cache.check(parseReference("reg.io/app:1"));
  assertEquals([v.allowed, v.kind, v.code], [false, "error", "UNAVAILABLE"]);
});

Deno.test("verdict cache: an evaluation is cancelled at the background limit and answers error", async () => {
  let aborted = false;
  const cache = new VerdictCache({
    ttlMs: 60_000,
    backgroundLimitMs: 50,
    resolve: () => Promise.resolve(D1),
    evaluate: (_ref, _digest, signal) =>
      new Promise<Verdict>((resolve) =>
        signal.addEventListener("abort", () => {
          aborted = true;
          resolve({ allowed: false, reason: "cancelled", kind: "error", code: "CANCELLED" });
        })
      ),
  });
  const v = await cache.check(parseReference("reg.io/slow:1"));
  assertEquals([aborted, v.allowed, v.kind], [true, false, "error"]);
});
