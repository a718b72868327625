import { assertEquals } from "../assert.ts";
import { signArgs, validateArgs } from "./args.ts";

Deno.test("signArgs: every flag in its place, optional ones only when given", () => {
  const key = { key: "k.key", pass: "k.pass" };
  assertEquals(signArgs({ list: "l.txt", key }), [
    "sign",
    "-f",
    "l.txt",
    "-k",
    "k.key",
    "--sigstore-passphrase-file",
    "k.pass",
  ]);
  assertEquals(
    signArgs({
      list: "l.txt",
      key,
      keyFlag: "--key",
      jobs: 20,
      certDir: "certs",
      registriesD: "rd",
      insecure: true,
      extra: ["-o", "failed.txt"],
    }),
    [
      "sign",
      "-f",
      "l.txt",
      "-j",
      "20",
      "--key",
      "k.key",
      "--sigstore-passphrase-file",
      "k.pass",
      "--cert-dir",
      "certs",
      "--registries.d",
      "rd",
      "--tls-verify=false",
      "-o",
      "failed.txt",
    ],
  );
  assertEquals(signArgs({ list: "l.txt", key, insecure: false }).includes("--tls-verify=false"), false);
});

Deno.test("validateArgs: every flag in its place, optional ones only when given", () => {
  assertEquals(validateArgs({ list: "l.txt", pub: "k.pub" }), [
    "sign",
    "validate",
    "-f",
    "l.txt",
    "-p",
    "k.pub",
  ]);
  assertEquals(
    validateArgs({
      list: "l.txt",
      pub: "k.pub",
      jobs: 4,
      registriesD: "rd",
      insecure: true,
      extra: ["--output", "json"],
    }),
    [
      "sign",
      "validate",
      "-f",
      "l.txt",
      "-j",
      "4",
      "-p",
      "k.pub",
      "--registries.d",
      "rd",
      "--tls-verify=false",
      "--output",
      "json",
    ],
  );
});

Deno.test("validateArgs: without a public key (a --policy instead), no -p", () => {
  assertEquals(validateArgs({ list: "l.txt", extra: ["--policy", "p.json"] }), [
    "sign",
    "validate",
    "-f",
    "l.txt",
    "--policy",
    "p.json",
  ]);
});
