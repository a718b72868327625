/**
 * The admission webhook in cosign keyless mode on a real cosign keyless signature (containers/image fixture
 * `dir-img-cosign-fulcio-rekor-valid`: SAN `mitr@redhat.com`, issuer `https://github.com/login/oauth`, a
 * public-good Rekor SET), checked offline against the trusted root file. The image is served by the FAKE static
 * registry of the test bed: the fixture has the manifest but not its layer blobs, which a real registry refuses.
 *
 * @module
 */
import { assertEquals, assertStringIncludes } from "../assert.ts";
import {
  fixturePath,
  loadCosignFixture,
  startStaticRegistry,
  type StaticContent,
  tempDir,
} from "../testbed/mod.ts";
import { makeWebhookTls, responseOf, startWebhook } from "./helpers.ts";
import { container, type Json, pod, podSpec, review } from "./reviews.ts";

const ROOT = fixturePath("vectors", "public-good-trusted_root.json");

Deno.test("admission, cosign keyless: the signer's identity decides; another identity or issuer is denied", async () => {
  const content: StaticContent = new Map();
  const fx = await loadCosignFixture(content, "ci/keyless", "v1", "fulcio-rekor-valid");
  await using tmp = await tempDir("airlock-admission-keyless-");
  await using reg = await startStaticRegistry(content);
  const tls = await makeWebhookTls(tmp.path);
  const image = `${reg.host}/ci/keyless:v1`;
  const decide = async (identity: string, issuer: string): Promise<string> => {
    const dir = await Deno.makeTempDir({ dir: tmp.path });
    await using hook = await startWebhook({
      dir,
      tls,
      config: [
        "cosign:",
        `  certificateIdentity: ${JSON.stringify(identity)}`,
        `  certificateOidcIssuer: ${JSON.stringify(issuer)}`,
        `  trustedRoot: ${JSON.stringify(ROOT)}`,
        "",
      ].join("\n"),
    });
    const r = await hook.post(
      "mutate",
      review(pod("shop", "p", podSpec({ containers: [container("c", image)] }))),
    );
    const resp = responseOf(r.body);
    return resp.allowed === true
      ? `allowed ${JSON.parse(atob(resp.patch as string))[0].value}`
      : (resp.status as Json).message as string;
  };
  assertEquals(
    await decide("mitr@redhat.com", "https://github.com/login/oauth"),
    `allowed ${image}@${fx.digest}`,
  );
  // cosign's reasons (the rest of each message is the certificate's detail).
  const head = `airlock: image "${image}" (container "c") denied: no matching signatures:\n`;
  let message = await decide("someone@example.com", "https://github.com/login/oauth");
  assertStringIncludes(message, head + "none of the expected identities matched");
  assertStringIncludes(message, "mitr@redhat.com");
  message = await decide("mitr@redhat.com", "https://accounts.google.com");
  assertStringIncludes(message, head);
  assertStringIncludes(message, "expected OIDC issuer");
});
