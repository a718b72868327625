/**
 * `airlock attest` against a real registry (`docker-registry` from the test bed): attestations made with a key
 * file and with a SoftHSM2 key, read back with plain `fetch` (layout of spec/cosign.md §3.1), verified back by
 * `verify-attestation`, listed by `download attestation`; appends keep existing layers, concurrent attesters are
 * all kept; a wrong type filter finds nothing and a tampered envelope is rejected. Expected values come from the
 * test's own inputs (image digests, predicate files) and the spec, never from airlock's output.
 *
 * @module
 */
import { join } from "node:path";
import { assert, assertEquals } from "../assert.ts";
import {
  buildImage,
  buildMultiArchImage,
  pushImage,
  rawSink,
  show,
  startRegistry,
  startSoftHsm,
  tempDir,
} from "../testbed/mod.ts";
import { run } from "./helpers.ts";
import { makeKey } from "../testbed/keys.ts";
import { opensslVerify } from "../testbed/signatures.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const DSSE = "application/vnd.dsse.envelope.v1+json";
const CUSTOM = "https://cosign.sigstore.dev/attestation/v1";
const SPDX = "https://spdx.dev/Document";

interface AttManifest {
  mediaType: string;
  config: { mediaType: string; digest: string };
  layers: { mediaType: string; digest: string; size: number; annotations?: Record<string, string> }[];
}

async function readAtt(url: string, repo: string, digest: string): Promise<AttManifest | undefined> {
  const res = await fetch(`${url}/v2/${repo}/manifests/${digest.replace(":", "-")}.att`, {
    headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
  });
  if (res.status === 404) {
    await res.body?.cancel();
    return undefined;
  }
  assertEquals(res.status, 200);
  return await res.json();
}

async function blob(url: string, repo: string, digest: string): Promise<Uint8Array> {
  const res = await fetch(`${url}/v2/${repo}/blobs/${digest}`);
  assertEquals(res.status, 200);
  return new Uint8Array(await res.arrayBuffer());
}

function b64decode(s: string): Uint8Array {
  return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
}

