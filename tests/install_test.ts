/**
 * The `airlock` command from a checkout: `deno task install` (a launcher in `$DENO_INSTALL_ROOT/bin`) and
 * `deno task airlock -- ARGS`, each run from another directory, offline (no npm registry, an empty Deno cache),
 * and the README's "Try it" block run as it is written there.
 *
 * @module
 */
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "./assert.ts";
import { buildImage, freePort, pushImage, startRegistry } from "./testbed/mod.ts";
import { RegistryClient } from "../core/registry/client.ts";
import { installRoot } from "../scripts/install.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const CONFIG = join(ROOT, "deno.json");
const dec = new TextDecoder();

/** An environment with no way to download anything: an empty Deno cache and an npm registry that refuses. */
async function offlineEnv(home: string, extra: Record<string, string> = {}): Promise<Record<string, string>> {
  const denoDir = join(home, "deno-dir");
  await Deno.mkdir(denoDir, { recursive: true });
  return {
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    HOME: home,
    DENO_DIR: denoDir,
    NPM_CONFIG_REGISTRY: "http://127.0.0.1:1/",
    NO_COLOR: "1",
    ...extra,
  };
}

async function run(
  command: string,
  args: string[],
  opts: { cwd: string; env: Record<string, string> },
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(command, {
    args,
    cwd: opts.cwd,
    env: opts.env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(180_000),
  }).output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("install root: --root DIR, else $DENO_INSTALL_ROOT, else ~/.deno (as deno install --global)", () => {
  const env = (vars: Record<string, string>) => (n: string) => vars[n];
  assertEquals(installRoot([], env({ HOME: "/home/u" })), "/home/u/.deno");
  assertEquals(installRoot([], env({ HOME: "/home/u", DENO_INSTALL_ROOT: "/opt/d" })), "/opt/d");
  assertEquals(installRoot(["--root", "/x"], env({ HOME: "/h", DENO_INSTALL_ROOT: "/opt/d" })), "/x");
  assertEquals(installRoot(["--root=/y"], env({ HOME: "/h" })), "/y");
  let error = "";
  try {
    installRoot(["--rot", "/x"], env({ HOME: "/h" }));
  } catch (e) {
    error = (e as Error).message;
  }
  assertStringIncludes(error, 'unknown argument "--rot"');
});

Deno.test("deno task airlock -- ARGS: runs airlock in the caller's directory", async () => {
  const home = await Deno.makeTempDir({ prefix: "airlock-task-" });
  const cwd = join(home, "elsewhere");
  await Deno.mkdir(cwd);
  try {
    const env = await offlineEnv(home, { COSIGN_PASSWORD: "task-test" });
    /** `deno task airlock -- ARGS…` in `cwd`. */
    const task = (args: string[]) =>
      run(Deno.execPath(), ["task", "--quiet", "--config", CONFIG, "airlock", "--", ...args], { cwd, env });
    const version = await task(["--version"]);
    assertEquals(version.code, 0, version.stderr);
    assertEquals(version.stdout.trim(), "0.1.0");
    const keys = await task(["generate-key-pair", "--output-key-prefix", "t"]);
    assertEquals(keys.code, 0, keys.stderr);
    assert(await exists(join(cwd, "t.key")), "t.key is not in the directory the task was run from");
    assert(!await exists(join(ROOT, "t.key")), "t.key was written into the checkout");
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test({
  name:
    "deno task install: $DENO_INSTALL_ROOT/bin/airlock runs from any directory, offline, with the compiled " +
    "binary's permissions (--tls-verify=false against an HTTPS registry too)",
  sanitizeResources: false,
  fn: async () => {
    const home = await Deno.makeTempDir({ prefix: "airlock-install-" });
    const installDir = join(home, "root");
    const cwd = join(home, "work");
    await Deno.mkdir(cwd);
    // An HTTPS registry whose certificate the client does not trust: exactly what --tls-verify=false is for.
    await using registry = await startRegistry({ tls: true });
    try {
      const env = await offlineEnv(home, { DENO_INSTALL_ROOT: installDir });
      const install = await run(Deno.execPath(), ["task", "--quiet", "--config", CONFIG, "install"], {
        cwd: ROOT,
        env,
      });
      assertEquals(install.code, 0, `${install.stdout}\n${install.stderr}`);
      const launcher = join(installDir, "bin", "airlock");
      assertStringIncludes(install.stdout, `installed ${launcher}`);
      assertStringIncludes(install.stdout, `export PATH="${join(installDir, "bin")}:$PATH"`);
      const text = await Deno.readTextFile(launcher);
      assert(!/--allow-all|'-A'/.test(text), "the launcher grants every permission");
      assertStringIncludes(text, "'--allow-sys=uid'");

      const pathEnv = { ...env, PATH: `${join(installDir, "bin")}:${env.PATH}` };
      const help = await run("airlock", ["--help"], { cwd, env: pathEnv });
      assertEquals(help.code, 0, help.stderr);
      assertStringIncludes(help.stdout, "Usage: airlock");

      const client = new RegistryClient({ tlsVerify: false });
      const image = await buildImage({ seed: "install-tls" });
      try {
        await pushImage(image, { registry: registry.host, repository: "inst/app" }, "1.0", client);
      } finally {
        client.close();
      }
      // NODE_EXTRA_CA_CERTS (common on corporate machines) made Deno's node:https load the system roots, which
      // needs more than --allow-sys=uid: the request failed and airlock fell back to plain http.
      const raw = await run(
        "airlock",
        ["inspect", "--tls-verify=false", "--raw", `docker://${registry.host}/inst/app:1.0`],
        { cwd, env: { ...pathEnv, NODE_EXTRA_CA_CERTS: registry.caCertPath! } },
      );
      assertEquals(raw.code, 0, raw.stderr);
      assertEquals(raw.stdout, dec.decode(image.top.bytes));
    } finally {
      await Deno.remove(home, { recursive: true });
    }
  },
});

/** The shell block under the README's "### Try it" heading. */
function tryItBlock(readme: string): string {
  const at = readme.indexOf("\n### Try it\n");
  assert(at >= 0, "README has no '### Try it' section");
  const m = /```sh\n([\s\S]*?)```/.exec(readme.slice(at));
  assert(m, "the 'Try it' section has no sh block");
  return m[1];
}

Deno.test({
  name: "README 'Try it' runs as written: install, a local registry, a test image, sign/validate/verify " +
    "from another directory, offline",
  sanitizeResources: false,
  fn: async () => {
    const block = tryItBlock(await Deno.readTextFile(join(ROOT, "README.md")));
    const home = await Deno.makeTempDir({ prefix: "airlock-try-home-" });
    const work = await Deno.makeTempDir({ prefix: "airlock-try-" });
    const port = freePort();
    // The only changes: a free port, a temporary directory, and this Deno instead of `npx --yes deno@2.9.6`.
    const substitutions: [string, string][] = [
      ["npx --yes deno@2.9.6", `'${Deno.execPath()}'`],
      ["127.0.0.1:5000", `127.0.0.1:${port}`],
      ["/tmp/airlock-try", work],
    ];
    let script = block;
    for (const [from, to] of substitutions) {
      assertStringIncludes(script, from);
      script = script.replaceAll(from, to);
    }
    try {
      const r = await run(
        "bash",
        ["-c", `set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n${script}`],
        { cwd: ROOT, env: await offlineEnv(home) },
      );
      const all = `${r.stdout}\n${r.stderr}`;
      assertEquals(r.code, 0, all);
      const image = `127.0.0.1:${port}/try/hello:1.0`;
      assertStringIncludes(r.stdout, `Signed [${image}]: 3 signatures written, 0 already present\n`);
      assertStringIncludes(r.stdout, `PASS: [${image}]`);
      assertStringIncludes(r.stdout, `"docker-reference":"${image}"`); // verify's JSON
      assert(await exists(join(work, "cosign.key")), "the key pair is not where airlock was run");
      assert(!await exists(join(ROOT, "cosign.key")), "the key pair was written into the checkout");
      assert(await exists(join(home, ".deno", "bin", "airlock")), "no launcher in ~/.deno/bin");
    } finally {
      await Deno.remove(home, { recursive: true });
      await Deno.remove(work, { recursive: true });
    }
  },
});
