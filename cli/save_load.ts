/**
 * `airlock save` and `airlock load`: images with their signatures into an archive (an OCI layout in a tar) and
 * from it into a registry, for moving images over the air gap on a disk.
 *
 * @module
 */
import type { Command } from "commander";
import { loadArchive, saveImages } from "../core/archive.ts";
import type { CopyReport } from "../core/mirror.ts";
import type { Logger } from "../core/report.ts";
import {
  addRegistriesDFlag,
  addRegistryFlags,
  type GlobalFlags,
  parseTimeoutFlag,
  registriesDFor,
  type RegistryFlags,
  runCommand,
  usageError,
} from "./common.ts";
import {
  addFailedListFlag,
  addImageListFlags,
  addOverrideFlags,
  addWorkerFlags,
  endListRun,
  type FailedListFlags,
  type ImageListFlags,
  logRunSettings,
  type OverrideFlags,
  parsePlatformFlags,
  parseWorkerFlags,
  readImageList,
  requireListFile,
  withClient,
  type WorkerFlags,
} from "./list_flags.ts";

interface SaveFlags extends RegistryFlags, ImageListFlags, OverrideFlags, FailedListFlags {
  timeout: string;
  output?: string;
  removeSignatures?: boolean;
  filteredIndex?: boolean;
  "registries.d"?: string;
}

interface LoadFlags extends RegistryFlags, WorkerFlags, FailedListFlags {
  input?: string;
  destination?: string;
  destinationProject?: string;
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
 * Registers `save` and `load` on the program.
 *
 * @example
 * ```ts
 * registerSaveLoad(program);
 * ```
 */
export function registerSaveLoad(program: Command): void {
  const save = program.command("save")
    .description(
      "save the images of an image list, with their signatures, into an archive (OCI layout in a tar)",
    );
  addImageListFlags(save)
    .option("-o, --output <file>", "archive file to write");
  addOverrideFlags(save);
  addFailedListFlag(save, "save", { short: false })
    .option("--remove-signatures", "do not save signatures (.sig, .att)")
    .option("--timeout <duration>", "timeout for saving each image (all of its work)", "10m")
    .option(
      "--filtered-index",
      "when --arch/--os leave out platforms of an index, save an index of the others",
    );
  addRegistryFlags(addRegistriesDFlag(save));
  save.action((flags: SaveFlags, c: Command) =>
    runCommand(c.optsWithGlobals<GlobalFlags>(), (log) => runSave(flags, log))
  );

  const load = program.command("load")
    .description(
      "push the images of an archive made by 'airlock save', with their signatures, into a registry",
    )
    .option("-i, --input <file>", "archive file to read")
    .option("-d, --destination <host>", "destination registry")
    .option("--destination-project <name>", "override the project of every image");
  addFailedListFlag(load, "load");
  addWorkerFlags(load, { work: "push images", working: "pushing" })
    .option("--remove-signatures", "do not push the signatures of the archive");
  addRegistryFlags(load);
  load.action((flags: LoadFlags, c: Command) =>
    runCommand(c.optsWithGlobals<GlobalFlags>(), (log) => runLoad(flags, log))
  );
}

async function runSave(flags: SaveFlags, log: Logger): Promise<number> {
  const file = requireListFile(flags);
  if (!flags.output) throw usageError("archive file not provided, use '--output' option to specify it");
  const output = flags.output;
  const platforms = parsePlatformFlags(flags);
  const timeoutMs = parseTimeoutFlag(flags.timeout);
  const images = await readImageList(file, flags);
  const registriesD = await registriesDFor(flags["registries.d"]);
  const report = await withClient(flags, log, (client, signal) => {
    logRunSettings(log, platforms);
    return saveImages(images, output, {
      client,
      platforms,
      filteredIndex: flags.filteredIndex,
      removeSignatures: flags.removeSignatures,
      registriesD,
      signal,
      timeoutMs,
      logger: log,
    });
  });
  log.info(
    `Saved ${report.images} image(s) and ${report.attachments} signature manifest(s) into "${output}": ` +
      `${report.blobs} blob(s), ${(report.bytes / MB).toFixed(1)} MB in ${(report.ms / 1000).toFixed(1)}s`,
  );
  return await endListRun(log, report.failed, flags.failed, {
    title: "Save",
    fatal: "some images failed to save",
  });
}

async function runLoad(flags: LoadFlags, log: Logger): Promise<number> {
  if (!flags.input) throw usageError("archive file not provided, use '--input' option to specify it");
  if (!flags.destination) {
    throw usageError("destination registry not provided, use '--destination' option to specify it");
  }
  const { input, destination } = flags;
  const workers = parseWorkerFlags(flags);
  const report = await withClient(flags, log, (client, signal) => {
    log.info(`Loading images from "${input}" into ${destination}`);
    return loadArchive(input, {
      destination: client,
      registry: destination,
      project: flags.destinationProject,
      removeSignatures: flags.removeSignatures,
      ...workers,
      signal,
      logger: log,
    });
  });
  log.info(copySummary("Loaded", report));
  return await endListRun(log, report.failed, flags.failed, {
    title: "Load",
    fatal: "some images failed to load",
  });
}
