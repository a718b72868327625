/**
 * `airlock version`: the version, the commit it was built from, the Deno runtime and the date of the embedded
 * sigstore trusted root. Cheap on purpose: only small data modules are loaded, so scripts can call it per host.
 *
 * @module
 */
import type { Command } from "commander";
import { AirlockError } from "../core/errors.ts";
import { BUILD_COMMIT } from "../core/build_info.ts";
import { VERSION } from "../core/version.ts";
import { type GlobalFlags, runCommand, writeStdout } from "./common.ts";

/** Everything `airlock version` reports. */
export interface VersionInfo {
  /** airlock's version (`core/version.ts`). */
  version: string;
  /** The git commit of the build, or `"unknown"` (not built by `deno task compile` from a git checkout). */
  commit: string;
  /** The Deno runtime running airlock (for a compiled binary: the embedded `denort`). */
  deno: string;
  /** V8's version. */
  v8: string;
  /** The platform the runtime was built for (`x86_64-unknown-linux-gnu`, …). */
  target: string;
  /** The embedded public-good sigstore trusted root. */
  trustedRoot: {
    /** Newest `validFor.start` in the snapshot (YYYY-MM-DD). */
    date: string;
    /** Hex SHA-256 of the embedded `trusted_root.json`. */
    sha256: string;
    /** Where the snapshot was taken from. */
    source: string;
  };
}

/**
 * Collects the version information. The trusted root's facts come from its small data module, loaded only here.
 *
 * @example
 * ```ts
 * const info = await versionInfo();
 * info.trustedRoot.date; // "2025-09-23"
 * ```
 */
export async function versionInfo(): Promise<VersionInfo> {
  const { PUBLIC_GOOD_ROOT_INFO } = await import("../core/keyless/public_good_root.ts");
  return {
    version: VERSION,
    commit: BUILD_COMMIT,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    target: Deno.build.target,
    trustedRoot: {
      date: PUBLIC_GOOD_ROOT_INFO.date,
      sha256: PUBLIC_GOOD_ROOT_INFO.sha256,
      source: PUBLIC_GOOD_ROOT_INFO.source,
    },
  };
}

/**
 * The text form of {@linkcode versionInfo}: `airlock <version>` on the first line (what scripts grep), then one
 * `key: value` line per fact.
 */
export function renderVersion(info: VersionInfo): string {
  return [
    `airlock ${info.version}`,
    `commit: ${info.commit}`,
    `deno: ${info.deno} (v8 ${info.v8})`,
    `target: ${info.target}`,
    `trusted root: sigstore public-good, ${info.trustedRoot.date} (sha256 ${info.trustedRoot.sha256})`,
  ].join("\n") + "\n";
}

/**
 * Registers `version [-o json|text]` on the program.
 */
export function registerVersion(program: Command): void {
  program.command("version")
    .description("print version, commit, Deno version and the embedded sigstore trusted root's date")
    .option("-o, --output <format>", "output format: text or json", "text")
    .action((flags: { output: string }, cmd: Command) =>
      runCommand(cmd.optsWithGlobals<GlobalFlags>(), async () => {
        if (flags.output !== "text" && flags.output !== "json") {
          throw new AirlockError(
            "INVALID_ARGUMENT",
            `unsupported --output "${flags.output}": use text or json`,
          );
        }
        const info = await versionInfo();
        writeStdout(flags.output === "json" ? JSON.stringify(info, null, 2) + "\n" : renderVersion(info));
      })
    );
}
