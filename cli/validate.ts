/**
 * `airlock sign validate`: hangar v1.8's `sign validate` flags, image lists and failed lists, on airlock's
 * validation pipeline and containers-policy engine (spec/hangar.md §6).
 *
 * @module
 */
import type { Command } from "commander";
import { displayKeyRef } from "../backends/key_backend.ts";
import { hangarValidatePolicy, loadPolicyFile, newExactRepository } from "../core/config/policy_config.ts";
import type { Policy } from "../core/config/policy_types.ts";
import { AirlockError, errorMessage } from "../core/errors.ts";
import { goQuote } from "../core/encoding/go_quote.ts";
import { type Logger, targetJson } from "../core/report.ts";
import { type LineValidateResult, type ValidatedTarget, validateImages } from "../core/validate.ts";
import {
  addRegistriesDFlag,
  addRegistryFlags,
  type GlobalFlags,
  registriesDFor,
  type RegistryFlags,
  runCommand,
  usageError,
} from "./common.ts";
import { verificationKeyPem } from "./key_flags.ts";
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
import { withProgress } from "./progress.ts";
import { validateSummary } from "./run_summary.ts";

interface ValidateFlags extends RegistryFlags, ImageListFlags, OverrideFlags, WorkerFlags, FailedListFlags {
  sigstorePubkey?: string;
  key?: string;
  exactRepository?: string;
  policy?: string;
  requireIndexSignature?: boolean;
  skipUnmatched?: boolean;
  output?: string;
  "registries.d"?: string;
}

/**
 * Registers `validate` under the `sign` command (`airlock sign validate`).
 */
export function registerValidate(sign: Command): void {
  keepOptionsForValidate(sign);
  const cmd = sign.command("validate")
    .description(
      "validate the signed images by sigstore public key with the matchRepoDigestOrExact signedIdentity " +
        "(or a containers policy.json)",
    );
  addImageListFlags(cmd)
    .option("-p, --sigstore-pubkey <file>", "sigstore public key file")
    .option(
      "--key <ref>",
      "key reference instead of a public key file: a public or private key file, pkcs11:…, awskms://…, …",
    );
  addOverrideFlags(cmd);
  addFailedListFlag(cmd, "validate");
  addWorkerFlags(cmd, { work: "validate images", working: "validating" })
    .option(
      "--exact-repository <repo>",
      "accept signatures whose identity names this repository (exactRepository), for every image",
    )
    .option("--policy <file>", "containers policy.json to evaluate instead of the built-in policy")
    .option("--require-index-signature", "require a signature on the index of multi-arch images too")
    .option(
      "--skip-unmatched",
      "skip (with a warning) an image none of whose manifests matches --arch/--os, instead of failing it",
    );
  addRegistryFlags(addJsonOutputFlag(addRegistriesDFlag(cmd)));
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

async function runValidate(flags: ValidateFlags, log: Logger): Promise<number> {
  const t0 = performance.now();
  // Pre-flight: everything that can be wrong locally fails before any network call.
  const file = requireListFile(flags);
  checkTrustFlags(flags);
  checkJsonOutput(flags.output);
  const workers = parseWorkerFlags(flags);
  const platforms = parsePlatformFlags(flags);
  const { images, lines } = await streamListFile(file, flags);
  const { policy, what } = await policyFor(flags);
  const registriesD = await registriesDFor(flags["registries.d"], log);
  // Each line's outcome goes out as the run reaches it (failed list, JSON entries): nothing grows with the list.
  const out = await ListRunOutput.open<LineValidateResult & OutputLine<ValidatedTarget>>(
    flags.failed,
    flags.output === "json"
      ? {
        entry: targetsEntry("targets", validatedTargetJson),
        statuses: ["passed", "failed", "skipped", "ignored"],
      }
      : undefined,
  );
  await out.around(() =>
    withClient(flags, log, async (client, signal) => {
      logRunSettings(log, platforms, workers);
      log.info(`Validating images in ${goQuote(file)} with ${what}`);
      return await withProgress("validating", (onProgress) =>
        validateImages(lines, {
          client,
          registriesD,
          policy,
          platforms,
          requireIndexSignature: flags.requireIndexSignature ?? false,
          skipUnmatched: flags.skipUnmatched ?? false,
          // --policy decides as podman and CRI-O do: every platform under the line's own reference (its tag).
          platformReference: flags.policy !== undefined ? "line" : "digest",
          ...workers,
          signal,
          logger: log,
          onProgress,
          ...out.receiver(images),
        }));
    })
  );
  return await endListRun(log, out.failed, flags.failed, {
    summary: validateSummary(out, performance.now() - t0),
    written: true,
    title: "Signature validate",
    fatal: "some images failed validation",
    quote: goQuote,
  });
}

/** `--policy`, or exactly one of `--key` and `--sigstore-pubkey`. */
function checkTrustFlags(flags: ValidateFlags): void {
  if (flags.policy !== undefined) {
    if (flags.sigstorePubkey || flags.key || flags.exactRepository) {
      throw usageError(
        "--policy names the keys and identities itself: do not combine it with --sigstore-pubkey, --key or " +
          "--exact-repository",
      );
    }
    return;
  }
  if (flags.key && flags.sigstorePubkey) {
    throw usageError("--key and --sigstore-pubkey are mutually exclusive: give one of them");
  }
  if (!flags.key && !flags.sigstorePubkey) {
    throw usageError(
      "sigstore public key file not provided, use '--sigstore-pubkey' option to specify the pub-key file",
    );
  }
}

/** The policy to evaluate (the `--policy` file, or hangar's built from the key) and how the log names it. */
async function policyFor(flags: ValidateFlags): Promise<{ policy: Policy; what: string }> {
  if (flags.policy !== undefined) {
    return { policy: await loadPolicyFile(flags.policy), what: `policy ${goQuote(flags.policy)}` };
  }
  if (flags.exactRepository) {
    try {
      newExactRepository(flags.exactRepository);
    } catch (e) {
      throw usageError(`failed to build policy: signature NewPRMExactRepository failed: ${errorMessage(e)}`);
    }
  }
  const exactRepository = flags.exactRepository;
  if (flags.sigstorePubkey) {
    const problem = await statProblem(flags.sigstorePubkey);
    if (problem) {
      throw new AirlockError(
        "IO_ERROR",
        `failed to get status of file ${goQuote(flags.sigstorePubkey)}: ${problem}`,
      );
    }
    return {
      policy: hangarValidatePolicy({ keyPath: flags.sigstorePubkey, exactRepository }),
      what: `sigstore public key ${goQuote(flags.sigstorePubkey)}`,
    };
  }
  return {
    policy: hangarValidatePolicy({ keyData: await verificationKeyPem(flags.key!), exactRepository }),
    what: `key ${goQuote(displayKeyRef(flags.key!))}`,
  };
}

function validatedTargetJson(t: ValidatedTarget): unknown {
  return { ...targetJson(t), reason: t.reason ?? null, code: t.code ?? null, scope: t.scope ?? null };
}
