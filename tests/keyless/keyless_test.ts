/**
 * Keyless and key+Rekor verification of real cosign signatures (containers/image fixtures, cosign v3 referrer
 * bundle). Expected outcomes come from the fixtures' documentation (tests/fixtures/README.md, docs/spec/cosign.md §6).
 */
import { Buffer } from "node:buffer";
import { isAirlockError } from "../../core/errors.ts";
import { type CosignLayer, cosignLayerToBundleJson } from "../../core/keyless/bundle.ts";
import { inTotoSubjectMatches, parseInTotoStatement } from "../../core/keyless/dsse.ts";
import { checkRekorBody, parseRekorBundleAnnotation } from "../../core/keyless/rekor.ts";
import { loadTrustedRoot, parseTrustedRoot, publicGoodTrustedRoot } from "../../core/keyless/trusted_root.ts";
import {
  type IdentityPolicy,
  verifyKeyless,
  verifyRekorBundleForKey,
  verifyWithKey,
} from "../../core/keyless/verify.ts";
import { PUBLIC_GOOD_ROOT_INFO, PUBLIC_GOOD_TRUSTED_ROOT_JSON } from "../../core/keyless/public_good_root.ts";
import { parsePublicKeyPem } from "../../core/signature/public_key.ts";
import { assert, assertEquals, assertRejects } from "../assert.ts";
import { readContainersImageSignature, sha256Hex, vector } from "./helpers.ts";

const CI = "containers-image/";
const IDENTITY: IdentityPolicy = { subject: "mitr@redhat.com", issuer: "https://github.com/login/oauth" };

const keyless = () =>
  readContainersImageSignature(vector(`${CI}dir-img-cosign-fulcio-rekor-valid-signature-1`));
const keyRekor = () =>
  readContainersImageSignature(vector(`${CI}dir-img-cosign-key-rekor-valid-signature-1`));
const keyOnly = () => readContainersImageSignature(vector(`${CI}dir-img-cosign-valid-signature-1`));
const pub = (name: string) => Deno.readTextFile(vector(`${CI}${name}`));

async function rejectsWith(code: string, fn: () => Promise<unknown>, includes?: string): Promise<void> {
  const e = await assertRejects(fn);
  assert(isAirlockError(e), `expected an AirlockError, got ${e}`);
  assertEquals(e.code, code, e.message);
  if (includes) assert(e.message.includes(includes), e.message);
}

Deno.test("embedded public-good root is the fixture snapshot", async () => {
  assertEquals(
    JSON.parse(PUBLIC_GOOD_TRUSTED_ROOT_JSON),
    JSON.parse(await Deno.readTextFile(vector("public-good-trusted_root.json"))),
  );
  assertEquals(PUBLIC_GOOD_ROOT_INFO.date, "2025-09-23");
});

Deno.test("keyless cosign signature: verifies with the public-good root and the right identity", async () => {
  const layer = await keyless();
  const r = await verifyKeyless(layer, { trustedRoot: await publicGoodTrustedRoot(), identity: IDENTITY });
  assertEquals(r.signer?.subject, "mitr@redhat.com");
  assertEquals(r.signer?.issuer, "https://github.com/login/oauth");
  assertEquals(r.signer?.issuerV2, undefined); // this certificate has only the v1 OID
  assertEquals(r.tlogEntries.map((e) => [e.logIndex, e.integratedTime.getTime() / 1000, e.kind, e.version]), [
    [11605770, 1674247893, "hashedrekord", "0.0.1"],
  ]);
  assertEquals(r.timestamps.map((t) => t.toISOString()), ["2023-01-20T20:51:33.000Z"]);
  // The digest claim is the caller's: the verified payload names the sibling manifest's digest.
  assertEquals(r.content.kind, "message");
  assertEquals(r.content.payload, layer.payload);
  const claim =
    JSON.parse(new TextDecoder().decode(r.content.payload)).critical.image["docker-manifest-digest"];
  assertEquals(
    claim,
    `sha256:${await sha256Hex(
      await Deno.readFile(vector(`${CI}dir-img-cosign-fulcio-rekor-valid-manifest.json`)),
    )}`,
  );
});

