/**
 * `airlock sign`: hangar's `sign` (v1.8) flags, image lists and failed lists, on airlock's signing pipeline.
 *
 * @module
 */
import type { Command } from "commander";
import { displayKeyRef, isKeyFileRef } from "../backends/key_backend.ts";
import { defaultEnv, PASSPHRASE_ENV, readPassphraseFile } from "../backends/passphrase.ts";
import { targetJson } from "../core/report.ts";
import { type LineSignResult, repositoryKey, type SignedTarget, signImages } from "../core/sign.ts";
import {
  addRegistriesDFlag,
  addRegistryFlags,
  collect,
  type GlobalFlags,
  optionalBool,
  registriesDFor,
  type RegistryFlags,
  runCommand,
  usageError,
} from "./common.ts";
import { addSigningKeyFlags, openKeyWithWarning, type SigningKeyFlags, signingKeyRef } from "./key_flags.ts";
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
  requireListFile,
  streamListFile,
  withClient,
  type WorkerFlags,
} from "./list_flags.ts";
import { ListRunOutput, type OutputLine, targetsEntry } from "./list_output.ts";
import type { Logger } from "../core/report.ts";
import { withProgress } from "./progress.ts";
import { SignCounter, signSummary } from "./run_summary.ts";

interface SignFlags
  extends RegistryFlags, ImageListFlags, OverrideFlags, WorkerFlags, FailedListFlags, SigningKeyFlags {
  skipLogin?: boolean;
  signIndex: boolean;
  force?: boolean;
  annotation?: string[];
  output?: string;
  "registries.d"?: string;
}

/**
 * Registers `sign` on the program; returns the command so that `sign validate` can be added under it.
 */
export function registerSign(program: Command): Command {
  const cmd = program.command("sign")
    .description("sign the images of an image list with a sigstore key (hangar sign compatible)");
  addImageListFlags(cmd);
  addSigningKeyFlags(cmd, { hangar: true });
  addOverrideFlags(cmd);
  addFailedListFlag(cmd, "sign");
  addWorkerFlags(cmd, { work: "sign images", working: "signing" })
    .option("--skip-login", "accepted for hangar compatibility; airlock never prompts for registry logins")
    .option(
      "--sign-index [bool]",
      "sign the index of multi-arch images too (default true)",
      optionalBool,
      true,
    )
    .option("--force", "add a signature even when an equal one exists")
    .option("--annotation <k=v>", "annotation written into the signature payload (repeatable)", collect);
  addRegistryFlags(addJsonOutputFlag(addRegistriesDFlag(cmd)));
  cmd.action((flags: SignFlags, c: Command) => {
    const global = c.optsWithGlobals<GlobalFlags>();
    return runCommand(global, (log) => runSign(flags, log), { allToStderr: flags.output === "json" });
  });
  return cmd;
}

async function runSign(flags: SignFlags, log: Logger): Promise<number> {
  const t0 = performance.now();
  // Pre-flight: everything that can be wrong locally fails before any network call.
  const file = requireListFile(flags);
  const keyRef = signingKeyRef(flags);
  checkJsonOutput(flags.output);
  const workers = parseWorkerFlags(flags);
  const annotations = parseAnnotations(flags.annotation ?? []);
  const platforms = parsePlatformFlags(flags);

  // The list is read as the run goes; a first pass counts its images and the lines of each repository.
  const linesPerRepository = new Map<string, number>();
  const { images, lines } = await streamListFile(file, flags, (ref) => {
    const key = repositoryKey(ref);
    linesPerRepository.set(key, (linesPerRepository.get(key) ?? 0) + 1);
  });
  // Only repositories of several lines matter (one line is the default): the others need not be kept.
  for (const [key, n] of linesPerRepository) if (n === 1) linesPerRepository.delete(key);
  const registriesD = await registriesDFor(flags["registries.d"], log);
  // A key file's passphrase is read first (its errors come before any network call), then the key opens (scrypt)
  // while the first images are read; nothing is written before it is open. Only a passphrase prompt on the
  // terminal is waited for first, so that no log line runs through it.
  const passFile = isKeyFileRef(keyRef) ? flags.sigstorePassphraseFile : undefined;
  const passphrase = passFile === undefined ? undefined : await readPassphraseFile(passFile);
  // hangar's line, once the file has been read (never before the error that it cannot be).
  if (flags.sigstorePassphraseFile) {
    log.info(`Read the passphrase for key "${displayKeyRef(keyRef)}" from "${flags.sigstorePassphraseFile}"`);
  }
  const opening = openKeyWithWarning(
    keyRef,
    { passphrase, allowUnencryptedKey: flags.allowUnencryptedKey },
    log,
  );
  opening.finally(() => passphrase?.fill(0)).catch(() => {});
  const key = mayPrompt(flags) ? await opening : opening;
  // Each line's outcome goes out as the run reaches it (failed list, JSON entries): nothing grows with the list.
  const out = await ListRunOutput.open<LineSignResult & OutputLine<SignedTarget>>(
    flags.failed,
    flags.output === "json"
      ? {
        entry: targetsEntry("signed", targetJson),
        statuses: ["signed", "unchanged", "skipped", "failed", "ignored"],
      }
      : undefined,
  );
  const signatures = new SignCounter();
  try {
    await out.around(() =>
      withClient(flags, log, async (client, signal) => {
        logRunSettings(log, platforms, workers);
        log.info(`Signing images in "${file}" with sigstore priv-key "${displayKeyRef(keyRef)}".`);
        return await withProgress("signing", (onProgress) =>
          signImages(lines, {
            client,
            key,
            registriesD,
            platforms,
            signIndex: flags.signIndex,
            force: flags.force,
            annotations,
            ...workers,
            signal,
            logger: log,
            onProgress,
            linesPerRepository,
            ...out.receiver(images, (l) => signatures.add(l)),
          }));
      })
    );
  } finally {
    await opening.then((k) => k.close(), () => {});
  }
  const tally = { count: (s: string) => out.count(s), lines: out.lines, ...signatures };
  return await endListRun(log, out.failed, flags.failed, {
    summary: signSummary(tally, performance.now() - t0),
    written: true,
    title: "Sign",
    fatal: "some images failed to sign",
  });
}

/** Whether opening the key may ask for a passphrase on the terminal (no file, no `COSIGN_PASSWORD`). */
function mayPrompt(flags: SignFlags): boolean {
  return flags.sigstorePassphraseFile === undefined && defaultEnv(PASSPHRASE_ENV) === undefined &&
    Deno.stdin.isTerminal();
}

function parseAnnotations(values: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf("=");
    if (eq <= 0) throw usageError(`invalid --annotation "${v}": expected KEY=VALUE`);
    out[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return out;
}
