/**
 * `deno task compile` (through scripts/compile.sh): builds `dist/airlock-<target>` with `deno compile`, one
 * binary per target, with the permissions the tool needs listed explicitly (never `-A`) and the git commit
 * embedded (`core/build_info.ts` is rewritten for the build and restored afterwards).
 *
 *     deno task compile [TARGET...]     default: every target in COMPILE_TARGETS
 *     DENORT_BIN=/path/to/denort deno task compile     default: the host target only
 *
 * `deno compile` needs the `denort` runtime of each target and downloads it from Deno's download host. On a
 * build host without network, `DENORT_BIN` names a `denort` binary of the same Deno version; it is a runtime for
 * one platform, so it can only build the host's own target (asking for another target with it is refused).
 *
 * @module
 */
import { BUILD_INFO_PATH, gitCommit, renderBuildInfo } from "./gen_build_info.ts";

/** Every target a release is built for (`deno compile --target`). */
export const COMPILE_TARGETS: readonly string[] = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
  "x86_64-pc-windows-msvc",
];

/** A permission flag baked into the binary, and why airlock needs it. */
export interface CompilePermission {
  /** The `deno compile` flag. */
  flag: string;
  /** Why airlock needs it (and why it is not narrower). */
  reason: string;
}

/**
 * The permissions of the compiled binary. Each is as narrow as airlock's inputs allow: registry hosts, file
 * paths, credential-helper and KMS-plugin names and PKCS#11 module paths all come from the user at run time, so
 * those cannot be listed at build time. `tests/compile_safety_test.ts` runs the whole demo job with exactly
 * these flags (network narrowed to the test registry).
 */
export const COMPILE_PERMISSIONS: readonly CompilePermission[] = [
  {
    flag: "--allow-net",
    reason:
      "registries, their token servers and proxies, KMS endpoints, the `serve` listener: any host the user names",
  },
  {
    flag: "--allow-read",
    reason: "image lists, keys, passphrase files, auth.json / docker config.json, certs.d, registries.d, " +
      "policy.json, trusted roots, files to sign-blob, PKCS#11 module paths: user-chosen paths",
  },
  {
    flag: "--allow-write",
    reason:
      "failed lists and reports, auth.json (login), generated key pairs, blob signatures: user-chosen paths",
  },
  {
    flag: "--allow-env",
    reason:
      "HOME, XDG_RUNTIME_DIR, XDG_CONFIG_HOME, REGISTRY_AUTH_FILE, DOCKER_CONFIG, COSIGN_PASSWORD, PATH " +
      "(plugins), proxy variables, NO_COLOR and the colour variables commander reads, yaml's LOG_TOKENS/LOG_STREAM, " +
      "KMS credentials: too many, and partly backend-defined, to list",
  },
  {
    flag: "--allow-run",
    reason:
      "docker-credential-<name> helpers (from the user's docker config) and sigstore-kms-<name> plugins: " +
      "names chosen by the user; airlock runs nothing else",
  },
  {
    flag: "--allow-ffi",
    reason: "PKCS#11 modules (HSMs, SoftHSM2, YubiKey) loaded with Deno.dlopen from a path in the key URI",
  },
  {
    flag: "--allow-sys=uid",
    reason: "Deno.uid() for /run/user/<uid>/containers/auth.json when XDG_RUNTIME_DIR is unset",
  },
];

/**
 * The permission flags of {@linkcode COMPILE_PERMISSIONS}.
 *
 * @example
 * ```ts
 * compilePermissionFlags(); // ["--allow-net", "--allow-read", …]
 * ```
 */
export function compilePermissionFlags(): string[] {
  return COMPILE_PERMISSIONS.map((p) => p.flag);
}

/** The target of the Deno running this script (the host's). */
export const HOST_TARGET: string = Deno.build.target;

/**
 * The output path for a target: `dist/airlock-<target>` (`.exe` for Windows).
 *
 * @example
 * ```ts
 * outputPath("x86_64-pc-windows-msvc"); // "dist/airlock-x86_64-pc-windows-msvc.exe"
 * ```
 */
export function outputPath(target: string): string {
  return `dist/airlock-${target}${target.includes("windows") ? ".exe" : ""}`;
}

