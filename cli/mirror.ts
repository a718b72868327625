/**
 * `airlock mirror`: copy the images of an image list, with their signatures, between registries (hangar
 * `mirror` flags, image lists and failed lists).
 *
 * @module
 */
import type { Command } from "commander";
import { loadRegistriesD } from "../core/config/registries_d.ts";
import { AirlockError } from "../core/errors.ts";
import { type CopyReport, loadMirrorList, mirrorImages, resolveMirrorList } from "../core/mirror.ts";
import { DEFAULT_ARCH_LIST, DEFAULT_OS_LIST, parseCsvList } from "../core/platform.ts";
import { formatDuration } from "../core/pool.ts";
import type { Logger } from "../core/report.ts";
import { removeStaleFailedList, writeFailedList } from "../core/report.ts";
import {
  addRegistryFlags,
  clientFor,
  collect,
  type GlobalFlags,
  interruptSignal,
  optionalBool,
  parseGoDuration,
  parseGoInt,
  type RegistryFlags,
  runCommand,
} from "./common.ts";
import { copySummary, progressBar } from "./save_load.ts";

interface MirrorFlags extends RegistryFlags {
  file?: string;
  arch?: string[];
  os?: string[];
  source?: string;
  destination?: string;
  sourceProject?: string;
  destinationProject?: string;
  failed: string;
  jobs: string;
  timeout: string;
  removeSignatures?: boolean;
  filteredIndex?: boolean;
  srcTlsVerify?: boolean;
  destTlsVerify?: boolean;
  skipLogin?: boolean;
  "registries.d"?: string;
}

/**
 * Registers `mirror` on the program.
 *
 * @example
 * ```ts
 * registerMirror(program);
 * ```
 */
export function registerMirror(program: Command): void {
  const cmd = addRegistryFlags(
    program.command("mirror")
      .description("copy the images of an image list, with their signatures, between registries")
      .option(
        "-f, --file <file>",
        "image list file (default format, or SOURCE_REPO DESTINATION_REPO TAG lines)",
      )
      .option("-a, --arch <list>", "architecture list of images (default: amd64,arm64)", collect)
      .option("--os <list>", "OS list of images (default: linux)", collect)
      .option("-s, --source <host>", "override the source registry of every image")
      .option("-d, --destination <host>", "destination registry (required for default-format lines)")
      .option("--source-project <name>", "override the source project of every image")
      .option("--destination-project <name>", "override the destination project of every image")
      .option("-o, --failed <file>", "file name of the mirror failed image list", "mirror-failed.txt")
      .option("-j, --jobs <n>", "worker number, copy images in parallel (1-20)", "1")
      .option("--timeout <duration>", "timeout for copying each image (all of its work)", "10m")
      .option("--remove-signatures", "do not copy signatures (.sig, .att, referrers)")
      .option(
        "--filtered-index",
        "when --arch/--os leave out some platforms of an index, write an index of the others (a new digest)",
      )
      .option("--src-tls-verify [bool]", "--tls-verify for the source registry only", optionalBool)
      .option("--dest-tls-verify [bool]", "--tls-verify for the destination registry only", optionalBool)
      .option("--skip-login", "accepted for hangar compatibility; airlock never prompts for registry logins")
      .option("--registries.d <dir>", "registries.d directory (default: the containers locations)"),
  );
  cmd.action((flags: MirrorFlags, c: Command) => {
    const global = c.optsWithGlobals<GlobalFlags>();
    return runCommand(global, (log) => runMirror(flags, log));
  });
}

async function runMirror(flags: MirrorFlags, log: Logger): Promise<number> {
  if (!flags.file) {
    throw new AirlockError(
      "INVALID_ARGUMENT",
      "image list file not provided, use '--file' option to specify the image list file",
    );
  }
  const jobs = parseGoInt(flags.jobs);
  if (jobs < 1 || jobs > 20) {
    throw new AirlockError("INVALID_ARGUMENT", `invalid worker number ${jobs}: --jobs must be 1-20`);
  }
  const timeoutMs = parseGoDuration(flags.timeout);
  const arch = parseCsvList(flags.arch ?? [], DEFAULT_ARCH_LIST, "--arch");
  const os = parseCsvList(flags.os ?? [], DEFAULT_OS_LIST, "--os");
  const lines = await loadMirrorList(flags.file);
  const resolved = resolveMirrorList(lines, {
    source: flags.source,
    sourceProject: flags.sourceProject,
    destination: flags.destination,
    destinationProject: flags.destinationProject,
  });
  if (!flags.destination && lines.some((l) => l.kind === "default")) {
    throw new AirlockError(
      "INVALID_ARGUMENT",
      "destination registry not provided, use '--destination' option to specify it",
    );
  }
  const registriesD = await loadRegistriesD({ dir: flags["registries.d"] });
  const srcTls = flags.srcTlsVerify ?? flags.tlsVerify;
  const dstTls = flags.destTlsVerify ?? flags.tlsVerify;
  const source = clientFor({ ...flags, tlsVerify: srcTls });
  const destination = srcTls === dstTls ? source : clientFor({ ...flags, tlsVerify: dstTls });
  const interrupt = interruptSignal(log);
  let report: CopyReport;
  try {
    log.info(`Arch List: [${arch.join(",")}]`);
    log.info(`OS List: [${os.join(",")}]`);
    log.debug(`Jobs: ${jobs}, timeout per image: ${formatDuration(timeoutMs)}`);
    const progress = Deno.stderr.isTerminal() ? progressBar() : undefined;
    report = await mirrorImages(resolved, {
      source,
      destination,
      platforms: { arch, os, variant: [] },
      filteredIndex: flags.filteredIndex,
      removeSignatures: flags.removeSignatures,
      registriesD,
      jobs,
      timeoutMs,
      signal: interrupt.signal,
      logger: log,
      onProgress: progress,
    });
    if (progress) Deno.stderr.writeSync(new TextEncoder().encode("\n"));
  } finally {
    interrupt.dispose();
    source.close();
    if (destination !== source) destination.close();
  }
  log.info(copySummary("Mirrored", report));
  if (report.failed.length > 0) {
    log.error(`Mirror failed image list: \n${report.failed.join("\n")}`);
    await writeFailedList(flags.failed, report.failed);
    log.info(`Failed image list exported to "${flags.failed}"`);
    log.fatal("some images failed to mirror");
    return 1;
  }
  await removeStaleFailedList(flags.failed);
  log.info("Done");
  return 0;
}
