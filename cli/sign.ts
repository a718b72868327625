/**
 * `airlock sign`: hangar's `sign` (v1.8) flags, image lists and failed lists, on airlock's signing pipeline.
 *
 * @module
 */
import type { Command } from "commander";
import { displayKeyRef, keyRefWarning, openKey } from "../backends/key_backend.ts";
import { loadRegistriesD } from "../core/config/registries_d.ts";
import { AirlockError } from "../core/errors.ts";
import { loadImageList, resolveImageList } from "../core/image_list.ts";
import { DEFAULT_ARCH_LIST, DEFAULT_OS_LIST, parseCsvList } from "../core/platform.ts";
import { formatDuration } from "../core/pool.ts";
import { removeStaleFailedList, writeFailedList } from "../core/report.ts";
import { signImages, type SignReport } from "../core/sign.ts";
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
  writeStdout,
} from "./common.ts";
import type { Logger } from "../core/report.ts";

interface SignFlags extends RegistryFlags {
  file?: string;
  arch?: string[];
  os?: string[];
  sigstoreKey?: string;
  sigstorePassphraseFile?: string;
  key?: string;
  registry?: string;
  project?: string;
  failed: string;
  jobs: string;
  timeout: string;
  skipLogin?: boolean;
  signIndex: boolean;
  force?: boolean;
  annotation?: string[];
  output?: string;
  "registries.d"?: string;
}

/**
 * Registers `sign` on the program; returns the command so that `sign validate` can be added under it.
 *
 * @example
 * ```ts
 * const sign = registerSign(program);
 * ```
 */
export function registerSign(program: Command): Command {
  const cmd = addRegistryFlags(
    program.command("sign")
      .description("sign the images of an image list with a sigstore key (hangar sign compatible)")
      .option("-f, --file <file>", "image list file")
      .option("-a, --arch <list>", "architecture list of images (default: amd64,arm64)", collect)
      .option("--os <list>", "OS list of images (default: linux)", collect)
      .option("-k, --sigstore-key <file>", "sigstore private key file")
      .option(
        "--sigstore-passphrase-file <file>",
        "read the passphrase for the private key from the first line of FILE",
      )
      .option(
        "--key <ref>",
        "key reference: a key file, pkcs11:…, hashivault://…, awskms://…, NAME://… (plugin)",
      )
      .option("--registry <host>", "override the registry of every image in the list")
      .option("--project <name>", "override the project of every image in the list")
      .option("-o, --failed <file>", "file name of the sign failed image list", "sign-failed.txt")
      .option("-j, --jobs <n>", "worker number, sign images in parallel (1-20)", "1")
      .option("--timeout <duration>", "timeout for signing each image (all of its work)", "10m")
      .option("--skip-login", "accepted for hangar compatibility; airlock never prompts for registry logins")
      .option(
        "--sign-index [bool]",
        "sign the index of multi-arch images too (default true)",
        optionalBool,
        true,
      )
      .option("--force", "add a signature even when an equal one exists")
      .option("--annotation <k=v>", "annotation written into the signature payload (repeatable)", collect)
      .option("--registries.d <dir>", "registries.d directory (default: the containers locations)")
      .option("--output <format>", "machine-readable summary on stdout: json"),
  );
  cmd.action((flags: SignFlags, c: Command) => {
    const global = c.optsWithGlobals<GlobalFlags>();
    return runCommand(global, (log) => runSign(flags, log), { allToStderr: flags.output === "json" });
  });
  return cmd;
}

