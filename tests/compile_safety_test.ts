/**
 * Compile safety (DESIGN.md): what `deno compile` puts in the binary must be all airlock needs. This test runs the
 * whole demo job — inspect, sign, sign again (idempotent), validate, verify, a tampered image rejected, sign-blob /
 * verify-blob — against a local registry, with a key file AND a SoftHSM2 key, as a user on another machine would:
 *
 * - the working directory is an EMPTY temporary directory (and stays empty: every input and output is an
 *   absolute path elsewhere), HOME another one; the environment is cleared (PATH, HOME, XDG_RUNTIME_DIR, NO_COLOR,
 *   DENO_DIR, SOFTHSM2_CONF only), so no file next to the sources or in the user's home is read;
 * - `deno run --cached-only --frozen --deny-import` with a FRESH, empty `DENO_DIR`: nothing can be downloaded and
 *   no remote module imported; the only code is airlock's sources and the project's `node_modules` (the npm
 *   packages; `--cached-only` alone would not find npm packages elsewhere — see `denoRunArgs`);
 * - exactly the permissions of the compile task (`COMPILE_PERMISSIONS` in scripts/compile.ts), with the network
 *   narrowed to the loopback registry's `127.0.0.1:PORT`, and `--no-prompt`, so any undeclared permission fails
 *   the run instead of asking.
 *
 * When `DENORT_BIN` is set (a `denort` for this host), the same test compiles airlock with `deno task compile` and
 * runs the binary instead (its permissions are the baked-in compile list: network is not narrowed then). No
 * `denort` can be fetched on this test host, so that path is written but not run here; the test name says which
 * one ran.
 *
 * @module
 */
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "./assert.ts";
import {
  buildImage,
  buildMultiArchImage,
  pushImage,
  rawSink,
  startRegistry,
  startSoftHsm,
} from "./testbed/mod.ts";
import { RegistryClient } from "../core/registry/client.ts";
import { COMPILE_PERMISSIONS, outputPath } from "../scripts/compile.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const CLI = join(ROOT, "cli.ts");
const CONFIG = join(ROOT, "deno.json");
const DENORT_BIN = Deno.env.get("DENORT_BIN") || undefined;

/**
 * `deno run` flags for airlock started from anywhere: the project's config (import map, `nodeModulesDir`, lock
 * file) is named explicitly because the working directory is not the project; `--cached-only` forbids
 * downloads, `--frozen` a lock file change, `--deny-import` any remote import. npm packages come from the
 * project's `node_modules` (`nodeModulesDir: "auto"` in deno.json), which is why an empty DENO_DIR suffices.
 */
function denoRunArgs(registryHosts: string[]): string[] {
  const perms = COMPILE_PERMISSIONS.map((p) =>
    p.flag === "--allow-net" ? `--allow-net=${registryHosts.join(",")}` : p.flag
  );
  assert(
    !perms.includes("-A") && !perms.includes("--allow-all"),
    "the compile task must not grant everything",
  );
  return [
    "run",
    "--config",
    CONFIG,
    "--cached-only",
    "--frozen",
    "--deny-import",
    "--no-prompt",
    "--quiet",
    ...perms,
    CLI,
  ];
}

/** How airlock is started: the command and the arguments before airlock's own. */
interface Launcher {
  command: string;
  prefix: string[];
}

