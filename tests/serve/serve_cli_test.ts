/**
 * `airlock serve` as an operator runs it (child processes of the real CLI): `serve token-add` prints a token once
 * and stores only its hash (mode 0600); a non-loopback `--listen` without TLS is refused before anything is
 * opened; SIGTERM stops accepting connections, lets the in-flight job finish (every image signed), and exits 0.
 * In process: the service over TLS (`--tls-cert`/`--tls-key`), its cookie marked Secure.
 *
 * @module
 */
import { join } from "node:path";
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../assert.ts";
import {
  airlock,
  ATTACHMENTS_ON,
  makeCa,
  makeLeaf,
  pushSingle,
  spawnAirlock,
  startRegistry,
  tempDir,
  writeRegistriesD,
} from "../testbed/mod.ts";
import { startService } from "./helpers.ts";
import { makeKey } from "../testbed/keys.ts";
import { readSig } from "../testbed/signatures.ts";
import { hashTokenHex } from "../../server/tokens.ts";

Deno.test("serve CLI: token-add prints the token once and stores its hash with mode 0600", async () => {
  await using tmp = await tempDir("airlock-serve-tokadd-");
  const file = join(tmp.path, "tokens");
  const r = await airlock(["serve", "token-add", "--token-file", file, "builder-1"], { cwd: tmp.path });
  assertEquals(r.code, 0, r.stderr);
  const token = r.stdout.trim();
  assertMatch(r.stdout, /^airlock_[A-Za-z0-9_-]{43}\n$/);
  assert(!r.stderr.includes(token), "the token is printed on stdout only");
  assertEquals(await Deno.readTextFile(file), `builder-1 ${await hashTokenHex(token)}\n`);
  assertEquals((await Deno.stat(file)).mode! & 0o777, 0o600);
  // a second token is appended; a repeated name or a bad one is refused
  const r2 = await airlock(["serve", "token-add", "--token-file", file, "builder-2"], { cwd: tmp.path });
  assertEquals(r2.code, 0, r2.stderr);
  assertEquals((await Deno.readTextFile(file)).split("\n").filter((l) => l).length, 2);
  const dup = await airlock(["serve", "token-add", "--token-file", file, "builder-1"], { cwd: tmp.path });
  assertEquals([dup.code, dup.stdout], [1, ""]);
  assertStringIncludes(dup.stderr, "builder-1 is in");
  const bad = await airlock(["serve", "token-add", "--token-file", file, "a b"], { cwd: tmp.path });
  assertEquals(bad.code, 1);
  assertStringIncludes(bad.stderr, "invalid token name");
});

Deno.test("serve CLI: a non-loopback address without TLS is refused before the key is opened", async () => {
  await using tmp = await tempDir("airlock-serve-listen-");
  const base = ["serve", "--key", "missing.key", "--token-file", "missing-tokens"];
  for (const listen of ["0.0.0.0:0", "[::]:0", "192.0.2.10:8443", "example.com:8443"]) {
    const r = await airlock([...base, "--listen", listen], { cwd: tmp.path });
    assertEquals(r.code, 1, r.stderr);
    assertStringIncludes(r.stderr, "without TLS");
  }
  const half = await airlock([...base, "--listen", "0.0.0.0:0", "--tls-cert", "c.pem"], { cwd: tmp.path });
  assertEquals(half.code, 1);
  assertStringIncludes(half.stderr, "--tls-cert and --tls-key go together");
  const noKey = await airlock(["serve", "--token-file", "t"], { cwd: tmp.path });
  assertEquals(noKey.code, 1);
  assertStringIncludes(noKey.stderr, "--key is required");
  // on loopback the listen rule passes and the next check (the token file) speaks
  const loop = await airlock([...base, "--listen", "127.0.0.1:0"], { cwd: tmp.path });
  assertEquals(loop.code, 1);
  assertStringIncludes(loop.stderr, "token file");
});

