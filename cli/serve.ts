/**
 * `airlock serve`: the HTTP signing and verification service (server/), with the Kubernetes admission webhook
 * (`--admission-config`), `airlock serve webhook-config` and `airlock serve token-add`. The service modules (hono
 * among them) are loaded inside the actions, so other commands never load them.
 *
 * @module
 */
import type { Command } from "commander";
import { AirlockError, errorMessage } from "../core/errors.ts";
import type { Logger } from "../core/report.ts";
import {
  addRegistriesDFlag,
  addRegistryFlags,
  durationFlag,
  type GlobalFlags,
  intFlag,
  type RegistryFlags,
  runCommand,
  usageError,
  writeStdout,
} from "./common.ts";
import { ALLOW_UNENCRYPTED_HELP } from "./key_flags.ts";

interface ServeFlags extends RegistryFlags {
  key?: string;
  admissionConfig?: string;
  admissionTimeout?: string;
  clientCa?: string;
  passphraseFile?: string;
  allowUnencryptedKey?: boolean;
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
 */
export function registerServe(program: Command): void {
  const serve = addRegistryFlags(addRegistriesDFlag(
    program.command("serve")
      .description("run the HTTP signing and verification service (bearer tokens, the operator's key)")
      .option("--key <ref>", "the service's signing key: a key file, pkcs11:…, NAME://… (any backend)")
      .option("--passphrase-file <file>", "read the key file's passphrase from the first line of FILE")
      .option("--allow-unencrypted-key", ALLOW_UNENCRYPTED_HELP)
      .option("--token-file <file>", "token file: one 'NAME SHA256HEX' line per token (see serve token-add)")
      .option("--listen <host:port>", "address to listen on; non-loopback needs TLS", "127.0.0.1:8080")
      .option("--tls-cert <file>", "serve HTTPS with this certificate (PEM, chain)")
      .option("--tls-key <file>", "the TLS certificate's private key (PEM)")
      .option("--insecure-listen", "allow plain HTTP on a non-loopback address (tokens travel unencrypted)")
      .option("--max-body <bytes>", "largest request body accepted", "1048576")
      .option("--max-images <n>", "most images in one request", "1000")
      .option("--rate-limit <n/min>", "job requests per token per minute (N/min, N/s, N/h)", "120/min")
      .option("--jobs <n>", "jobs running at once (more are queued)", "4")
      .option("--shutdown-timeout <duration>", "on SIGINT/SIGTERM, how long accepted jobs may run on", "60s")
      .option(
        "--admission-config <file>",
        "serve the Kubernetes admission webhook (/v1/admission/validate, /mutate) with the rules in FILE; needs TLS",
      )
      .option(
        "--admission-timeout <duration>",
        "the longest a first admission verdict may take; over it the image is denied (default: the file's, 8s)",
      )
      .option(
        "--client-ca <file>",
        "admission endpoints: require a client certificate signed by this CA (PEM), e.g. the API server's",
      ),
  ));
  serve.action((flags: ServeFlags, c: Command) => {
    const global = c.optsWithGlobals<GlobalFlags>();
    return runCommand(global, (log) => runServeCommand(flags, log), { allToStderr: true });
  });

  serve.command("webhook-config")
    .description(
      "print the Mutating- and ValidatingWebhookConfiguration (YAML) that send pod admission reviews to airlock",
    )
    .option("--service <ns/name>", "the Kubernetes Service in front of airlock serve: NAMESPACE/NAME")
    .option("--ca-bundle <file>", "the CA certificate (PEM) that signed airlock's serving certificate")
    .option("--port <n>", "the Service port", "443")
    .option("--name <name>", "the name of both configurations", "airlock")
    .option("--admission-config <file>", "the admission configuration: exempt namespaces, timeout")
    .option("--admission-timeout <duration>", "overrides the configuration's timeout")
    .action((_flags: unknown, c: Command) => {
      const flags = c.optsWithGlobals<GlobalFlags & WebhookConfigFlags>();
      return runCommand(flags, (log) => runWebhookConfig(flags, log), { allToStderr: true });
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

/** `parse()`, its error naming the flag (`--rate-limit: invalid rate limit …`). */
function flagValue<T>(flag: string, parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    throw usageError(`${flag}: ${errorMessage(e)}`);
  }
}

function positiveInt(value: string, flag: string): number {
  const n = intFlag(flag, value);
  if (!(n >= 1)) throw usageError(`invalid ${flag} ${value}: must be at least 1`);
  return n;
}

async function runServeCommand(flags: ServeFlags, log: Logger): Promise<number> {
  if (!flags.key && !flags.admissionConfig) {
    throw usageError(
      "--key is required: the service signs with the operator's key (or give --admission-config for a " +
        "verify-only admission webhook)",
    );
  }
  if (!flags.tokenFile) {
    throw usageError(
      "--token-file is required (create one with: airlock serve token-add --token-file FILE NAME)",
    );
  }
  const { parseRateLimit } = await import("../server/rate_limit.ts");
  const { runServe } = await import("../server/serve.ts");
  let admissionTimeoutMs: number | undefined;
  if (flags.admissionTimeout !== undefined) {
    const { checkTimeout } = await import("../core/admission/config.ts");
    admissionTimeoutMs = checkTimeout(
      durationFlag("--admission-timeout", flags.admissionTimeout),
      "--admission-timeout",
      usageError,
    );
  }
  const shutdownTimeoutMs = durationFlag("--shutdown-timeout", flags.shutdownTimeout);
  if (!(shutdownTimeoutMs >= 0)) throw usageError("--shutdown-timeout must be ≥ 0");
  return await runServe({
    keyRef: flags.key,
    admissionConfig: flags.admissionConfig,
    admissionTimeoutMs,
    clientCa: flags.clientCa,
    passphraseFile: flags.passphraseFile,
    openKeyOptions: { allowUnencryptedKey: flags.allowUnencryptedKey },
    tokenFile: flags.tokenFile,
    listen: flags.listen,
    tlsCert: flags.tlsCert,
    tlsKey: flags.tlsKey,
    insecureListen: flags.insecureListen,
    registry: { tlsVerify: flags.tlsVerify, certDir: flags.certDir, authfile: flags.authfile },
    registriesD: flags["registries.d"],
    maxBodyBytes: positiveInt(flags.maxBody, "--max-body"),
    maxImages: positiveInt(flags.maxImages, "--max-images"),
    ratePerMinute: flagValue("--rate-limit", () => parseRateLimit(flags.rateLimit)),
    jobs: positiveInt(flags.jobs, "--jobs"),
    shutdownTimeoutMs,
    logger: log,
  });
}

interface WebhookConfigFlags {
  service?: string;
  caBundle?: string;
  port: string;
  name: string;
  admissionConfig?: string;
  admissionTimeout?: string;
}

async function runWebhookConfig(flags: WebhookConfigFlags, log: Logger): Promise<number> {
  const m = /^([^/]+)\/([^/]+)$/.exec(flags.service ?? "");
  if (!m) throw usageError("--service NAMESPACE/NAME is required (the Service in front of airlock serve)");
  if (!flags.caBundle) {
    throw usageError("--ca-bundle FILE is required (the CA of airlock's serving certificate)");
  }
  const port = intFlag("--port", flags.port);
  if (!(port >= 1 && port <= 65535)) throw usageError(`invalid --port ${flags.port}`);
  const { checkTimeout, DEFAULT_ADMISSION_TIMEOUT_MS, parseAdmissionConfig } = await import(
    "../core/admission/config.ts"
  );
  const { webhookConfigYaml } = await import("../core/admission/webhook_config.ts");
  let exemptNamespaces: readonly string[] = [];
  let timeoutMs = DEFAULT_ADMISSION_TIMEOUT_MS;
  if (flags.admissionConfig) {
    let text: string;
    try {
      text = await Deno.readTextFile(flags.admissionConfig);
    } catch (e) {
      throw new AirlockError(
        "IO_ERROR",
        `cannot read ${JSON.stringify(flags.admissionConfig)}: ${errorMessage(e)}`,
      );
    }
    const cfg = await parseAdmissionConfig(text, flags.admissionConfig);
    exemptNamespaces = cfg.exemptNamespaces;
    timeoutMs = cfg.timeoutMs;
  } else {
    log.warn(
      "no --admission-config: no namespace is left out of the webhooks, not even airlock's own " +
        `(${m[1]}); pods there cannot start while airlock is down`,
    );
  }
  if (flags.admissionTimeout !== undefined) {
    timeoutMs = checkTimeout(
      durationFlag("--admission-timeout", flags.admissionTimeout),
      "--admission-timeout",
      usageError,
    );
  }
  let caBundlePem: string;
  try {
    caBundlePem = await Deno.readTextFile(flags.caBundle);
  } catch (e) {
    throw new AirlockError(
      "IO_ERROR",
      `cannot read the CA bundle ${JSON.stringify(flags.caBundle)}: ${errorMessage(e)}`,
    );
  }
  writeStdout(webhookConfigYaml({
    namespace: m[1],
    service: m[2],
    port,
    caBundlePem,
    exemptNamespaces,
    timeoutMs,
    name: flags.name,
  }));
  return 0;
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
