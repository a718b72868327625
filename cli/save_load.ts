/**
 * `airlock save` and `airlock load`: images with their signatures into an archive (an OCI layout in a tar) and
 * from it into a registry, for moving images over the air gap on a disk.
 *
 * @module
 */
import type { Command } from "commander";
import { loadArchive, saveImages } from "../core/transfer/archive.ts";
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
  addJsonOutputFlag,
  addOverrideFlags,
  addWorkerFlags,
  checkJsonOutput,
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
import { withProgress } from "./progress.ts";
import { copySummary, saveSummary, writeCopyJson } from "./run_summary.ts";

interface SaveFlags extends RegistryFlags, ImageListFlags, OverrideFlags, FailedListFlags {
  timeout: string;
  destination?: string;
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
  output?: string;
}

/**
 * Registers `save` and `load` on the program.
 */
export function registerSaveLoad(program: Command): void {
  const save = program.command("save")
    .description(
      "save the images of an image list, with their signatures, into an archive (OCI layout in a tar)",
    );
  addImageListFlags(save)
    .option("-d, --destination <file>", "archive file to write");
  addOverrideFlags(save);
  addFailedListFlag(save, "save")
    .option("--timeout <duration>", "timeout for saving each image (all of its work)", "10m")
    .option("--remove-signatures", "do not save signatures (.sig, .att)")
    .option(
      "--filtered-index",
      "when --arch/--os leave out platforms of an index, save an index of the others",
    );
  addRegistryFlags(addJsonOutputFlag(addRegistriesDFlag(save)));
  save.action((flags: SaveFlags, c: Command) =>
    runCommand(c.optsWithGlobals<GlobalFlags>(), (log) => runSave(flags, log), {
      allToStderr: flags.output === "json",
    })
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
  addRegistryFlags(addJsonOutputFlag(load));
  load.action((flags: LoadFlags, c: Command) =>
    runCommand(c.optsWithGlobals<GlobalFlags>(), (log) => runLoad(flags, log), {
      allToStderr: flags.output === "json",
    })
  );
}

async function runSave(flags: SaveFlags, log: Logger): Promise<number> {
  const t0 = performance.now();
  const file = requireListFile(flags);
  if (!flags.destination) {
    throw usageError("archive file not provided, use '--destination' option to specify it");
  }
  checkJsonOutput(flags.output);
  const archive = flags.destination;
  const timeoutMs = parseTimeoutFlag(flags.timeout);
  const platforms = parsePlatformFlags(flags);
  const images = await readImageList(file, flags);
  const registriesD = await registriesDFor(flags["registries.d"]);
  const report = await withClient(flags, log, async (client, signal) => {
    logRunSettings(log, platforms);
    return await withProgress("saving", (onProgress) =>
      saveImages(images, archive, {
        client,
        platforms,
        filteredIndex: flags.filteredIndex,
        removeSignatures: flags.removeSignatures,
        registriesD,
        signal,
        timeoutMs,
        logger: log,
        onProgress,
      }));
  });
  if (flags.output === "json") writeCopyJson(report.lines, { archive });
  return await endListRun(log, report.failed, flags.failed, {
    summary: saveSummary(report, archive, performance.now() - t0),
    title: "Save",
    fatal: "some images failed to save",
  });
}

async function runLoad(flags: LoadFlags, log: Logger): Promise<number> {
  const t0 = performance.now();
  if (!flags.input) throw usageError("archive file not provided, use '--input' option to specify it");
  if (!flags.destination) {
    throw usageError("destination registry not provided, use '--destination' option to specify it");
  }
  checkJsonOutput(flags.output);
  const { input, destination } = flags;
  const workers = parseWorkerFlags(flags);
  const report = await withClient(flags, log, async (client, signal) => {
    log.info(`Loading images from "${input}" into ${destination}`);
    return await withProgress("loading", (onProgress) =>
      loadArchive(input, {
        destination: client,
        registry: destination,
        project: flags.destinationProject,
        removeSignatures: flags.removeSignatures,
        ...workers,
        signal,
        logger: log,
        onProgress,
      }));
  });
  if (flags.output === "json") writeCopyJson(report.lines);
  return await endListRun(log, report.failed, flags.failed, {
    summary: copySummary("Load", "loaded", report, performance.now() - t0),
    title: "Load",
    fatal: "some images failed to load",
  });
}
