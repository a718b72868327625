/**
 * `airlock save` and `airlock load`: images with their signatures into an archive (an OCI layout in a tar) and
 * from it into a registry, for moving images over the air gap on a disk.
 *
 * @module
 */
import type { Command } from "commander";
import { loadArchive, saveImages } from "../core/archive.ts";
import { loadRegistriesD } from "../core/config/registries_d.ts";
import { AirlockError } from "../core/errors.ts";
import { loadImageList, resolveImageList } from "../core/image_list.ts";
import type { CopyReport } from "../core/mirror.ts";
import { DEFAULT_ARCH_LIST, DEFAULT_OS_LIST, parseCsvList } from "../core/platform.ts";
import type { Logger } from "../core/report.ts";
import { removeStaleFailedList, writeFailedList } from "../core/report.ts";
import {
  addRegistryFlags,
  clientFor,
  collect,
  type GlobalFlags,
  interruptSignal,
  parseGoDuration,
  parseGoInt,
  type RegistryFlags,
  runCommand,
} from "./common.ts";

interface SaveFlags extends RegistryFlags {
  file?: string;
  output?: string;
  arch?: string[];
  os?: string[];
  registry?: string;
  project?: string;
  failed: string;
  removeSignatures?: boolean;
  filteredIndex?: boolean;
  "registries.d"?: string;
}

interface LoadFlags extends RegistryFlags {
  input?: string;
  destination?: string;
  destinationProject?: string;
  failed: string;
  jobs: string;
  timeout: string;
  removeSignatures?: boolean;
}

const MB = 1e6;

/**
 * One summary line of a copy run: images, bytes, blobs, signatures and throughput.
 *
 * @example
 * ```ts
 * log.info(copySummary("Mirrored", report));
 * ```
 */
export function copySummary(verb: string, r: CopyReport): string {
  const s = r.stats;
  const copied = r.lines.filter((l) => l.status === "copied").length;
  const secs = r.ms / 1000;
  return `${verb} ${copied} image(s) in ${secs.toFixed(1)}s: ${s.blobsUploaded} blob(s) uploaded ` +
    `(${(s.bytesUploaded / MB).toFixed(1)} MB, ${
      (s.bytesUploaded / MB / Math.max(secs, 1e-3)).toFixed(1)
    } MB/s), ` +
    `${s.blobsMounted} mounted, ${s.blobsPresent} already there; ${s.manifestsWritten} manifest(s) written; ` +
    `signature tags: ${s.attachmentsCopied} copied, ${s.attachmentsMerged} merged`;
}

/**
 * A progress bar on stderr for interactive runs.
 *
 * @example
 * ```ts
 * const progress = Deno.stderr.isTerminal() ? progressBar() : undefined;
 * ```
 */
export function progressBar(): (done: number, total: number) => void {
  const enc = new TextEncoder();
  return (done, total) => {
    const width = 30;
    const filled = Math.round((done / Math.max(total, 1)) * width);
    Deno.stderr.writeSync(
      enc.encode(`\r[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${done}/${total}`),
    );
  };
}

/**
 * Registers `save` and `load` on the program.
 *
 * @example
 * ```ts
 * registerSaveLoad(program);
 * ```
 */
export function registerSaveLoad(program: Command): void {
  const save = addRegistryFlags(
    program.command("save")
      .description(
        "save the images of an image list, with their signatures, into an archive (OCI layout in a tar)",
      )
      .option("-f, --file <file>", "image list file")
      .option("-o, --output <file>", "archive file to write")
      .option("-a, --arch <list>", "architecture list of images (default: amd64,arm64)", collect)
      .option("--os <list>", "OS list of images (default: linux)", collect)
      .option("--registry <host>", "override the registry of every image in the list")
      .option("--project <name>", "override the project of every image in the list")
      .option("--failed <file>", "file name of the save failed image list", "save-failed.txt")
      .option("--remove-signatures", "do not save signatures (.sig, .att)")
      .option(
        "--filtered-index",
        "when --arch/--os leave out platforms of an index, save an index of the others",
      )
      .option("--registries.d <dir>", "registries.d directory (default: the containers locations)"),
  );
  save.action((flags: SaveFlags, c: Command) =>
    runCommand(c.optsWithGlobals<GlobalFlags>(), (log) => runSave(flags, log))
  );

  const load = addRegistryFlags(
    program.command("load")
      .description(
        "push the images of an archive made by 'airlock save', with their signatures, into a registry",
      )
      .option("-i, --input <file>", "archive file to read")
      .option("-d, --destination <host>", "destination registry")
      .option("--destination-project <name>", "override the project of every image")
      .option("-o, --failed <file>", "file name of the load failed image list", "load-failed.txt")
      .option("-j, --jobs <n>", "worker number, push images in parallel (1-20)", "1")
      .option("--timeout <duration>", "timeout for pushing each image (all of its work)", "10m")
      .option("--remove-signatures", "do not push the signatures of the archive"),
  );
  load.action((flags: LoadFlags, c: Command) =>
    runCommand(c.optsWithGlobals<GlobalFlags>(), (log) => runLoad(flags, log))
  );
}

