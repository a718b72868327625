/**
 * The KMS plugin backend against a real plugin executable (`sigstore-kms-testkms`, tests/backends/testdata):
 * the protocol as sigstore's cliplugin speaks it (version argument, JSON arguments, message on stdin, JSON
 * answer), sign + verify with the plugin's public key and with openssl, errors from the plugin's answer,
 * a missing plugin, broken plugins, and `generate-key-pair --key testkms://…`.
 *
 * @module
 */
import { join } from "node:path";
import { openKey } from "../../backends/key_backend.ts";
import { createPluginKey, openPluginKey, parsePluginRef } from "../../backends/plugin.ts";
import { base64Decode } from "../../core/encoding/base64.ts";
import { parsePublicKeyPem, verifySignature } from "../../core/signature/public_key.ts";
import { assert, assertEquals } from "../assert.ts";
import { airlock, tempDir } from "../testbed/mod.ts";
import { opensslVerify } from "../testbed/signatures.ts";
import { rejectsWith } from "./kms_test_util.ts";
import { installTestKms, makeTestKmsKey } from "./testkms.ts";

const enc = new TextEncoder();

/** Runs `fn` with environment variables set in this process (the plugin inherits them). */
async function withEnv<T>(vars: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  for (const [k, v] of Object.entries(vars)) Deno.env.set(k, v);
  try {
    return await fn();
  } finally {
    for (const k of Object.keys(vars)) Deno.env.delete(k);
  }
}

Deno.test("plugin references split as sigstore's cliplugin does", () => {
  assertEquals(parsePluginRef("testkms:///tmp/k.json"), {
    name: "testkms",
    executable: "sigstore-kms-testkms",
    keyResourceId: "/tmp/k.json",
  });
  assertEquals(parsePluginRef("my-hsm://slot/1").executable, "sigstore-kms-my-hsm");
});

