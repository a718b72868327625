/**
 * The AWS KMS backend (`awskms://`) against a FAKE AWS KMS (tests/testbed/fake_kms/aws.ts) that speaks KMS's
 * JSON protocol and verifies every request's Signature Version 4 with the test's secret key (its own
 * implementation, independent of the signer airlock uses): sign + verify (airlock and openssl) through every
 * key form (id, ARN, alias, alias ARN), ECDSA and RSA, session tokens, shared credentials/config files and
 * profiles, the endpoint forms (`awskms://ENDPOINT/…` over https with `AWS_CA_BUNDLE`, `AWS_ENDPOINT_URL_KMS`),
 * errors (wrong secret, unknown key id, denied Sign, missing key, no region, no credentials) without the secret
 * in any message, and `airlock public-key --key awskms://…`.
 *
 * @module
 */
import { join } from "node:path";
import { openKey } from "../../backends/key_backend.ts";
import { parseAwsIni, parseAwsKmsRef } from "../../backends/awskms.ts";
import { base64Decode } from "../../core/encoding/base64.ts";
import { assert, assertEquals } from "../assert.ts";
import { freePort, makeCa, makeLeaf, startFakeAwsKms, tempDir } from "../testbed/mod.ts";
import { assertPublicKeyCli, envOf, rejectsWith, signAndVerify } from "./kms_test_util.ts";

const enc = new TextEncoder();
const AKID = "AKIAFAKEKMSTEST00001";
const SECRET = "fake/Secret+Key/for-the-kms-tests-0001";
const RO_AKID = "AKIAFAKEKMSREADONLY1";
const RO_SECRET = "fake/read-only-secret-0002";
const STS_AKID = "ASIAFAKEKMSSESSION01";
const STS_SECRET = "fake/session-secret-0003";
const STS_TOKEN = "FwoGZXIvYXdzEFAKESESSIONTOKEN0004";

Deno.test("awskms:// references parse as sigstore's AWS client does", async () => {
  assertEquals(parseAwsKmsRef("awskms:///alias/release"), { endpoint: "", keyId: "alias/release" });
  assertEquals(parseAwsKmsRef("awskms://kms.internal:4443/1234abcd-12ab-34cd-56ef-1234567890ab"), {
    endpoint: "kms.internal:4443",
    keyId: "1234abcd-12ab-34cd-56ef-1234567890ab",
  });
  assertEquals(
    parseAwsKmsRef("awskms:///arn:aws-us-gov:kms:us-gov-west-1:111122223333:alias/x").region,
    "us-gov-west-1",
  );
  assertEquals(
    parseAwsKmsRef("awskms:///mrk-1234abcd12ab34cd56ef1234567890ab").keyId,
    "mrk-1234abcd12ab34cd56ef1234567890ab",
  );
  for (
    const bad of [
      "awskms://alias/x",
      "awskms:///not-a-key",
      "awskms:///arn:aws:kms:r:1:other/x",
      "awskms:///",
    ]
  ) {
    await rejectsWith(() => Promise.resolve().then(() => parseAwsKmsRef(bad)), "INVALID_ARGUMENT", [bad]);
  }
  assertEquals(
    parseAwsIni("# c\n[default]\nregion = eu-west-1\ns3 =\n  max = 1\n[profile x]\naws_access_key_id=A\n"),
    {
      default: { region: "eu-west-1", s3: "" },
      "profile x": { aws_access_key_id: "A" },
    },
  );
});

