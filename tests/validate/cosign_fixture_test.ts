/**
 * A signature made by cosign (containers/image's fixture `dir-img-cosign-valid`): its identity names only a
 * repository (`192.168.64.2:5000/cosign-signed-single-sample`, no tag), so hangar's default
 * `matchRepoDigestOrExact` rejects it (spec/hangar.md §11 item 8) and `--exact-repository` naming that
 * repository accepts it. The fixture manifest has no layer or config blobs, so a real registry refuses it: the
 * bytes are served by the test bed's read-only fake registry, and the arch/os filter is turned off (`-a ""
 * --os ""`, hangar's "no filtering") because it would need the missing config blob.
 */
import { join } from "node:path";
import {
  airlock,
  fixturePath,
  loadCosignFixture,
  show,
  startStaticRegistry,
  type StaticContent,
  tempDir,
} from "../testbed/mod.ts";
import { assertEquals, assertStringIncludes } from "../assert.ts";

const dir = (...p: string[]) => fixturePath("vectors", "containers-image", ...p);

Deno.test("cosign-made signature: rejected by default, accepted with --exact-repository", async () => {
  const content: StaticContent = new Map();
  const { digest, signatures } = await loadCosignFixture(content, "cosign/valid", "v1", "valid");
  // The identity the signature claims, read from the fixture (not from airlock).
  const claimed =
    JSON.parse(new TextDecoder().decode(signatures[0].payload)).critical.identity["docker-reference"];
  assertEquals(claimed, "192.168.64.2:5000/cosign-signed-single-sample");
  await using reg = await startStaticRegistry(content);
  await using tmp = await tempDir("airlock-validate-cosign-");
  await Deno.writeTextFile(join(tmp.path, "list.txt"), `${reg.host}/cosign/valid:v1\n`);
  const ref = `${reg.host}/cosign/valid:v1`;
  const base = [
    "sign",
    "validate",
    "-f",
    "list.txt",
    "-p",
    dir("cosign.pub"),
    "--tls-verify=false",
    "-a",
    "",
    "--os",
    "",
  ];

  const byDefault = await airlock(base, { home: tmp.path });
  assertEquals(byDefault.code, 1, show(byDefault));
  assertStringIncludes(
    byDefault.stderr,
    `[ERRO] error occurred on [IMG: 1] [${ref}]: failed to validate signature [docker://${ref}]: ` +
      `sign validate: Signature for identity "${claimed}" is not accepted\n`,
  );

  const exact = await airlock([...base, "--exact-repository", claimed, "--output", "json"], {
    home: tmp.path,
  });
  assertEquals(exact.code, 0, show(exact));
  const doc = JSON.parse(exact.stdout);
  assertEquals(doc.images[0].status, "passed");
  assertEquals(doc.images[0].targets[0].digest, digest);

  // Another repository in --exact-repository: the identity is not accepted.
  const other = await airlock([...base, "--exact-repository", "192.168.64.2:5000/other"], { home: tmp.path });
  assertEquals(other.code, 1, show(other));
  assertStringIncludes(other.stderr, `sign validate: Signature for identity "${claimed}" is not accepted\n`);

  // The wrong key (cosign2.pub signs the Rekor fixture): a cryptographic failure, whatever the identity rule.
  const wrongKey = await airlock(
    [...base.map((a) => a === dir("cosign.pub") ? dir("cosign2.pub") : a), "--exact-repository", claimed],
    { home: tmp.path },
  );
  assertEquals(wrongKey.code, 1, show(wrongKey));
  assertStringIncludes(
    wrongKey.stderr,
    "sign validate: cryptographic signature verification failed: invalid signature when validating ASN.1 encoded signature\n",
  );
});