Deno.test("serve CLI: SIGTERM stops accepting and finishes the in-flight job", async () => {
  await using tmp = await tempDir("airlock-serve-term-");
  await using reg = await startRegistry();
  const key = await makeKey(tmp.path, "svc");
  const rd = await writeRegistriesD(tmp.path, ATTACHMENTS_ON);
  const tokenFile = join(tmp.path, "tokens");
  const add = await airlock(["serve", "token-add", "--token-file", tokenFile, "ci"], { cwd: tmp.path });
  const token = add.stdout.trim();
  const images = await Promise.all(
    Array.from({ length: 6 }, (_, i) => pushSingle(reg, `term/app${i}`, "v1", `serve-term-${i}`)),
  );

  await using proc = await spawnAirlock([
    "serve",
    "--key",
    key.key,
    "--passphrase-file",
    key.pass,
    "--token-file",
    tokenFile,
    "--listen",
    "127.0.0.1:0",
    "--tls-verify=false",
    "--registries.d",
    rd,
    "--shutdown-timeout",
    "30s",
  ], tmp.path);
  const url = (await proc.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+)/))[1];
  const res = await fetch(`${url}/v1/sign`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ images: images.map((_, i) => `${reg.host}/term/app${i}:v1`), jobs: 1 }),
  });
  assertEquals(res.status, 202);
  const { id } = await res.json();
  proc.child.kill("SIGTERM");
  await proc.waitFor(/shutting down/);
  // new connections are refused while the job finishes
  const fresh = Deno.createHttpClient({});
  let refused = false;
  try {
    const r = await fetch(`${url}/healthz`, { client: fresh });
    await r.body?.cancel();
  } catch {
    refused = true;
  } finally {
    fresh.close();
  }
  assert(refused, "a new connection was accepted during shutdown");
  assert(!proc.ended(), "the server was still finishing the job when the connection was refused");
  const status = await proc.status;
  assertEquals(status.code, 0, proc.stderr());
  const err = proc.stderr();
  assertStringIncludes(err, `job ${id} succeeded: sign, 6 image(s), 0 failed`);
  assertStringIncludes(err, "shutdown complete");
  assert(
    err.indexOf("shutting down") < err.indexOf(`job ${id} succeeded`),
    "the job finished after the signal",
  );
  for (const [i, img] of images.entries()) {
    const sig = await readSig(reg, `term/app${i}`, img.top.digest);
    assertEquals(sig?.layers.length, 1, `term/app${i} signed`);
  }
  assertEquals(err.match(/audit: signature written token=ci /g)?.length, 6);
  assert(!err.includes(token), "the token was logged");
});

Deno.test("serve: TLS listener (--tls-cert/--tls-key) with a Secure cookie", async () => {
  await using tmp = await tempDir("airlock-serve-tls-");
  const ca = await makeCa(tmp.path);
  const leaf = await makeLeaf(tmp.path, ca);
  await using svc = await startService({
    dir: tmp.path,
    config: { tlsCert: leaf.certPath, tlsKey: leaf.keyPath },
  });
  assertMatch(svc.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const client = Deno.createHttpClient({ caCerts: [ca.certPem] });
  try {
    const health = await fetch(`${svc.url}/healthz`, { client });
    assertEquals(health.status, 200);
    await health.body?.cancel();
    const jobs = await fetch(`${svc.url}/v1/jobs`, {
      client,
      headers: { authorization: `Bearer ${svc.tokens.ci}` },
    });
    assertEquals(jobs.status, 200);
    await jobs.body?.cancel();
    const page = await fetch(`${svc.url}/?token=${svc.tokens.ci}`, { client, redirect: "manual" });
    await page.body?.cancel();
    assertStringIncludes(page.headers.get("set-cookie") ?? "", "Secure");
  } finally {
    client.close();
  }
  // plain HTTP to the TLS port gets no answer
  let failed = false;
  try {
    const r = await fetch(svc.url.replace("https:", "http:") + "/healthz");
    await r.body?.cancel();
  } catch {
    failed = true;
  }
  assert(failed, "plain HTTP was answered");
});