Deno.test("AWS KMS backend against a fake AWS KMS (SigV4 checked)", async (t) => {
  await using tmp = await tempDir("airlock-awskms-");
  await using kms = await startFakeAwsKms({
    region: "eu-central-1",
    credentials: {
      [AKID]: { secret: SECRET },
      [RO_AKID]: { secret: RO_SECRET, policy: "read" },
      [STS_AKID]: { secret: STS_SECRET, sessionToken: STS_TOKEN },
    },
  });
  const ec = kms.addKey("ec-p256", { alias: "release" });
  const rsa = kms.addKey("rsa-2048", { alias: "rsa" });
  const vars = {
    AWS_ACCESS_KEY_ID: AKID,
    AWS_SECRET_ACCESS_KEY: SECRET,
    AWS_REGION: "eu-central-1",
    AWS_ENDPOINT_URL_KMS: kms.url,
  };
  const env = envOf(vars);
  const msg = enc.encode('{"critical":{"identity":{"docker-reference":"r.example/a:b"}}}');
  const secrets = [SECRET, RO_SECRET, STS_SECRET, STS_TOKEN];

  await t.step(
    "every key form signs; verify with the exported key and openssl; Sign got a DIGEST",
    async () => {
      const forms = [
        `alias/release`,
        ec.keyId,
        ec.arn,
        `arn:aws:kms:eu-central-1:${kms.account}:alias/release`,
      ];
      for (const form of forms) {
        const key = await openKey(`awskms:///${form}`, { env });
        assertEquals(await key.publicKey(), ec.key.publicPem, form);
        await signAndVerify(key, msg, tmp.path);
        await key.close();
      }
      const sign = kms.requests.filter((r) => r.operation === "Sign").at(-1)!;
      assertEquals(sign.input?.MessageType, "DIGEST");
      assertEquals(sign.input?.SigningAlgorithm, "ECDSA_SHA_256");
      assertEquals(sign.input?.KeyId, ec.arn, "signs with the key ARN GetPublicKey answered");
      const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", msg));
      assertEquals([...base64Decode(String(sign.input?.Message))!], [...digest]);
      assert(kms.requests.every((r) => r.status === 200 && r.accessKeyId === AKID));
    },
  );

  await t.step("RSA keys sign with RSASSA_PKCS1_V1_5_SHA_256; 16 concurrent signs", async () => {
    const key = await openKey("awskms:///alias/rsa", { env });
    assertEquals(await key.publicKey(), rsa.key.publicPem);
    await signAndVerify(key, msg, tmp.path);
    assertEquals(kms.requests.at(-1)!.input?.SigningAlgorithm, "RSASSA_PKCS1_V1_5_SHA_256");
    await Promise.all(Array.from({ length: 16 }, (_, i) => signAndVerify(key, enc.encode(`p${i}`))));
    await key.close();
  });

  await t.step("session credentials, shared files and profiles", async () => {
    const sts = await openKey("awskms:///alias/release", {
      env: envOf({
        ...vars,
        AWS_ACCESS_KEY_ID: STS_AKID,
        AWS_SECRET_ACCESS_KEY: STS_SECRET,
        AWS_SESSION_TOKEN: STS_TOKEN,
      }),
    });
    await signAndVerify(sts, msg);
    await sts.close();
    await rejectsWith(
      () =>
        openKey("awskms:///alias/release", {
          env: envOf({ ...vars, AWS_ACCESS_KEY_ID: STS_AKID, AWS_SECRET_ACCESS_KEY: STS_SECRET }),
        }),
      "KEY_AUTH_FAILED",
      ["UnrecognizedClientException"],
      secrets,
    );

    const home = join(tmp.path, "home");
    await Deno.mkdir(join(home, ".aws"), { recursive: true });
    await Deno.writeTextFile(
      join(home, ".aws", "credentials"),
      `[default]\naws_access_key_id = ${RO_AKID}\naws_secret_access_key = ${RO_SECRET}\n\n[signer]\naws_access_key_id = ${AKID}\naws_secret_access_key = ${SECRET}\n`,
    );
    await Deno.writeTextFile(
      join(home, ".aws", "config"),
      "[default]\nregion = us-east-1\n[profile signer]\nregion = eu-central-1\n",
    );
    const fileEnv = { HOME: home, AWS_ENDPOINT_URL_KMS: kms.url };
    const viaProfile = await openKey("awskms:///alias/release", {
      env: envOf({ ...fileEnv, AWS_PROFILE: "signer" }),
    });
    await signAndVerify(viaProfile, msg);
    await viaProfile.close();
    // the default profile: read-only credentials and another region (the fake refuses the credential scope)
    await rejectsWith(
      () => openKey("awskms:///alias/release", { env: envOf(fileEnv) }),
      "KEY_AUTH_FAILED",
      ["InvalidSignatureException", "scoped"],
      secrets,
    );
    // other file locations; the ARN's region wins over the profile's
    await Deno.rename(join(home, ".aws", "credentials"), join(tmp.path, "creds.ini"));
    await Deno.rename(join(home, ".aws", "config"), join(tmp.path, "config.ini"));
    const moved = await openKey(`awskms:///${ec.arn}`, {
      env: envOf({
        ...fileEnv,
        AWS_SHARED_CREDENTIALS_FILE: join(tmp.path, "creds.ini"),
        AWS_CONFIG_FILE: join(tmp.path, "config.ini"),
      }),
    });
    await rejectsWith(() => moved.sign(msg), "KEY_ACCESS_DENIED", ["kms:Sign", "permission denied"], secrets);
    await moved.close();
  });

  await t.step(
    "errors: wrong secret, unknown access key, missing key, no region, no credentials, unreachable",
    async () => {
      const wrong = "fake/wrong-secret-key-9999";
      await rejectsWith(
        () => openKey("awskms:///alias/release", { env: envOf({ ...vars, AWS_SECRET_ACCESS_KEY: wrong }) }),
        "KEY_AUTH_FAILED",
        ["refused the credentials", "InvalidSignatureException", AKID],
        [wrong, ...secrets],
      );
      await rejectsWith(
        () =>
          openKey("awskms:///alias/release", {
            env: envOf({ ...vars, AWS_ACCESS_KEY_ID: "AKIANOSUCHKEY0000000" }),
          }),
        "KEY_AUTH_FAILED",
        ["UnrecognizedClientException"],
        secrets,
      );
      await rejectsWith(
        () => openKey("awskms:///alias/nosuch", { env }),
        "KEY_NOT_FOUND",
        ["alias/nosuch"],
        secrets,
      );
      await rejectsWith(
        () => openKey(`awskms:///${crypto.randomUUID()}`, { env }),
        "KEY_NOT_FOUND",
        ["does not exist"],
        secrets,
      );
      await rejectsWith(
        () => openKey("awskms:///alias/release", { env: envOf({ ...vars, AWS_REGION: undefined }) }),
        "CONFIG_INVALID",
        ["no AWS region"],
        secrets,
      );
      await rejectsWith(
        () =>
          openKey("awskms:///alias/release", { env: envOf({ AWS_REGION: "eu-central-1", HOME: tmp.path }) }),
        "KEY_AUTH_FAILED",
        ["no AWS credentials"],
      );
      await rejectsWith(
        () =>
          openKey("awskms:///alias/release", {
            env: envOf({ ...vars, AWS_ENDPOINT_URL_KMS: `http://127.0.0.1:${freePort()}` }),
          }),
        "KEY_SERVICE_UNREACHABLE",
        ["cannot reach AWS KMS"],
        secrets,
      );
    },
  );

  await t.step("airlock public-key --key awskms:///alias/release prints the fake's public key", async () => {
    await assertPublicKeyCli({
      ref: "awskms:///alias/release",
      home: tmp.path,
      env: vars,
      pem: ec.key.publicPem,
      wrong: {
        variable: "AWS_SECRET_ACCESS_KEY",
        secret: "fake/cli-wrong-secret",
        reason: "InvalidSignatureException",
      },
    });
  });
});

