/**
 * The oracle-skopeo fixture (tests/fixtures/README.md): multi-arch images signed by upstream skopeo 1.14.5 as
 * `skopeo copy --all --sign-by-sigstore-private-key` writes (b/multi by tag, b/pinned by digest), as hangar v1.8
 * signs (b/hangar: each platform copied onto itself by digest), and three hand-made signatures (b/der, b/raw:
 * raw r‖s, b/sha512: a payload naming the sha512 digest). `verdicts.json` holds what skopeo decided for each
 * reference — pulled by tag or by digest, every platform (`--all`) or one — under a policy.
 *
 * Served on 127.0.0.1:PORT, the fixture's identities name `registry.test:5000`, so policies are rewritten as
 * the fixture README prescribes: scopes move to the test host, and `matchRepoDigestOrExact` becomes
 * `remapIdentity {prefix: 127.0.0.1:PORT, signedPrefix: registry.test:5000}` (the same rule after the rewrite).
 */
import { join } from "node:path";
import type { Policy } from "../../core/config/policy_types.ts";
import { parsePolicy } from "../../core/config/policy_config.ts";
import { builtinDefaultConfig } from "../../core/config/registries_d.ts";
import { parseReference } from "../../core/reference.ts";
import { RegistryClient } from "../../core/registry/client.ts";
import { evaluatePull, type PullOptions, validateImage } from "../../core/validate.ts";
import {
  airlock,
  ATTACHMENTS_ON,
  fixturePath,
  loadOracleVerdicts,
  ORACLE_SKOPEO_DIR,
  type OracleVerdict,
  show,
  signArgs,
  startOracleSkopeoRegistry,
  tempDir,
  validateArgs,
  writeList,
  writeRegistriesD,
} from "../testbed/mod.ts";
import { readSig, sigTag } from "../testbed/signatures.ts";
import { assertCleanFailure, verify } from "../verify/helpers.ts";
import { assert, assertEquals, assertStringIncludes } from "../assert.ts";

const ORACLE_HOST = "registry.test:5000";
const PEER_KEYS = fixturePath("peer-skopeo", "keys");
const ORACLE_KEYS = join(ORACLE_SKOPEO_DIR, "keys");
const INDEX = "sha256:191bf6f4f7c9f4edf32334ae71c576629951491bb73c9726326211999923bddc";
const AMD64 = "sha256:f6456d529917a58ab2537f866b9279e660eadff73cd5c1eb4c5573f073f559b8";
const ARM64 = "sha256:737649dc49c9937a8a1daffe6ea55608b7800cb3ceb6b916181051b6deda99a6";

interface JsonImage {
  status: string;
  targets: { status: string; reason: string | null; platform: string | null; identity: string }[];
  error: { message: string } | null;
}

/** A fixture policy made concrete for a registry on `host` (see the module notes). */
async function policyFor(name: string, host: string): Promise<string> {
  const keys = name === "carol.json" ? ORACLE_KEYS : PEER_KEYS;
  const text = (await Deno.readTextFile(join(ORACLE_SKOPEO_DIR, "image-policies", name))).replaceAll(
    "@KEYS@",
    keys,
  );
  const doc = JSON.parse(text) as { transports: { docker: Record<string, { signedIdentity?: unknown }[]> } };
  const scopes: Record<string, unknown[]> = {};
  for (const [scope, reqs] of Object.entries(doc.transports.docker)) {
    scopes[scope.replace(ORACLE_HOST, host)] = reqs.map((r) => {
      const id = r.signedIdentity as { type: string } | undefined;
      return id?.type === "matchRepoDigestOrExact"
        ? { ...r, signedIdentity: { type: "remapIdentity", prefix: host, signedPrefix: ORACLE_HOST } }
        : r;
    });
  }
  return JSON.stringify({ ...doc, transports: { ...doc.transports, docker: scopes } });
}

/** skopeo's reason: the text after the last `Source image rejected: `, with the image's host moved. */
function skopeoReason(v: OracleVerdict, host: string): string {
  const marker = "Source image rejected: ";
  return v.message.slice(v.message.lastIndexOf(marker) + marker.length)
    .replace(`docker://${ORACLE_HOST}/`, `docker://${host}/`)
    // containers/image ≥ 5.31 and airlock quote the identity; 5.29 did not (see peer_skopeo_test.ts).
    .replace(/^Signature for identity (\S+) is not accepted$/, 'Signature for identity "$1" is not accepted');
}

