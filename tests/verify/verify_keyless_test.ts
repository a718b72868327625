/**
 * `airlock verify` keyless and with Rekor proofs, through the CLI, against real cosign signatures served by the
 * fake static registry (the fixtures lack their images' layer blobs, so a real registry would refuse them):
 *
 * - containers/image `dir-img-cosign-fulcio-rekor-valid` (keyless: SAN `mitr@redhat.com`, issuer
 *   `https://github.com/login/oauth`, public-good Rekor SET) with the embedded public-good root;
 * - `dir-img-cosign-key-rekor-valid` (key + Rekor SET) with `cosign2.pub`, without `--insecure-ignore-tlog`;
 * - a cosign v3 style referrer bundle (v0.3, DSSE, in-toto v1 statement) found through the referrers API and
 *   through the referrers tag scheme.
 *
 * Expected output is written by hand from the fixture bytes and spec/cosign.md §1.6, never from airlock's output.
 *
 * @module
 */
import { createPrivateKey, generateKeyPairSync, sign } from "node:crypto";
import { join } from "node:path";
import { assert, assertEquals } from "../assert.ts";
import {
  fixturePath,
  loadCosignFixture,
  putStaticBlob,
  putStaticManifest,
  show,
  startStaticRegistry,
  type StaticContent,
  tempDir,
} from "../testbed/mod.ts";
import { putStaticSignatureTag } from "../testbed/signatures.ts";
import { assertCleanFailure, verify } from "./helpers.ts";

const CI = (name: string) => fixturePath("vectors", "containers-image", name);
const PUBLIC_GOOD = fixturePath("vectors", "public-good-trusted_root.json");
const dec = new TextDecoder();
const enc = new TextEncoder();
const ISSUER = "https://github.com/login/oauth";
const KEYLESS = ["--certificate-identity", "mitr@redhat.com", "--certificate-oidc-issuer", ISSUER];

function header(name: string, lines: string[]): string {
  return `\nVerification for ${name} --\nThe following checks were performed on each of these signatures:\n` +
    lines.map((l) => `  - ${l}\n`).join("");
}

const CLAIMS = "The cosign claims were validated";
const TLOG = "Existence of the claims in the transparency log was verified offline";
const KEY = "The signatures were verified against the specified public key";
const CERT = "The code-signing certificate was verified using trusted certificate authority certificates";

async function fixtures(content: StaticContent) {
  const keyless = await loadCosignFixture(content, "ci/keyless", "v1", "fulcio-rekor-valid");
  const rekor = await loadCosignFixture(content, "ci/key-rekor", "v1", "key-rekor-valid");
  return { keyless, rekor };
}

