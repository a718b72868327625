/**
 * The Google Cloud KMS backend (`gcpkms://`) against a FAKE Cloud KMS (tests/testbed/fake_kms/gcp.ts) with its
 * own OAuth2 token endpoint — which checks the JWT-bearer assertion's RS256 signature against the service
 * account's public key — and metadata server; every KMS call needs a bearer token it issued. Sign + verify
 * (airlock and openssl) for EC P-256, RSA and Ed25519 versions, the newest ENABLED version (across pages),
 * authorized-user and metadata credentials, token caching, the CRC32C integrity checks, errors (a foreign
 * private key, denied signing, missing key, disabled version, no credentials) without secrets in any message,
 * and `airlock public-key --key gcpkms://…`.
 *
 * @module
 */
import { generateKeyPairSync } from "node:crypto";
import { join } from "node:path";
import { crc32c, parseGcpKmsRef } from "../../backends/gcpkms.ts";
import { openKey } from "../../backends/key_backend.ts";
import { assert, assertEquals } from "../assert.ts";
import { startFakeGcpKms, tempDir } from "../testbed/mod.ts";
import { assertPublicKeyCli, envOf, rejectsWith, signAndVerify } from "./kms_test_util.ts";

const enc = new TextEncoder();
const RING = "projects/fake-project/locations/europe-west3/keyRings/airlock";

Deno.test("gcpkms:// references parse; CRC32C matches the standard check value", async () => {
  assertEquals(parseGcpKmsRef(`gcpkms://${RING}/cryptoKeys/k/cryptoKeyVersions/3`), {
    cryptoKey: `${RING}/cryptoKeys/k`,
    version: "3",
  });
  assertEquals(parseGcpKmsRef(`gcpkms://${RING}/cryptoKeys/k`), { cryptoKey: `${RING}/cryptoKeys/k` });
  for (
    const bad of ["gcpkms://projects/p/keyRings/r/cryptoKeys/k", `gcpkms://${RING}/cryptoKeys/k/versions/1`]
  ) {
    await rejectsWith(() => Promise.resolve().then(() => parseGcpKmsRef(bad)), "INVALID_ARGUMENT", [bad]);
  }
  assertEquals(crc32c(enc.encode("123456789")), 0xe3069283);
  assertEquals(crc32c(new Uint8Array(0)), 0);
});