function archArgs(platform: string): string[] {
  if (platform === "linux/amd64") return ["-a", "amd64"];
  if (platform === "linux/arm64/v8") return ["-a", "arm64"];
  return []; // all platforms (the fixture's two are the default amd64,arm64 / linux) and single images
}

async function validateCli(
  dir: string,
  lines: string[],
  args: string[],
  registriesD = join(dir, "registries.d"),
): Promise<{ code: number; images: JsonImage[]; stderr: string }> {
  await writeList(join(dir, "list.txt"), lines);
  const r = await airlock(
    validateArgs({ list: "list.txt", registriesD, insecure: true, extra: ["--output", "json", ...args] }),
    { cwd: dir },
  );
  assert(r.stdout.startsWith("{"), show(r));
  return { code: r.code, images: (JSON.parse(r.stdout) as { images: JsonImage[] }).images, stderr: r.stderr };
}

Deno.test("oracle-skopeo: sign validate --policy decides every check as skopeo 1.14.5 decided it", async () => {
  await using reg = await startOracleSkopeoRegistry();
  await using tmp = await tempDir("airlock-oracle-");
  await writeRegistriesD(tmp.path, ATTACHMENTS_ON);
  const verdicts = await loadOracleVerdicts();
  assert(verdicts.length >= 18, "the fixture's checks");
  // One CLI run per (policy, platform choice); each validates all of its references.
  const groups = new Map<string, OracleVerdict[]>();
  for (const v of verdicts) {
    const k = `${v.policy}|${v.platform}|${v.registriesD ?? ""}`;
    groups.set(k, [...(groups.get(k) ?? []), v]);
  }
  let checked = 0;
  for (const group of groups.values()) {
    const { policy, platform } = group[0];
    const policyFile = join(tmp.path, `policy-${checked}.json`);
    await Deno.writeTextFile(policyFile, await policyFor(policy, reg.host));
    const lines = group.map((v) => v.reference.replace(ORACLE_HOST, reg.host));
    let rd: string | undefined;
    if (group[0].registriesD) {
      const yaml = await Deno.readTextFile(
        join(ORACLE_SKOPEO_DIR, "image-registries.d", group[0].registriesD),
      );
      rd = await writeRegistriesD(tmp.path, yaml.replaceAll(ORACLE_HOST, reg.host), `rd-${checked}`);
    }
    const r = await validateCli(tmp.path, lines, ["--policy", policyFile, ...archArgs(platform)], rd);
    assertEquals(r.code, group.every((v) => v.accepted) ? 0 : 1, r.stderr);
    group.forEach((v, i) => {
      const got = r.images[i];
      const what = `${v.id}: ${v.reference} (${v.platform}, ${v.policy})\n${JSON.stringify(got, null, 1)}`;
      if (v.accepted) {
        assertEquals(got.status, "passed", what);
        assert(got.targets.length >= 1 && got.targets.every((t) => t.status === "accepted"), what);
        if (v.platform === "all") assertEquals(got.targets.length, 2, what); // both platforms were judged
      } else {
        assertEquals(got.status, "failed", what);
        const rejected = got.targets.filter((t) => t.status === "rejected");
        assert(rejected.length > 0, what);
        // skopeo stops at its first refused platform: the first airlock refuses, in list order.
        const expected = skopeoReason(v, reg.host);
        if (expected === "A signature was required, but no signature exists" && v.registriesD) {
          // Where registries.d turns attachments off, airlock says so instead (README, sign validate).
          assert(
            rejected[0].reason?.startsWith("reading sigstore attachments is disabled by configuration"),
            what,
          );
        } else {
          assertEquals(rejected[0].reason, expected, what);
        }
      }
      checked++;
    });
  }
  assertEquals(checked, verdicts.length);
});

