import { assert, assertEquals, assertRejects, assertStringIncludes } from "../../assert.ts";
import { AirlockError } from "../../../core/errors.ts";
import {
  authFilePaths,
  createCredentialLookup,
  defaultAuthFile,
  login,
  logout,
  logoutAll,
} from "../../../core/registry/credentials.ts";

// Every temporary directory of this file lives under one root, removed when the test module unloads.
const TMP_ROOT = Deno.makeTempDirSync({ prefix: "airlock-test-" });
globalThis.addEventListener("unload", () => Deno.removeSync(TMP_ROOT, { recursive: true }));

const b64 = (s: string) => btoa(s);

/** A sandbox: a home, a runtime dir, a bin dir with a real credential helper on PATH, and a helper store. */
interface Sandbox {
  home: string;
  runtime: string;
  bin: string;
  store: string;
  env: Record<string, string | undefined>;
}

// A docker-credential helper speaking the real protocol: `get`/`erase` read the server URL on stdin,
// `store` reads {ServerURL,Username,Secret}. Credentials live as files in $TESTHELPER_STORE. Every call is logged.
const HELPER_SCRIPT = `#!/bin/sh
store="$TESTHELPER_STORE"
input=$(cat)
echo "$1 $input" >> "$store/calls.log"
case "$1" in
  get)
    f="$store/$(printf '%s' "$input" | tr '/:' '__')"
    if [ -f "$f" ]; then cat "$f"; exit 0; fi
    if [ "$input" = "broken.example.com" ]; then echo "keychain is locked"; exit 3; fi
    echo "credentials not found in native keychain"; exit 1 ;;
  store)
    server=$(printf '%s' "$input" | sed -n 's/.*"ServerURL":"\\([^"]*\\)".*/\\1/p')
    if [ "$server" = "readonly.example.com" ]; then echo "cannot store $input"; exit 1; fi
    printf '%s' "$input" > "$store/$(printf '%s' "$server" | tr '/:' '__')"; exit 0 ;;
  erase)
    f="$store/$(printf '%s' "$input" | tr '/:' '__')"
    if [ -f "$f" ]; then rm "$f"; exit 0; fi
    echo "credentials not found in native keychain"; exit 1 ;;
  *) echo "unknown action"; exit 1 ;;
esac
`;

async function sandbox(): Promise<Sandbox> {
  const root = await Deno.makeTempDir({ dir: TMP_ROOT, prefix: "airlock-creds-" });
  const s = {
    home: `${root}/home`,
    runtime: `${root}/run`,
    bin: `${root}/bin`,
    store: `${root}/store`,
  };
  for (const d of Object.values(s)) await Deno.mkdir(d, { recursive: true });
  await Deno.writeTextFile(`${s.bin}/docker-credential-testhelper`, HELPER_SCRIPT, { mode: 0o755 });
  await Deno.chmod(`${s.bin}/docker-credential-testhelper`, 0o755);
  return {
    ...s,
    env: {
      HOME: s.home,
      XDG_RUNTIME_DIR: s.runtime,
      PATH: `${s.bin}:/usr/bin:/bin`,
      TESTHELPER_STORE: s.store,
    },
  };
}

async function writeJson(path: string, value: unknown): Promise<void> {
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  await Deno.writeTextFile(path, typeof value === "string" ? value : JSON.stringify(value));
}

/** Puts credentials into the test helper's store, as `docker-credential-testhelper store` would. */
async function helperStore(s: Sandbox, server: string, username: string, secret: string): Promise<void> {
  await Deno.writeTextFile(
    `${s.store}/${server.replaceAll("/", "_").replaceAll(":", "_")}`,
    JSON.stringify({ ServerURL: server, Username: username, Secret: secret }),
  );
}

async function helperCalls(s: Sandbox): Promise<string[]> {
  try {
    return (await Deno.readTextFile(`${s.store}/calls.log`)).trim().split("\n");
  } catch {
    return [];
  }
}

const runtimeAuth = (s: Sandbox) => `${s.runtime}/containers/auth.json`;
const configAuth = (s: Sandbox) => `${s.home}/.config/containers/auth.json`;
const dockerConfig = (s: Sandbox) => `${s.home}/.docker/config.json`;