Deno.test("attest: key file, layout, verify-attestation back, download, filters, tampering, concurrency", async () => {
  await using tmp = await tempDir("airlock-attest-");
  await using reg = await startRegistry();
  const key = await makeKey(tmp.path, "k1");
  const other = await makeKey(tmp.path, "k2");
  const env = { COSIGN_PASSWORD: key.passphrase };
  const img = await buildImage({ seed: "attest-1" });
  const digest = await pushImage(img, { registry: reg.host, repository: "a/app" }, "v1", rawSink(reg.url));
  const ref = `${reg.host}/a/app:v1`;
  const predicate = join(tmp.path, "scan.txt");
  await Deno.writeTextFile(predicate, "no vulnerabilities <found> & none\n");
  const sbom = join(tmp.path, "sbom.json");
  await Deno.writeTextFile(
    sbom,
    `{"spdxVersion":"SPDX-2.3","name":"app","packages":[{"name":"z"},{"name":"a"}]}`,
  );

  /** `airlock attest --tls-verify=false --key <k1> ARGS…`. */
  const attest = (args: string[], e?: Record<string, string>) =>
    run(tmp.path, ["attest", "--tls-verify=false", "--key", key.key, ...args], e);
  /** `airlock download attestation --tls-verify=false ARGS…`. */
  const download = (args: string[]) =>
    run(tmp.path, ["download", "attestation", "--tls-verify=false", ...args]);

  const t0 = Math.floor(Date.now() / 1000);
  let r = await attest(["--predicate", predicate, ref], env);
  assertEquals(r.code, 0, show(r));
  assert(r.stderr.startsWith(`Using payload from: ${predicate}\n`), show(r));
  r = await attest(["--sigstore-passphrase-file", key.pass, "--type", "spdxjson", "--predicate", sbom, ref]);
  assertEquals(r.code, 0, show(r));

  // Layout: one OCI manifest at sha256-<hex>.att, two DSSE layers (the first kept), cosign's annotations.
  const att = (await readAtt(reg.url, "a/app", digest))!;
  assertEquals(att.mediaType, "application/vnd.oci.image.manifest.v1+json");
  assertEquals(att.layers.length, 2);
  assertEquals(att.layers.map((l) => l.mediaType), [DSSE, DSSE]);
  assertEquals(att.layers.map((l) => l.annotations), [
    { "dev.cosignproject.cosign/signature": "", predicateType: CUSTOM },
    { "dev.cosignproject.cosign/signature": "", predicateType: SPDX },
  ]);
  const envelopes = await Promise.all(att.layers.map((l) => blob(reg.url, "a/app", l.digest)));
  const env0 = JSON.parse(dec.decode(envelopes[0]));
  assertEquals(Object.keys(env0), ["payloadType", "payload", "signatures"]);
  assertEquals(env0.payloadType, "application/vnd.in-toto+json");
  assertEquals(env0.signatures.length, 1);
  assertEquals(env0.signatures[0].keyid, "");
  const st0 = JSON.parse(dec.decode(b64decode(env0.payload)));
  assertEquals(Object.keys(st0), ["_type", "predicateType", "subject", "predicate"]);
  assertEquals(st0._type, "https://in-toto.io/Statement/v0.1");
  assertEquals(st0.subject, [{ name: `${reg.host}/a/app`, digest: { sha256: digest.slice(7) } }]);
  assertEquals(st0.predicate.Data, "no vulnerabilities <found> & none\n");
  const ts = Date.parse(st0.predicate.Timestamp) / 1000;
  assert(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/.test(st0.predicate.Timestamp) && ts >= t0 - 1 && ts <= t0 + 120);
  const st1 = JSON.parse(dec.decode(b64decode(JSON.parse(dec.decode(envelopes[1])).payload)));
  assertEquals(st1.predicateType, SPDX);
  assertEquals(st1.predicate, JSON.parse(await Deno.readTextFile(sbom)));
  // The DSSE signature verifies over the PAE with the public key (WebCrypto, independent of airlock).
  const pae = (type: string, body: Uint8Array) => {
    const head = enc.encode(`DSSEv1 ${enc.encode(type).length} ${type} ${body.length} `);
    const out = new Uint8Array(head.length + body.length);
    out.set(head);
    out.set(body, head.length);
    return out;
  };
  assert(
    await opensslVerify(
      key.publicPem,
      pae(env0.payloadType, b64decode(env0.payload)),
      b64decode(env0.signatures[0].sig),
      tmp.path,
    ),
  );

  // verify-attestation --key, each type; the stdout line is the stored envelope.
  const vk = ["verify-attestation", "--tls-verify=false", "--key", key.pub, "--insecure-ignore-tlog"];
  r = await run(tmp.path, [...vk, ref]);
  assertEquals(r.code, 0, show(r));
  assertEquals(r.stdout, dec.decode(envelopes[0]) + "\n");
  assertEquals(
    r.stderr,
    `\nVerification for ${ref} --\nThe following checks were performed on each of these signatures:\n` +
      "  - The cosign claims were validated\n  - The signatures were verified against the specified public key\n",
  );
  r = await run(tmp.path, [...vk, "--type", "spdxjson", `${reg.host}/a/app@${digest}`]);
  assertEquals(r.code, 0, show(r));
  assertEquals(r.stdout, dec.decode(envelopes[1]) + "\n");
  // A wrong type filter: not found. Another key: nothing verifies. Without --insecure-ignore-tlog: refused.
  r = await run(tmp.path, [...vk, "--type", "cyclonedx", ref]);
  assertEquals(r.code, 1, show(r));
  assert(
    r.stderr.includes(
      `none of the attestations matched the predicate type: cyclonedx, found: ${CUSTOM},${SPDX}`,
    ),
    show(r),
  );
  r = await run(tmp.path, [
    "verify-attestation",
    "--tls-verify=false",
    "--key",
    other.pub,
    "--insecure-ignore-tlog",
    ref,
  ]);
  assertEquals(r.code, 1, show(r));
  assert(r.stderr.includes("no matching attestations: layer 0"), show(r));
  r = await run(tmp.path, ["verify-attestation", "--tls-verify=false", "--key", key.pub, ref]);
  assertEquals(r.code, 1, show(r));
  assert(r.stderr.includes("--insecure-ignore-tlog"), show(r));

  // download attestation: both, one per line, in cosign's AttestationPayload shape; filtered.
  r = await download([ref]);
  assertEquals(r.code, 0, show(r));
  assertEquals(r.stdout, envelopes.map((e) => dec.decode(e) + "\n").join(""));
  r = await download(["--predicate-type", "spdx", ref]);
  assertEquals(r.stdout, dec.decode(envelopes[1]) + "\n");
  r = await download(["--predicate-type", "link", ref]);
  assertEquals(r.code, 1, show(r));
  assert(
    r.stderr.includes("no attestations with predicate type 'https://in-toto.io/Link/v1' found"),
    show(r),
  );

  // Concurrent attesters on one image: every layer survives.
  const img2 = await buildImage({ seed: "attest-concurrent" });
  const d2 = await pushImage(img2, { registry: reg.host, repository: "a/conc" }, "v1", rawSink(reg.url));
  const runs = await Promise.all(
    [0, 1, 2].map((i) =>
      attest(["--type", `https://example.com/scan/${i}`, "--predicate", sbom, `${reg.host}/a/conc:v1`], env)
    ),
  );
  for (const x of runs) assertEquals(x.code, 0, show(x));
  const conc = (await readAtt(reg.url, "a/conc", d2))!;
  assertEquals(
    conc.layers.map((l) => l.annotations?.predicateType).sort(),
    [0, 1, 2].map((i) => `https://example.com/scan/${i}`),
  );

  // A tampered envelope (statement changed after signing) pushed over the tag: rejected.
  const forged = structuredClone(st0);
  forged.predicate.Data = "all good";
  const tamperedEnv = enc.encode(JSON.stringify({ ...env0, payload: btoa(JSON.stringify(forged)) }));
  const sink = rawSink(reg.url);
  const repoRef = { registry: reg.host, repository: "a/app" };
  const tamperedDigest = "sha256:" +
    Array.from(
      new Uint8Array(await crypto.subtle.digest("SHA-256", tamperedEnv)),
      (b) => b.toString(16).padStart(2, "0"),
    )
      .join("");
  await sink.uploadBlob(repoRef, tamperedEnv, { digest: tamperedDigest });
  const m = structuredClone(att);
  m.layers = [{ ...att.layers[0], digest: tamperedDigest, size: tamperedEnv.length }];
  await sink.putManifest(
    { ...repoRef, tag: digest.replace(":", "-") + ".att" },
    enc.encode(JSON.stringify(m)),
    "application/vnd.oci.image.manifest.v1+json",
  );
  r = await run(tmp.path, [...vk, ref]);
  assertEquals(r.code, 1, show(r));
  assert(r.stderr.includes("no matching attestations: layer 0"), show(r));

  // --platform: the .att of an index child.
  const multi = await buildMultiArchImage({ seed: "attest-multi" });
  await pushImage(multi, { registry: reg.host, repository: "a/multi" }, "v1", rawSink(reg.url));
  const arm = multi.platforms.find((p) => p.platform === "linux/arm64/v8")!;
  r = await attest(["--predicate", predicate, `${reg.host}/a/multi@${arm.digest}`], env);
  assertEquals(r.code, 0, show(r));
  r = await download(["--platform", "linux/arm64", `${reg.host}/a/multi:v1`]);
  assertEquals(r.code, 0, show(r));
  const line = JSON.parse(r.stdout);
  assertEquals(JSON.parse(dec.decode(b64decode(line.payload))).subject[0].digest.sha256, arm.digest.slice(7));
  r = await download([`${reg.host}/a/multi:v1`]);
  assertEquals(r.code, 1, show(r)); // the index itself has none
  r = await download(["--platform", "linux/arm64", ref]);
  assertEquals(r.code, 1, show(r));
  assert(r.stderr.includes("not a multiarch image"), show(r));
});