Deno.test("keyless cosign signature: the trusted root file works the same", async () => {
  const root = await loadTrustedRoot(vector("public-good-trusted_root.json"));
  const r = await verifyKeyless(await keyless(), { trustedRoot: root, identity: IDENTITY });
  assertEquals(r.signer?.subject, "mitr@redhat.com");
});

Deno.test("keyless cosign signature: identity policy rejections", async () => {
  const layer = await keyless();
  const trustedRoot = await publicGoodTrustedRoot();
  const verify = (identity: IdentityPolicy) => () => verifyKeyless(layer, { trustedRoot, identity });
  await rejectsWith("IDENTITY_NOT_ACCEPTED", verify({ ...IDENTITY, subject: "someone@example.com" }));
  // sigstore-js alone would accept this prefix (a string policy is an unanchored pattern); cosign compares exactly.
  await rejectsWith("IDENTITY_NOT_ACCEPTED", verify({ ...IDENTITY, subject: "mitr@redhat.co" }));
  await rejectsWith("IDENTITY_NOT_ACCEPTED", verify({ ...IDENTITY, subject: "itr@redhat.com" }));
  await rejectsWith("IDENTITY_NOT_ACCEPTED", verify({ ...IDENTITY, issuer: "https://accounts.google.com" }));
  await rejectsWith(
    "IDENTITY_NOT_ACCEPTED",
    verify({ ...IDENTITY, issuer: "https://github.com/login/oaut" }),
  );
  await rejectsWith("IDENTITY_NOT_ACCEPTED", verify({ ...IDENTITY, githubWorkflowRepository: "acme/app" }));
  // cosign requires an issuer and an identity
  await rejectsWith("INVALID_ARGUMENT", verify({ subject: "mitr@redhat.com" }), "--certificate-oidc-issuer");
  await rejectsWith("INVALID_ARGUMENT", verify({ issuer: IDENTITY.issuer }), "--certificate-identity");
});

Deno.test("keyless cosign signature: RE2 regexps are unanchored", async () => {
  const layer = await keyless();
  const trustedRoot = await publicGoodTrustedRoot();
  const ok = (identity: IdentityPolicy) => verifyKeyless(layer, { trustedRoot, identity });
  await ok({ subjectRegExp: "redhat", issuerRegExp: "github\\.com" });
  await ok({ subjectRegExp: "^mitr@redhat\\.com$", issuer: IDENTITY.issuer });
  await ok({ subjectRegExp: "(?i)^MITR@", issuerRegExp: "\\Ahttps://github\\.com/login/oauth\\z" });
  await ok({ subjectRegExp: "[[:alpha:]]+@redhat\\.com", issuer: IDENTITY.issuer });
  await rejectsWith("IDENTITY_NOT_ACCEPTED", () => ok({ subjectRegExp: "^redhat", issuer: IDENTITY.issuer }));
  await rejectsWith(
    "IDENTITY_NOT_ACCEPTED",
    () => ok({ subjectRegExp: "^mitr@redhat\\.co$", issuer: IDENTITY.issuer }),
  );
  await rejectsWith("IDENTITY_NOT_ACCEPTED", () => ok({ subject: IDENTITY.subject, issuerRegExp: "google" }));
  // both forms given: both must match
  await rejectsWith(
    "IDENTITY_NOT_ACCEPTED",
    () => ok({ subject: "x@y", subjectRegExp: "redhat", issuer: IDENTITY.issuer }),
  );
  await rejectsWith("INVALID_ARGUMENT", () => ok({ subjectRegExp: "(?=mitr)", issuer: IDENTITY.issuer }));
});