/**
 * The targets to build for the command-line arguments: the named ones, or every target (only the host target
 * when `DENORT_BIN` is set). Throws with a message for an unknown target, or for a foreign target with
 * `DENORT_BIN`.
 *
 * @example
 * ```ts
 * chooseTargets([], undefined); // COMPILE_TARGETS
 * ```
 */
export function chooseTargets(args: readonly string[], denortBin: string | undefined): string[] {
  for (const t of args) {
    if (!COMPILE_TARGETS.includes(t)) {
      throw new Error(`unknown target "${t}"; known targets: ${COMPILE_TARGETS.join(", ")}`);
    }
  }
  if (denortBin === undefined) return args.length > 0 ? [...args] : [...COMPILE_TARGETS];
  const targets = args.length > 0 ? [...args] : [HOST_TARGET];
  const foreign = targets.filter((t) => t !== HOST_TARGET);
  if (foreign.length > 0) {
    throw new Error(
      `DENORT_BIN is a runtime for one platform, so it can only build this host's target (${HOST_TARGET}), ` +
        `not ${foreign.join(", ")}. Build other targets where deno compile can download their denort ` +
        `(a host with network, as the release workflow does).`,
    );
  }
  return targets;
}

async function denortProblem(path: string): Promise<string | undefined> {
  try {
    const info = await Deno.stat(path);
    if (!info.isFile) return `DENORT_BIN=${path} is not a file`;
    if (info.mode !== null && (info.mode & 0o111) === 0) return `DENORT_BIN=${path} is not executable`;
  } catch {
    return `DENORT_BIN=${path} does not exist`;
  }
  return undefined;
}

/** Builds one target; returns false (after saying why) when deno compile fails. */
async function compileOne(target: string, denortBin: string | undefined): Promise<boolean> {
  const out = outputPath(target);
  console.error(`compile: ${target} -> ${out}`);
  const { code } = await new Deno.Command(Deno.execPath(), {
    args: ["compile", "--quiet", ...compilePermissionFlags(), "--target", target, "--output", out, "cli.ts"],
    // A failed download is an expected outcome here (the hint below explains it): no Rust backtrace, even when
    // the caller's environment asks for one.
    env: { RUST_BACKTRACE: "0", RUST_LIB_BACKTRACE: "0" },
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn().status;
  if (code === 0) return true;
  if (denortBin === undefined) {
    console.error(
      `compile: deno compile could not get the denort runtime for ${target} (no network to its download host?).`,
    );
    console.error(
      `compile: set DENORT_BIN=/path/to/denort (a denort binary of Deno ${Deno.version.deno} for ${HOST_TARGET}; ` +
        `it builds this host's target only), or build on a host with network.`,
    );
  } else {
    console.error(
      `compile: deno compile failed with DENORT_BIN=${denortBin}: is it the denort of Deno ${Deno.version.deno} ` +
        `for ${target}?`,
    );
  }
  return false;
}

/** Runs the build; returns the exit status. */
async function main(args: string[]): Promise<number> {
  const denortBin = Deno.env.get("DENORT_BIN") || undefined;
  let targets: string[];
  try {
    targets = chooseTargets(args, denortBin);
  } catch (e) {
    console.error(`compile: ${(e as Error).message}`);
    return 2;
  }
  if (denortBin !== undefined) {
    const problem = await denortProblem(denortBin);
    if (problem) {
      console.error(`compile: ${problem}; it must name a denort binary of Deno ${Deno.version.deno}.`);
      return 2;
    }
  }

  const committed = await Deno.readTextFile(BUILD_INFO_PATH);
  const restore = () => Deno.writeTextFileSync(BUILD_INFO_PATH, committed);
  const onSignal = () => {
    restore();
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  try {
    const commit = await gitCommit(new URL("..", import.meta.url));
    await Deno.writeTextFile(BUILD_INFO_PATH, renderBuildInfo(commit));
    console.error(`compile: commit ${commit}`);
    await Deno.mkdir("dist", { recursive: true });
    for (const target of targets) {
      if (!await compileOne(target, denortBin)) return 1;
    }
    return 0;
  } finally {
    restore();
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
}

if (import.meta.main) {
  Deno.chdir(new URL("..", import.meta.url));
  Deno.exit(await main(Deno.args));
}
