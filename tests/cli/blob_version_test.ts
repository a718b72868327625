/**
 * `airlock version` (version, commit, Deno, trusted root date) and `airlock sign-blob` / `verify-blob`, the
 * cosign-compatible blob signatures the release workflow puts on SHA256SUMS. Interoperability is checked with
 * OpenSSL, which implements the same format independently (ECDSA P-256 over SHA-256, ASN.1 DER, base64): an
 * airlock signature verifies with `openssl dgst -verify`, and an OpenSSL signature verifies with airlock. (cosign
 * itself is not installed on this host.)
 *
 * @module
 */
import { join } from "node:path";
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../assert.ts";
import { run } from "../testbed/exec.ts";
import { airlock, show, startSoftHsm, tempDir } from "../testbed/mod.ts";
import { PUBLIC_GOOD_ROOT_INFO } from "../../core/keyless/public_good_root.ts";
import { decodeBlobSignature } from "../../core/blob.ts";

Deno.test("airlock version: version, commit, Deno version and the embedded trusted root's date", async () => {
  await using home = await tempDir("airlock-cli-version-");
  const r = await airlock(["version"], { home: home.path });
  assertEquals(r.code, 0, show(r));
  const lines = r.stdout.trimEnd().split("\n");
  assertMatch(lines[0], /^airlock \d+\.\d+\.\d+/);
  assertEquals(lines[1], "commit: unknown"); // run from the sources: no build stamped a commit
  assertStringIncludes(lines[2], `deno: ${Deno.version.deno} (v8 `);
  assertEquals(lines[3], `target: ${Deno.build.target}`);
  assertStringIncludes(lines[4], `trusted root: sigstore public-good, ${PUBLIC_GOOD_ROOT_INFO.date} `);

  const json = await airlock(["version", "--output", "json"], { home: home.path });
  assertEquals(json.code, 0, show(json));
  const info = JSON.parse(json.stdout);
  assertEquals(info.commit, "unknown");
  assertEquals(info.deno, Deno.version.deno);
  assertEquals(info.trustedRoot.date, PUBLIC_GOOD_ROOT_INFO.date);
  assertEquals(info.trustedRoot.sha256, PUBLIC_GOOD_ROOT_INFO.sha256);

  const bad = await airlock(["version", "-o", "yaml"], { home: home.path });
  assertEquals(bad.code, 1, show(bad));
});

Deno.test("decodeBlobSignature: base64 with white space, or raw bytes", () => {
  assertEquals(decodeBlobSignature("AQID\n"), new Uint8Array([1, 2, 3]));
  assertEquals(
    decodeBlobSignature(new Uint8Array([0x30, 0x02, 0x01, 0x00])),
    new Uint8Array([0x30, 2, 1, 0]),
  );
});

