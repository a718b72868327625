/**
 * `deno task compile` (scripts/compile.sh → scripts/compile.ts): target choice, DENORT_BIN rules, the permission
 * list, the embedded commit, and — on this host, where no `denort` can be downloaded — the failure message that
 * says so and what to set. Where the network allows the download, the same test checks the binary instead.
 *
 * @module
 */
import { join } from "node:path";
import { assert, assertEquals, assertStringIncludes, assertThrows } from "./assert.ts";
import {
  chooseTargets,
  COMPILE_PERMISSIONS,
  COMPILE_TARGETS,
  HOST_TARGET,
  outputPath,
} from "../scripts/compile.ts";
import { BUILD_INFO_PATH as BUILD_INFO, renderBuildInfo } from "../scripts/gen_build_info.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/** Runs `deno task compile ARGS` with a clean environment plus `env`. */
async function compile(args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "--quiet", "--config", join(ROOT, "deno.json"), "compile", ...args],
    cwd: ROOT,
    env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", HOME: Deno.env.get("HOME") ?? "/root", ...env },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(300_000),
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("compile: every release target by default; named ones; unknown ones refused", () => {
  assertEquals(chooseTargets([], undefined), [
    "x86_64-unknown-linux-gnu",
    "aarch64-unknown-linux-gnu",
    "x86_64-apple-darwin",
    "aarch64-apple-darwin",
    "x86_64-pc-windows-msvc",
  ]);
  assertEquals(chooseTargets(["aarch64-apple-darwin"], undefined), ["aarch64-apple-darwin"]);
  assertThrows(() => chooseTargets(["sparc-sun-solaris"], undefined), Error, "unknown target");
  assertEquals(outputPath("x86_64-pc-windows-msvc"), "dist/airlock-x86_64-pc-windows-msvc.exe");
  assertEquals(outputPath("aarch64-unknown-linux-gnu"), "dist/airlock-aarch64-unknown-linux-gnu");
});

Deno.test("compile: DENORT_BIN builds the host target only (a denort runs on one platform)", () => {
  assertEquals(chooseTargets([], "/opt/denort"), [HOST_TARGET]);
  const foreign = COMPILE_TARGETS.find((t) => t !== HOST_TARGET)!;
  assertThrows(() => chooseTargets([foreign], "/opt/denort"), Error, "can only build this host's target");
});

Deno.test("compile: permissions are listed one by one, never -A, each with a reason", () => {
  const flags = COMPILE_PERMISSIONS.map((p) => p.flag);
  assertEquals(flags, [
    "--allow-net",
    "--allow-read",
    "--allow-write",
    "--allow-env",
    "--allow-run",
    "--allow-ffi",
    "--allow-sys=uid",
  ]);
  for (const p of COMPILE_PERMISSIONS) assert(p.reason.length > 20, `${p.flag} has no reason`);
});

Deno.test("compile: the committed build info says unknown; the generated one holds only a commit id", async () => {
  assertStringIncludes(await Deno.readTextFile(BUILD_INFO), 'export const BUILD_COMMIT: string = "unknown";');
  const commit = "3b2df21a0c1e5b6f7a8d9e0f1a2b3c4d5e6f7a8b";
  assertStringIncludes(renderBuildInfo(commit), `BUILD_COMMIT: string = "${commit}";`);
  assertStringIncludes(renderBuildInfo(`${commit}-dirty`), `"${commit}-dirty"`);
  assertThrows(() => renderBuildInfo('x"; Deno.exit(1); "'), Error, "not a commit id");
});

Deno.test("compile: DENORT_BIN that does not exist, or for a foreign target, is refused before building", async () => {
  const missing = await compile([], { DENORT_BIN: "/nonexistent/denort" });
  assertEquals(missing.code, 2, missing.stderr);
  assertStringIncludes(missing.stderr, "DENORT_BIN=/nonexistent/denort does not exist");
  const foreign = COMPILE_TARGETS.find((t) => t !== HOST_TARGET)!;
  const wrong = await compile([foreign], { DENORT_BIN: Deno.execPath() });
  assertEquals(wrong.code, 2, wrong.stderr);
  assertStringIncludes(wrong.stderr, "can only build this host's target");
});

Deno.test({
  name: "deno task compile without DENORT_BIN: fails saying denort could not be fetched and what to set " +
    "(or, where the download works, builds a binary that runs)",
  sanitizeResources: false,
  fn: async () => {
    const before = await Deno.readTextFile(BUILD_INFO);
    // RUST_BACKTRACE=1 as many shells (and this CI) have it: the expected failure must still read as a hint.
    const r = await compile([HOST_TARGET], { RUST_BACKTRACE: "1" });
    // The build rewrote core/build_info.ts with the commit and must have put the committed text back.
    assertEquals(await Deno.readTextFile(BUILD_INFO), before, "core/build_info.ts was not restored");
    if (r.code !== 0) {
      assertEquals(r.code, 1, r.stderr);
      assertStringIncludes(r.stderr, "could not get the denort runtime");
      assertStringIncludes(r.stderr, "set DENORT_BIN=/path/to/denort");
      assertStringIncludes(r.stderr, `Deno ${Deno.version.deno}`);
      assert(!r.stderr.includes("backtrace"), `a Rust backtrace in the hint:\n${r.stderr}`);
      return;
    }
    // Network available: the binary must run on its own, from an empty directory, and know its commit.
    const cwd = await Deno.makeTempDir();
    try {
      const out = await new Deno.Command(join(ROOT, outputPath(HOST_TARGET)), {
        args: ["version"],
        cwd,
        stdout: "piped",
      }).output();
      assertEquals(out.code, 0);
      const text = new TextDecoder().decode(out.stdout);
      assertStringIncludes(text, "airlock ");
      assert(!text.includes("commit: unknown"), "the compiled binary does not know its commit");
    } finally {
      await Deno.remove(cwd, { recursive: true });
    }
  },
});
