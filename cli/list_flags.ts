/**
 * What the image-list commands (`sign`, `sign validate`, `mirror`, `save`, `load`) share, as hangar has it: the
 * list flags (`-f`, `-a`, `--os`, `--registry`, `--project`), the worker flags (`-j`, `--timeout`), the failed
 * list (`-o`) and how a run ends with it, the progress bar and the `--output json` summary.
 *
 * @module
 */
import { type Command, InvalidArgumentError } from "commander";
import {
  loadImageList,
  type ResolvedImageLine,
  resolveImageLines,
  resolveImageList,
  streamImageList,
  surveyImageList,
} from "../core/image_list.ts";
import { DEFAULT_ARCH_LIST, DEFAULT_OS_LIST, parseCsvList, type PlatformFilter } from "../core/platform.ts";
import { formatDuration } from "../core/pool.ts";
import { type Logger, removeStaleFailedList, writeFailedList } from "../core/report.ts";
import type { RegistryClient } from "../core/registry/client.ts";
import type { Reference } from "../core/reference.ts";
import {
  clientFor,
  collect,
  durationFlag,
  interruptSignal,
  intFlag,
  type RegistryFlags,
  usageError,
} from "./common.ts";

/** `-f`, `-a`, `--os` (see {@linkcode addImageListFlags}). */
export interface ImageListFlags {
  file?: string;
  arch?: string[];
  os?: string[];
}

/** `--registry`, `--project` (see {@linkcode addOverrideFlags}). */
export interface OverrideFlags {
  registry?: string;
  project?: string;
}

/** `-j`, `--timeout` (see {@linkcode addWorkerFlags}). */
export interface WorkerFlags {
  jobs: string;
  timeout: string;
}

/** `-o, --failed` (see {@linkcode addFailedListFlag}). */
export interface FailedListFlags {
  failed: string;
}

/**
 * Adds `-f, --file`, `-a, --arch` and `--os`.
 */
export function addImageListFlags(cmd: Command, fileHelp = "image list file"): Command {
  return cmd
    .option("-f, --file <file>", fileHelp)
    .option("-a, --arch <list>", "architecture list of images (default: amd64,arm64)", collect)
    .option("--os <list>", "OS list of images (default: linux)", collect);
}

/**
 * Adds `--registry` and `--project`, which override those of every image in the list.
 */
export function addOverrideFlags(cmd: Command): Command {
  return cmd
    .option("--registry <host>", "override the registry of every image in the list")
    .option("--project <name>", "override the project of every image in the list");
}

/** Output formats of airlock's and cosign's commands: never a failed list's name (`-o json` means `--output`). */
const OUTPUT_FORMATS = new Set(["json", "text"]);

/**
 * `-o/--failed FILE`: a file name; an output format's name (`-o json`, as `cosign … -o json` would read) is
 * refused, since `-o` is hangar's failed list here and the run would silently write a failed list called `json`.
 *
 * @throws {InvalidArgumentError} for `json` and `text`.
 */
export function failedListName(value: string): string {
  if (OUTPUT_FORMATS.has(value.toLowerCase())) {
    throw new InvalidArgumentError(
      `"${value}" is an output format, not a file name: -o is --failed here (hangar's failed image list); ` +
        `use --output to choose the output format`,
    );
  }
  return value;
}

/**
 * Adds `-o, --failed FILE` (default `<command>-failed.txt`); `short: false` leaves `-o` to another flag. An output
 * format's name is refused (see {@linkcode failedListName}).
 */
export function addFailedListFlag(cmd: Command, command: string, options: { short?: boolean } = {}): Command {
  return cmd.option(
    `${options.short === false ? "" : "-o, "}--failed <file>`,
    `file name of the ${command} failed image list`,
    failedListName,
    `${command}-failed.txt`,
  );
}

/**
 * Adds `-j, --jobs N` (default 1) and `--timeout DURATION` (default 10m, per image).
 */
export function addWorkerFlags(cmd: Command, words: { work: string; working: string }): Command {
  return cmd
    .option("-j, --jobs <n>", `worker number, ${words.work} in parallel (1-20)`, "1")
    .option("--timeout <duration>", `timeout for ${words.working} each image (all of its work)`, "10m");
}

/**
 * Adds `--output json` (a machine-readable summary on stdout).
 */
export function addJsonOutputFlag(cmd: Command): Command {
  return cmd.option("--output <format>", "machine-readable summary on stdout: json");
}

/**
 * Pre-flight: the image list file must be named.
 *
 * @throws {AirlockError} `INVALID_ARGUMENT` without `--file`.
 */