/** Builds the binary with `deno task compile` and DENORT_BIN (only possible where a denort exists). */
async function compileBinary(): Promise<Launcher> {
  const out = await new Deno.Command("bash", {
    args: [join(ROOT, "scripts/compile.sh"), Deno.build.target],
    cwd: ROOT,
    env: { DENORT_BIN: DENORT_BIN! },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  assertEquals(
    out.code,
    0,
    `deno task compile failed:\n${dec.decode(out.stdout)}\n${dec.decode(out.stderr)}`,
  );
  return { command: join(ROOT, outputPath(Deno.build.target)), prefix: [] };
}

Deno.test({
  name: DENORT_BIN
    ? "compile safety: the compiled binary (built with DENORT_BIN) runs the demo job from an empty directory"
    : "compile safety: demo job via deno run --cached-only, empty cwd, compile permissions, net=loopback " +
      "(DENORT_BIN unset: the compiled binary itself is not built or run here)",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const cwd = await Deno.makeTempDir({ prefix: "airlock-cs-cwd-" });
    const home = await Deno.makeTempDir({ prefix: "airlock-cs-home-" });
    const data = await Deno.makeTempDir({ prefix: "airlock-cs-data-" });
    const denoDir = await Deno.makeTempDir({ prefix: "airlock-cs-denodir-" });
    await using registry = await startRegistry();
    // A second registry that wants a password, which a docker credential helper supplies (`--allow-run`).
    await using locked = await startRegistry({ auth: { kind: "basic", users: { robot: "helper-secret" } } });
    await using hsm = await startSoftHsm();
    try {
      const host = registry.host;
      const launcher = DENORT_BIN
        ? await compileBinary()
        : { command: Deno.execPath(), prefix: denoRunArgs([host, locked.host]) };
      await Deno.mkdir(join(home, ".run"), { mode: 0o700 });
      const env = {
        PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
        HOME: home,
        XDG_RUNTIME_DIR: join(home, ".run"),
        NO_COLOR: "1",
        DENO_DIR: denoDir,
        ...hsm.env,
      };
      const transcript: string[] = [];
      // Every permission check of every run is recorded (Deno's DENO_AUDIT_PERMISSIONS, JSON lines).
      // (one file per run: each process truncates its file).
      const auditDir = join(data, "audit");
      await Deno.mkdir(auditDir);
      let runs = 0;
      const airlock = async (args: string[], extraEnv: Record<string, string | undefined> = {}) => {
        const runEnv: Record<string, string> = {};
        for (
          const [k, v] of Object.entries({
            ...env,
            DENO_AUDIT_PERMISSIONS: join(auditDir, `${runs++}.jsonl`),
            ...extraEnv,
          })
        ) {
          if (v !== undefined) runEnv[k] = v;
        }
        const out = await new Deno.Command(launcher.command, {
          args: [...launcher.prefix, ...args],
          cwd,
          env: runEnv,
          clearEnv: true,
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
          signal: AbortSignal.timeout(120_000),
        }).output();
        const dec = new TextDecoder();
        const r = { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
        transcript.push(
          `$ airlock ${args.join(" ")}\n-> ${r.code}\n${r.stdout.slice(-1500)}${r.stderr.slice(-1500)}`,
        );
        return r;
      };
      const ok = async (args: string[], extraEnv?: Record<string, string | undefined>) => {
        const r = await airlock(args, extraEnv);
        assertEquals(r.code, 0, `airlock ${args.join(" ")} failed:\n${transcript.join("\n")}`);
        // Anything printed about a permission means one was missing (--no-prompt makes it an error).
        for (const text of [r.stdout, r.stderr]) {
          assert(
            !/Requires \w+ access|NotCapable|PermissionDenied/.test(text),
            `permission problem:\n${text}`,
          );
        }
        return r;
      };

      // The images, pushed by the test itself (not by airlock).
      const client = new RegistryClient({ tlsVerify: false });
      const images: string[] = [];
      for (const name of ["web", "api"]) {
        const image = await buildMultiArchImage({
          seed: `cs-${name}`,
          platforms: ["linux/amd64", "linux/arm64/v8"],
        });
        await pushImage(image, { registry: host, repository: `demo/${name}` }, "1.0", client);
        images.push(`${host}/demo/${name}:1.0`);
      }
      await pushImage(
        await buildImage({ seed: "cs-tools" }),
        { registry: host, repository: "demo/tools" },
        "1.0",
        client,
      );
      images.push(`${host}/demo/tools:1.0`);
      const list = join(data, "images.txt");
      await Deno.writeTextFile(list, images.join("\n") + "\n");
      const registriesD = join(data, "registries.d");
      await Deno.mkdir(registriesD);
      await Deno.writeTextFile(
        join(registriesD, "default.yaml"),
        "default-docker:\n  use-sigstore-attachments: true\n",
      );

      // version: the commit, Deno and the trusted root's date; the global --help.
      const version = await ok(["version"]);
      assertStringIncludes(version.stdout, "airlock ");
      assertStringIncludes(version.stdout, "trusted root: sigstore public-good, ");
      await ok(["--help"]);

      // inspect
      const inspected = await ok([
        "inspect",
        "--tls-verify=false",
        "--override-arch",
        "arm64",
        `docker://${images[0]}`,
      ]);
      assertStringIncludes(inspected.stdout, "arm64");
      await ok(["inspect", "--tls-verify=false", "--raw", `docker://${images[0]}`]);

      // the two keys: a key file made by airlock, a P-256 key on a SoftHSM2 token
      const passFile = join(data, "pass.txt");
      await Deno.writeTextFile(passFile, "compile-safety\n");
      await ok([
        "generate-key-pair",
        "--passphrase-file",
        passFile,
        "--output-key-prefix",
        join(data, "cosign"),
      ]);
      const token = await hsm.initToken("airlock-cs");
      await hsm.generateKey(token, { type: "EC:prime256v1", label: "signer", id: "01" });
      const hsmUri = hsm.uri(token, { object: "signer" });
      const hsmPub = join(data, "hsm.pub");
      await Deno.writeTextFile(hsmPub, (await ok(["public-key", "--key", hsmUri])).stdout);

      const keys = [
        {
          name: "file",
          sign: ["-k", join(data, "cosign.key"), "--sigstore-passphrase-file", passFile],
          pub: join(data, "cosign.pub"),
          ref: join(data, "cosign.key"),
        },
        { name: "softhsm2", sign: ["--key", hsmUri], pub: hsmPub, ref: hsmUri },
      ];
      const common = ["--registries.d", registriesD, "--tls-verify=false", "-j", "4"];
      // the validate and verify runs, with a key's public half
      const validateArgs = (pub: string, failed: string) => {
        return ["sign", "validate", "-f", list, "-p", pub, ...common, "-o", failed];
      };
      const verifyArgs = (pub: string, image: string) => {
        return ["verify", "--key", pub, "--insecure-ignore-tlog", "--tls-verify=false", image];
      };
      for (const key of keys) {
        const signArgs = [
          "sign",
          "-f",
          list,
          ...key.sign,
          ...common,
          "-o",
          join(data, `sign-failed-${key.name}.txt`),
        ];
        await ok(signArgs);
        await ok(signArgs); // idempotent re-run
        const validated = await ok(validateArgs(key.pub, join(data, `validate-failed-${key.name}.txt`)));
        assert(
          !/FATA|level=error/.test(validated.stdout + validated.stderr),
          `validate (${key.name}) logged errors`,
        );
        for (const image of images) {
          await ok(verifyArgs(key.pub, image));
        }
        // sign-blob / verify-blob, as the release checksums are signed
        const blob = join(data, "SHA256SUMS");
        await Deno.writeTextFile(blob, `0000  airlock-${key.name}\n`);
        const sig = join(data, `SHA256SUMS.${key.name}.sig`);
        await ok(["sign-blob", blob, "--key", key.ref, "--output-signature", sig], {
          COSIGN_PASSWORD: "compile-safety",
        });
        await ok(["verify-blob", blob, "--key", key.pub, "--signature", sig]);
      }

      // A tampered image is rejected by validate and by verify, with either key.
      const evil = await buildMultiArchImage({
        seed: "cs-tampered",
        platforms: ["linux/amd64", "linux/arm64/v8"],
      });
      await pushImage(evil, { registry: host, repository: "demo/api" }, "1.0", client);
      client.close();
      for (const key of keys) {
        const failedList = join(data, `validate-failed-tampered-${key.name}.txt`);
        const rejected = await airlock(validateArgs(key.pub, failedList));
        assertEquals(rejected.code, 1, transcript.join("\n"));
        assertStringIncludes(await Deno.readTextFile(failedList), `${host}/demo/api:1.0`);
        const refused = await airlock(verifyArgs(key.pub, images[1]));
        assert(refused.code !== 0, `verify accepted the tampered image with the ${key.name} key`);
        assert(
          !/Requires \w+ access|NotCapable/.test(rejected.stderr + refused.stderr),
          "permission problem",
        );
      }

      // A registry with a password: the credentials come from a docker-credential-* helper on PATH (--allow-run);
      // XDG_RUNTIME_DIR is unset, so the auth.json lookup asks for the user id (--allow-sys=uid).
      const lockedImage = await buildImage({ seed: "cs-locked" });
      await pushImage(
        lockedImage,
        { registry: locked.host, repository: "demo/locked" },
        "1.0",
        rawSink(locked.url, { authorization: `Basic ${btoa("robot:helper-secret")}` }),
      );
      const bin = join(data, "bin");
      await Deno.mkdir(bin);
      const helper = join(bin, "docker-credential-airlockcs");
      await Deno.writeTextFile(
        helper,
        `#!/bin/sh\n[ "$1" = get ] || exit 1\nserver=$(cat)\n` +
          `printf '{"ServerURL":"%s","Username":"robot","Secret":"helper-secret"}' "$server"\n`,
      );
      await Deno.chmod(helper, 0o755);
      await Deno.mkdir(join(home, ".docker"));
      await Deno.writeTextFile(
        join(home, ".docker/config.json"),
        JSON.stringify({ credHelpers: { [locked.host]: "airlockcs" } }),
      );
      const viaHelper = await ok(
        ["inspect", "--tls-verify=false", "--raw", `docker://${locked.host}/demo/locked:1.0`],
        { PATH: `${bin}:${env.PATH}`, XDG_RUNTIME_DIR: undefined },
      );
      assertEquals(viaHelper.stdout, new TextDecoder().decode(lockedImage.top.bytes));

      // Which permissions the job used: each flag of the compile list was needed by some step.
      if (!DENORT_BIN) {
        const used = new Set<string>();
        for await (const f of Deno.readDir(auditDir)) {
          for (const line of (await Deno.readTextFile(join(auditDir, f.name))).split("\n")) {
            if (!line) continue;
            const { permission, value } = JSON.parse(line) as { permission: string; value?: string };
            used.add(permission === "sys" ? `sys=${value}` : permission);
          }
        }
        // Deno 2.9.6 writes no audit entry for subprocesses: the helper-authenticated inspect above proves `run`.
        used.add("run");
        const declared = COMPILE_PERMISSIONS.map((p) => p.flag.replace(/^--allow-/, ""));
        const unused = declared.filter((d) => !used.has(d));
        assertEquals(
          unused,
          [],
          `declared but never used by the demo job: ${unused.join(", ")} (used: ${[...used]})`,
        );
      }

      // Nothing was written into (or needed from) the working directory.
      const left = [];
      for await (const e of Deno.readDir(cwd)) left.push(e.name);
      assertEquals(left, [], "airlock wrote into its working directory");
    } finally {
      for (const dir of [cwd, home, data, denoDir]) {
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      }
    }
  },
});

/** The product's sources: what `deno compile` embeds (tests, scripts and benchmarks are not shipped). */
const PRODUCT = ["cli.ts", "mod.ts", "cli", "core", "backends", "server"];

async function* productFiles(): AsyncGenerator<string> {
  for (const entry of PRODUCT) {
    const path = join(ROOT, entry);
    const info = await Deno.stat(path).catch(() => undefined);
    if (!info) continue;
    if (info.isFile) {
      yield path;
      continue;
    }
    const stack = [path];
    while (stack.length > 0) {
      const dir = stack.pop()!;
      for await (const e of Deno.readDir(dir)) {
        const p = join(dir, e.name);
        if (e.isDirectory) stack.push(p);
        else if (e.name.endsWith(".ts")) yield p;
      }
    }
  }
}

Deno.test("compile safety rules in the sources: literal import() only, no file next to the sources, no addons", async () => {
  const problems: string[] = [];
  for await (const file of productFiles()) {
    const text = await Deno.readTextFile(file);
    const rel = file.slice(ROOT.length);
    // import() of anything but a string literal cannot be embedded by deno compile.
    for (const m of text.matchAll(/(?<![\w.])import\s*\(\s*([^)\s][^)]*)\)/g)) {
      if (!/^(["'])[^"'`]+\1$/.test(m[1].trim())) problems.push(`${rel}: import(${m[1].trim()})`);
    }
    // Files located relative to the module are not in the binary (embed data as modules instead).
    for (const m of text.matchAll(/import\.meta\.(url|dirname|filename|resolve)/g)) {
      problems.push(`${rel}: import.meta.${m[1]}`);
    }
    // Native Node add-ons cannot be compiled in; PKCS#11 goes through Deno.dlopen.
    for (const m of text.matchAll(/createRequire|process\.dlopen|\.node["']/g)) {
      problems.push(`${rel}: ${m[0]}`);
    }
  }
  assertEquals(problems, []);
});

Deno.test("compile safety: the embedded trusted root and every key backend are in cli.ts's module graph", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "--config", CONFIG, CLI],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as { modules: { specifier: string }[] };
  const local = new Set(info.modules.map((m) => m.specifier).filter((s) => s.startsWith("file:")));
  for (
    const path of [
      "core/keyless/public_good_root.ts",
      "backends/file.ts",
      "backends/pkcs11/key.ts",
      "backends/plugin.ts",
    ]
  ) {
    assert(
      local.has(new URL(path, new URL("..", import.meta.url)).href),
      `${path} is not in the graph deno compile embeds`,
    );
  }
});
