/**
 * The verdict cache and the admission timeout, proven with the test bed's fault proxy (a FAKE in front of a real
 * `docker-registry`, counting every request and delaying or failing the ones a rule names):
 *
 * - a cached verdict costs no registry request at all; after the TTL the tag is resolved again, so a tag moved to
 *   an unsigned image is denied within the TTL of the move (and, before that, pods were pinned to the signed
 *   digest);
 * - a registry slower than the admission timeout gets a denial (fail-closed) while the registry is still holding
 *   the request; the check goes on and fills the cache, so the retry is admitted without a registry request;
 * - a failing registry gets a denial that is not remembered.
 *
 * Times are never asserted: "before the registry answered" is observed, not measured.
 *
 * @module
 */
import { join } from "node:path";
import { RegistryClient } from "../../core/registry/client.ts";
import { assert, assertEquals, assertStringIncludes } from "../assert.ts";
import { pushSingle, startProxy, startRegistry, tempDir } from "../testbed/mod.ts";
import { makeKey } from "../testbed/keys.ts";
import { signInProcess } from "../testbed/signatures.ts";
import { ATTACHMENTS_ON, writeRegistriesD } from "../testbed/files.ts";
import { patchOf, responseOf, startWebhook } from "./helpers.ts";
import { container, type Json, pod, podSpec, review } from "./reviews.ts";

async function setup(dir: string) {
  const reg = await startRegistry();
  const proxy = await startProxy(reg.url);
  const key = await makeKey(dir, "trusted");
  const target = { host: proxy.host, url: proxy.url };
  const app = await pushSingle(target, "shop/app", "1", "seed-app");
  const slow = await pushSingle(target, "shop/slow", "1", "seed-slow");
  const flaky = await pushSingle(target, "shop/flaky", "1", "seed-flaky");
  const rd = await writeRegistriesD(dir, ATTACHMENTS_ON, "signer-registries.d");
  const client = new RegistryClient({ tlsVerify: false });
  try {
    await signInProcess(
      [`${proxy.host}/shop/app:1`, `${proxy.host}/shop/slow:1`, `${proxy.host}/shop/flaky:1`],
      key,
      rd,
      client,
    );
  } finally {
    client.close();
  }
  await Deno.writeTextFile(
    join(dir, "policy.json"),
    JSON.stringify({
      default: [{ type: "reject" }],
      transports: { docker: { [proxy.host]: [{ type: "sigstoreSigned", keyPath: key.pub }] } },
    }),
  );
  return { reg, proxy, app, slow, flaky };
}

function podReview(image: string): Json {
  return review(
    pod("shop", `p-${crypto.randomUUID().slice(0, 6)}`, podSpec({ containers: [container("c", image)] })),
  );
}

Deno.test("admission cache: a cached verdict asks the registry nothing; a moved tag is seen after the TTL", async () => {
  await using tmp = await tempDir("airlock-admission-cache-");
  const { reg, proxy, app } = await setup(tmp.path);
  try {
    await using hook = await startWebhook({ dir: tmp.path, config: "policy: policy.json\ncacheTTL: 2s\n" });
    const image = `${proxy.host}/shop/app:1`;
    proxy.resetCounts();
    let r = await hook.post("mutate", podReview(image));
    assertEquals(responseOf(r.body).allowed, true);
    assertEquals(patchOf(r.body)[0].value, `${image}@${app.top.digest}`);
    await proxy.settled();
    const first = proxy.requests.length;
    assert(first >= 3, `the first verdict read the registry (${first} requests)`);

    // Within the TTL: no request at all, for the same tag in other pods, as often as asked.
    proxy.resetCounts();
    for (let n = 0; n < 5; n++) {
      r = await hook.post(n % 2 === 0 ? "validate" : "mutate", podReview(image));
      assertEquals(responseOf(r.body).allowed, true);
    }
    await proxy.settled();
    assertEquals(proxy.requests.length, 0);
    assert(hook.log.filter((l) => l.includes(`image=${image}`) && l.includes("cached=true")).length >= 5);
    // The pinned form is a digest reference: judged by digest, from the cache as well.
    r = await hook.post("validate", podReview(`${image}@${app.top.digest}`));
    assertEquals(responseOf(r.body).allowed, true);

    // The tag moves to an unsigned image: within the TTL pods are still pinned to the verified digest …
    const moved = await pushSingle({ host: proxy.host, url: proxy.url }, "shop/app", "1", "seed-unsigned");
    r = await hook.post("mutate", podReview(image));
    assertEquals(patchOf(r.body)[0].value, `${image}@${app.top.digest}`);
    // … and once the TTL is over, the tag is resolved again: the new digest has no signature.
    await new Promise((resolve) => setTimeout(resolve, 2_100));
    proxy.resetCounts();
    r = await hook.post("mutate", podReview(image));
    assertEquals(responseOf(r.body).allowed, false);
    assertStringIncludes(
      (responseOf(r.body).status as Json).message as string,
      "A signature was required, but no signature exists",
    );
    assertEquals(proxy.count("GET", "/v2/shop/app/manifests/1") >= 1, true);
    assert(hook.log.some((l) => l.includes(`digest=${moved.top.digest}`)), "the denial names the new digest");
    const metrics = await (await hook.call("/metrics")).text();
    assert(/airlock_admission_cache_hits_total [1-9]/.test(metrics), metrics);
  } finally {
    await proxy.stop();
    await reg.stop();
  }
});