Deno.test("credentials: the search order is runtime auth.json, ~/.config auth.json, docker config.json, .dockercfg", async () => {
  const s = await sandbox();
  assertEquals(authFilePaths({ env: s.env }).map((p) => p.path), [
    runtimeAuth(s),
    configAuth(s),
    dockerConfig(s),
    `${s.home}/.dockercfg`,
  ]);
  const host = "reg.example.com:5000";
  await writeJson(`${s.home}/.dockercfg`, { [host]: { auth: b64("legacy:p4"), email: "x@y" } });
  assertEquals(await createCredentialLookup({ env: s.env })(host), { username: "legacy", password: "p4" });
  await writeJson(dockerConfig(s), { auths: { [host]: { auth: b64("docker:p3") } } });
  assertEquals(await createCredentialLookup({ env: s.env })(host), { username: "docker", password: "p3" });
  await writeJson(configAuth(s), { auths: { [host]: { auth: b64("config:p2") } } });
  assertEquals(await createCredentialLookup({ env: s.env })(host), { username: "config", password: "p2" });
  await writeJson(runtimeAuth(s), { auths: { [host]: { auth: b64("runtime:p1") } } });
  const lookup = createCredentialLookup({ env: s.env });
  assertEquals(await lookup(host), { username: "runtime", password: "p1" });
  assertEquals((await lookup.find(host))?.source, { file: runtimeAuth(s), key: host });
  // an entry for another host does not shadow later files
  assertEquals(await lookup("other.example.com"), undefined);
});

Deno.test("credentials: a file without a matching entry passes the search on to the next", async () => {
  const s = await sandbox();
  await writeJson(runtimeAuth(s), { auths: { "a.example.com": { auth: b64("a:1") } } });
  await writeJson(dockerConfig(s), { auths: { "b.example.com": { auth: b64("b:2") } } });
  const lookup = createCredentialLookup({ env: s.env });
  assertEquals(await lookup("a.example.com"), { username: "a", password: "1" });
  assertEquals(await lookup("b.example.com"), { username: "b", password: "2" });
});

Deno.test("credentials: REGISTRY_AUTH_FILE or an explicit auth file is the only file read", async () => {
  const s = await sandbox();
  const explicit = `${s.home}/my-auth.json`;
  await writeJson(explicit, { auths: { "a.example.com": { auth: b64("explicit:1") } } });
  await writeJson(runtimeAuth(s), { auths: { "a.example.com": { auth: b64("runtime:2") } } });
  await writeJson(dockerConfig(s), { auths: { "b.example.com": { auth: b64("docker:3") } } });
  for (
    const opts of [{ env: { ...s.env, REGISTRY_AUTH_FILE: explicit } }, { env: s.env, authFile: explicit }]
  ) {
    assertEquals(authFilePaths(opts).map((p) => p.path), [explicit]);
    const lookup = createCredentialLookup(opts);
    assertEquals(await lookup("a.example.com"), { username: "explicit", password: "1" });
    assertEquals(await lookup("b.example.com"), undefined);
  }
});

Deno.test("credentials: DOCKER_CONFIG and XDG_CONFIG_HOME move their files", async () => {
  const s = await sandbox();
  const dc = `${s.home}/dc`;
  const xdg = `${s.home}/xdg`;
  const env = { ...s.env, DOCKER_CONFIG: dc, XDG_CONFIG_HOME: xdg };
  assertEquals(authFilePaths({ env }).map((p) => p.path), [
    runtimeAuth(s),
    `${xdg}/containers/auth.json`,
    `${dc}/config.json`,
    `${s.home}/.dockercfg`,
  ]);
  await writeJson(dockerConfig(s), { auths: { "a.example.com": { auth: b64("home-docker:1") } } });
  await writeJson(`${dc}/config.json`, { auths: { "a.example.com": { auth: b64("dc:2") } } });
  assertEquals(await createCredentialLookup({ env })("a.example.com"), { username: "dc", password: "2" });
});

