/**
 * `verify-attestation` and `download attestation` on a real cosign v3 attestation
 * (`vectors/cosign/oci-attestation.sigstore.json`: DSSE, Fulcio certificate for `cody@soyland.com`, issuer
 * `https://github.com/login/oauth`, Rekor `dsse` entry; with `trusted_root_pgi.json`), served by the fake static
 * registry three ways: as an OCI referrer found through the referrers API, through the referrers tag scheme, and
 * re-shaped as a legacy `.att` layer (cosign v2 layout). The image itself is not served: a digest reference is
 * used as cosign uses it. Expected output is built from the fixture file and spec/cosign.md §3, never from
 * airlock's output.
 *
 * @module
 */
import { assert, assertEquals } from "../assert.ts";
import { fixturePath, show, startStaticRegistry, type StaticContent, tempDir } from "../testbed/mod.ts";
import {
  attestationFixture,
  legacyEnvelope,
  putLegacyAtt,
  putReferrer,
  putReferrersTag,
  run,
} from "./helpers.ts";

const ISSUER = "https://github.com/login/oauth";
const CUSTOM = "https://cosign.sigstore.dev/attestation/v1";

/** The flags of a keyless check against the fixture's identity, issuer and trusted root. */
function keylessFlags(trustedRoot: string): string[] {
  return [
    "--tls-verify=false",
    "--certificate-identity",
    "cody@soyland.com",
    "--certificate-oidc-issuer",
    ISSUER,
    "--trusted-root",
    trustedRoot,
  ];
}

function header(name: string): string {
  return `\nVerification for ${name} --\nThe following checks were performed on each of these signatures:\n` +
    "  - The cosign claims were validated\n" +
    "  - Existence of the claims in the transparency log was verified offline\n" +
    "  - The code-signing certificate was verified using trusted certificate authority certificates\n";
}

Deno.test("verify-attestation: the cosign v3 bundle as a referrer (API), filters, identity, tampering; download", async () => {
  const fx = await attestationFixture();
  assertEquals(fx.predicateType, CUSTOM);
  const content: StaticContent = new Map();
  await putReferrer(content, "att/api", fx);
  const e = fx.json.dsseEnvelope;
  const tampered = JSON.parse(new TextDecoder().decode(fx.bundle));
  const st = JSON.parse(atob(e.payload));
  st.predicate.Data = "forged";
  tampered.dsseEnvelope.payload = btoa(JSON.stringify(st));
  await putReferrer(content, "att/tampered", fx, new TextEncoder().encode(JSON.stringify(tampered)));
  await using tmp = await tempDir("airlock-attest-static-");
  await using reg = await startStaticRegistry(content, { referrers: true });
  const ref = `${reg.host}/att/api@${fx.digest}`;
  const keyless = keylessFlags(fx.trustedRoot);
  // json.Marshal of the protobuf DSSE envelope: payload, payloadType, signatures[{sig}] (keyid empty: omitted).
  assertEquals(e.signatures[0].keyid ?? "", "");
  const printed = `{"payload":"${e.payload}","payloadType":"${e.payloadType}","signatures":[{"sig":"${
    e.signatures[0].sig
  }"}]}\n`;
  for (const type of [[], ["--type", "custom"], ["--type", CUSTOM]]) {
    const r = await run(tmp.path, ["verify-attestation", ...keyless, ...type, ref]);
    assertEquals(r.code, 0, show(r));
    assertEquals(r.stdout, printed);
    assert(r.stderr.startsWith(header(ref)), show(r));
    assert(r.stderr.includes("Certificate subject: cody@soyland.com\n"), show(r));
  }
  assert(reg.requests.includes(`GET /v2/att/api/referrers/${fx.digest}`), reg.requests.join("\n"));
  assert(!reg.requests.some((q) => q.includes(".att")), "with referrer bundles the .att tag is not read");
  // The embedded public-good root verifies it too.
  let r = await run(tmp.path, ["verify-attestation", ...keyless.slice(0, 5), ref]);
  assertEquals(r.code, 0, show(r));

  // A wrong type filter: verified, then not found (cosign's message, the type as given).
  r = await run(tmp.path, ["verify-attestation", ...keyless, "--type", "slsaprovenance", ref]);
  assertEquals(r.code, 1, show(r));
  assertEquals(r.stdout, "");
  assert(
    r.stderr.includes(
      `none of the attestations matched the predicate type: slsaprovenance, found: ${CUSTOM}`,
    ),
    show(r),
  );
  r = await run(tmp.path, ["verify-attestation", ...keyless, "--type", "not a uri", ref]);
  assertEquals(r.code, 1, show(r));
  assert(r.stderr.includes("invalid predicate type: not a uri"), show(r));
  // Wrong identity, identity prefix, wrong digest, tampered statement: rejected.
  for (
    const args of [
      ["--certificate-identity", "cody@soyland.co", "--certificate-oidc-issuer", ISSUER, ref],
      ["--certificate-identity", "cody@soyland.com", "--certificate-oidc-issuer", "https://x.example", ref],
      [
        "--certificate-identity",
        "cody@soyland.com",
        "--certificate-oidc-issuer",
        ISSUER,
        `${reg.host}/att/tampered@${fx.digest}`,
      ],
    ]
  ) {
    r = await run(tmp.path, [
      "verify-attestation",
      "--tls-verify=false",
      "--trusted-root",
      fx.trustedRoot,
      ...args,
    ]);
    assertEquals(r.code, 1, show(r));
    assert(r.stderr.includes("Error: no matching attestations: referrer sha256:"), show(r));
    assertEquals(r.stdout, "");
  }
  r = await run(tmp.path, ["verify-attestation", ...keyless, `${reg.host}/att/api@sha256:${"1".repeat(64)}`]);
  assertEquals(r.code, 1, show(r));
  assert(r.stderr.includes("no matching attestations: no attestations found"), show(r));

  // download attestation: the bundle, one line of compact JSON; filtered by predicate type.
  const line = JSON.stringify(JSON.parse(new TextDecoder().decode(fx.bundle))) + "\n";
  for (const filter of [[], ["--predicate-type", "custom"], ["--predicate-type", CUSTOM]]) {
    r = await run(tmp.path, ["download", "attestation", "--tls-verify=false", ...filter, ref]);
    assertEquals(r.code, 0, show(r));
    assertEquals(r.stdout, line);
  }
  r = await run(tmp.path, ["download", "attestation", "--tls-verify=false", "--predicate-type", "vuln", ref]);
  assertEquals(r.code, 1, show(r));
  assert(
    r.stderr.includes(
      "no attestations with predicate type 'https://cosign.sigstore.dev/attestation/vuln/v1' found",
    ),
    show(r),
  );
});

