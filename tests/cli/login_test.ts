/**
 * `airlock login` / `logout` and the credential files `inspect` reads, through the real CLI, against a real
 * basic-auth (htpasswd) registry and a real token-auth registry: the auth.json written (place, mode, content),
 * wrong passwords, stored credentials used by `inspect`, `-p` warning, no password in any output, non-TTY stdin,
 * Docker's `config.json` with `auths` and with `credHelpers` (a real `docker-credential-*` script on PATH).
 *
 * @module
 */
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "../assert.ts";
import {
  airlock,
  buildImage,
  type CliResult,
  exists,
  pushImage,
  rawSink,
  show,
  startRegistry,
  tempDir,
  type TestImage,
} from "../testbed/mod.ts";

const USER = "alice";
const PASSWORD = "Pw-9f3e1c7b-secret";
const WRONG = "Wrong-5d2a8e44-guess";

function ok(r: CliResult, what: string): void {
  assertEquals(r.code, 0, `${what} should succeed:\n${show(r)}`);
}

function fails(r: CliResult, what: string, ...needles: string[]): void {
  assert(r.code !== 0, `${what} should fail:\n${show(r)}`);
  for (const n of needles) assertStringIncludes(r.stderr, n, `${what}:\n${show(r)}`);
}

/** A refused anonymous (or wrongly authenticated) pull: non-zero, and stderr says authentication is the problem. */
function unauthorized(r: CliResult, what: string): void {
  fails(r, what);
  assert(
    /\b401\b|unauthorized|requires authentication/i.test(r.stderr),
    `${what}: no clear 401 message:\n${show(r)}`,
  );
  assertEquals(r.stdout, "", what);
}

/** No secret in any output (nor its base64 forms). */
function noSecrets(r: CliResult, what: string): void {
  for (const s of [PASSWORD, WRONG, btoa(`${USER}:${PASSWORD}`), btoa(`${USER}:${WRONG}`)]) {
    assert(
      !r.stdout.includes(s) && !r.stderr.includes(s),
      `${what}: a secret appears in the output:\n${show(r)}`,
    );
  }
}

async function mode(path: string): Promise<number> {
  return (await Deno.stat(path)).mode! & 0o777;
}

/** A fresh HOME for one scenario (so no run sees another's files). */
async function freshHome(root: string, name: string): Promise<string> {
  const dir = join(root, name);
  await Deno.mkdir(dir, { recursive: true });
  return dir;
}

