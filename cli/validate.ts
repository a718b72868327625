/**
 * `airlock sign validate`: hangar v1.8's `sign validate` flags, image lists and failed lists, on airlock's
 * validation pipeline and containers-policy engine (spec/hangar.md §6).
 *
 * @module
 */
import type { Command } from "commander";
import { displayKeyRef, openKey } from "../backends/key_backend.ts";
import {
  hangarValidatePolicy,
  loadPolicyFile,
  newExactRepository,
  type Policy,
} from "../core/config/policy.ts";
import { loadRegistriesD } from "../core/config/registries_d.ts";
import { AirlockError, errorMessage } from "../core/errors.ts";
import { loadImageList, resolveImageList } from "../core/image_list.ts";
import { DEFAULT_ARCH_LIST, DEFAULT_OS_LIST, parseCsvList } from "../core/platform.ts";
import { formatDuration } from "../core/pool.ts";
import { goQuote } from "../core/encoding/go_quote.ts";
import { type Logger, removeStaleFailedList, writeFailedList } from "../core/report.ts";
import { decodePem } from "../core/encoding/pem.ts";
import { validateImages, type ValidateReport } from "../core/validate.ts";
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
  writeStdout,
} from "./common.ts";

interface ValidateFlags extends RegistryFlags {
  file?: string;
  arch?: string[];
  os?: string[];
  sigstorePubkey?: string;
  key?: string;
  registry?: string;
  project?: string;
  failed: string;
  jobs: string;
  timeout: string;
  exactRepository?: string;
  policy?: string;
  requireIndexSignature?: boolean;
  output?: string;
  "registries.d"?: string;
}

/**
 * Registers `validate` under the `sign` command (`airlock sign validate`).
 *
 * @example
 * ```ts
 * registerValidate(registerSign(program));
 * ```
 */
export function registerValidate(sign: Command): void {
  keepOptionsForValidate(sign);
  const cmd = addRegistryFlags(
    sign.command("validate")
      .description(
        "validate the signed images by sigstore public key with the matchRepoDigestOrExact signedIdentity " +
          "(or a containers policy.json)",
      )
      .option("-f, --file <file>", "image list file")
      .option("-a, --arch <list>", "architecture list of images (default: amd64,arm64)", collect)
      .option("--os <list>", "OS list of images (default: linux)", collect)
      .option("-p, --sigstore-pubkey <file>", "sigstore public key file")
      .option(
        "--key <ref>",
        "key reference instead of a public key file: a public or private key file, pkcs11:…, awskms://…, …",
      )
      .option("--registry <host>", "override the registry of every image in the list")
      .option("--project <name>", "override the project of every image in the list")
      .option("-o, --failed <file>", "file name of the validate failed image list", "validate-failed.txt")
      .option("-j, --jobs <n>", "worker number, validate images in parallel (1-20)", "1")
      .option("--timeout <duration>", "timeout for validating each image (all of its work)", "10m")
      .option(
        "--exact-repository <repo>",
        "accept signatures whose identity names this repository (exactRepository), for every image",
      )
      .option("--policy <file>", "containers policy.json to evaluate instead of the built-in policy")
      .option("--require-index-signature", "require a signature on the index of multi-arch images too")
      .option("--registries.d <dir>", "registries.d directory (default: the containers locations)")
      .option("--output <format>", "machine-readable summary on stdout: json"),
  );
  cmd.action((flags: ValidateFlags, c: Command) => {
    const global = c.optsWithGlobals<GlobalFlags>();
    return runCommand(global, (log) => runValidate(flags, log), { allToStderr: flags.output === "json" });
  });
}

/**
 * `sign` has options of its own with the same names (`-f`, `-a`, `-o`, …). Commander lets a parent consume the
 * options that follow a subcommand's name unless the whole program uses positional options (which would break
 * global flags such as `--debug` after the command), so when the parent's arguments continue with `validate`,
 * `sign` leaves every option to the subcommand.
 */
function keepOptionsForValidate(sign: Command): void {
  const own = sign.parseOptions.bind(sign);
  sign.parseOptions = (argv: string[]) => {
    const parentArgs = sign.parent?.args ?? [];
    const at = parentArgs.indexOf(sign.name());
    if (at >= 0 && parentArgs[at + 1] === "validate") return { operands: [], unknown: [...argv] };
    return own(argv);
  };
}

function usage(message: string): AirlockError {
  return new AirlockError("INVALID_ARGUMENT", message);
}

/** Go's `os.Stat` error text. */
async function statProblem(path: string): Promise<string | undefined> {
  try {
    await Deno.stat(path);
    return undefined;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return `stat ${path}: no such file or directory`;
    if (e instanceof Deno.errors.PermissionDenied) return `stat ${path}: permission denied`;
    return `stat ${path}: ${errorMessage(e)}`;
  }
}

/** The public key PEM of `--key REF`: a public key file as is, else the public half of the key backend. */
async function publicKeyOf(ref: string): Promise<Uint8Array> {
  try {
    const bytes = await Deno.readFile(ref);
    const block = decodePem(bytes);
    if (block?.type === "PUBLIC KEY" || block?.type === "RSA PUBLIC KEY") return bytes;
  } catch {
    // not a readable file: a backend reference (pkcs11:, kms://…), or a missing file openKey reports
  }
  const key = await openKey(ref);
  try {
    return new TextEncoder().encode(await key.publicKey());
  } finally {
    await key.close();
  }
}

