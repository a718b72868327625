/**
 * The admission webhook on signatures made by skopeo 1.14.5 (the peer-skopeo fixture registry, served by a real
 * `docker-registry` from a copy of the storage): the verdicts are the ones skopeo itself gave for the same
 * references and keys (tests/fixtures/peer-skopeo/CASES.md), with the policy's `remapIdentity` standing in for
 * the `registry.test:5000` host the signatures name, and cosign mode as the fixture's cosign-style checks say.
 *
 * @module
 */
import { join } from "node:path";
import { assertEquals } from "../assert.ts";
import {
  loadPeerSkopeoCases,
  type PeerSkopeoCase,
  remapPolicy,
  startPeerSkopeoRegistry,
  tempDir,
} from "../testbed/mod.ts";
import { makeWebhookTls, responseOf, startWebhook, type TestWebhook } from "./helpers.ts";
import { container, type Json, pod, podSpec, review } from "./reviews.ts";

const NO_SIGNATURE = "A signature was required, but no signature exists";
const CRYPTO =
  "cryptographic signature verification failed: invalid signature when validating ASN.1 encoded signature";

function answer(body: Json): string {
  const r = responseOf(body);
  return r.allowed === true ? "allowed" : ((r.status as Json).message as string);
}

/** The webhook's answer to a pod of one container `c` running `image`, for each image in turn. */
async function answers(hook: TestWebhook, images: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const image of images) {
    out.push(
      answer(
        (await hook.post(
          "validate",
          review(pod("shop", "p", podSpec({ containers: [container("c", image)] }))),
        )).body,
      ),
    );
  }
  return out;
}

/** The denial message naming `image` in container `c`. */
function deny(image: string, reason: string): string {
  return `airlock: image "${image}" (container "c") denied: ${reason}`;
}

Deno.test("admission on skopeo's signatures: policy mode agrees with skopeo, per platform the nodes run", async () => {
  const { cases, keys } = await loadPeerSkopeoCases();
  const c = (id: string) => cases.find((x) => x.id === id)!;
  await using tmp = await tempDir("airlock-admission-skopeo-");
  await using reg = await startPeerSkopeoRegistry();
  const local = (k: PeerSkopeoCase) => `${reg.host}/${k.repository}:${k.tag}`;
  const localDigest = (k: PeerSkopeoCase) => `${reg.host}/${k.repository}@${k.digest}`;
  const policy = (key: string) => remapPolicy(reg.host, keys[key].publicKey, "registry.test:5000");
  await Deno.writeTextFile(join(tmp.path, "alice.json"), policy("alice"));
  await Deno.writeTextFile(join(tmp.path, "mallory.json"), policy("mallory"));
  const tls = await makeWebhookTls(tmp.path);

  const run = async (config: string, images: string[]) => {
    const dir = await Deno.makeTempDir({ dir: tmp.path });
    await Deno.copyFile(join(tmp.path, "alice.json"), join(dir, "alice.json"));
    await Deno.copyFile(join(tmp.path, "mallory.json"), join(dir, "mallory.json"));
    await using hook = await startWebhook({ dir, config, tls });
    return await answers(hook, images);
  };

  // alice's policy, nodes amd64 + arm64 (the default).
  let images = [
    local(c("A1")),
    localDigest(c("A1")),
    local(c("A2")),
    local(c("A3")),
    local(c("A4")),
    local(c("A5")),
    local(c("A5-donor")),
    localDigest(c("A5-donor")),
    local(c("A6")),
    local(c("A7")),
  ];
  assertEquals(await run("policy: alice.json\n", images), [
    "allowed",
    "allowed",
    "allowed",
    "allowed",
    deny(images[4], NO_SIGNATURE),
    deny(images[5], `Signature for digest ${c("A5-donor").digest} does not match`),
    deny(images[6], `Signature for identity "registry.test:5000/a/swapped:v1" is not accepted`),
    "allowed",
    deny(images[8], `Signature for identity "registry.test:5000/a/elsewhere:v1" is not accepted`),
    deny(images[9], `linux/arm64/v8: ${NO_SIGNATURE}`),
  ]);
  // Nodes that run only amd64: A7's signed platform is all they pull. Nodes no image is built for: refused.
  assertEquals(await run("policy: alice.json\narch: [amd64]\n", [local(c("A7"))]), ["allowed"]);
  images = [local(c("A2")), local(c("A1"))];
  assertEquals(await run("policy: alice.json\narch: [s390x]\n", images), [
    deny(images[0], "no manifest for the nodes' platforms (os linux, arch s390x)"),
    deny(images[1], "no manifest for the nodes' platforms (os linux, arch s390x)"),
  ]);
  // mallory's key: skopeo's wrong-key answer.
  images = [local(c("A1")), local(c("A3"))];
  assertEquals(await run("policy: mallory.json\n", images), [
    deny(images[0], CRYPTO),
    deny(images[1], `None of the signatures were accepted, reasons: ${CRYPTO}; ${CRYPTO}`),
  ]);
});

Deno.test("admission on skopeo's signatures: cosign mode agrees with the fixture's cosign-style checks", async () => {
  const { cases, keys } = await loadPeerSkopeoCases();
  const c = (id: string) => cases.find((x) => x.id === id)!;
  await using tmp = await tempDir("airlock-admission-skopeo-cosign-");
  await using reg = await startPeerSkopeoRegistry();
  const local = (k: PeerSkopeoCase) => `${reg.host}/${k.repository}:${k.tag}`;
  await using hook = await startWebhook({
    dir: tmp.path,
    config: `cosign:\n  key: ${JSON.stringify(keys.alice.publicKey)}\n  insecureIgnoreTlog: true\n`,
  });
  const images = [
    local(c("A1")),
    local(c("A2")),
    local(c("A4")),
    local(c("A5")),
    local(c("A6")),
    local(c("A7")),
  ];
  assertEquals(await answers(hook, images), [
    "allowed",
    "allowed", // the index is signed (skopeo --all)
    deny(images[2], "no signatures found"),
    // cosign's text for a payload naming another digest (spec/cosign.md §1.5).
    deny(images[3], `no matching signatures:\ninvalid or missing digest in claim: ${c("A5-donor").digest}`),
    "allowed", // cosign ignores the identity
    deny(images[5], "no signatures found"), // only linux/amd64 is signed, not the index cosign checks
  ]);
});