Deno.test("keyless cosign signature: rejected without its Fulcio CA in the trusted root", async () => {
  const root = JSON.parse(await Deno.readTextFile(vector("public-good-trusted_root.json")));
  const caPem = await Deno.readTextFile(vector(`${CI}fulcio_v1.crt.pem`));
  const caDer = Buffer.from(caPem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""), "base64").toString(
    "base64",
  );
  const before = root.certificateAuthorities.length;
  root.certificateAuthorities = root.certificateAuthorities.filter((
    ca: { certChain: { certificates: { rawBytes: string }[] } },
  ) => !ca.certChain.certificates.some((c) => c.rawBytes === caDer));
  assertEquals(root.certificateAuthorities.length, before - 1);
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/trusted_root.json`, JSON.stringify(root));
    const trustedRoot = await loadTrustedRoot(`${dir}/trusted_root.json`);
    const layer = await keyless();
    await rejectsWith("CERTIFICATE_INVALID", () => verifyKeyless(layer, { trustedRoot, identity: IDENTITY }));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("keyless cosign signature: tampering is detected", async () => {
  const layer = await keyless();
  const trustedRoot = await publicGoodTrustedRoot();
  const payload = layer.payload.slice();
  payload[payload.length - 3] ^= 1;
  // The converted bundle carries sha256 of the tampered payload: the log entry no longer matches.
  await rejectsWith(
    "TLOG_INVALID",
    () => verifyKeyless({ ...layer, payload }, { trustedRoot, identity: IDENTITY }),
  );
  const rk = JSON.parse(layer.annotations["dev.sigstore.cosign/bundle"]);
  rk.Payload.integratedTime += 1;
  const annotations = { ...layer.annotations, "dev.sigstore.cosign/bundle": JSON.stringify(rk) };
  await rejectsWith(
    "TLOG_INVALID",
    () => verifyKeyless({ ...layer, annotations }, { trustedRoot, identity: IDENTITY }),
  );
  const noBundle: CosignLayer = { ...layer, annotations: { ...layer.annotations } };
  delete (noBundle.annotations as Record<string, string>)["dev.sigstore.cosign/bundle"];
  // no SET and no TSA: no signing time, the 10-minute certificate cannot be checked
  await rejectsWith("TIMESTAMP_INVALID", () => verifyKeyless(noBundle, { trustedRoot, identity: IDENTITY }));
});

Deno.test("keyless layer converts to a v0.1 bundle as spec/cosign.md §5.2 maps it", async () => {
  const layer = await keyless();
  // deno-lint-ignore no-explicit-any
  const b = cosignLayerToBundleJson(layer) as any;
  const rk = JSON.parse(layer.annotations["dev.sigstore.cosign/bundle"]);
  assertEquals(b.mediaType, "application/vnd.dev.sigstore.bundle+json;version=0.1");
  assertEquals(b.messageSignature.signature, layer.annotations["dev.cosignproject.cosign/signature"]);
  assertEquals(
    Buffer.from(b.messageSignature.messageDigest.digest, "base64").toString("hex"),
    await sha256Hex(layer.payload),
  );
  const e = b.verificationMaterial.tlogEntries[0];
  assertEquals(e.canonicalizedBody, rk.Payload.body);
  assertEquals(e.logIndex, "11605770");
  assertEquals(e.logId.keyId, "wNI9atQGlz+VWfO6LRygH4QUfY/8W4RFwiT5i5WRgB0=");
  assertEquals(e.kindVersion, { kind: "hashedrekord", version: "0.0.1" });
  assertEquals(e.inclusionPromise.signedEntryTimestamp, rk.SignedEntryTimestamp);
  assertEquals(b.verificationMaterial.x509CertificateChain.certificates.length, 1);
});

Deno.test("key + Rekor layer: SET verified offline with cosign2.pub, not with cosign.pub", async () => {
  const layer = await keyRekor();
  const root = await publicGoodTrustedRoot();
  const entry = await verifyRekorBundleForKey(layer, await pub("cosign2.pub"), root);
  assertEquals(entry.kind, "hashedrekord");
  assert(entry.logIndex > 0);
  await rejectsWith(
    "TLOG_INVALID",
    async () => verifyRekorBundleForKey(layer, await pub("cosign.pub"), root),
    "public key",
  );
  const full = await verifyWithKey(layer, { publicKey: await pub("cosign2.pub"), trustedRoot: root });
  assertEquals(full.tlogEntries.length, 1);
  await rejectsWith(
    "SIGNATURE_INVALID",
    async () => verifyWithKey(layer, { publicKey: await pub("cosign.pub"), trustedRoot: root }),
  );
  // a wrong payload hash in the body is caught by the body check
  const body = Buffer.from(
    parseRekorBundleAnnotation(layer.annotations["dev.sigstore.cosign/bundle"]).body,
    "base64",
  );
  const spki = parsePublicKeyPem(await pub("cosign2.pub")).spki;
  checkRekorBody(body, { spki, artifactSha256: await sha256Hex(layer.payload) });
  await rejectsWith(
    "TLOG_INVALID",
    () => Promise.resolve().then(() => checkRekorBody(body, { spki, artifactSha256: "00".repeat(32) })),
    "hash",
  );
  // a root without the Rekor key cannot verify the SET
  const noRekor = JSON.parse(PUBLIC_GOOD_TRUSTED_ROOT_JSON);
  noRekor.tlogs = noRekor.tlogs.filter((t: { baseUrl: string }) =>
    t.baseUrl !== "https://rekor.sigstore.dev"
  );
  await rejectsWith(
    "TLOG_INVALID",
    async () => verifyRekorBundleForKey(layer, await pub("cosign2.pub"), await parseTrustedRoot(noRekor)),
    "not in the trusted root",
  );
});

Deno.test("key-only layer: needs --insecure-ignore-tlog offline", async () => {
  const layer = await keyOnly();
  await rejectsWith(
    "TLOG_INVALID",
    async () => verifyRekorBundleForKey(layer, await pub("cosign.pub")),
    "insecure-ignore-tlog",
  );
  const r = await verifyWithKey(layer, { publicKey: await pub("cosign.pub"), ignoreTlog: true });
  assertEquals(r.tlogEntries, []);
  await rejectsWith(
    "SIGNATURE_INVALID",
    async () => verifyWithKey(layer, { publicKey: await pub("cosign2.pub"), ignoreTlog: true }),
  );
});

const OCI_ATTESTATION = vector("cosign/oci-attestation.sigstore.json");
const PGI_ROOT = vector("cosign/trusted_root_pgi.json");
const CODY: IdentityPolicy = { subject: "cody@soyland.com", issuer: "https://github.com/login/oauth" };

Deno.test("cosign v3 referrer bundle (v0.3, DSSE, certificate): verifies with trusted_root_pgi.json", async () => {
  const trustedRoot = await loadTrustedRoot(PGI_ROOT);
  const r = await verifyKeyless({ bundle: await Deno.readFile(OCI_ATTESTATION) }, {
    trustedRoot,
    identity: CODY,
  });
  assertEquals(r.signer?.subject, "cody@soyland.com");
  assertEquals(r.content.kind, "dsse");
  if (r.content.kind !== "dsse") return;
  const st = parseInTotoStatement(r.content.payloadType, r.content.payload);
  assert(st.subject.length > 0);
  const hex = Object.values(st.subject[0].digest)[0];
  assert(inTotoSubjectMatches(st, `sha256:${hex}`));
  assert(!inTotoSubjectMatches(st, `sha256:${"0".repeat(64)}`));
  assertEquals(r.tlogEntries[0].kind, "dsse");
  await rejectsWith(
    "IDENTITY_NOT_ACCEPTED",
    async () =>
      verifyKeyless({ bundle: await Deno.readFile(OCI_ATTESTATION) }, {
        trustedRoot,
        identity: { ...CODY, subject: "cody@soyland.co" },
      }),
  );
});

Deno.test("cosign v3 referrer bundle: a tampered DSSE payload fails", async () => {
  const trustedRoot = await loadTrustedRoot(PGI_ROOT);
  const b = JSON.parse(await Deno.readTextFile(OCI_ATTESTATION));
  const st = JSON.parse(Buffer.from(b.dsseEnvelope.payload, "base64").toString("utf8"));
  st.predicateType = "https://example.com/forged";
  b.dsseEnvelope.payload = Buffer.from(JSON.stringify(st)).toString("base64");
  const e = await assertRejects(() => verifyKeyless({ bundle: b }, { trustedRoot, identity: CODY }));
  assert(isAirlockError(e, "TLOG_INVALID", "SIGNATURE_INVALID"), String(e));
});