Deno.test("credentials: an XDG_RUNTIME_DIR that does not exist is skipped when reading", async () => {
  const s = await sandbox();
  const env = { ...s.env, XDG_RUNTIME_DIR: `${s.home}/nope` };
  await writeJson(configAuth(s), { auths: { "a.example.com": { auth: b64("u:p") } } });
  assertEquals(authFilePaths({ env }).map((p) => p.path)[0], configAuth(s));
  assertEquals(await createCredentialLookup({ env })("a.example.com"), { username: "u", password: "p" });
});

Deno.test("credentials: auths key forms — URLs, /v1/, and index.docker.io for docker.io", async () => {
  const s = await sandbox();
  await writeJson(dockerConfig(s), {
    auths: {
      "https://index.docker.io/v1/": { auth: b64("hub:h") },
      "https://reg.example.com/v1/": { auth: b64("v1:a") },
      "http://plain.example.com:5000": { auth: b64("http:b") },
      "registry-1.example.com": { auth: b64("exact:c") },
    },
  });
  const lookup = createCredentialLookup({ env: s.env });
  assertEquals(await lookup("docker.io"), { username: "hub", password: "h" });
  assertEquals(await lookup("reg.example.com"), { username: "v1", password: "a" });
  assertEquals(await lookup("plain.example.com:5000"), { username: "http", password: "b" });
  assertEquals(await lookup("plain.example.com"), undefined); // the port is part of the host
  assertEquals(await lookup("registry-1.example.com"), { username: "exact", password: "c" });
  // an exact key is preferred over a URL form
  await writeJson(dockerConfig(s), {
    auths: { "https://reg.example.com": { auth: b64("url:1") }, "reg.example.com": { auth: b64("exact:2") } },
  });
  assertEquals(await createCredentialLookup({ env: s.env })("reg.example.com"), {
    username: "exact",
    password: "2",
  });
  // auth.json written by podman for docker.io
  await writeJson(runtimeAuth(s), { auths: { "docker.io": { auth: b64("podman:hub") } } });
  assertEquals(await createCredentialLookup({ env: s.env })("docker.io"), {
    username: "podman",
    password: "hub",
  });
});

Deno.test("credentials: namespaced auth.json keys — longest prefix for a repository, host only for the registry", async () => {
  const s = await sandbox();
  await writeJson(runtimeAuth(s), {
    auths: {
      "reg.example.com": { auth: b64("host:0") },
      "reg.example.com/team": { auth: b64("team:1") },
      "reg.example.com/team/app": { auth: b64("app:2") },
      "other.example.com/ns": { auth: b64("ns:3") },
    },
  });
  const lookup = createCredentialLookup({ env: s.env });
  assertEquals(await lookup.lookupForRepository("reg.example.com", "team/app"), {
    username: "app",
    password: "2",
  });
  assertEquals(await lookup.lookupForRepository("reg.example.com", "team/app2"), {
    username: "team",
    password: "1",
  });
  assertEquals(await lookup.lookupForRepository("reg.example.com", "team/app/sub"), {
    username: "app",
    password: "2",
  });
  assertEquals(await lookup.lookupForRepository("reg.example.com", "x/y"), {
    username: "host",
    password: "0",
  });
  assertEquals(await lookup("reg.example.com"), { username: "host", password: "0" });
  assertEquals(await lookup("other.example.com"), undefined);
  assertEquals(await lookup.lookupForRepository("other.example.com", "ns/img"), {
    username: "ns",
    password: "3",
  });
  await assertRejects(() => lookup("https://reg.example.com"), AirlockError, "http[s]:// prefix");
});

Deno.test("credentials: docker config.json identitytoken; password NUL padding; entries without user:pass are skipped", async () => {
  const s = await sandbox();
  await writeJson(dockerConfig(s), {
    auths: {
      "myacr.azurecr.io": {
        auth: b64("00000000-0000-0000-0000-000000000000:"),
        identitytoken: "refresh-tok",
      },
      "nul.example.com": { auth: b64("u:p\0\0") },
      "marker.example.com": {},
      "colon.example.com": { auth: b64("user:pa:ss") },
    },
  });
  await writeJson(`${s.home}/.dockercfg`, { "marker.example.com": { auth: b64("legacy:x") } });
  const lookup = createCredentialLookup({ env: s.env });
  assertEquals(await lookup("myacr.azurecr.io"), { identityToken: "refresh-tok" });
  assertEquals(await lookup("nul.example.com"), { username: "u", password: "p" });
  assertEquals(await lookup("colon.example.com"), { username: "user", password: "pa:ss" });
  // Docker's empty marker entry yields nothing, so the search goes on to the next file
  assertEquals(await lookup("marker.example.com"), { username: "legacy", password: "x" });
});