Deno.test("verify keyless: the real cosign keyless signature over HTTP, identity policy, trusted roots", async () => {
  const content: StaticContent = new Map();
  const { keyless, rekor } = await fixtures(content);
  await using tmp = await tempDir("airlock-verify-keyless-");
  await using reg = await startStaticRegistry(content);
  const ref = `${reg.host}/ci/keyless:v1`;

  // Accepted with the right identity and issuer (embedded public-good root). cosign adds Subject, Issuer and the
  // v1 issuer OID (the certificate has only .1.1) and the Rekor bundle to "optional"; Go sorts map keys.
  const payload = dec.decode(keyless.signatures[0].payload);
  const bundle = keyless.signatures[0].annotations["dev.sigstore.cosign/bundle"];
  assert(payload.endsWith(`"optional":null}`));
  const optional = `{"1.3.6.1.4.1.57264.1.1":"${ISSUER}","Bundle":${bundle},"Issuer":"${ISSUER}",` +
    `"Subject":"mitr@redhat.com"}`;
  let r = await verify(tmp.path, [...KEYLESS, ref]);
  assertEquals(r.code, 0, show(r));
  assertEquals(r.stdout, `\n[${payload.replace(/"optional":null}$/, `"optional":${optional}}`)}]\n`);
  assertEquals(r.stderr, header(ref, [CLAIMS, TLOG, CERT]));

  // The same with the trusted root given as a file, by digest, and with an (unanchored) identity regexp.
  r = await verify(tmp.path, [
    ...KEYLESS,
    "--trusted-root",
    PUBLIC_GOOD,
    `${reg.host}/ci/keyless@${keyless.digest}`,
  ]);
  assertEquals(r.code, 0, show(r));
  r = await verify(tmp.path, [
    "--certificate-identity-regexp",
    "mitr@",
    "--certificate-oidc-issuer-regexp",
    "github\\.com",
    ref,
  ]);
  assertEquals(r.code, 0, show(r));
  // -o text: the certificate lines on stderr, the payload on stdout.
  r = await verify(tmp.path, [...KEYLESS, "-o", "text", ref]);
  assertEquals(r.code, 0, show(r));
  assertEquals(r.stdout, payload + "\n");
  assert(
    r.stderr.endsWith(`Certificate subject: mitr@redhat.com\nCertificate issuer URL: ${ISSUER}\n`),
    show(r),
  );

  // Rejected: another identity, an exact identity that is only a prefix, another issuer.
  for (
    const [identityFlag, identity, issuer, message] of [
      [
        "--certificate-identity",
        "someone@example.com",
        ISSUER,
        "no matching signatures:\nnone of the expected identities matched",
      ],
      ["--certificate-identity", "mitr@redhat.co", ISSUER, "none of the expected identities matched"],
      ["--certificate-identity", "mitr@redhat.com", "https://accounts.google.com", "expected OIDC issuer"],
      ["--certificate-identity-regexp", "^itr@", ISSUER, "none of the expected identities matched"],
    ]
  ) {
    r = await verify(tmp.path, [identityFlag, identity, "--certificate-oidc-issuer", issuer, ref]);
    assertCleanFailure(r, 12, message);
  }

  // Rejected with a trusted root that lacks the Fulcio CA that issued the certificate (fulcio_v1.crt.pem).
  const root = JSON.parse(await Deno.readTextFile(PUBLIC_GOOD));
  const caDer = (await Deno.readTextFile(CI("fulcio_v1.crt.pem"))).replace(/-----[^-]+-----/g, "").replace(
    /\s+/g,
    "",
  );
  const before = root.certificateAuthorities.length;
  root.certificateAuthorities = root.certificateAuthorities.filter((
    ca: { certChain: { certificates: { rawBytes: string }[] } },
  ) => !ca.certChain.certificates.some((c) => c.rawBytes === caDer));
  assertEquals(root.certificateAuthorities.length, before - 1);
  const noCa = join(tmp.path, "no-fulcio-ca.json");
  await Deno.writeTextFile(noCa, JSON.stringify(root));
  r = await verify(tmp.path, [...KEYLESS, "--trusted-root", noCa, ref]);
  assertCleanFailure(r, 12, "no matching signatures:\nkeyless verification failed");

  // Usage errors (exit 1, nothing fetched): a missing issuer, key and identity together, a bad trusted root.
  r = await verify(tmp.path, ["--certificate-identity", "mitr@redhat.com", ref]);
  assertCleanFailure(r, 1, "--certificate-oidc-issuer or --certificate-oidc-issuer-regexp is required");
  r = await verify(tmp.path, [...KEYLESS, "--key", CI("cosign.pub"), ref]);
  assertCleanFailure(r, 1, "mutually exclusive");
  const bad = join(tmp.path, "bad.json");
  await Deno.writeTextFile(bad, "{}");
  r = await verify(tmp.path, [...KEYLESS, "--trusted-root", bad, ref]);
  assertCleanFailure(r, 1, "trusted root");

  // A key-signed layer is not accepted keyless (no certificate), and the keyless layer not with a key.
  r = await verify(tmp.path, [...KEYLESS, `${reg.host}/ci/key-rekor:v1`]);
  assertCleanFailure(r, 12, "no certificate found on signature");
  assertEquals(rekor.signatures.length, 1);
});

