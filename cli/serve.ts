/**
 * `airlock serve`: the HTTP signing and verification service (server/), and `airlock serve token-add`. The
 * service modules (hono among them) are loaded inside the actions, so other commands never load them.
 *
 * @module
 */
import type { Command } from "commander";
import { parseGoDuration, parseGoInt } from "../core/encoding/go_values.ts";
import type { Logger } from "../core/report.ts";
import {
  addRegistriesDFlag,
  addRegistryFlags,
  type GlobalFlags,
  type RegistryFlags,
  runCommand,
  usageError,
  writeStdout,
} from "./common.ts";

interface ServeFlags extends RegistryFlags {
  key?: string;
  passphraseFile?: string;
  tokenFile?: string;
  listen: string;
  tlsCert?: string;
  tlsKey?: string;
  insecureListen?: boolean;
  "registries.d"?: string;
  maxBody: string;
  maxImages: string;
  rateLimit: string;
  jobs: string;
  shutdownTimeout: string;
}

/**
 * Registers `serve` and `serve token-add` on the program.
 *
 * @example
 * ```ts
 * registerServe(program);
 * ```
 */
export function registerServe(program: Command): void {
  const serve = addRegistryFlags(addRegistriesDFlag(
    program.command("serve")
      .description("run the HTTP signing and verification service (bearer tokens, the operator's key)")
      .option("--key <ref>", "the service's signing key: a key file, pkcs11:…, NAME://… (any backend)")
      .option("--passphrase-file <file>", "read the key file's passphrase from the first line of FILE")
      .option("--token-file <file>", "token file: one 'NAME SHA256HEX' line per token (see serve token-add)")
      .option("--listen <host:port>", "address to listen on; non-loopback needs TLS", "127.0.0.1:8080")
      .option("--tls-cert <file>", "serve HTTPS with this certificate (PEM, chain)")
      .option("--tls-key <file>", "the TLS certificate's private key (PEM)")
      .option("--insecure-listen", "allow plain HTTP on a non-loopback address (tokens travel unencrypted)")
      .option("--max-body <bytes>", "largest request body accepted", "1048576")
      .option("--max-images <n>", "most images in one request", "1000")
      .option("--rate-limit <n/min>", "job requests per token per minute (N/min, N/s, N/h)", "120/min")
      .option("--jobs <n>", "jobs running at once (more are queued)", "4")
      .option("--shutdown-timeout <duration>", "on SIGINT/SIGTERM, how long accepted jobs may run on", "60s"),
  ));
  serve.action((flags: ServeFlags, c: Command) => {
    const global = c.optsWithGlobals<GlobalFlags>();
    return runCommand(global, (log) => runServeCommand(flags, log), { allToStderr: true });
  });

  serve.command("token-add")
    .description("create a random token NAME, print it once, and append its hash to the token file")
    .argument("<name>", "the token's name (shown in audit lines)")
    .option("--token-file <file>", "token file (created with mode 0600)")
    .action((name: string, _flags: unknown, c: Command) => {
      const flags = c.optsWithGlobals<GlobalFlags & { tokenFile?: string }>();
      return runCommand(flags, (log) => runTokenAdd(name, flags.tokenFile, log), { allToStderr: true });
    });
}

function positiveInt(value: string, flag: string): number {
  const n = parseGoInt(value);
  if (!(n >= 1)) throw usageError(`invalid ${flag} ${value}: must be at least 1`);
  return n;
}

async function runServeCommand(flags: ServeFlags, log: Logger): Promise<number> {
  if (!flags.key) throw usageError("--key is required: the service signs with the operator's key");
  if (!flags.tokenFile) {
    throw usageError(
      "--token-file is required (create one with: airlock serve token-add --token-file FILE NAME)",
    );
  }
  const { parseRateLimit } = await import("../server/rate_limit.ts");
  const { runServe } = await import("../server/serve.ts");
  const shutdownTimeoutMs = parseGoDuration(flags.shutdownTimeout);
  if (!(shutdownTimeoutMs >= 0)) throw usageError("--shutdown-timeout must be ≥ 0");
  return await runServe({
    keyRef: flags.key,
    passphraseFile: flags.passphraseFile,
    tokenFile: flags.tokenFile,
    listen: flags.listen,
    tlsCert: flags.tlsCert,
    tlsKey: flags.tlsKey,
    insecureListen: flags.insecureListen,
    registry: { tlsVerify: flags.tlsVerify, certDir: flags.certDir, authfile: flags.authfile },
    registriesD: flags["registries.d"],
    maxBodyBytes: positiveInt(flags.maxBody, "--max-body"),
    maxImages: positiveInt(flags.maxImages, "--max-images"),
    ratePerMinute: parseRateLimit(flags.rateLimit),
    jobs: positiveInt(flags.jobs, "--jobs"),
    shutdownTimeoutMs,
    logger: log,
  });
}

async function runTokenAdd(name: string, tokenFile: string | undefined, log: Logger): Promise<number> {
  if (!tokenFile) throw usageError("--token-file is required");
  const { addToken } = await import("../server/tokens.ts");
  const added = await addToken(tokenFile, name);
  if (added.modeFixedFrom !== undefined) {
    log.warn(`token file "${tokenFile}" was mode ${added.modeFixedFrom.toString(8)}; restricted to 600`);
  }
  log.info(
    `${
      added.created ? "created" : "appended to"
    } "${tokenFile}": token ${name}. It is printed once, below; ` +
      "store it now (only its hash is kept)",
  );
  writeStdout(added.token + "\n");
  return 0;
}