async function runSave(flags: SaveFlags, log: Logger): Promise<number> {
  if (!flags.file) {
    throw new AirlockError(
      "INVALID_ARGUMENT",
      "image list file not provided, use '--file' option to specify the image list file",
    );
  }
  if (!flags.output) {
    throw new AirlockError(
      "INVALID_ARGUMENT",
      "archive file not provided, use '--output' option to specify it",
    );
  }
  const arch = parseCsvList(flags.arch ?? [], DEFAULT_ARCH_LIST, "--arch");
  const os = parseCsvList(flags.os ?? [], DEFAULT_OS_LIST, "--os");
  const lines = await loadImageList(flags.file);
  const images = resolveImageList(lines, { registry: flags.registry, project: flags.project });
  const registriesD = await loadRegistriesD({ dir: flags["registries.d"] });
  const client = clientFor(flags);
  const interrupt = interruptSignal(log);
  let report;
  try {
    log.info(`Arch List: [${arch.join(",")}]`);
    log.info(`OS List: [${os.join(",")}]`);
    report = await saveImages(images, flags.output, {
      client,
      platforms: { arch, os, variant: [] },
      filteredIndex: flags.filteredIndex,
      removeSignatures: flags.removeSignatures,
      registriesD,
      signal: interrupt.signal,
      logger: log,
    });
  } finally {
    interrupt.dispose();
    client.close();
  }
  log.info(
    `Saved ${report.images} image(s) and ${report.attachments} signature manifest(s) into "${flags.output}": ` +
      `${report.blobs} blob(s), ${(report.bytes / MB).toFixed(1)} MB in ${(report.ms / 1000).toFixed(1)}s`,
  );
  if (report.failed.length > 0) {
    log.error(`Save failed image list: \n${report.failed.join("\n")}`);
    await writeFailedList(flags.failed, report.failed);
    log.info(`Failed image list exported to "${flags.failed}"`);
    log.fatal("some images failed to save");
    return 1;
  }
  await removeStaleFailedList(flags.failed);
  log.info("Done");
  return 0;
}

async function runLoad(flags: LoadFlags, log: Logger): Promise<number> {
  if (!flags.input) {
    throw new AirlockError(
      "INVALID_ARGUMENT",
      "archive file not provided, use '--input' option to specify it",
    );
  }
  if (!flags.destination) {
    throw new AirlockError(
      "INVALID_ARGUMENT",
      "destination registry not provided, use '--destination' option to specify it",
    );
  }
  const jobs = parseGoInt(flags.jobs);
  if (jobs < 1 || jobs > 20) {
    throw new AirlockError("INVALID_ARGUMENT", `invalid worker number ${jobs}: --jobs must be 1-20`);
  }
  const timeoutMs = parseGoDuration(flags.timeout);
  const client = clientFor(flags);
  const interrupt = interruptSignal(log);
  let report;
  try {
    log.info(`Loading images from "${flags.input}" into ${flags.destination}`);
    report = await loadArchive(flags.input, {
      destination: client,
      registry: flags.destination,
      project: flags.destinationProject,
      removeSignatures: flags.removeSignatures,
      jobs,
      timeoutMs,
      signal: interrupt.signal,
      logger: log,
    });
  } finally {
    interrupt.dispose();
    client.close();
  }
  log.info(copySummary("Loaded", report));
  if (report.failed.length > 0) {
    log.error(`Load failed image list: \n${report.failed.join("\n")}`);
    await writeFailedList(flags.failed, report.failed);
    log.info(`Failed image list exported to "${flags.failed}"`);
    log.fatal("some images failed to load");
    return 1;
  }
  await removeStaleFailedList(flags.failed);
  log.info("Done");
  return 0;
}