Deno.test("credentials: credHelpers runs a real docker-credential helper with the host on stdin", async () => {
  const s = await sandbox();
  await helperStore(s, "reg.example.com", "helperuser", "helper-secret");
  await helperStore(s, "tok.example.com", "<token>", "the-refresh-token");
  await writeJson(dockerConfig(s), {
    credHelpers: {
      "reg.example.com": "testhelper",
      "tok.example.com": "testhelper",
      "none.example.com": "testhelper",
    },
    auths: {
      "reg.example.com": { auth: b64("file:ignored") }, // credHelpers wins within the file
      "none.example.com": { auth: b64("file:ignored") },
    },
  });
  await writeJson(`${s.home}/.dockercfg`, { "none.example.com": { auth: b64("legacy:fallback") } });
  const lookup = createCredentialLookup({ env: s.env });
  assertEquals(await lookup("reg.example.com"), { username: "helperuser", password: "helper-secret" });
  assertEquals((await lookup.find("reg.example.com"))?.source, {
    file: dockerConfig(s),
    helper: "testhelper",
  });
  assertEquals(await lookup("tok.example.com"), { identityToken: "the-refresh-token" });
  // "credentials not found" from the helper: nothing from this file (its auths entry is not used), next file
  assertEquals(await lookup("none.example.com"), { username: "legacy", password: "fallback" });
  // results are cached: a second lookup does not run the helper again
  await lookup("reg.example.com");
  assertEquals(await helperCalls(s), ["get reg.example.com", "get tok.example.com", "get none.example.com"]);
});

Deno.test("credentials: credsStore is asked after auths, with Docker's server address for Docker Hub", async () => {
  const s = await sandbox();
  await helperStore(s, "reg.example.com", "store-user", "store-secret");
  await helperStore(s, "https://index.docker.io/v1/", "hubuser", "hub-secret");
  await writeJson(dockerConfig(s), {
    credsStore: "testhelper",
    auths: {
      "reg.example.com": {},
      "https://index.docker.io/v1/": {},
      "file.example.com": { auth: b64("f:1") },
    },
  });
  const lookup = createCredentialLookup({ env: s.env });
  assertEquals(await lookup("reg.example.com"), { username: "store-user", password: "store-secret" });
  assertEquals(await lookup("docker.io"), { username: "hubuser", password: "hub-secret" });
  assertEquals(await lookup("file.example.com"), { username: "f", password: "1" });
  assertEquals(await lookup("unknown.example.com"), undefined);
  assertEquals(await helperCalls(s), [
    "get reg.example.com",
    "get https://index.docker.io/v1/",
    "get unknown.example.com",
  ]);
});

Deno.test("credentials: a helper missing from PATH is an error naming the helper and the file", async () => {
  const s = await sandbox();
  await writeJson(dockerConfig(s), { credHelpers: { "reg.example.com": "nosuch" } });
  const err = await assertRejects(
    () => createCredentialLookup({ env: s.env })("reg.example.com"),
    AirlockError,
    "docker-credential-nosuch",
  );
  assertEquals(err.code, "CREDENTIALS");
  assertStringIncludes(err.message, dockerConfig(s));
  // other registries are unaffected
  assertEquals(await createCredentialLookup({ env: s.env })("other.example.com"), undefined);
});

Deno.test("credentials: a failing helper is an error with its message", async () => {
  const s = await sandbox();
  await writeJson(dockerConfig(s), { credHelpers: { "broken.example.com": "testhelper" } });
  const err = await assertRejects(
    () => createCredentialLookup({ env: s.env })("broken.example.com"),
    AirlockError,
    "keychain is locked",
  );
  assertStringIncludes(err.message, "docker-credential-testhelper");
  assertStringIncludes(err.message, "exit 3");
});