Deno.test("verify: key + Rekor bundle verified offline without --insecure-ignore-tlog (cosign2.pub, public-good)", async () => {
  const content: StaticContent = new Map();
  const { rekor } = await fixtures(content);
  await using tmp = await tempDir("airlock-verify-keyless-");
  await using reg = await startStaticRegistry(content);
  const ref = `${reg.host}/ci/key-rekor:v1`;
  const payload = dec.decode(rekor.signatures[0].payload);
  const bundle = rekor.signatures[0].annotations["dev.sigstore.cosign/bundle"];
  for (const extra of [[], ["--trusted-root", PUBLIC_GOOD]]) {
    const r = await verify(tmp.path, ["--key", CI("cosign2.pub"), ...extra, ref]);
    assertEquals(r.code, 0, show(r));
    assertEquals(
      r.stdout,
      `\n[${payload.replace(/"optional":null}$/, `"optional":{"Bundle":${bundle}}}`)}]\n`,
    );
    assertEquals(r.stderr, header(ref, [CLAIMS, TLOG, KEY]));
  }
  // The wrong key fails on the signature; a root without the Rekor key fails on the SET.
  let r = await verify(tmp.path, ["--key", CI("cosign.pub"), ref]);
  assertCleanFailure(r, 12, "invalid signature when validating ASN.1 encoded signature");
  const root = JSON.parse(await Deno.readTextFile(PUBLIC_GOOD));
  root.tlogs = root.tlogs.filter((t: { baseUrl: string }) => t.baseUrl !== "https://rekor.sigstore.dev");
  const noRekor = join(tmp.path, "no-rekor.json");
  await Deno.writeTextFile(noRekor, JSON.stringify(root));
  r = await verify(tmp.path, ["--key", CI("cosign2.pub"), "--trusted-root", noRekor, ref]);
  assertCleanFailure(r, 12, "no matching signatures:\n");
  assert(r.stderr.includes("not in the trusted root"), show(r));
  // A tampered SET (integratedTime changed) is rejected.
  const sig = rekor.signatures[0];
  const rk = JSON.parse(bundle);
  rk.Payload.integratedTime += 1;
  await loadTampered(content, "ci/tampered", sig, { "dev.sigstore.cosign/bundle": JSON.stringify(rk) });
  r = await verify(tmp.path, ["--key", CI("cosign2.pub"), `${reg.host}/ci/tampered:v1`]);
  assertCleanFailure(r, 12, "no matching signatures:\n");
});

/** The key+Rekor image and signature again in `repo`, with some annotations replaced. */
async function loadTampered(
  content: StaticContent,
  repo: string,
  sig: { mimeType: string; payload: Uint8Array; annotations: Record<string, string> },
  annotations: Record<string, string>,
): Promise<void> {
  const manifest = await Deno.readFile(CI("dir-img-cosign-key-rekor-valid-manifest.json"));
  const digest = await putStaticManifest(content, repo, manifest, { tag: "v1" });
  await putStaticSignatureTag(content, repo, digest.replace(":", "-") + ".sig", {
    mediaType: sig.mimeType,
    payload: sig.payload,
    annotations: { ...sig.annotations, ...annotations },
  });
}

/** A cosign v3 style signature bundle (v0.3, DSSE, in-toto v1, public key, no tlog entry) for `hex`. */
function v3Bundle(hex: string, privatePem: string, tamper = false): Uint8Array {
  const statement = `{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"${hex}"}}],` +
    `"predicateType":"https://sigstore.dev/cosign/sign/v1","predicate":{}}`;
  const type = "application/vnd.in-toto+json";
  const body = enc.encode(statement);
  const pae = enc.encode(`DSSEv1 ${type.length} ${type} ${body.length} ${statement}`);
  const sig = sign("sha256", pae, createPrivateKey(privatePem));
  const signed = tamper ? statement.replace("cosign/sign/v1", "cosign/sign/v2") : statement;
  return enc.encode(JSON.stringify({
    mediaType: "application/vnd.dev.sigstore.bundle.v0.3+json",
    verificationMaterial: { publicKey: { hint: "" }, tlogEntries: [] },
    dsseEnvelope: {
      payload: btoa(signed),
      payloadType: type,
      signatures: [{ sig: sig.toString("base64"), keyid: "" }],
    },
  }));
}

/** Stores a referrer manifest for `subject` holding `bundle`; returns its digest and size. */
async function putReferrer(
  content: StaticContent,
  repo: string,
  subject: { digest: string; size: number; mediaType: string },
  bundle: Uint8Array,
): Promise<{ digest: string; size: number }> {
  const layer = await putStaticBlob(content, repo, bundle);
  const empty = await putStaticBlob(content, repo, enc.encode("{}"));
  const m = {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    artifactType: "application/vnd.dev.sigstore.bundle.v0.3+json",
    config: { mediaType: "application/vnd.oci.empty.v1+json", digest: empty, size: 2 },
    layers: [{
      mediaType: "application/vnd.dev.sigstore.bundle.v0.3+json",
      digest: layer,
      size: bundle.length,
    }],
    subject,
    annotations: { "dev.sigstore.bundle.content": "dsse-envelope" },
  };
  const bytes = enc.encode(JSON.stringify(m));
  return { digest: await putStaticManifest(content, repo, bytes), size: bytes.length };
}