Deno.test("attest: bad input fails before anything is written", async () => {
  await using tmp = await tempDir("airlock-attest-");
  await using reg = await startRegistry();
  const key = await makeKey(tmp.path, "k1");
  const img = await buildImage({ seed: "attest-bad" });
  const digest = await pushImage(img, { registry: reg.host, repository: "a/bad" }, "v1", rawSink(reg.url));
  const ref = `${reg.host}/a/bad:v1`;
  const notJson = join(tmp.path, "x.txt");
  await Deno.writeTextFile(notJson, "not json");
  const base = ["attest", "--tls-verify=false", "--key", key.key, "--sigstore-passphrase-file", key.pass];
  for (
    const [args, msg] of [
      [["--predicate", notJson, "--type", "spdxjson", ref], "invalid JSON payload for predicate type"],
      [["--predicate", notJson, "--type", "nonsense", ref], "invalid predicate type: nonsense"],
      [["--predicate", join(tmp.path, "missing"), ref], "reading"],
      [[ref], "--predicate is required"],
    ] as const
  ) {
    const r = await run(tmp.path, [...base, ...args]);
    assertEquals(r.code, 1, show(r));
    assert(r.stderr.includes(msg), show(r));
  }
  assertEquals(await readAtt(reg.url, "a/bad", digest), undefined);
});

Deno.test("attest: a SoftHSM2 (PKCS#11) key attests; verify-attestation with its public key", async () => {
  await using tmp = await tempDir("airlock-attest-");
  await using reg = await startRegistry();
  await using hsm = await startSoftHsm();
  const token = await hsm.initToken("attest");
  await hsm.generateKey(token, { type: "EC:prime256v1", label: "att", id: "01" });
  const pub = join(tmp.path, "hsm.pub");
  await Deno.writeTextFile(pub, await hsm.publicKeyPem(token, "01"));
  const img = await buildImage({ seed: "attest-hsm" });
  await pushImage(img, { registry: reg.host, repository: "a/hsm" }, "v1", rawSink(reg.url));
  const ref = `${reg.host}/a/hsm:v1`;
  const predicate = join(tmp.path, "prov.json");
  await Deno.writeTextFile(predicate, `{"buildType":"https://example.com/air-gapped-build/v1"}`);
  let r = await run(
    tmp.path,
    [
      "attest",
      "--tls-verify=false",
      "--key",
      hsm.uri(token, { object: "att" }),
      "--type",
      "slsaprovenance1",
      "--predicate",
      predicate,
      ref,
    ],
    hsm.env,
  );
  assertEquals(r.code, 0, show(r));
  r = await run(tmp.path, [
    "verify-attestation",
    "--tls-verify=false",
    "--key",
    pub,
    "--insecure-ignore-tlog",
    "--type",
    "https://slsa.dev/provenance/v1",
    ref,
  ]);
  assertEquals(r.code, 0, show(r));
  const st = JSON.parse(dec.decode(b64decode(JSON.parse(r.stdout).payload)));
  assertEquals(st.predicate, { buildType: "https://example.com/air-gapped-build/v1" });
});