async function runSign(flags: SignFlags, log: Logger): Promise<number> {
  // Pre-flight: everything that can be wrong locally fails before any network call.
  if (!flags.file) {
    throw new AirlockError(
      "INVALID_ARGUMENT",
      "image list file not provided, use '--file' option to specify the image list file",
    );
  }
  if (flags.key && flags.sigstoreKey) {
    throw new AirlockError(
      "INVALID_ARGUMENT",
      "--key and --sigstore-key are mutually exclusive: give one of them",
    );
  }
  const keyRef = flags.key ?? flags.sigstoreKey;
  if (!keyRef) {
    throw new AirlockError(
      "INVALID_ARGUMENT",
      "sigstore private key file not provided, use '--sigstore-key' option to specify the key file",
    );
  }
  if (flags.output !== undefined && flags.output !== "json") {
    throw new AirlockError(
      "INVALID_ARGUMENT",
      `unsupported --output "${flags.output}": only json is supported`,
    );
  }
  const jobs = parseGoInt(flags.jobs);
  if (jobs < 1 || jobs > 20) {
    throw new AirlockError("INVALID_ARGUMENT", `invalid worker number ${jobs}: --jobs must be 1-20`);
  }
  const timeoutMs = parseGoDuration(flags.timeout);
  const annotations = parseAnnotations(flags.annotation ?? []);
  const arch = parseCsvList(flags.arch ?? [], DEFAULT_ARCH_LIST, "--arch");
  const os = parseCsvList(flags.os ?? [], DEFAULT_OS_LIST, "--os");

  const lines = await loadImageList(flags.file);
  const images = resolveImageList(lines, { registry: flags.registry, project: flags.project });
  const registriesD = await loadRegistriesD({ dir: flags["registries.d"] });
  if (registriesD.builtinDefault) {
    log.debug(
      "No registries.d directory exists: using hangar's default (default-docker: use-sigstore-attachments: true)",
    );
  }
  if (flags.sigstorePassphraseFile) {
    log.info(`Read the passphrase for key "${displayKeyRef(keyRef)}" from "${flags.sigstorePassphraseFile}"`);
  }
  const warning = keyRefWarning(keyRef);
  if (warning) log.warn(warning);
  const key = await openKey(keyRef, { passphraseFile: flags.sigstorePassphraseFile });
  const client = clientFor(flags);
  const interrupt = interruptSignal(log);
  let report: SignReport;
  try {
    log.info(`Arch List: [${arch.join(",")}]`);
    log.info(`OS List: [${os.join(",")}]`);
    log.debug(`Jobs: ${jobs}, timeout per image: ${formatDuration(timeoutMs)}`);
    log.info(`Signing images in "${flags.file}" with sigstore priv-key "${displayKeyRef(keyRef)}".`);
    const progress = Deno.stderr.isTerminal() ? progressBar() : undefined;
    report = await signImages(images, {
      client,
      key,
      registriesD,
      platforms: { arch, os, variant: [] },
      signIndex: flags.signIndex,
      force: flags.force,
      annotations,
      jobs,
      timeoutMs,
      signal: interrupt.signal,
      logger: log,
      onProgress: progress,
    });
    if (progress) Deno.stderr.writeSync(new TextEncoder().encode("\n"));
  } finally {
    interrupt.dispose();
    client.close();
    await key.close();
  }

  if (flags.output === "json") writeStdout(JSON.stringify(jsonSummary(report), null, 2) + "\n");
  if (report.failed.length > 0) {
    log.error(`Sign failed image list: \n${report.failed.join("\n")}`);
    await writeFailedList(flags.failed, report.failed);
    log.info(`Failed image list exported to "${flags.failed}"`);
    log.fatal("some images failed to sign");
    return 1;
  }
  await removeStaleFailedList(flags.failed);
  log.info("Done");
  return 0;
}

function parseAnnotations(values: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf("=");
    if (eq <= 0) {
      throw new AirlockError("INVALID_ARGUMENT", `invalid --annotation "${v}": expected KEY=VALUE`);
    }
    out[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return out;
}

/** The `--output json` document: one entry per list line, in list order. */
function jsonSummary(report: SignReport): unknown {
  const count = (s: string) => report.lines.filter((l) => l.status === s).length;
  return {
    images: report.lines.map((l) => ({
      id: l.id,
      line: l.line,
      reference: l.result?.reference ?? null,
      status: l.status,
      digest: l.result?.digest ?? null,
      signed: (l.result?.targets ?? []).map((t) => ({
        digest: t.digest,
        identity: t.identity,
        kind: t.kind,
        platform: t.platform ?? null,
        status: t.status,
      })),
      error: l.error ? { code: l.error.code, message: l.error.message } : null,
    })),
    summary: {
      signed: count("signed"),
      unchanged: count("unchanged"),
      skipped: count("skipped"),
      failed: count("failed"),
      ignored: count("ignored"),
    },
  };
}

function progressBar(): (done: number, total: number) => void {
  const enc = new TextEncoder();
  return (done, total) => {
    const width = 30;
    const filled = Math.round((done / Math.max(total, 1)) * width);
    const bar = "#".repeat(filled) + "-".repeat(width - filled);
    Deno.stderr.writeSync(enc.encode(`\r[${bar}] ${done}/${total}`));
  };
}
