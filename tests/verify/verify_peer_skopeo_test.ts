/**
 * `airlock verify` against every "(c) cosign" check of the peer-skopeo fixture (cases.json), through the real CLI
 * and a real registry serving a copy of the fixture storage. Expected outcomes, digests and the layers that verify
 * come from cases.json (checked there with openssl by the fixture's authors); nothing is hard-coded here.
 *
 * @module
 */
import { assert, assertEquals } from "../assert.ts";
import {
  loadPeerSkopeoCases,
  type PeerSkopeoCase,
  show,
  startPeerSkopeoRegistry,
  tempDir,
} from "../testbed/mod.ts";
import { assertCleanFailure, assertNoCrash, cosignHeader, verify } from "./helpers.ts";

/** A cosign check of cases.json (the fields these tests read). */
interface CosignCheck {
  check: "cosign";
  key: string;
  manifest: string;
  manifestDigest: string;
  expect: "pass" | "fail";
  failure: string | null;
}

/** The exit code cosign gives each failure kind of the fixture. */
const EXIT_FOR_FAILURE: Record<string, number> = {
  "no-signature": 10,
  "wrong-key": 12,
  "digest-mismatch": 12,
};

/** The payload digests of the layers of `digest`'s .sig that name `digest` and verify with `key`. */
function expectedLayers(c: PeerSkopeoCase, digest: string, key: string) {
  const tag = c.signatureTags.find((t) => t.manifestDigest === digest);
  return (tag?.layers ?? []).filter((l) =>
    l.payloadManifestDigest === digest && (l.verifiesWithKeys ?? []).includes(key)
  );
}

/** A single-arch case whose top manifest passes the cosign check, signed once. */
function singleSigned(cases: PeerSkopeoCase[]): PeerSkopeoCase {
  const c = cases.find((c) =>
    c.platforms.length === 0 && c.signatureTags.length === 1 && c.signatureTags[0].layers.length === 1 &&
    c.checks.some((k) => k.check === "cosign" && k.expect === "pass" && k.manifestDigest === c.digest)
  );
  assert(c, "no single-arch signed case in cases.json");
  return c;
}

Deno.test("verify: every (c) cosign check of peer-skopeo cases.json, by digest and by tag", async () => {
  const fx = await loadPeerSkopeoCases();
  await using tmp = await tempDir("airlock-verify-peer-");
  await using reg = await startPeerSkopeoRegistry();

  const runs: Promise<void>[] = [];
  let checks = 0;
  let tagChecks = 0;
  for (const c of fx.cases) {
    for (const check of c.checks.filter((k) => k.check === "cosign") as unknown as CosignCheck[]) {
      checks++;
      const refs = [`${reg.host}/${c.repository}@${check.manifestDigest}`];
      // The tag names the top-level manifest (the index for multi-arch): the same check applies to it.
      if (check.manifestDigest === c.digest) {
        refs.push(`${reg.host}/${c.repository}:${c.tag}`);
        tagChecks++;
      }
      for (const ref of refs) {
        runs.push((async () => {
          const r = await verify(tmp.path, [
            "--key",
            fx.keys[check.key].publicKey,
            "--insecure-ignore-tlog",
            ref,
          ]);
          const what = `${c.id} ${check.manifest} key=${check.key} ${ref}\n${show(r)}`;
          if (check.expect === "pass") {
            assertEquals(r.code, 0, what);
            assertNoCrash(r);
            assertEquals(r.stderr, cosignHeader(ref), what);
            assert(r.stdout.startsWith("\n[") && r.stdout.endsWith("]\n"), what);
            const printed = JSON.parse(r.stdout) as {
              critical: {
                identity: { "docker-reference": string };
                image: { "docker-manifest-digest": string };
              };
            }[];
            const layers = expectedLayers(c, check.manifestDigest, check.key);
            assert(layers.length > 0, `cases.json says pass but no layer verifies with ${check.key}`);
            assertEquals(printed.length, layers.length, what);
            for (const [i, p] of printed.entries()) {
              assertEquals(p.critical.image["docker-manifest-digest"], check.manifestDigest, what);
              assertEquals(p.critical.identity["docker-reference"], layers[i].identity, what);
            }
          } else {
            const code = EXIT_FOR_FAILURE[check.failure!];
            assert(code !== undefined, `unexpected failure kind ${check.failure}`);
            const message = check.failure === "no-signature"
              ? "no signatures found"
              : check.failure === "wrong-key"
              ? "no matching signatures:\ninvalid signature when validating ASN.1 encoded signature"
              : "no matching signatures:\ninvalid or missing digest in claim: " +
                c.signatureTags.find((t) => t.manifestDigest === check.manifestDigest)!.layers[0]
                  .payloadManifestDigest;
            assertCleanFailure(r, code, message);
          }
        })());
      }
    }
  }
  await Promise.all(runs);
  // Sanity: the fixture really has the checks we think it has.
  assert(checks >= 15 && tagChecks >= 8, `only ${checks} cosign checks (${tagChecks} by tag)`);
});

