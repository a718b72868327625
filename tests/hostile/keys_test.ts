/**
 * Secure by default, keys (issue 15 §5): RSA keys under 2048 bits are refused everywhere — a key file (encrypted,
 * so that only its size is at stake), a SoftHSM2 token key, a public key to verify or validate with — and an
 * unencrypted private key file is used only with `--allow-unencrypted-key` (cosign refuses one too). Each check
 * runs the CLI against a real registry and shows that nothing was written; the weak public keys are judged
 * against an image that carries a valid RSA-2048 signature. Before, an RSA-512 key signed and an
 * unencrypted key file was taken without a word.
 *
 * @module
 */
import { generateKeyPairSync } from "node:crypto";
import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { encryptPrivateKey, SIGSTORE_KEY_PEM_TYPE } from "../../backends/file.ts";
import {
  airlock,
  ATTACHMENTS_ON,
  pushSingle,
  show,
  signArgs,
  startRegistry,
  startSoftHsm,
  tempDir,
  validateArgs,
  writeList,
  writeRegistriesD,
} from "../testbed/mod.ts";
import { listTags, readSig } from "../testbed/signatures.ts";
import { endpoint } from "../mirror/helpers.ts";

const enc = new TextEncoder();

/** An RSA key of `bits` as an encrypted sigstore key file `<name>.key` (passphrase file `<name>.pass`), and its public key. */
async function rsaKeyFile(
  dir: string,
  name: string,
  bits: number,
): Promise<{ key: string; pass: string; pub: string }> {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: bits });
  const pkcs8 = new Uint8Array(privateKey.export({ type: "pkcs8", format: "der" }));
  const pem = await encryptPrivateKey(pkcs8, enc.encode("pw"), {
    pemType: SIGSTORE_KEY_PEM_TYPE,
    scryptN: 32768,
  });
  const files = {
    key: join(dir, `${name}.key`),
    pass: join(dir, `${name}.pass`),
    pub: join(dir, `${name}.pub`),
  };
  await Deno.writeTextFile(files.key, pem);
  await Deno.writeTextFile(files.pass, "pw");
  await Deno.writeTextFile(files.pub, publicKey.export({ type: "spki", format: "pem" }) as string);
  return files;
}

Deno.test("RSA keys under 2048 bits are refused for signing (file, PKCS#11) and for verifying; nothing is written", async () => {
  await using tmp = await tempDir("airlock-hostile-rsa-");
  await using reg = await startRegistry();
  await using hsm = await startSoftHsm();
  const rd = await writeRegistriesD(tmp.path, ATTACHMENTS_ON);
  const digest = (await pushSingle(reg, "k/img", "v1", "rsa-small")).top.digest;
  const image = `${reg.host}/k/img:v1`;
  await writeList(join(tmp.path, "list.txt"), [image]);
  await Deno.writeTextFile(join(tmp.path, "blob.txt"), "hello");
  const insecure = "--tls-verify=false";
  const token = await hsm.initToken("weak", { pin: "1234" });
  await hsm.generateKey(token, { type: "rsa:1024", label: "weak", id: "09" });
  const hsmRef = hsm.uri(token, { object: "weak" });
  const env = hsm.env;
  // The control first: an RSA-2048 key signs, and its signature validates (so that the weak keys below are
  // judged against a signature that exists).
  const ok = await rsaKeyFile(tmp.path, "rsa2048", 2048);
  const signed = await airlock(
    signArgs({ list: "list.txt", keyFlag: "--key", key: ok, registriesD: rd, insecure: true }),
    { cwd: tmp.path },
  );
  assertEquals(signed.code, 0, show(signed));
  const valid = await airlock(
    validateArgs({ list: "list.txt", pub: ok.pub, registriesD: rd, insecure: true }),
    {
      cwd: tmp.path,
    },
  );
  assertEquals(valid.code, 0, show(valid));
  assertEquals((await readSig(endpoint(reg), "k/img", digest))?.layers.length, 1);

  for (const bits of [512, 1024]) {
    const k = await rsaKeyFile(tmp.path, `rsa${bits}`, bits);
    const runs: [string, string[]][] = [
      ["sign", signArgs({ list: "list.txt", keyFlag: "--key", key: k, registriesD: rd, insecure: true })],
      ["sign-blob", ["sign-blob", "--key", k.key, "--passphrase-file", k.pass, "blob.txt"]],
      ["public-key", ["public-key", "--key", k.key, "--passphrase-file", k.pass]],
      ["verify", ["verify", "--key", k.pub, "--insecure-ignore-tlog", insecure, image]],
      ["sign validate", validateArgs({ list: "list.txt", pub: k.pub, registriesD: rd, insecure: true })],
    ];
    for (const [name, args] of runs) {
      const r = await airlock(args, { cwd: tmp.path });
      assert(r.code !== 0, `RSA-${bits} ${name}\n${show(r)}`);
      assertMatch(
        r.stdout + r.stderr,
        new RegExp(`RSA key of ${bits} bits: keys under 2048 bits are refused`),
        `${name}\n${show(r)}`,
      );
    }
  }
  const pkcs11 = await airlock(["sign", "-f", "list.txt", "--key", hsmRef, "--registries.d", rd, insecure], {
    cwd: tmp.path,
    env,
  });
  assertEquals(pkcs11.code, 1, show(pkcs11));
  assertMatch(pkcs11.stderr, /RSA key of 1024 bits: keys under 2048 bits are refused/, show(pkcs11));
  assert(!pkcs11.stderr.includes("1234"), "the PIN is never printed");

  assertEquals((await readSig(endpoint(reg), "k/img", digest))?.layers.length, 1, "no signature was added");
});