Deno.test("oracle-skopeo: hangar's sign validate (platforms by digest) accepts old- and new-style signatures", async () => {
  await using reg = await startOracleSkopeoRegistry();
  const client = new RegistryClient({ tlsVerify: false });
  try {
    const policy: Policy = parsePolicy(await policyFor("match.json", reg.host));
    const registriesD = builtinDefaultConfig();
    // b/hangar carries hangar's digest identities, b/multi skopeo's tag identity on every manifest, b/pinned
    // the pinned index digest: judged as hangar judges children (host/repo@<platform>, repository compared),
    // each passes by tag and by digest.
    for (const repo of ["b/hangar", "b/multi", "b/pinned"]) {
      for (const ref of [`${reg.host}/${repo}:v1`, `${reg.host}/${repo}@${INDEX}`]) {
        const r = await validateImage(parseReference(ref), { client, registriesD, policy });
        assertEquals(r.status, "passed", `${ref}: ${r.error?.message}`);
        assertEquals(r.targets.map((t) => t.platform), ["linux/amd64", "linux/arm64/v8"]);
      }
    }
    // The same hangar-signed image judged as podman pulls it by tag: refused (the oracle's B2-tag-all).
    const pulled = await validateImage(parseReference(`${reg.host}/b/hangar:v1`), {
      client,
      registriesD,
      policy,
      platformReference: "line",
    });
    assertEquals(pulled.status, "failed");
    assertStringIncludes(pulled.error!.message, `Signature for identity "${ORACLE_HOST}/b/hangar@${AMD64}"`);
  } finally {
    client.close();
  }
});

Deno.test("oracle-skopeo: re-signing a hangar-signed image adds the tag identity; podman's pull by tag then passes", async () => {
  await using reg = await startOracleSkopeoRegistry();
  await using tmp = await tempDir("airlock-oracle-resign-");
  const rd = await writeRegistriesD(tmp.path, ATTACHMENTS_ON);
  const h = reg.host;
  // A node's policy for this registry: alice's key, matchRepoDigestOrExact (no remapping: airlock signs here).
  const policyFile = join(tmp.path, "node-policy.json");
  await Deno.writeTextFile(
    policyFile,
    JSON.stringify({
      default: [{ type: "reject" }],
      transports: { docker: { [h]: [{ type: "sigstoreSigned", keyPath: join(PEER_KEYS, "alice.pub") }] } },
    }),
  );
  const byTag = `${h}/b/hangar:v1`;
  const byDigest = `${h}/b/hangar@${INDEX}`;
  const before = await validateCli(tmp.path, [byTag, byDigest], ["--policy", policyFile]);
  assertEquals(before.images.map((i) => i.status), ["failed", "failed"], before.stderr);

  const sign = async () => {
    await writeList(join(tmp.path, "sign.txt"), [byTag]);
    return await airlock(
      signArgs({
        list: "sign.txt",
        key: { key: join(PEER_KEYS, "alice.key"), pass: join(PEER_KEYS, "alice.pass") },
        registriesD: rd,
        insecure: true,
        extra: ["--output", "json"],
      }),
      { cwd: tmp.path },
    );
  };
  const first = await sign();
  assertEquals(first.code, 0, show(first));
  assertEquals(JSON.parse(first.stdout).images[0].status, "signed");
  // Each platform's .sig: hangar's layer kept first, airlock's appended (same key, same digest, but the old
  // digest identity is not the identity airlock writes, so it does not count as already signed).
  for (const digest of [AMD64, ARM64]) {
    const sig = await readSig(reg, "b/hangar", digest);
    assert(sig, sigTag(digest));
    assertEquals(sig.layers.map((l) => l.json!.critical.identity["docker-reference"]), [
      `${ORACLE_HOST}/b/hangar@${digest}`,
      byTag,
    ]);
  }
  const index = await readSig(reg, "b/hangar", INDEX);
  assertEquals(index?.layers.map((l) => l.json!.critical.identity["docker-reference"]), [byTag]);

  // Pulled by tag and by digest, every platform, as podman/CRI-O judge them: accepted now.
  const after = await validateCli(tmp.path, [byTag, byDigest], ["--policy", policyFile]);
  assertEquals(after.code, 0, after.stderr);
  assertEquals(after.images.map((i) => i.status), ["passed", "passed"]);
  assertEquals(after.images.map((i) => i.targets.length), [2, 2]);
  // And hangar's own rule still accepts the image.
  const hangar = await validateCli(tmp.path, [byTag], ["-p", join(PEER_KEYS, "alice.pub")]);
  assertEquals(hangar.code, 0, hangar.stderr);

  // A second run finds the new signatures and adds nothing.
  const second = await sign();
  assertEquals(second.code, 0, show(second));
  assertEquals(JSON.parse(second.stdout).images[0].status, "unchanged");
  assertEquals((await readSig(reg, "b/hangar", AMD64))?.layers.length, 2);
});