Deno.test("verify: a key that signed nothing (mallory) fails every signed manifest with exit 12", async () => {
  const fx = await loadPeerSkopeoCases();
  const signers = new Set(fx.cases.flatMap((c) => c.signedBy.map((s) => s.key)));
  const unused = Object.entries(fx.keys).find(([name]) => !signers.has(name));
  assert(unused, "cases.json has no verification-only key");
  await using tmp = await tempDir("airlock-verify-peer-");
  await using reg = await startPeerSkopeoRegistry();
  const refs = fx.cases.flatMap((c) =>
    c.signatureTags.map((t) => `${reg.host}/${c.repository}@${t.manifestDigest}`)
  );
  assert(refs.length >= 8);
  const r = await verify(tmp.path, ["--key", unused[1].publicKey, "--insecure-ignore-tlog", ...refs]);
  assertEquals(r.code, 12, show(r));
  assertEquals(r.stdout, "");
  assertNoCrash(r);
  // Every image is verified (cosign would stop at the first): one error pair per image.
  assertEquals(r.stderr.split("Error: no matching signatures:\n").length - 1, refs.length, show(r));
  assertEquals(
    r.stderr.split("error during command execution: no matching signatures:\n").length - 1,
    refs.length,
  );
});

Deno.test("verify: several images, one unsigned: the others print, the exit code is the failure's (10)", async () => {
  const fx = await loadPeerSkopeoCases();
  const a1 = singleSigned(fx.cases);
  const unsigned = fx.cases.find((c) => c.signatureTags.length === 0)!;
  const signer = a1.signedBy[0].key;
  await using tmp = await tempDir("airlock-verify-peer-");
  await using reg = await startPeerSkopeoRegistry();
  const good = `${reg.host}/${a1.repository}:${a1.tag}`;
  const bad = `${reg.host}/${unsigned.repository}:${unsigned.tag}`;
  const r = await verify(tmp.path, ["--key", fx.keys[signer].publicKey, "--insecure-ignore-tlog", bad, good]);
  assertEquals(r.code, 10, show(r));
  assertEquals(
    r.stderr,
    "Error: no signatures found\nerror during command execution: no signatures found\n" + cosignHeader(good),
  );
  assertEquals((JSON.parse(r.stdout) as unknown[]).length, 1);

  // -o text: the raw payload bytes, one per line, exactly as stored in the registry.
  const t = await verify(tmp.path, [
    "--key",
    fx.keys[signer].publicKey,
    "--insecure-ignore-tlog",
    "-o",
    "text",
    good,
  ]);
  assertEquals(t.code, 0, show(t));
  const layer = a1.signatureTags[0].layers[0];
  const blob = await fetch(`${reg.url}/v2/${a1.repository}/blobs/${layer.digest}`).then((x) => x.text());
  assertEquals(t.stdout, blob + "\n");
});

Deno.test("verify: without --insecure-ignore-tlog a key-only signature is refused with a hint (exit 12)", async () => {
  const fx = await loadPeerSkopeoCases();
  const a1 = singleSigned(fx.cases);
  await using tmp = await tempDir("airlock-verify-peer-");
  await using reg = await startPeerSkopeoRegistry();
  const r = await verify(tmp.path, [
    "--key",
    fx.keys[a1.signedBy[0].key].publicKey,
    `${reg.host}/${a1.repository}:${a1.tag}`,
  ]);
  assertCleanFailure(r, 12, "no matching signatures:\nsignature not found in transparency log");
  assert(r.stderr.includes("--insecure-ignore-tlog"), show(r));
});