Deno.test("an unencrypted private key file is refused unless --allow-unencrypted-key is given", async () => {
  await using tmp = await tempDir("airlock-hostile-plainkey-");
  await using reg = await startRegistry();
  const rd = await writeRegistriesD(tmp.path, ATTACHMENTS_ON);
  await pushSingle(reg, "p/img", "v1", "plain-key");
  const image = `${reg.host}/p/img:v1`;
  await writeList(join(tmp.path, "list.txt"), [image]);
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const forms: [string, string][] = [
    ["PRIVATE KEY", privateKey.export({ type: "pkcs8", format: "pem" }) as string],
    ["EC PRIVATE KEY", privateKey.export({ type: "sec1", format: "pem" }) as string],
  ];
  await Deno.writeTextFile(
    join(tmp.path, "plain.pub"),
    publicKey.export({ type: "spki", format: "pem" }) as string,
  );
  const insecure = "--tls-verify=false";
  for (const [type, pem] of forms) {
    await Deno.writeTextFile(join(tmp.path, "plain.pem"), pem);
    for (
      const args of [
        ["sign", "-f", "list.txt", "--key", "plain.pem", "--registries.d", rd, insecure],
        ["sign-blob", "--key", "plain.pem", "list.txt"],
        ["public-key", "--key", "plain.pem"],
      ]
    ) {
      const r = await airlock(args, { cwd: tmp.path });
      assertEquals(r.code, 1, `${type} ${args[0]}\n${show(r)}`);
      assertMatch(
        r.stdout + r.stderr,
        new RegExp(`the private key is not encrypted \\(PEM "${type}"\\).*--allow-unencrypted-key`),
        show(r),
      );
      assert(!(r.stdout + r.stderr).includes("PRIVATE KEY-----"), "the key is never printed");
    }
  }
  assertEquals(await listTags(endpoint(reg), "p/img"), ["v1"], "no signature was written");
  const signed = await airlock(
    [
      "sign",
      "-f",
      "list.txt",
      "--key",
      "plain.pem",
      "--allow-unencrypted-key",
      "--registries.d",
      rd,
      insecure,
    ],
    { cwd: tmp.path },
  );
  assertEquals(signed.code, 0, show(signed));
  const valid = await airlock(
    validateArgs({ list: "list.txt", pub: "plain.pub", registriesD: rd, insecure: true }),
    { cwd: tmp.path },
  );
  assertEquals(valid.code, 0, show(valid));
});
