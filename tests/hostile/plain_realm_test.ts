/**
 * Secure by default, credentials (issue 15 §5): a registry on verified HTTPS whose token realm is on `http://`
 * does not get the user's password sent over plain HTTP — the command fails saying why, and the token server
 * (real, the test bed's, serving plain HTTP on purpose) never sees the credentials. containers/image sends them;
 * airlock did too. Where the user allowed the registry plain HTTP (`--tls-verify=false`), the realm is used as
 * before. A registry whose token server is on HTTPS works with verified TLS (the control).
 *
 * @module
 */
import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { airlock, show, startRegistry, tempDir, writeAuthFile } from "../testbed/mod.ts";

const PASSWORD = "s3cret-realm-pw";

Deno.test("credentials are never sent to an http:// token realm of an HTTPS registry", async () => {
  await using tmp = await tempDir("airlock-hostile-realm-");
  await using reg = await startRegistry({
    tls: true,
    auth: { kind: "token", users: { alice: PASSWORD }, plainRealm: true },
  });
  const ts = reg.tokenServer!;
  assert(ts.realm.startsWith("http://"), ts.realm);
  // No image is needed: the token is asked for before the manifest is read.
  const authfile = await writeAuthFile(tmp.path, { [reg.host]: ["alice", PASSWORD] });
  const certDir = join(reg.certDir!, reg.host);
  ts.resetCounts();
  const refused = await airlock(
    ["inspect", "--raw", `docker://${reg.host}/r/img:v1`, "--authfile", authfile, "--cert-dir", certDir],
    { cwd: tmp.path },
  );
  assertEquals(refused.code, 1, show(refused));
  assertMatch(
    refused.stderr,
    /asks for a token from http:\/\/127\.0\.0\.1:\d+\/token over plain HTTP; the credentials for .* are not sent there/,
    show(refused),
  );
  assert(!(refused.stdout + refused.stderr).includes(PASSWORD), "the password is never printed");
  assertEquals(
    ts.requests.filter((r) => r.grantType !== "anonymous"),
    [],
    "no token request carried the credentials",
  );

  // With --tls-verify=false the user allowed plain HTTP for this registry: the realm is used.
  ts.resetCounts();
  const allowed = await airlock(
    ["inspect", "--raw", `docker://${reg.host}/r/img:v1`, "--authfile", authfile, "--tls-verify=false"],
    { cwd: tmp.path },
  );
  assert(
    ts.requests.some((r) => r.account === "alice"),
    `the token was asked for with the credentials\n${show(allowed)}`,
  );
});

Deno.test("an HTTPS token realm with verified TLS is used with the credentials (control)", async () => {
  await using tmp = await tempDir("airlock-hostile-realm-ok-");
  await using reg = await startRegistry({ tls: true, auth: { kind: "token", users: { bob: PASSWORD } } });
  const ts = reg.tokenServer!;
  assert(ts.realm.startsWith("https://"), ts.realm);
  const authfile = await writeAuthFile(tmp.path, { [reg.host]: ["bob", PASSWORD] });
  const r = await airlock(
    [
      "login",
      reg.host,
      "-u",
      "bob",
      "--password-stdin",
      "--authfile",
      authfile,
      "--cert-dir",
      join(reg.certDir!, reg.host),
    ],
    { cwd: tmp.path, stdin: PASSWORD + "\n" },
  );
  assertEquals(r.code, 0, show(r));
  assert(
    ts.requests.some((q) => q.account === "bob" && q.status === 200),
    "a token was issued to bob over HTTPS",
  );
  assert(!(r.stdout + r.stderr).includes(PASSWORD));
});