Deno.test("verify: cosign v3 referrer bundles, through the referrers API and the referrers tag scheme", async () => {
  await using tmp = await tempDir("airlock-verify-keyless-");
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const pub = join(tmp.path, "k.pub");
  await Deno.writeTextFile(pub, publicKey.export({ type: "spki", format: "pem" }) as string);
  const pem = privateKey.export({ type: "pkcs8", format: "pem" }) as string;
  const content: StaticContent = new Map();
  // The keyless fixture image (its .sig would verify keyless only): with referrers, cosign v3 verifies those.
  const manifest = await Deno.readFile(CI("dir-img-cosign-fulcio-rekor-valid-manifest.json"));
  const img = await loadCosignFixture(content, "v3/img", "v1", "fulcio-rekor-valid");
  const hex = img.digest.slice("sha256:".length);
  const subject = {
    digest: img.digest,
    size: manifest.length,
    mediaType: JSON.parse(dec.decode(manifest)).mediaType,
  };
  const ref1 = await putReferrer(content, "v3/img", subject, v3Bundle(hex, pem));
  const expected = (name: string) =>
    `\n[{"critical":{"identity":{"docker-reference":"${name}"},"image":{"docker-manifest-digest":"${img.digest}"},` +
    `"type":"https://sigstore.dev/cosign/sign/v1"},"optional":{}}]\n`;
  const args = ["--key", pub, "--insecure-ignore-tlog"];
  {
    await using reg = await startStaticRegistry(content, { referrers: true });
    const ref = `${reg.host}/v3/img:v1`;
    const r = await verify(tmp.path, [...args, ref]);
    assertEquals(r.code, 0, show(r));
    assertEquals(r.stdout, expected(ref));
    assertEquals(r.stderr, header(ref, [CLAIMS, KEY]));
    assert(reg.requests.includes(`GET /v2/v3/img/referrers/${img.digest}`), reg.requests.join("\n"));
    assert(!reg.requests.some((q) => q.includes(".sig")), "the .sig tag must not be read");
    // Without --insecure-ignore-tlog the bundle has no log entry: refused.
    const t = await verify(tmp.path, ["--key", pub, ref]);
    assertCleanFailure(t, 12, "no matching signatures:\nreferrer ");
  }
  {
    // No referrers API: nothing found until the referrers tag sha256-<hex> lists the referrer.
    await using reg = await startStaticRegistry(content, { referrers: false });
    const ref = `${reg.host}/v3/img:v1`;
    let r = await verify(tmp.path, [...args, ref]);
    assertCleanFailure(r, 12, "invalid signature when validating ASN.1 encoded signature"); // the keyless .sig
    await putStaticManifest(content, "v3/img", {
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [{
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        digest: ref1.digest,
        size: ref1.size,
        artifactType: "application/vnd.dev.sigstore.bundle.v0.3+json",
      }],
    }, { tag: img.digest.replace(":", "-") });
    r = await verify(tmp.path, [...args, ref]);
    assertEquals(r.code, 0, show(r));
    assertEquals(r.stdout, expected(ref));
    assert(reg.requests.includes(`GET /v2/v3/img/manifests/${img.digest.replace(":", "-")}`));
    // A tampered bundle, and a bundle for another digest, are refused (never a fallback to .sig).
    staticRepo(content, "v3/img").tags.delete(img.digest.replace(":", "-"));
  }
  {
    const content2: StaticContent = new Map();
    const img2 = await loadCosignFixture(content2, "v3/img", "v1", "fulcio-rekor-valid");
    await putReferrer(content2, "v3/img", subject, v3Bundle(hex, pem, true));
    await putReferrer(content2, "v3/img", subject, v3Bundle("0".repeat(64), pem));
    await using reg = await startStaticRegistry(content2, { referrers: true });
    const r = await verify(tmp.path, [...args, `${reg.host}/v3/img@${img2.digest}`]);
    assertCleanFailure(r, 12, "no matching signatures:\nreferrer ");
    assert(r.stderr.includes("no matching subject digest found"), show(r));
  }
});

function staticRepo(content: StaticContent, name: string) {
  return content.get(name)!;
}