async function runValidate(flags: ValidateFlags, log: Logger): Promise<number> {
  // Pre-flight: everything that can be wrong locally fails before any network call.
  if (!flags.file) {
    throw usage("image list file not provided, use '--file' option to specify the image list file");
  }
  if (flags.policy !== undefined) {
    if (flags.sigstorePubkey || flags.key || flags.exactRepository) {
      throw usage(
        "--policy names the keys and identities itself: do not combine it with --sigstore-pubkey, --key or " +
          "--exact-repository",
      );
    }
  } else {
    if (flags.key && flags.sigstorePubkey) {
      throw usage("--key and --sigstore-pubkey are mutually exclusive: give one of them");
    }
    if (!flags.key && !flags.sigstorePubkey) {
      throw usage(
        "sigstore public key file not provided, use '--sigstore-pubkey' option to specify the pub-key file",
      );
    }
  }
  if (flags.output !== undefined && flags.output !== "json") {
    throw usage(`unsupported --output "${flags.output}": only json is supported`);
  }
  const jobs = parseGoInt(flags.jobs);
  if (jobs < 1 || jobs > 20) throw usage(`invalid worker number ${jobs}: --jobs must be 1-20`);
  const timeoutMs = parseGoDuration(flags.timeout);
  const arch = parseCsvList(flags.arch ?? [], DEFAULT_ARCH_LIST, "--arch");
  const os = parseCsvList(flags.os ?? [], DEFAULT_OS_LIST, "--os");

  const lines = await loadImageList(flags.file);
  const images = resolveImageList(lines, { registry: flags.registry, project: flags.project });

  let policy: Policy;
  let what: string;
  if (flags.policy !== undefined) {
    policy = await loadPolicyFile(flags.policy);
    what = `policy ${goQuote(flags.policy)}`;
  } else {
    if (flags.exactRepository) {
      try {
        newExactRepository(flags.exactRepository);
      } catch (e) {
        throw new AirlockError(
          "INVALID_ARGUMENT",
          `failed to build policy: signature NewPRMExactRepository failed: ${errorMessage(e)}`,
        );
      }
    }
    if (flags.sigstorePubkey) {
      const problem = await statProblem(flags.sigstorePubkey);
      if (problem) {
        throw new AirlockError(
          "IO_ERROR",
          `failed to get status of file ${goQuote(flags.sigstorePubkey)}: ${problem}`,
        );
      }
      policy = hangarValidatePolicy({
        keyPath: flags.sigstorePubkey,
        exactRepository: flags.exactRepository,
      });
      what = `sigstore public key ${goQuote(flags.sigstorePubkey)}`;
    } else {
      policy = hangarValidatePolicy({
        keyData: await publicKeyOf(flags.key!),
        exactRepository: flags.exactRepository,
      });
      what = `key ${goQuote(displayKeyRef(flags.key!))}`;
    }
  }
  const registriesD = await loadRegistriesD({ dir: flags["registries.d"] });
  if (registriesD.builtinDefault) {
    log.debug(
      "No registries.d directory exists: using hangar's default (default-docker: use-sigstore-attachments: true)",
    );
  }

  const client = clientFor(flags);
  const interrupt = interruptSignal(log);
  let report: ValidateReport;
  try {
    log.info(`Arch List: [${arch.join(",")}]`);
    log.info(`OS List: [${os.join(",")}]`);
    log.debug(`Jobs: ${jobs}, timeout per image: ${formatDuration(timeoutMs)}`);
    log.info(`Validating images in ${goQuote(flags.file)} with ${what}`);
    report = await validateImages(images, {
      client,
      registriesD,
      policy,
      platforms: { arch, os, variant: [] },
      requireIndexSignature: flags.requireIndexSignature ?? false,
      jobs,
      timeoutMs,
      signal: interrupt.signal,
      logger: log,
    });
  } finally {
    interrupt.dispose();
    client.close();
  }

  if (flags.output === "json") writeStdout(JSON.stringify(jsonSummary(report), null, 2) + "\n");
  if (report.failed.length > 0) {
    log.error(`Signature validate failed image list: \n${report.failed.join("\n")}`);
    await writeFailedList(flags.failed, report.failed);
    log.info(`Failed image list exported to ${goQuote(flags.failed)}`);
    log.fatal("some images failed validation");
    return 1;
  }
  await removeStaleFailedList(flags.failed);
  log.info("Done");
  return 0;
}

/** The `--output json` document: one entry per list line, in list order. */
function jsonSummary(report: ValidateReport): unknown {
  const count = (s: string) => report.lines.filter((l) => l.status === s).length;
  return {
    images: report.lines.map((l) => ({
      id: l.id,
      line: l.line,
      reference: l.result?.reference ?? null,
      status: l.status,
      digest: l.result?.digest ?? null,
      targets: (l.result?.targets ?? []).map((t) => ({
        digest: t.digest,
        identity: t.identity,
        kind: t.kind,
        platform: t.platform ?? null,
        status: t.status,
        reason: t.reason ?? null,
        code: t.code ?? null,
        scope: t.scope ?? null,
      })),
      error: l.error ? { code: l.error.code, message: l.error.message } : null,
    })),
    summary: {
      passed: count("passed"),
      failed: count("failed"),
      skipped: count("skipped"),
      ignored: count("ignored"),
    },
  };
}