Deno.test("KMS plugin backend with a real plugin executable", async (t) => {
  await using tmp = await tempDir("airlock-plugin-");
  const bin = join(tmp.path, "bin");
  await installTestKms(bin);
  const ref = await makeTestKmsKey(tmp.path, bin);
  const path = `${bin}:${Deno.env.get("PATH")}`;
  const env = (n: string) => n === "PATH" ? path : undefined;

  await t.step(
    "sign through openKey; verify with the plugin's key and openssl; protocol arguments",
    async () => {
      const log = join(tmp.path, "calls.jsonl");
      await withEnv({ TESTKMS_LOG: log }, async () => {
        const key = await openKey(ref, { env });
        const pem = await key.publicKey();
        const pub = parsePublicKeyPem(pem);
        assertEquals([pub.algorithm, pub.curve], ["ecdsa", "P-256"]);
        const msg = enc.encode('{"critical":{"identity":{"docker-reference":"r/a:b"}}}');
        const sig = await key.sign(msg);
        assert(await verifySignature(pub, msg, sig));
        assert(await opensslVerify(pem, msg, sig, tmp.path));
        await key.close();
        await rejectsWith(() => key.sign(msg), "KEY_BACKEND", ["closed"]);

        const calls = (await Deno.readTextFile(log)).trim().split("\n").map((l) => JSON.parse(l));
        assertEquals(calls.map((c) => c.args.methodName), ["publicKey", "signMessage"]);
        const sign = calls[1];
        assertEquals(sign.args.initOptions.protocolVersion, "v1");
        assertEquals(sign.args.initOptions.keyResourceID, ref.slice("testkms://".length));
        assertEquals(sign.args.initOptions.hashFunc, 5);
        assertEquals(sign.stdinLength, msg.length);
        const digest = base64Decode(sign.args.signMessage.signOptions.messageOptions.digest)!;
        assertEquals([...digest], [...new Uint8Array(await crypto.subtle.digest("SHA-256", msg))]);
        assertEquals(sign.args.signMessage.signOptions.messageOptions.hashFunc, 5);
      });
    },
  );

  await t.step("8 concurrent signs verify; raw r‖s answers are converted to DER", async () => {
    const key = await openPluginKey(ref, { env, maxProcesses: 4 });
    const pem = await key.publicKey();
    const pub = parsePublicKeyPem(pem);
    const msgs = Array.from({ length: 8 }, (_, i) => enc.encode(`payload ${i}`));
    const sigs = await Promise.all(msgs.map((m) => key.sign(m)));
    for (let i = 0; i < 8; i++) assert(await verifySignature(pub, msgs[i], sigs[i]), `#${i}`);
    await withEnv({ TESTKMS_RAW_SIG: "1" }, async () => {
      const sig = await key.sign(msgs[0]);
      assertEquals(sig[0], 0x30); // DER SEQUENCE
      assert(await opensslVerify(pem, msgs[0], sig, tmp.path));
    });
    await key.close();
  });

  await t.step(
    "errors: the plugin's errorMessage, a bad signature, a missing plugin, broken plugins",
    async () => {
      await rejectsWith(
        () => openKey(`testkms://${join(tmp.path, "missing.json")}`, { env }),
        "KEY_BACKEND",
        [
          'KMS plugin "sigstore-kms-testkms": publicKey returned an error: testkms: cannot read key',
          "missing.json",
        ],
      );
      const key = await openKey(ref, { env });
      await withEnv(
        { TESTKMS_BAD_SIG: "1" },
        () =>
          rejectsWith(() => key.sign(enc.encode("x")), "KEY_BACKEND", [
            "does not verify with its public key",
          ]),
      );
      await key.close();
      await rejectsWith(() => openKey("nosuchkms://k", { env }), "KEY_UNSUPPORTED", [
        'the KMS plugin "sigstore-kms-nosuchkms", which is not on PATH',
      ]);
      // a plugin that prints no JSON: the error carries its stderr
      await Deno.writeTextFile(
        join(bin, "sigstore-kms-garbage"),
        "#!/bin/sh\necho 'boom: no token' >&2\necho nope\n",
        {
          mode: 0o755,
        },
      );
      await rejectsWith(() => openKey("garbage://k", { env }), "KEY_BACKEND", [
        "parsing the plugin's answer",
        "boom: no token",
      ]);
      // a plugin that hangs is killed at the deadline
      await Deno.writeTextFile(join(bin, "sigstore-kms-slow"), "#!/bin/sh\nexec sleep 30\n", { mode: 0o755 });
      const t0 = performance.now();
      await rejectsWith(() => openPluginKey("slow://k", { env, timeoutMs: 300 }), "KEY_BACKEND", [
        "timed out",
      ]);
      assert(performance.now() - t0 < 5000);
    },
  );

  await t.step("createKey and airlock generate-key-pair --key testkms://…", async () => {
    const file = join(tmp.path, "created.json");
    const made = await createPluginKey(`testkms://${file}`, { env });
    assertEquals(made.algorithm, "ecdsa-p256");
    const key = await openPluginKey(`testkms://${file}`, { env });
    assertEquals(await key.publicKey(), made.publicPem);
    await key.close();

    await using home = await tempDir("airlock-plugin-cli-");
    const cliRef = `testkms://${join(home.path, "cli-key.json")}`;
    const gen = await airlock(["generate-key-pair", "--key", cliRef], {
      home: home.path,
      pathPrepend: [bin],
    });
    assertEquals(gen.code, 0, gen.stderr);
    const pem = await Deno.readTextFile(join(home.path, "cosign.pub"));
    const pub = await airlock(["public-key", "--key", cliRef], { home: home.path, pathPrepend: [bin] });
    assertEquals([pub.code, pub.stdout], [0, pem], pub.stderr);
    const missing = await airlock(["public-key", "--key", "nosuchkms://k"], { home: home.path });
    assert(missing.code !== 0 && missing.stderr.includes("sigstore-kms-nosuchkms"), missing.stderr);
  });
});