export function requireListFile(flags: ImageListFlags): string {
  if (!flags.file) {
    throw usageError("image list file not provided, use '--file' option to specify the image list file");
  }
  return flags.file;
}

/**
 * Pre-flight: `--output` may only be `json`.
 */
export function checkJsonOutput(output: string | undefined): void {
  if (output !== undefined && output !== "json") {
    throw usageError(`unsupported --output "${output}": only json is supported`);
  }
}

/** The worker settings of a run. */
export interface Workers {
  /** Images worked on at once (1–20). */
  readonly jobs: number;
  /** Deadline per image, in ms. */
  readonly timeoutMs: number;
}

/**
 * Parses `-j` (1–20, Go integer syntax) and `--timeout` (Go duration).
 *
 * @throws {AirlockError} `INVALID_ARGUMENT` for a bad value.
 */
export function parseWorkerFlags(flags: WorkerFlags): Workers {
  const jobs = intFlag("--jobs", flags.jobs);
  if (jobs < 1 || jobs > 20) throw usageError(`invalid worker number ${jobs}: --jobs must be 1-20`);
  return { jobs, timeoutMs: durationFlag("--timeout", flags.timeout) };
}

/**
 * Parses `-a` and `--os` into the platform filter (defaults: amd64,arm64 and linux).
 */
export function parsePlatformFlags(flags: ImageListFlags): PlatformFilter {
  return {
    arch: parseCsvList(flags.arch ?? [], DEFAULT_ARCH_LIST, "--arch"),
    os: parseCsvList(flags.os ?? [], DEFAULT_OS_LIST, "--os"),
    variant: [],
  };
}

/**
 * Reads the image list file and resolves its lines, with `--registry` and `--project` applied.
 */
export async function readImageList(file: string, flags: OverrideFlags): Promise<ResolvedImageLine[]> {
  return resolveImageList(await loadImageList(file), { registry: flags.registry, project: flags.project });
}

/**
 * The image list file read as the run goes (its lines resolved with `--registry` and `--project` applied), after
 * a first pass that counts its images (for the progress line) and refuses a list without any; memory does not
 * grow with the length of the list.
 */
export async function streamListFile(
  file: string,
  flags: OverrideFlags,
  onImage?: (reference: Reference) => void,
): Promise<{ readonly images: number; readonly lines: AsyncIterable<ResolvedImageLine> }> {
  const overrides = { registry: flags.registry, project: flags.project };
  const { images } = await surveyImageList(file, overrides, onImage);
  return { images, lines: resolveImageLines(streamImageList(file), overrides) };
}

/**
 * Logs the run's settings as hangar does: the arch and OS lists, and with `--debug` the workers.
 */
export function logRunSettings(log: Logger, platforms: PlatformFilter, workers?: Workers): void {
  log.info(`Arch List: [${platforms.arch.join(",")}]`);
  log.info(`OS List: [${platforms.os.join(",")}]`);
  if (workers) log.debug(`Jobs: ${workers.jobs}, timeout per image: ${formatDuration(workers.timeoutMs)}`);
}

/**
 * Runs a list pipeline with the registry client of `flags` and the Ctrl-C signal (see `interruptSignal`); both
 * are released when it ends.
 */
export async function withClient<T>(
  flags: RegistryFlags,
  log: Logger,
  run: (client: RegistryClient, signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const client = clientFor(flags);
  const interrupt = interruptSignal(log);
  try {
    return await run(client, interrupt.signal);
  } finally {
    interrupt.dispose();
    client.close();
  }
}

/**
 * How a list run ends, as hangar ends it: the run's summary line; then with failures, the `<title> failed image
 * list` error line, the failed list written (unless `written`: it was written as the run went), a `FATA` line and
 * exit code 1; without, a failed list of an earlier run removed, `Done` and 0.
 */
export async function endListRun(
  log: Logger,
  failed: readonly string[],
  failedFile: string,
  words: { summary: string; title: string; fatal: string; quote?: (s: string) => string; written?: boolean },
): Promise<number> {
  log.info(words.summary);
  if (failed.length > 0) {
    const quote = words.quote ?? ((s: string) => `"${s}"`);
    log.error(`${words.title} failed image list: \n${failed.join("\n")}`);
    if (!words.written) await writeFailedList(failedFile, failed);
    log.info(`Failed image list exported to ${quote(failedFile)}`);
    log.fatal(words.fatal);
    return 1;
  }
  await removeStaleFailedList(failedFile);
  log.info("Done");
  return 0;
}