Deno.test("airlock login/logout and stored credentials through the CLI", async (t) => {
  await using root = await tempDir("airlock-cli-login-");
  await using basic = await startRegistry({ auth: { kind: "basic", users: { [USER]: PASSWORD } } });
  await using token = await startRegistry({ auth: { kind: "token", users: { [USER]: PASSWORD } } });

  // One image in each registry, pushed without airlock.
  const basicImg = await buildImage({ seed: "login-basic" });
  await pushImage(
    basicImg,
    { registry: basic.host, repository: "t/basic" },
    "v1",
    rawSink(basic.url, { authorization: `Basic ${btoa(`${USER}:${PASSWORD}`)}` }),
  );
  const tokenImg = await buildImage({ seed: "login-token" });
  const ts = token.tokenServer!;
  const q = new URLSearchParams({ service: ts.service, scope: "repository:t/token:pull,push" });
  const tokenRes = await fetch(`${ts.realm}?${q}`, {
    headers: { authorization: `Basic ${btoa(`${USER}:${PASSWORD}`)}` },
  });
  assertEquals(tokenRes.status, 200);
  const bearer = (await tokenRes.json()).token as string;
  await pushImage(
    tokenImg,
    { registry: token.host, repository: "t/token" },
    "v1",
    rawSink(token.url, { authorization: `Bearer ${bearer}` }),
  );

  const run = (args: string[], home: string, o: { env?: Record<string, string>; stdin?: string } = {}) =>
    airlock(args, { home, env: o.env, stdin: o.stdin });
  const inspectRaw = (host: string, repo: string, home: string, env?: Record<string, string>) =>
    run(["inspect", "--tls-verify=false", "--raw", `${host}/${repo}:v1`], home, { env });
  const expectImage = (r: CliResult, img: TestImage, what: string) => {
    ok(r, what);
    assertEquals(r.stdoutBytes, img.top.bytes, what);
    noSecrets(r, what);
  };

  for (
    const [kind, reg, repo, img] of [["basic", basic, "t/basic", basicImg], [
      "token",
      token,
      "t/token",
      tokenImg,
    ]] as const
  ) {
    await t.step(
      `${kind} auth: login with --password-stdin writes REGISTRY_AUTH_FILE; inspect uses it`,
      async () => {
        const home = await freshHome(root.path, `${kind}-stdin`);
        const authFile = join(home, "auth", "auth.json");
        const env = { REGISTRY_AUTH_FILE: authFile };

        // Without credentials: 401, clearly.
        unauthorized(await inspectRaw(reg.host, repo, home, env), `${kind}: inspect without credentials`);

        // Wrong password: non-zero, nothing written.
        const wrong = await run(
          ["login", "--tls-verify=false", reg.host, "-u", USER, "--password-stdin"],
          home,
          { env, stdin: `${WRONG}\n` },
        );
        fails(wrong, `${kind}: login with a wrong password`);
        assert(/401|unauthorized|denied|invalid/i.test(wrong.stderr), show(wrong));
        noSecrets(wrong, `${kind}: wrong login`);
        assertEquals(await exists(authFile), false, "nothing written after a failed login");

        // Right password.
        const login = await run(
          ["login", "--tls-verify=false", reg.host, "-u", USER, "--password-stdin"],
          home,
          { env, stdin: `${PASSWORD}\n` },
        );
        ok(login, `${kind}: login`);
        noSecrets(login, `${kind}: login`);
        assertEquals(await mode(authFile), 0o600);
        assertEquals(JSON.parse(await Deno.readTextFile(authFile)), {
          auths: { [reg.host]: { auth: btoa(`${USER}:${PASSWORD}`) } },
        });

        expectImage(
          await inspectRaw(reg.host, repo, home, env),
          img,
          `${kind}: inspect with stored credentials`,
        );

        // The same stored file, but the run does not point at it: 401 again.
        const other = await freshHome(root.path, `${kind}-other`);
        unauthorized(await inspectRaw(reg.host, repo, other), `${kind}: inspect from another HOME`);

        // logout removes the entry; inspect fails again; a second logout says it is not logged in.
        const logout = await run(["logout", reg.host], home, { env });
        ok(logout, `${kind}: logout`);
        const after = JSON.parse(await Deno.readTextFile(authFile));
        assertEquals(after.auths?.[reg.host], undefined, "entry removed");
        unauthorized(await inspectRaw(reg.host, repo, home, env), `${kind}: inspect after logout`);
        const again = await run(["logout", reg.host], home, { env });
        fails(again, `${kind}: logout twice`, `not logged into ${reg.host}`);
      },
    );
  }

  await t.step("--authfile, -p with a warning, and other entries kept", async () => {
    const home = await freshHome(root.path, "authfile");
    const authFile = join(home, "my-auth.json");
    const foreign = { auths: { "other.example:5000": { auth: btoa("bob:x") } }, extra: { keep: true } };
    await Deno.writeTextFile(authFile, JSON.stringify(foreign));
    const before = await Deno.readTextFile(authFile);

    const wrong = await run(
      ["login", "--tls-verify=false", "--authfile", authFile, basic.host, "-u", USER, "-p", WRONG],
      home,
    );
    fails(wrong, "login -p wrong");
    noSecrets(wrong, "login -p wrong");
    assertEquals(await Deno.readTextFile(authFile), before, "a failed login leaves the file as it was");

    const login = await run(
      ["login", "--tls-verify=false", "--authfile", authFile, basic.host, "-u", USER, "-p", PASSWORD],
      home,
    );
    ok(login, "login -p");
    noSecrets(login, "login -p");
    assert(
      /WARN/.test(login.stderr) && /--password/.test(login.stderr),
      `a warning about -p:\n${show(login)}`,
    );
    assertEquals(await mode(authFile), 0o600);
    assertEquals(JSON.parse(await Deno.readTextFile(authFile)), {
      ...foreign,
      auths: { ...foreign.auths, [basic.host]: { auth: btoa(`${USER}:${PASSWORD}`) } },
    });
    // The default place was not written.
    assertEquals(await exists(join(home, ".run/containers/auth.json")), false);
    assertEquals(await exists(join(home, ".config/containers/auth.json")), false);

    const inspect = await run(
      ["inspect", "--tls-verify=false", "--authfile", authFile, "--raw", `${basic.host}/t/basic:v1`],
      home,
    );
    expectImage(inspect, basicImg, "inspect --authfile");

    const logout = await run(["logout", "--authfile", authFile, basic.host], home);
    ok(logout, "logout --authfile");
    assertEquals(JSON.parse(await Deno.readTextFile(authFile)), foreign);
    fails(await run(["logout", "--authfile", authFile, basic.host], home), "logout twice", "not logged into");
  });

  await t.step("non-TTY stdin without --password-stdin fails at once, no prompt", async () => {
    const home = await freshHome(root.path, "nontty");
    const env = { REGISTRY_AUTH_FILE: join(home, "auth.json") };
    const started = Date.now();
    const noPassword = await run(["login", "--tls-verify=false", basic.host, "-u", USER], home, { env });
    fails(noPassword, "login without a password", "--password-stdin");
    const piped = await run(["login", "--tls-verify=false", basic.host, "-u", USER], home, {
      env,
      stdin: PASSWORD,
    });
    fails(piped, "login with piped stdin but no --password-stdin", "--password-stdin");
    noSecrets(piped, "piped");
    const noUser = await run(["login", "--tls-verify=false", basic.host, "--password-stdin"], home, {
      env,
      stdin: PASSWORD,
    });
    fails(noUser, "login without a user name", "--username");
    assert(Date.now() - started < 15_000, "no prompt waited for input");
    assertEquals(await exists(env.REGISTRY_AUTH_FILE), false);
    fails(await run(["logout", basic.host], home, { env }), "logout when never logged in", "not logged into");
  });

  await t.step("Docker config.json: auths and a credHelpers helper on PATH", async () => {
    // auths
    const dockerHome = await freshHome(root.path, "docker-auths");
    await Deno.mkdir(join(dockerHome, ".docker"));
    await Deno.writeTextFile(
      join(dockerHome, ".docker/config.json"),
      JSON.stringify({ auths: { [basic.host]: { auth: btoa(`${USER}:${PASSWORD}`) } } }),
    );
    expectImage(
      await inspectRaw(basic.host, "t/basic", dockerHome),
      basicImg,
      "inspect with config.json auths",
    );
    // A config.json whose entry is for another registry: 401.
    const elsewhere = await freshHome(root.path, "docker-elsewhere");
    await Deno.mkdir(join(elsewhere, ".docker"));
    await Deno.writeTextFile(
      join(elsewhere, ".docker/config.json"),
      JSON.stringify({ auths: { "other.example:5000": { auth: btoa(`${USER}:${PASSWORD}`) } } }),
    );
    unauthorized(await inspectRaw(basic.host, "t/basic", elsewhere), "config.json for another registry");

    // credHelpers: docker-credential-airlocktest get, reading the server on stdin.
    const helperHome = await freshHome(root.path, "docker-helper");
    const bin = join(helperHome, "bin");
    await Deno.mkdir(bin);
    const log = join(helperHome, "helper.log");
    const script = join(bin, "docker-credential-airlocktest");
    await Deno.writeTextFile(
      script,
      [
        "#!/bin/sh",
        `echo "$1" >> '${log}'`,
        '[ "$1" = get ] || exit 1',
        "server=$(cat)",
        `echo "server=$server" >> '${log}'`,
        `if [ "$server" = '${basic.host}' ]; then`,
        `  printf '{"ServerURL":"%s","Username":"${USER}","Secret":"${PASSWORD}"}' "$server"`,
        "else",
        '  echo "credentials not found in native keychain"; exit 1',
        "fi",
        "",
      ].join("\n"),
    );
    await Deno.chmod(script, 0o755);
    await Deno.mkdir(join(helperHome, ".docker"));
    await Deno.writeTextFile(
      join(helperHome, ".docker/config.json"),
      JSON.stringify({ credHelpers: { [basic.host]: "airlocktest" } }),
    );
    const viaHelper = await airlock(["inspect", "--tls-verify=false", "--raw", `${basic.host}/t/basic:v1`], {
      home: helperHome,
      pathPrepend: [bin],
    });
    expectImage(viaHelper, basicImg, "inspect with a credential helper");
    assertEquals((await Deno.readTextFile(log)).split("\n").filter((l) => l !== "").slice(0, 2), [
      "get",
      `server=${basic.host}`,
    ]);
    // The helper named but not on PATH: a clear error naming it.
    const missing = await inspectRaw(basic.host, "t/basic", helperHome);
    fails(missing, "helper not on PATH", "docker-credential-airlocktest");
  });
});
