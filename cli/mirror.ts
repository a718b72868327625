/**
 * `airlock mirror`: copy the images of an image list, with their signatures, between registries (hangar
 * `mirror` flags, defaults, image lists and failed lists): the platforms that pass `--arch`/`--os` (and with
 * `--provenance`, their buildx attestations) are copied, and the destination index is built from them merged with
 * the platforms the destination's index already lists (`--overwrite` replaces it); `--sigstore-private-key` /
 * `--key` sign each image at the destination.
 *
 * @module
 */
import type { Command } from "commander";
import {
  type LineCopyResult,
  mirrorImages,
  type MirrorListOverrides,
  streamMirrorList,
  surveyMirrorList,
} from "../core/transfer/mirror.ts";
import type { Logger } from "../core/report.ts";
import type { KeyBackend } from "../backends/key_backend.ts";
import {
  addRegistriesDFlag,
  addRegistryFlags,
  clientFor,
  type GlobalFlags,
  optionalBool,
  registriesDFor,
  type RegistryFlags,
  runCommand,
  usageError,
} from "./common.ts";
import {
  addFailedListFlag,
  addImageListFlags,
  addJsonOutputFlag,
  addWorkerFlags,
  checkJsonOutput,
  endListRun,
  type FailedListFlags,
  type ImageListFlags,
  logRunSettings,
  parsePlatformFlags,
  parseWorkerFlags,
  requireListFile,
  withClient,
  type WorkerFlags,
} from "./list_flags.ts";
import { withProgress } from "./progress.ts";
import { COPY_STATUSES, copyEntry, copySummary } from "./run_summary.ts";
import { ListRunOutput } from "./list_output.ts";
import { addSigningKeyFlags, openKeyWithWarning, type SigningKeyFlags } from "./key_flags.ts";

interface MirrorFlags extends RegistryFlags, ImageListFlags, WorkerFlags, FailedListFlags, SigningKeyFlags {
  source?: string;
  destination?: string;
  sourceProject?: string;
  destinationProject?: string;
  removeSignatures?: boolean;
  filteredIndex: boolean;
  overwrite?: boolean;
  provenance: boolean;
  sigstorePrivateKey?: string;
  srcTlsVerify?: boolean;
  destTlsVerify?: boolean;
  skipLogin?: boolean;
  "registries.d"?: string;
  output?: string;
}

/**
 * Registers `mirror` on the program.
 */
export function registerMirror(program: Command): void {
  const cmd = program.command("mirror")
    .description("copy the images of an image list, with their signatures, between registries");
  addImageListFlags(cmd, "image list file (default format, or SOURCE_REPO DESTINATION_REPO TAG lines)")
    .option("-s, --source <host>", "override the source registry of every image")
    .option("-d, --destination <host>", "destination registry (required for default-format lines)")
    .option("--source-project <name>", "override the source project of every image")
    .option("--destination-project <name>", "override the destination project of every image");
  addFailedListFlag(cmd, "mirror");
  addWorkerFlags(cmd, { work: "copy images", working: "copying" })
    .option("--remove-signatures", "do not copy signatures (.sig, .att, referrers)")
    .option(
      "--filtered-index",
      "when --arch/--os leave out platforms of an index, write an index of the others (a new digest); " +
        "=false: such images fail instead",
      true,
    )
    .option(
      "--overwrite",
      "replace the index at the destination tag instead of merging the platforms it lists (hangar's flag)",
    )
    .option("--provenance", "copy the buildx attestations (SLSA provenance) of the platforms copied", true)
    .option(
      "--sigstore-private-key <file>",
      "sign each image at the destination with this key file (hangar's flag)",
    )
    .option("--src-tls-verify [bool]", "--tls-verify for the source registry only", optionalBool)
    .option("--dest-tls-verify [bool]", "--tls-verify for the destination registry only", optionalBool)
    .option("--skip-login", "accepted for hangar compatibility; airlock never prompts for registry logins");
  addSigningKeyFlags(cmd);
  addRegistryFlags(addJsonOutputFlag(addRegistriesDFlag(cmd)));
  cmd.action((flags: MirrorFlags, c: Command) => {
    const global = c.optsWithGlobals<GlobalFlags>();
    return runCommand(global, (log) => runMirror(flags, log), { allToStderr: flags.output === "json" });
  });
}

/** The signing key of `--key` or hangar's `--sigstore-private-key`, opened before any network call; none without. */
async function openMirrorKey(flags: MirrorFlags, log: Logger): Promise<KeyBackend | undefined> {
  if (flags.key && flags.sigstorePrivateKey) {
    throw usageError("--key and --sigstore-private-key are mutually exclusive: give one of them");
  }
  const keyRef = flags.key ?? flags.sigstorePrivateKey;
  if (keyRef === undefined) return undefined;
  return await openKeyWithWarning(keyRef, {
    passphraseFile: flags.sigstorePassphraseFile,
    allowUnencryptedKey: flags.allowUnencryptedKey,
  }, log);
}

async function runMirror(flags: MirrorFlags, log: Logger): Promise<number> {
  const t0 = performance.now();
  const file = requireListFile(flags);
  checkJsonOutput(flags.output);
  const workers = parseWorkerFlags(flags);
  const platforms = parsePlatformFlags(flags);
  const overrides: MirrorListOverrides = {
    source: flags.source,
    sourceProject: flags.sourceProject,
    destination: flags.destination,
    destinationProject: flags.destinationProject,
  };
  // The list is read as the run goes; a first pass counts its images and checks it before any network call.
  const { images, defaults } = await surveyMirrorList(file, overrides);
  if (!flags.destination && defaults > 0) {
    throw usageError("destination registry not provided, use '--destination' option to specify it");
  }
  const registriesD = await registriesDFor(flags["registries.d"]);
  const key = await openMirrorKey(flags, log);
  const srcTls = flags.srcTlsVerify ?? flags.tlsVerify;
  const dstTls = flags.destTlsVerify ?? flags.tlsVerify;
  // Each line's outcome goes out as the run reaches it (failed list, JSON entries): nothing grows with the list.
  const out = await ListRunOutput.open<LineCopyResult>(
    flags.failed,
    flags.output === "json" ? { entry: copyEntry, statuses: COPY_STATUSES } : undefined,
  );
  const report = await out.around(() =>
    withClient({ ...flags, tlsVerify: srcTls }, log, async (source, signal) => {
      const destination = srcTls === dstTls ? source : clientFor({ ...flags, tlsVerify: dstTls });
      try {
        logRunSettings(log, platforms, workers);
        return await withProgress(
          "mirroring",
          (onProgress) =>
            mirrorImages(streamMirrorList(file, overrides), {
              source,
              destination,
              platforms,
              filteredIndex: flags.filteredIndex,
              mergeIndex: !flags.overwrite,
              provenance: flags.provenance,
              removeSignatures: flags.removeSignatures,
              registriesD,
              signer: key ? { key, registriesD } : undefined,
              ...workers,
              signal,
              logger: log,
              onProgress,
              ...out.receiver(images),
            }),
        );
      } finally {
        if (destination !== source) destination.close();
      }
    }).finally(() => key?.close())
  );
  return await endListRun(log, out.failed, flags.failed, {
    summary: copySummary("Mirror", "mirrored", { ...report, lines: out }, performance.now() - t0),
    written: true,
    title: "Mirror",
    fatal: "some images failed to mirror",
  });
}
