/**
 * `airlock inspect IMAGE`: hangar's `inspect` (raw manifest, config, or the inspect view).
 *
 * @module
 */
import type { Command } from "commander";
import { inspectConfig, inspectImage, inspectRaw, renderInspectInfo } from "../core/inspect.ts";
import { AirlockError } from "../core/errors.ts";
import { parseReference, withDefaultTag } from "../core/reference.ts";
import { withDeadline } from "../core/pool.ts";
import {
  addCommandTimeoutFlag,
  addRegistryFlags,
  clientFor,
  type CommandTimeoutFlags,
  type GlobalFlags,
  parseTimeoutFlag,
  type RegistryFlags,
  runCommand,
  writeStdout,
} from "./common.ts";

interface InspectFlags extends RegistryFlags, CommandTimeoutFlags {
  raw?: boolean;
  config?: boolean;
  overrideArch?: string;
  overrideOs?: string;
  overrideVariant?: string;
}

const OTHER_TRANSPORTS = [
  "docker-daemon:",
  "docker-archive:",
  "oci:",
  "dir:",
  "oci-archive:",
  "containers-storage:",
];

/**
 * Registers `inspect` on the program.
 */
export function registerInspect(program: Command): void {
  addCommandTimeoutFlag(addRegistryFlags(
    program.command("inspect")
      .alias("i")
      .description("inspect an image in a registry: its manifest, config, layers and platform")
      .argument("[image]", "image reference, optionally prefixed with docker://")
      .option("--raw", "print the raw manifest, byte for byte")
      .option("--config", "print the raw config of the chosen platform (takes precedence over --raw)")
      .option("--override-arch <arch>", "use ARCH instead of the running machine's to choose from a list")
      .option("--override-os <os>", "use OS instead of the running machine's to choose from a list")
      .option("--override-variant <variant>", "use VARIANT to choose from a list"),
  )).action((image: string | undefined, flags: InspectFlags, cmd: Command) =>
    runCommand(cmd.optsWithGlobals<GlobalFlags>(), async (log) => {
      if (!image) throw new AirlockError("INVALID_ARGUMENT", "image reference not provided");
      let name = image;
      if (name.startsWith("docker://")) name = name.slice("docker://".length);
      else if (name.startsWith("docker:")) {
        // containers/image's docker transport: the reference must start with "//" (never docker.io/library/docker).
        throw new AirlockError(
          "INVALID_REFERENCE",
          `docker: image reference ${name.slice("docker:".length)} does not start with //`,
        );
      } else if (OTHER_TRANSPORTS.some((t) => name.startsWith(t))) {
        throw new AirlockError(
          "INVALID_ARGUMENT",
          `unsupported transport in "${image}": only docker:// is supported`,
        );
      } else log.warn(`Image reference protocol not provided, use 'docker' as default: docker://${image}`);
      const ref = withDefaultTag(parseReference(name));
      const timeoutMs = parseTimeoutFlag(flags.timeout);
      const client = clientFor(flags);
      try {
        const choice = { arch: flags.overrideArch, os: flags.overrideOs, variant: flags.overrideVariant };
        const out = await withDeadline(timeoutMs, async (signal) => {
          if (flags.config) return await inspectConfig(client, ref, choice, signal);
          if (flags.raw) return await inspectRaw(client, ref, signal);
          return renderInspectInfo(await inspectImage(client, ref, choice, signal));
        });
        writeStdout(out);
      } finally {
        client.close();
      }
    })
  );
}