Deno.test("verify-attestation: the referrer found through the referrers tag scheme when the API is missing", async () => {
  const fx = await attestationFixture();
  const content: StaticContent = new Map();
  const referrer = await putReferrer(content, "att/tag", fx);
  await using tmp = await tempDir("airlock-attest-static-");
  await using reg = await startStaticRegistry(content, { referrers: false });
  const ref = `${reg.host}/att/tag@${fx.digest}`;
  const args = [
    "verify-attestation",
    "--tls-verify=false",
    "--certificate-identity-regexp",
    "^cody@",
    "--certificate-oidc-issuer",
    ISSUER,
    "--trusted-root",
    fx.trustedRoot,
    ref,
  ];
  let r = await run(tmp.path, args);
  assertEquals(r.code, 1, show(r)); // no tag yet: nothing found
  assert(r.stderr.includes("no attestations found"), show(r));
  await putReferrersTag(content, "att/tag", fx, referrer);
  r = await run(tmp.path, args);
  assertEquals(r.code, 0, show(r));
  const e = fx.json.dsseEnvelope;
  assertEquals(
    r.stdout,
    `{"payload":"${e.payload}","payloadType":"${e.payloadType}","signatures":[{"sig":"${
      e.signatures[0].sig
    }"}]}\n`,
  );
  assert(reg.requests.includes(`GET /v2/att/tag/referrers/${fx.digest}`));
  assert(
    reg.requests.includes(`GET /v2/att/tag/manifests/${fx.digest.replace(":", "-")}`),
    reg.requests.join("\n"),
  );
});

Deno.test("verify-attestation: the same attestation as a legacy .att layer; tampered envelope rejected; download", async () => {
  const fx = await attestationFixture();
  const content: StaticContent = new Map();
  await putLegacyAtt(content, "att/legacy", fx);
  // The envelope with another statement (the signature no longer matches; the Rekor envelope hash neither).
  const st = JSON.parse(atob(fx.json.dsseEnvelope.payload));
  st.predicateType = "https://example.com/forged";
  await putLegacyAtt(content, "att/forged", fx, legacyEnvelope(fx, btoa(JSON.stringify(st))));
  await using tmp = await tempDir("airlock-attest-static-");
  await using reg = await startStaticRegistry(content);
  const ref = `${reg.host}/att/legacy@${fx.digest}`;
  const keyless = keylessFlags(fx.trustedRoot);
  let r = await run(tmp.path, ["verify-attestation", ...keyless, ref]);
  assertEquals(r.code, 0, show(r));
  // The raw layer payload (the envelope JSON as stored), one per line.
  assertEquals(r.stdout, legacyEnvelope(fx) + "\n");
  assert(r.stderr.startsWith(header(ref)), show(r));
  r = await run(tmp.path, ["verify-attestation", ...keyless, "--type", "openvex", ref]);
  assertEquals(r.code, 1, show(r));
  assert(r.stderr.includes("none of the attestations matched the predicate type: openvex"), show(r));
  r = await run(tmp.path, ["verify-attestation", ...keyless, `${reg.host}/att/forged@${fx.digest}`]);
  assertEquals(r.code, 1, show(r));
  assert(r.stderr.includes("no matching attestations: layer 0"), show(r));
  // A key cannot verify a keyless attestation.
  r = await run(tmp.path, [
    "verify-attestation",
    "--tls-verify=false",
    "--key",
    fixturePath("vectors", "containers-image", "cosign.pub"),
    "--insecure-ignore-tlog",
    ref,
  ]);
  assertEquals(r.code, 1, show(r));
  assert(r.stderr.includes("no matching attestations: layer 0"), show(r));
  // download attestation: cosign's AttestationPayload (payloadType, payload, signatures[{keyid, sig}]).
  r = await run(tmp.path, ["download", "attestation", "--tls-verify=false", ref]);
  assertEquals(r.code, 0, show(r));
  assertEquals(r.stdout, legacyEnvelope(fx) + "\n");
  r = await run(tmp.path, ["download", "attestation", "--tls-verify=false", "--predicate-type", "spdx", ref]);
  assertEquals(r.code, 1, show(r));
  assert(r.stderr.includes("no attestations with predicate type 'https://spdx.dev/Document' found"), show(r));
});