Deno.test("oracle-skopeo: verify refuses raw r‖s ECDSA and sha512 payload digests, as cosign does", async () => {
  await using reg = await startOracleSkopeoRegistry();
  await using tmp = await tempDir("airlock-oracle-verify-");
  const key = ["--key", join(ORACLE_KEYS, "carol.pub"), "--insecure-ignore-tlog"];
  const ok = await verify(tmp.path, [...key, `${reg.host}/b/der:v1`]);
  assertEquals(ok.code, 0, show(ok));
  assertCleanFailure(
    await verify(tmp.path, [...key, `${reg.host}/b/raw:v1`]),
    12,
    "invalid signature when validating ASN.1 encoded signature",
  );
  assertCleanFailure(
    await verify(tmp.path, [...key, `${reg.host}/b/sha512:v1`]),
    12,
    "invalid or missing digest in claim: sha512:",
  );
  // An image named by a sha512 digest: go-containerregistry (cosign) parses sha256 digests only.
  const m = await fetch(`${reg.url}/v2/b/der/manifests/v1`, {
    headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
  });
  const hex = Array.from(
    new Uint8Array(await crypto.subtle.digest("SHA-512", new Uint8Array(await m.arrayBuffer()))),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  assertCleanFailure(
    await verify(tmp.path, [...key, `${reg.host}/b/der@sha512:${hex}`]),
    1,
    "only sha256 digests name images for cosign",
  );
});

Deno.test("oracle-skopeo: evaluatePull judges a reference as a node of a given platform pulls it", async () => {
  await using reg = await startOracleSkopeoRegistry();
  const client = new RegistryClient({ tlsVerify: false });
  try {
    const registriesD = builtinDefaultConfig();
    const policy = parsePolicy(await policyFor("match.json", reg.host));
    const arm64 = { os: "linux", architecture: "arm64", variant: "v8" };
    const amd64 = { os: "linux", architecture: "amd64" };
    const pull = (ref: string, platform?: PullOptions["platform"], p = policy) =>
      evaluatePull(parseReference(ref), { client, registriesD, policy: p, platform });
    // skopeo: B1-tag-arm64 accepted, B2-tag-amd64 refused, B2-digest-all accepted.
    let r = await pull(`${reg.host}/b/multi:v1`, arm64);
    assertEquals([r.status, r.targets.map((t) => t.digest)], ["passed", [ARM64]]);
    r = await pull(`${reg.host}/b/hangar:v1`, amd64);
    assertEquals([r.status, r.targets.map((t) => t.digest)], ["failed", [AMD64]]);
    assertEquals(
      r.targets[0].reason,
      `Signature for identity "${ORACLE_HOST}/b/hangar@${AMD64}" is not accepted`,
    );
    r = await pull(`${reg.host}/b/hangar@${INDEX}`);
    assertEquals([r.status, r.targets.length], ["passed", 2]);
    // No platform of the index for this node: the pull would fail, and so does the evaluation.
    r = await pull(`${reg.host}/b/multi:v1`, { os: "linux", architecture: "s390x" });
    assertEquals([r.status, r.error?.code], ["failed", "NOTHING_VALIDATED"]);
    // A single-arch image is judged whatever its platform (it is pulled as it is).
    const carol = parsePolicy(await policyFor("carol.json", reg.host));
    r = await pull(`${reg.host}/b/der:v1`, arm64, carol);
    assertEquals(r.status, "passed");
    r = await pull(`${reg.host}/b/raw:v1`, arm64, carol);
    assertEquals(r.status, "failed");
  } finally {
    client.close();
  }
});
