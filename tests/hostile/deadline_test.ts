/**
 * Deadlines (issue 15 §2): a registry that trickles one byte every 2 s (or never answers) cannot keep any command
 * that talks to a registry running past its `--timeout`. The registry is a real `docker-registry` behind the
 * testbed proxy — a FAKE that forwards the distribution protocol and misbehaves on purpose (`trickle`, `stall`).
 * Each command runs as a program with `--timeout 3s` and must end with exit status ≠ 0 and "context deadline
 * exceeded" long before the client's own 60 s per-request timeout could end it (the child is killed at 45 s,
 * which fails the test). Before this, `inspect` ran for 830 s against such a registry and `verify` had no
 * deadline at all. The defaults are cosign's 3 minutes for the single-image commands and hangar's 10 minutes per
 * image for the list commands.
 *
 * @module
 */
import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { RegistryClient } from "../../core/registry/client.ts";
import {
  airlock,
  ATTACHMENTS_ON,
  pushMulti,
  show,
  signArgs,
  startProxy,
  startRegistry,
  tempDir,
  validateArgs,
  writeList,
  writeRegistriesD,
} from "../testbed/mod.ts";
import { makeKey } from "../testbed/keys.ts";
import { airlockWatched } from "./harness.ts";
import { signInProcess } from "../testbed/signatures.ts";

const KILL_MS = 45_000;

/** Runs the CLI, killing it (SIGKILL) when it runs longer than {@linkcode KILL_MS}. */
function bounded(args: string[], cwd: string, env: Record<string, string> = {}, stdin?: string) {
  return airlockWatched(args, KILL_MS, { cwd, env, stdin });
}

Deno.test("every registry command ends at its --timeout against a trickling or stalled registry", async (t) => {
  await using tmp = await tempDir("airlock-deadline-");
  await using reg = await startRegistry();
  await using dst = await startRegistry();
  const key = await makeKey(tmp.path, "k");
  const rd = await writeRegistriesD(tmp.path, ATTACHMENTS_ON);
  await pushMulti(reg, "a/multi", "v1", "deadline");
  const client = new RegistryClient({ tlsVerify: false });
  try {
    await signInProcess([`${reg.host}/a/multi:v1`], key, rd, client);
  } finally {
    client.close();
  }
  await writeList(join(tmp.path, "direct.txt"), [`${reg.host}/a/multi:v1`]);
  const saved = await airlock(
    ["save", "-f", "direct.txt", "-d", "ok.tar", "--tls-verify=false", "--registries.d", rd],
    { cwd: tmp.path },
  );
  assertEquals(saved.code, 0, show(saved));
  // Every answer of the source trickles, one byte every 2 s; every answer of the destination never comes.
  await using trickling = await startProxy(reg.url, {
    rules: [{ method: "GET", action: { kind: "trickle", intervalMs: 2000 } }],
  });
  await using stalled = await startProxy(dst.url, { rules: [{ action: { kind: "stall" } }] });
  const image = `${trickling.host}/a/multi:v1`;
  await writeList(join(tmp.path, "list.txt"), [image]);
  await Deno.writeTextFile(join(tmp.path, "pred.json"), '{"a":1}');
  const insecure = "--tls-verify=false";
  const env = { COSIGN_PASSWORD: key.passphrase };
  const cases: { name: string; args: string[]; stdin?: string }[] = [
    { name: "inspect", args: ["inspect", `docker://${image}`, insecure] },
    { name: "inspect --raw", args: ["inspect", "--raw", `docker://${image}`, insecure] },
    { name: "verify", args: ["verify", "--key", key.pub, "--insecure-ignore-tlog", insecure, image] },
    {
      name: "verify-attestation",
      args: ["verify-attestation", "--key", key.pub, "--insecure-ignore-tlog", insecure, image],
    },
    { name: "download attestation", args: ["download", "attestation", insecure, image] },
    { name: "attest", args: ["attest", "--key", key.key, "--predicate", "pred.json", insecure, image] },
    {
      name: "login",
      args: ["login", trickling.host, "-u", "u", "--password-stdin", insecure],
      stdin: "pw\n",
    },
    {
      name: "sign",
      args: signArgs({ list: "list.txt", key, registriesD: rd, insecure: true }),
    },
    {
      name: "sign validate",
      args: validateArgs({ list: "list.txt", pub: key.pub, registriesD: rd, insecure: true }),
    },
    { name: "save", args: ["save", "-f", "list.txt", "-d", "out.tar", "--registries.d", rd, insecure] },
    { name: "mirror", args: ["mirror", "-f", "list.txt", "-d", dst.host, "--registries.d", rd, insecure] },
    { name: "load", args: ["load", "-i", "ok.tar", "-d", stalled.host, insecure] },
  ];
  // Four at a time: each case waits out its 3 s deadline.
  const results: Awaited<ReturnType<typeof bounded>>[] = [];
  for (let i = 0; i < cases.length; i += 4) {
    results.push(
      ...await Promise.all(
        cases.slice(i, i + 4).map((c) => bounded([...c.args, "--timeout", "3s"], tmp.path, env, c.stdin)),
      ),
    );
  }
  for (const [i, c] of cases.entries()) {
    await t.step(c.name, () => {
      const r = results[i];
      assert(
        !r.killed,
        `${c.name} ran past its 3 s deadline and was killed at ${KILL_MS / 1000} s\n${show(r)}`,
      );
      assert(r.code !== 0, `${c.name} cannot succeed\n${show(r)}`);
      assertMatch(r.stdout + r.stderr, /context deadline exceeded/, `${c.name}\n${show(r)}`);
    });
  }
});

Deno.test("--timeout defaults: 3m0s for the single-image commands (cosign), 10m per image for list commands (hangar)", async () => {
  await using tmp = await tempDir("airlock-deadline-help-");
  const single = [["inspect"], ["verify"], ["verify-attestation"], ["download", "attestation"], ["attest"], [
    "login",
  ]];
  const list = [["sign"], ["sign", "validate"], ["mirror"], ["save"], ["load"]];
  for (const [cmds, want] of [[single, "3m0s"], [list, "10m"]] as const) {
    for (const cmd of cmds) {
      const r = await airlock([...cmd, "--help"], { cwd: tmp.path });
      assertEquals(r.code, 0, show(r));
      assertMatch(
        r.stdout,
        new RegExp(`--timeout <duration>[^\\n]*\\n?[^\\n]*\\(default: "${want}"\\)`),
        `${cmd.join(" ")}\n${r.stdout}`,
      );
    }
  }
});
