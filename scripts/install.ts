/**
 * `deno task install [--root DIR]`: puts an `airlock` command on the user's PATH that runs this checkout.
 *
 * It writes a small launcher, `<root>/bin/airlock` (`airlock.cmd` on Windows), where `<root>` is `--root DIR`,
 * else `$DENO_INSTALL_ROOT`, else `~/.deno` — the place `deno install --global` uses. The launcher runs `cli.ts`
 * of this checkout with this checkout's `deno.json` (so its locked npm dependencies, already installed in
 * `node_modules/` by the task) and with the Deno that ran the task, named by absolute path: a Deno started with
 * `npx deno@…` is not on PATH afterwards. It grants exactly the permissions of the compiled binary
 * (`COMPILE_PERMISSIONS` in `scripts/compile.ts`), never `-A`. Relative paths given to `airlock` resolve against
 * the directory it is run from; once the dependencies are installed it needs no network. Moving the checkout or
 * the Deno it names needs another `deno task install`.
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { compilePermissionFlags } from "./compile.ts";

/** What the launcher runs. */
export interface LauncherTarget {
  /** Absolute path of the Deno executable. */
  readonly deno: string;
  /** Absolute path of the checkout's `deno.json`. */
  readonly config: string;
  /** Absolute path of the checkout's `cli.ts`. */
  readonly cli: string;
}

/** The arguments of `deno` that run airlock from the checkout, before the user's arguments. */
export function launcherArgs(t: LauncherTarget): string[] {
  return ["run", "--quiet", "--no-prompt", ...compilePermissionFlags(), "--config", t.config, t.cli];
}

/** Quotes a word for POSIX `sh` (single quotes; an embedded `'` becomes `'\''`). */
function shQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/**
 * The text of the POSIX `sh` launcher.
 *
 * @example
 * ```ts
 * shLauncher({ deno: "/usr/bin/deno", config: "/src/airlock/deno.json", cli: "/src/airlock/cli.ts" });
 * // "#!/bin/sh\n# airlock … exec '/usr/bin/deno' 'run' … \"$@\"\n"
 * ```
 */
export function shLauncher(t: LauncherTarget): string {
  const words = [t.deno, ...launcherArgs(t)].map(shQuote).join(" ");
  return `#!/bin/sh\n# airlock, run from the checkout ${t.cli.replace(/\/cli\.ts$/, "")}\n` +
    `# written by \`deno task install\`; run it again after moving the checkout or its Deno\n` +
    `exec ${words} "$@"\n`;
}

/** The text of the Windows `cmd` launcher. */
export function cmdLauncher(t: LauncherTarget): string {
  const words = [t.deno, ...launcherArgs(t)].map((w) => `"${w}"`).join(" ");
  return `@echo off\r\nrem airlock, written by deno task install\r\n${words} %*\r\n`;
}

/**
 * The install root: `--root DIR`, else `$DENO_INSTALL_ROOT`, else `$HOME/.deno` (`%USERPROFILE%\.deno`).
 *
 * @throws {Error} when `--root` has no value, an argument is unknown, or no home directory is known.
 */
export function installRoot(args: readonly string[], env: (name: string) => string | undefined): string {
  let root: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--root") {
      root = args[++i];
      if (!root) throw new Error("--root needs a directory");
    } else if (a.startsWith("--root=")) root = a.slice("--root=".length);
    else throw new Error(`unknown argument "${a}" (usage: deno task install [--root DIR])`);
  }
  root ||= env("DENO_INSTALL_ROOT");
  if (root) return root;
  const home = env("HOME") ?? env("USERPROFILE");
  if (!home) throw new Error("no HOME: set DENO_INSTALL_ROOT or give --root DIR");
  return join(home, ".deno");
}

async function main(args: string[]): Promise<number> {
  let root: string;
  try {
    root = installRoot(args, (n) => Deno.env.get(n));
  } catch (e) {
    console.error(`install: ${(e as Error).message}`);
    return 2;
  }
  const checkout = fileURLToPath(new URL("..", import.meta.url)).replace(/[\\/]$/, "");
  const target: LauncherTarget = {
    deno: Deno.execPath(),
    config: join(checkout, "deno.json"),
    cli: join(checkout, "cli.ts"),
  };
  const bin = join(root, "bin");
  await Deno.mkdir(bin, { recursive: true });
  const windows = Deno.build.os === "windows";
  const launcher = join(bin, windows ? "airlock.cmd" : "airlock");
  await Deno.writeTextFile(launcher, windows ? cmdLauncher(target) : shLauncher(target), { mode: 0o755 });
  if (!windows) await Deno.chmod(launcher, 0o755);

  // Run it once: it must work, and this warms Deno's caches for offline use.
  const check = await new Deno.Command(launcher, { args: ["--version"], stdin: "null", stdout: "piped" })
    .output();
  if (!check.success) {
    console.error(`install: ${launcher} was written but does not run (exit ${check.code})`);
    return 1;
  }
  const version = new TextDecoder().decode(check.stdout).trim();
  console.log(`installed ${launcher} (airlock ${version}, from ${checkout}, Deno ${Deno.version.deno})`);
  const sep = windows ? ";" : ":";
  const onPath = (Deno.env.get("PATH") ?? "").split(sep).some((p) => p.replace(/[\\/]$/, "") === bin);
  if (!onPath) {
    console.log(
      windows
        ? `add ${bin} to your PATH to run it as airlock`
        : `add it to your PATH to run it as airlock:  export PATH="${bin}:$PATH"`,
    );
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