Deno.test("admission timeout: a slow registry gets a fail-closed denial; the check finishes behind it and fills the cache", async () => {
  await using tmp = await tempDir("airlock-admission-timeout-");
  const { reg, proxy, slow } = await setup(tmp.path);
  try {
    await using hook = await startWebhook({
      dir: tmp.path,
      config: "policy: policy.json\n",
      serve: { admissionTimeoutMs: 1_000 },
    });
    const image = `${proxy.host}/shop/slow:1`;
    // The registry holds the tag's manifest for 3 s, once.
    let held = true;
    const released = Promise.withResolvers<void>();
    proxy.addRule({
      method: "GET",
      path: "/v2/shop/slow/manifests/1",
      times: 1,
      action: {
        kind: "rewrite",
        fn: async (res) => {
          await new Promise((resolve) => setTimeout(resolve, 3_000));
          held = false;
          released.resolve();
          return res;
        },
      },
    });
    const r = await hook.post("validate", podReview(image));
    assertEquals(held, true, "the answer came while the registry still held the request");
    assertEquals(responseOf(r.body).allowed, false);
    assertStringIncludes(
      (responseOf(r.body).status as Json).message as string,
      `image "${image}" (container "c") denied: no verdict within 1s`,
    );
    assert(
      hook.log.some((l) => l.startsWith("- [WARN] admission: denied") && l.includes("no verdict within 1s")),
    );

    // The check went on: once the registry has answered and the check is done (no review asked for it since),
    // the retry is admitted from the cache, without a single registry request.
    await released.promise;
    let running = "";
    for (let n = 0; n < 100 && running !== "0"; n++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      running =
        (await (await hook.call("/metrics")).text()).match(/^airlock_admission_checks_running (\d+)$/m)![1];
    }
    assertEquals(running, "0");
    await proxy.settled();
    proxy.resetCounts();
    const again = await hook.post("mutate", podReview(image));
    assertEquals(responseOf(again.body).allowed, true);
    assertEquals(patchOf(again.body)[0].value, `${image}@${slow.top.digest}`);
    await proxy.settled();
    assertEquals(proxy.requests.length, 0);
    assert(
      hook.log.at(-1)!.includes(`image=${image} digest=${slow.top.digest} cached=true`),
      hook.log.at(-1),
    );
  } finally {
    await proxy.stop();
    await reg.stop();
  }
});

Deno.test("admission: a failing registry gets a denial that is not remembered", async () => {
  await using tmp = await tempDir("airlock-admission-flaky-");
  const { reg, proxy, flaky } = await setup(tmp.path);
  try {
    await using hook = await startWebhook({ dir: tmp.path, config: "policy: policy.json\n" });
    const image = `${proxy.host}/shop/flaky:1`;
    const rule = proxy.addRule({
      path: /^\/v2\/shop\/flaky\//,
      action: {
        kind: "respond",
        status: 403,
        body: '{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}',
      },
    });
    let r = await hook.post("validate", podReview(image));
    assertEquals(responseOf(r.body).allowed, false);
    assert(rule.applied >= 1);
    assertStringIncludes(
      (responseOf(r.body).status as Json).message as string,
      `image "${image}" (container "c") denied: `,
    );
    rule.remove();
    r = await hook.post("mutate", podReview(image));
    assertEquals(responseOf(r.body).allowed, true);
    assertEquals(patchOf(r.body)[0].value, `${image}@${flaky.top.digest}`);
  } finally {
    await proxy.stop();
    await reg.stop();
  }
});