Deno.test("sign-blob / verify-blob: key file, SoftHSM2 key, OpenSSL both ways, tampering and bad input", async (t) => {
  await using home = await tempDir("airlock-cli-blob-");
  const dir = home.path;
  const cli = (args: string[], env?: Record<string, string>, stdin?: string) =>
    airlock(args, { home: dir, env, stdin });
  const blob = join(dir, "SHA256SUMS");
  await Deno.writeTextFile(blob, "e3b0c442  airlock-x86_64-unknown-linux-gnu\n");
  await Deno.writeTextFile(join(dir, "pass.txt"), "blob-pass\n");
  const gen = await cli(["generate-key-pair", "--passphrase-file", "pass.txt"]);
  assertEquals(gen.code, 0, show(gen));

  await t.step("sign-blob writes a base64 DER signature that OpenSSL verifies", async () => {
    const r = await cli(["sign-blob", blob, "--key", "cosign.key", "--output-signature", "sums.sig"], {
      COSIGN_PASSWORD: "blob-pass",
    });
    assertEquals(r.code, 0, show(r));
    assertStringIncludes(r.stderr, "Wrote signature to file sums.sig");
    const text = await Deno.readTextFile(join(dir, "sums.sig"));
    assertMatch(text, /^[A-Za-z0-9+/]+=*$/); // base64, no newline, as cosign writes it
    await Deno.writeFile(join(dir, "sums.der"), decodeBlobSignature(text));
    const v = await run("openssl", [
      "dgst",
      "-sha256",
      "-verify",
      join(dir, "cosign.pub"),
      "-signature",
      join(dir, "sums.der"),
      blob,
    ]);
    assertStringIncludes(v.stdout, "Verified OK");
  });

  await t.step(
    "verify-blob accepts it: signature file, inline base64, stdin, --insecure-ignore-tlog forms",
    async () => {
      for (
        const args of [
          ["verify-blob", blob, "--key", "cosign.pub", "--signature", "sums.sig"],
          [
            "verify-blob",
            "--key",
            "cosign.pub",
            "--signature",
            await Deno.readTextFile(join(dir, "sums.sig")),
            blob,
          ],
          ["verify-blob", "--key", "cosign.pub", "--signature", "sums.sig", "--insecure-ignore-tlog", blob],
          [
            "verify-blob",
            "--key",
            "cosign.pub",
            "--signature",
            "sums.sig",
            "--insecure-ignore-tlog=true",
            blob,
          ],
        ]
      ) {
        const r = await cli(args);
        assertEquals(r.code, 0, show(r));
        assertStringIncludes(r.stderr, "Verified OK");
      }
      const fromStdin = await cli(
        ["verify-blob", "-", "--key", "cosign.pub", "--signature", "sums.sig"],
        undefined,
        await Deno.readTextFile(blob),
      );
      assertEquals(fromStdin.code, 0, show(fromStdin));
    },
  );

  await t.step("sign-blob without --output-signature prints the signature; it verifies", async () => {
    const r = await cli(["sign-blob", blob, "--key", "cosign.key", "--passphrase-file", "pass.txt"]);
    assertEquals(r.code, 0, show(r));
    const sig = r.stdout.trim();
    assertMatch(sig, /^[A-Za-z0-9+/]+=*$/);
    const v = await cli(["verify-blob", blob, "--key", "cosign.pub", "--signature", sig]);
    assertEquals(v.code, 0, show(v));
  });

  await t.step("an OpenSSL signature (raw DER file, or base64) verifies with airlock", async () => {
    await run("openssl", ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", join(dir, "o.pem")]);
    await run("openssl", ["pkey", "-in", join(dir, "o.pem"), "-pubout", "-out", join(dir, "o.pub")]);
    await run("openssl", ["dgst", "-sha256", "-sign", join(dir, "o.pem"), "-out", join(dir, "o.der"), blob]);
    const raw = await cli(["verify-blob", blob, "--key", "o.pub", "--signature", "o.der"]);
    assertEquals(raw.code, 0, show(raw));
    const b64 = btoa(String.fromCharCode(...await Deno.readFile(join(dir, "o.der"))));
    const inline = await cli(["verify-blob", blob, "--key", "o.pub", "--signature", b64]);
    assertEquals(inline.code, 0, show(inline));
  });

  await t.step(
    "a changed file, another key, a garbage signature: exit 1 with cosign's error lines",
    async () => {
      const changed = join(dir, "SHA256SUMS.changed");
      await Deno.writeTextFile(changed, "e3b0c443  airlock-x86_64-unknown-linux-gnu\n");
      for (
        const args of [
          ["verify-blob", changed, "--key", "cosign.pub", "--signature", "sums.sig"],
          ["verify-blob", blob, "--key", "o.pub", "--signature", "sums.sig"],
          ["verify-blob", blob, "--key", "cosign.pub", "--signature", "bm90IGEgc2lnbmF0dXJl"],
        ]
      ) {
        const r = await cli(args);
        assertEquals(r.code, 1, show(r));
        assertStringIncludes(r.stderr, "Error: invalid signature");
        assert(!r.stderr.includes("Verified OK"));
      }
    },
  );

  await t.step("usage errors: no --key, no --signature, --tlog-upload=true, missing file", async () => {
    const cases: [string[], string][] = [
      [["sign-blob", blob], "--key is required"],
      [["verify-blob", blob, "--key", "cosign.pub"], "--signature is required"],
      [["sign-blob", blob, "--key", "cosign.key", "--tlog-upload=true"], "does not upload"],
      [["verify-blob", "nope.txt", "--key", "cosign.pub", "--signature", "sums.sig"], "reading nope.txt"],
    ];
    for (const [args, text] of cases) {
      const r = await cli(args, { COSIGN_PASSWORD: "blob-pass" });
      assertEquals(r.code, 1, show(r));
      assertStringIncludes(r.stderr, text);
    }
  });

  await t.step("a SoftHSM2 key signs; its public key (or the pkcs11: URI itself) verifies", async () => {
    await using hsm = await startSoftHsm();
    const token = await hsm.initToken("blob");
    await hsm.generateKey(token, { type: "EC:prime256v1", label: "release", id: "07" });
    const uri = hsm.uri(token, { object: "release" });
    const signed = await cli(["sign-blob", blob, "--key", uri, "--output-signature", "hsm.sig"], hsm.env);
    assertEquals(signed.code, 0, show(signed));
    await Deno.writeTextFile(join(dir, "hsm.pub"), await hsm.publicKeyPem(token, "07"));
    const v1 = await cli(["verify-blob", blob, "--key", "hsm.pub", "--signature", "hsm.sig"]);
    assertEquals(v1.code, 0, show(v1));
    const v2 = await cli(["verify-blob", blob, "--key", uri, "--signature", "hsm.sig"], hsm.env);
    assertEquals(v2.code, 0, show(v2));
  });
});