Deno.test("credentials: a malformed file is an error naming the file and quoting no secret", async () => {
  const s = await sandbox();
  const secret = "hunter2-very-secret";
  const cases: unknown[] = [
    `{"auths": {"reg.example.com": {"auth": "${b64(`me:${secret}`)}"}}, ${secret}}`,
    `{"auths": {"reg.example.com": {"auth": "${secret}!!"}}}`, // not base64
    { auths: [`${secret}`] },
    { auths: { "reg.example.com": { auth: 42 } } },
    { credHelpers: { "reg.example.com": 1 } },
    "",
  ];
  for (const body of cases) {
    await writeJson(runtimeAuth(s), body);
    const err = await assertRejects(
      () => createCredentialLookup({ env: s.env })("reg.example.com"),
      AirlockError,
    );
    assertEquals(err.code, "CREDENTIALS");
    assertStringIncludes(err.message, runtimeAuth(s));
    assert(!err.message.includes(secret), `secret leaked: ${err.message}`);
    assert(!err.message.includes(b64(`me:${secret}`)), `auth leaked: ${err.message}`);
  }
});

Deno.test("credentials: login writes auth.json 0600, preserves other entries; logout removes; round trip", async () => {
  const s = await sandbox();
  const path = runtimeAuth(s);
  assertEquals(defaultAuthFile({ env: s.env }), path);
  // a pre-existing file, too open, with other entries and an unknown field
  await writeJson(path, { auths: { "keep.example.com": { auth: b64("k:1") } }, "x-custom": { a: 1 } });
  await Deno.chmod(path, 0o644);

  const where = await login("reg.example.com:5000", { username: "ci", password: "s3cr3t" }, { env: s.env });
  assertEquals(where, path);
  assertEquals((await Deno.stat(path)).mode! & 0o777, 0o600);
  assertEquals(JSON.parse(await Deno.readTextFile(path)), {
    auths: {
      "keep.example.com": { auth: b64("k:1") },
      "reg.example.com:5000": { auth: b64("ci:s3cr3t") },
    },
    "x-custom": { a: 1 },
  });
  assertEquals(await createCredentialLookup({ env: s.env })("reg.example.com:5000"), {
    username: "ci",
    password: "s3cr3t",
  });
  // no temporary files left behind
  assertEquals([...Deno.readDirSync(`${s.runtime}/containers`)].map((e) => e.name), ["auth.json"]);

  await logout("reg.example.com:5000", { env: s.env });
  assertEquals(JSON.parse(await Deno.readTextFile(path)).auths, { "keep.example.com": { auth: b64("k:1") } });
  assertEquals((await Deno.stat(path)).mode! & 0o777, 0o600);
  assertEquals(await createCredentialLookup({ env: s.env })("reg.example.com:5000"), undefined);

  const err = await assertRejects(() => logout("reg.example.com:5000", { env: s.env }), AirlockError);
  assertEquals(err.code, "NOT_FOUND");
  assertEquals(err.message, "not logged into reg.example.com:5000");
});

Deno.test("credentials: login creates missing directories; the default write file follows podman", async () => {
  const s = await sandbox();
  const noRuntime = { ...s.env, XDG_RUNTIME_DIR: undefined };
  assertEquals(defaultAuthFile({ env: noRuntime }), configAuth(s));
  await login("https://reg.example.com/", { username: "u", password: "p" }, { env: noRuntime });
  assertEquals(JSON.parse(await Deno.readTextFile(configAuth(s))), {
    auths: { "reg.example.com": { auth: b64("u:p") } },
  });
  assertEquals((await Deno.stat(configAuth(s))).mode! & 0o777, 0o600);
  assertEquals((await Deno.stat(`${s.home}/.config/containers`)).mode! & 0o777, 0o700);

  const explicit = `${s.home}/deep/er/auth.json`;
  assertEquals(defaultAuthFile({ env: { ...s.env, REGISTRY_AUTH_FILE: explicit } }), explicit);
  await login("a.example.com", { username: "x", password: "y" }, { env: s.env, authFile: explicit });
  assertEquals((await Deno.stat(explicit)).mode! & 0o777, 0o600);

  const err = await assertRejects(
    () =>
      login("a.example.com", { username: "x", password: "y" }, {
        env: { ...s.env, XDG_RUNTIME_DIR: "/nonexistent-xdg" },
      }),
    AirlockError,
    "$XDG_RUNTIME_DIR",
  );
  assertEquals(err.code, "CREDENTIALS");
});