Deno.test("awskms://ENDPOINT/KEY over https: AWS_CA_BUNDLE, AWS_TLS_INSECURE_SKIP_VERIFY", async () => {
  await using tmp = await tempDir("airlock-awskms-tls-");
  const ca = await makeCa(tmp.path);
  const leaf = await makeLeaf(tmp.path, ca);
  await using kms = await startFakeAwsKms({
    credentials: { [AKID]: { secret: SECRET } },
    tls: { cert: leaf.certPem, key: leaf.keyPem },
  });
  const ec = kms.addKey("ec-p256", { alias: "tls" });
  const ref = `awskms://${kms.host}/alias/tls`;
  const vars = { AWS_ACCESS_KEY_ID: AKID, AWS_SECRET_ACCESS_KEY: SECRET, AWS_DEFAULT_REGION: "us-east-1" };
  await rejectsWith(() => openKey(ref, { env: envOf(vars) }), "TLS_ERROR", ["AWS_CA_BUNDLE"], [SECRET]);
  for (const extra of [{ AWS_CA_BUNDLE: ca.certPath }, { AWS_TLS_INSECURE_SKIP_VERIFY: "1" }]) {
    const key = await openKey(ref, { env: envOf({ ...vars, ...extra }) });
    assertEquals(await key.publicKey(), ec.key.publicPem);
    await signAndVerify(key, enc.encode("over tls"));
    await key.close();
  }
});