Deno.test("GCP KMS backend against a fake Cloud KMS (JWT-bearer grant checked)", async (t) => {
  await using tmp = await tempDir("airlock-gcpkms-");
  await using gcp = await startFakeGcpKms();
  const sa = await gcp.makeServiceAccount(tmp.path);
  const saKey = JSON.parse(await Deno.readTextFile(sa.path)).private_key as string;
  const env = envOf({ GOOGLE_APPLICATION_CREDENTIALS: sa.path, AIRLOCK_GCPKMS_ENDPOINT: gcp.url });
  const msg = enc.encode('{"critical":{"identity":{"docker-reference":"r.example/a:b"}}}');

  // EC key with 5 versions: 1-4 enabled (4 newest), 5 disabled
  const ecKey = `${RING}/cryptoKeys/ec`;
  for (let i = 0; i < 4; i++) gcp.addVersion(ecKey, "ec-p256");
  gcp.addVersion(ecKey, "ec-p256", { state: "DISABLED" });
  const v = gcp.versions.get(ecKey)!;

  await t.step(
    "EC P-256: explicit version and newest ENABLED version; openssl verifies; one token",
    async () => {
      const pinned = await openKey(`gcpkms://${ecKey}/cryptoKeyVersions/2`, { env });
      assertEquals(await pinned.publicKey(), v[1].key.publicPem);
      await signAndVerify(pinned, msg, tmp.path);
      await pinned.close();
      const newest = await openKey(`gcpkms://${ecKey}`, { env });
      assertEquals(await newest.publicKey(), v[3].key.publicPem, "version 4: the newest enabled one");
      for (let i = 0; i < 8; i++) await signAndVerify(newest, enc.encode(`p${i}`));
      await newest.close();
      assert(gcp.calls.filter((c) => c.path.endsWith("/cryptoKeyVersions")).length >= 2, "paged listing");
      assert(gcp.calls.some((c) => c.path === `${ecKey}/cryptoKeyVersions/4:asymmetricSign`));
      assertEquals(gcp.issued.map((i) => i.grant), ["jwt-bearer", "jwt-bearer"], "one token per opened key");
      assertEquals(gcp.issued[0].principal, sa.email);
    },
  );

  await t.step("RSA PKCS#1 and Ed25519 versions", async () => {
    const rsa = gcp.addVersion(`${RING}/cryptoKeys/rsa`, "rsa-2048");
    const key = await openKey(`gcpkms://${RING}/cryptoKeys/rsa/cryptoKeyVersions/1`, { env });
    assertEquals(await key.publicKey(), rsa.key.publicPem);
    await signAndVerify(key, msg, tmp.path);
    await key.close();
    gcp.addVersion(`${RING}/cryptoKeys/ed`, "ed25519");
    const ed = await openKey(`gcpkms://${RING}/cryptoKeys/ed`, { env });
    assertEquals((await signAndVerify(ed, msg)).length, 64);
    await ed.close();
  });

  await t.step("authorized_user in gcloud's well-known file; the metadata server", async () => {
    const cfg = join(tmp.path, "gcloud");
    await Deno.mkdir(cfg);
    const adc = await gcp.makeAuthorizedUser(tmp.path);
    await Deno.rename(adc, join(cfg, "application_default_credentials.json"));
    const user = await openKey(`gcpkms://${ecKey}`, {
      env: envOf({ CLOUDSDK_CONFIG: cfg, AIRLOCK_GCPKMS_ENDPOINT: gcp.url }),
    });
    await signAndVerify(user, msg);
    await user.close();
    const meta = await openKey(`gcpkms://${ecKey}`, {
      env: envOf({ GCE_METADATA_HOST: gcp.host, AIRLOCK_GCPKMS_ENDPOINT: gcp.url, HOME: tmp.path }),
    });
    await signAndVerify(meta, msg);
    await meta.close();
    assertEquals(gcp.issued.slice(-2).map((i) => i.grant), ["refresh_token", "metadata"]);
  });

  await t.step("integrity checks: a wrong signatureCrc32c or an unverified digest is refused", async () => {
    const key = await openKey(`gcpkms://${ecKey}/cryptoKeyVersions/1`, { env });
    gcp.fault = "bad-signature-crc";
    await rejectsWith(() => key.sign(msg), "KEY_BACKEND", ["integrity check failed", "signatureCrc32c"]);
    gcp.fault = "unverified-digest";
    await rejectsWith(() => key.sign(msg), "KEY_BACKEND", ["integrity check failed", "not verified"]);
    gcp.fault = "none";
    await signAndVerify(key, msg);
    await key.close();
  });

  await t.step(
    "errors: a key the fake does not know, denied signing, missing key, disabled, no credentials",
    async () => {
      const foreign = JSON.parse(await Deno.readTextFile(sa.path));
      const other = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
      foreign.private_key = other.export({ type: "pkcs8", format: "pem" }).toString();
      const foreignPath = join(tmp.path, "foreign.json");
      await Deno.writeTextFile(foreignPath, JSON.stringify(foreign));
      await rejectsWith(
        () =>
          openKey(`gcpkms://${ecKey}`, {
            env: envOf({ GOOGLE_APPLICATION_CREDENTIALS: foreignPath, AIRLOCK_GCPKMS_ENDPOINT: gcp.url }),
          }),
        "KEY_AUTH_FAILED",
        ["refused to issue an access token", "invalid_grant", "Invalid JWT Signature", sa.email],
        [foreign.private_key, saKey, "PRIVATE KEY"],
      );
      const reader = await gcp.makeServiceAccount(tmp.path, { policy: "read" });
      const ro = await openKey(`gcpkms://${ecKey}`, {
        env: envOf({ GOOGLE_APPLICATION_CREDENTIALS: reader.path, AIRLOCK_GCPKMS_ENDPOINT: gcp.url }),
      });
      await rejectsWith(() => ro.sign(msg), "KEY_ACCESS_DENIED", [
        "permission denied",
        "useToSign",
        reader.email,
      ], ["ya29."]);
      await ro.close();
      await rejectsWith(
        () => openKey(`gcpkms://${RING}/cryptoKeys/nosuch/cryptoKeyVersions/1`, { env }),
        "KEY_NOT_FOUND",
        [
          "not found",
        ],
      );
      await rejectsWith(() => openKey(`gcpkms://${RING}/cryptoKeys/nosuch`, { env }), "KEY_NOT_FOUND", [
        "not found",
      ]);
      const disabled = await openKey(`gcpkms://${ecKey}/cryptoKeyVersions/5`, { env });
      await rejectsWith(() => disabled.sign(msg), "KEY_BACKEND", ["FAILED_PRECONDITION", "not enabled"]);
      await disabled.close();
      await rejectsWith(
        () =>
          openKey(`gcpkms://${ecKey}`, {
            env: envOf({ HOME: tmp.path, AIRLOCK_GCPKMS_ENDPOINT: gcp.url, NO_GCE_CHECK: "true" }),
          }),
        "KEY_AUTH_FAILED",
        ["no Google credentials", "GOOGLE_APPLICATION_CREDENTIALS"],
      );
      await rejectsWith(
        () =>
          openKey(`gcpkms://${ecKey}`, {
            env: envOf({
              GOOGLE_APPLICATION_CREDENTIALS: sa.path,
              AIRLOCK_GCPKMS_ENDPOINT: "http://kms.example",
            }),
          }),
        "CONFIG_INVALID",
        ["AIRLOCK_GCPKMS_ENDPOINT", "https://"],
      );
    },
  );

  await t.step("airlock public-key --key gcpkms://… prints the fake's public key", async () => {
    await assertPublicKeyCli({
      ref: `gcpkms://${ecKey}`,
      home: tmp.path,
      env: { GOOGLE_APPLICATION_CREDENTIALS: sa.path, AIRLOCK_GCPKMS_ENDPOINT: gcp.url },
      pem: v[3].key.publicPem,
    });
  });
});