Deno.test("credentials: login of a namespace and of an identity token; logout hint names another file", async () => {
  const s = await sandbox();
  await login("reg.example.com/team", { username: "t", password: "1" }, { env: s.env });
  await login("tok.example.com", { identityToken: "rt" }, { env: s.env });
  const lookup = createCredentialLookup({ env: s.env });
  assertEquals(await lookup.lookupForRepository("reg.example.com", "team/app"), {
    username: "t",
    password: "1",
  });
  assertEquals(await lookup("reg.example.com"), undefined);
  assertEquals(await lookup("tok.example.com"), { identityToken: "rt" });
  await assertRejects(
    () => login("reg.example.com/app:tag", { username: "a", password: "b" }, { env: s.env }),
    AirlockError,
    "':' character",
  );

  await writeJson(dockerConfig(s), { auths: { "docker-only.example.com": { auth: b64("d:secretpw") } } });
  const err = await assertRejects(() => logout("docker-only.example.com", { env: s.env }), AirlockError);
  assertStringIncludes(err.message, "not logged into docker-only.example.com");
  assertStringIncludes(err.message, dockerConfig(s));
  assert(!err.message.includes("secretpw"));
});

Deno.test("credentials: login and logout go through the helper named in credHelpers of the write file", async () => {
  const s = await sandbox();
  await writeJson(runtimeAuth(s), { credHelpers: { "reg.example.com": "testhelper" }, auths: {} });
  const where = await login("reg.example.com", { username: "hu", password: "hp" }, { env: s.env });
  assertEquals(where, "credential helper: testhelper");
  assertEquals(JSON.parse(await Deno.readTextFile(runtimeAuth(s))).auths, {});
  assertEquals(await createCredentialLookup({ env: s.env })("reg.example.com"), {
    username: "hu",
    password: "hp",
  });
  await logout("reg.example.com", { env: s.env });
  assertEquals(await createCredentialLookup({ env: s.env })("reg.example.com"), undefined);
  await assertRejects(() => logout("reg.example.com", { env: s.env }), AirlockError, "not logged into");
  const calls = await helperCalls(s);
  assertEquals(calls[0], `store {"ServerURL":"reg.example.com","Username":"hu","Secret":"hp"}`);
  assert(calls.includes("erase reg.example.com"));
});

Deno.test("credentials: a helper error on store never shows the secret", async () => {
  const s = await sandbox();
  await writeJson(runtimeAuth(s), { credHelpers: { "readonly.example.com": "testhelper" } });
  const err = await assertRejects(
    () => login("readonly.example.com", { username: "u", password: "top-secret-pw" }, { env: s.env }),
    AirlockError,
  );
  assertStringIncludes(err.message, "docker-credential-testhelper");
  assert(!err.message.includes("top-secret-pw"), err.message);
});

Deno.test("credentials: logoutAll empties auths and helper entries of the write file only", async () => {
  const s = await sandbox();
  await helperStore(s, "h.example.com", "hu", "hp");
  await writeJson(runtimeAuth(s), {
    auths: { "a.example.com": { auth: b64("a:1") }, "b.example.com": { auth: b64("b:2") } },
    credHelpers: { "h.example.com": "testhelper" },
  });
  await writeJson(dockerConfig(s), { auths: { "d.example.com": { auth: b64("d:3") } } });
  assertEquals(await logoutAll({ env: s.env }), runtimeAuth(s));
  assertEquals(JSON.parse(await Deno.readTextFile(runtimeAuth(s))), { auths: {}, credHelpers: {} });
  assertEquals((await Deno.stat(runtimeAuth(s))).mode! & 0o777, 0o600);
  const lookup = createCredentialLookup({ env: s.env });
  assertEquals(await lookup("a.example.com"), undefined);
  assertEquals(await lookup("h.example.com"), undefined);
  assertEquals(await lookup("d.example.com"), { username: "d", password: "3" });
});
