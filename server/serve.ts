/**
 * `airlock serve` on `Deno.serve`: the adapter between the runtime and the hono app. It applies the listen rules
 * (loopback by default; any other address needs TLS unless `insecureListen`), opens what the operator chose (the
 * key, registry client, registries.d, token file) once, serves the app, and shuts down gracefully: stop
 * accepting connections, let every accepted job finish within the grace period (then cancel what is left),
 * close the event streams, release the key and the client.
 *
 * @example
 * ```ts
 * const server = await startServer({ keyRef: "cosign.key", tokenFile: "tokens", listen: "127.0.0.1:0", … });
 * console.log(server.url);
 * await server.shutdown();
 * ```
 *
 * @module
 */
import {
  displayKeyRef,
  type KeyBackend,
  keyRefWarning,
  openKey,
  type OpenKeyOptions,
} from "../backends/key_backend.ts";
import { loadRegistriesD } from "../core/config/registries_d.ts";
import { AirlockError, errorMessage } from "../core/errors.ts";
import type { RegistryClient } from "../core/registry/client.ts";
import { clientFor, type RegistrySettings } from "../core/registry/settings.ts";
import type { Logger } from "../core/report.ts";
import { type AdmissionSettings, checkTimeout, loadAdmissionConfig } from "../core/admission/config.ts";
import { type AdmissionEngine, createAdmissionEngine } from "../core/admission/service.ts";
import { RecentDecisions } from "./admission.ts";
import { createApp } from "./app.ts";
import { errorBody } from "./errors.ts";
import { JobStore } from "./jobs.ts";
import { Metrics } from "./metrics.ts";
import { createOperations } from "./operations.ts";
import { TokenStore } from "./tokens.ts";

/** Everything `airlock serve` is configured with. */
export interface ServeConfig {
  /** `--key REF`: any key backend; optional with `admissionConfig` (a verify-only admission webhook). */
  readonly keyRef?: string;
  /** `--admission-config FILE`: serve the Kubernetes admission webhook with these rules (needs TLS). */
  readonly admissionConfig?: string;
  /** `--admission-timeout`: overrides the configuration file's `timeout`, in ms. */
  readonly admissionTimeoutMs?: number;
  /** `--client-ca FILE`: the admission endpoints require a client certificate chaining to this CA (PEM). */
  readonly clientCa?: string;
  /** `--passphrase-file F` for an encrypted key file. */
  readonly passphraseFile?: string;
  /** `--token-file FILE`. */
  readonly tokenFile: string;
  /** `--listen HOST:PORT` (port 0: any free port). */
  readonly listen: string;
  /** `--tls-cert F` (PEM). */
  readonly tlsCert?: string;
  /** `--tls-key F` (PEM). */
  readonly tlsKey?: string;
  /** `--insecure-listen`: allow plain HTTP on a non-loopback address. */
  readonly insecureListen?: boolean;
  /** Registry options (`--tls-verify`, `--cert-dir`, `--authfile`): the server's own. */
  readonly registry: RegistrySettings;
  /** `--registries.d DIR`. */
  readonly registriesD?: string;
  /** `--max-body BYTES`. */
  readonly maxBodyBytes: number;
  /** `--max-images N`. */
  readonly maxImages: number;
  /** `--rate-limit`, in requests per minute per token. */
  readonly ratePerMinute: number;
  /** `--jobs N`: jobs running at once. */
  readonly jobs: number;
  /** Finished jobs remembered (default 200). */
  readonly history?: number;
  /** Jobs waiting for a slot before new ones are refused (default 1000). */
  readonly maxQueued?: number;
  /** `--shutdown-timeout`: how long accepted jobs may take to finish on shutdown, in ms. */
  readonly shutdownTimeoutMs: number;
  /** Log and audit lines. */
  readonly logger: Logger;
  /** Extra key options (tests: an environment for plugins). */
  readonly openKeyOptions?: OpenKeyOptions;
  /** How often the token file is checked for changes, in ms (default 250). */
  readonly tokenCheckIntervalMs?: number;
}

/** A running service. */
export interface RunningServer {
  /** `http(s)://HOST:PORT` (IPv6 hosts in brackets). */
  readonly url: string;
  /** The port listened on. */
  readonly port: number;
  /** The job store (for tests and shutdown). */
  readonly jobs: JobStore;
  /**
   * Stops accepting connections, waits for accepted jobs (bounded by the shutdown timeout, then cancels),
   * closes event streams, the key and the registry client. Returns whether every job finished. Idempotent.
   */
  shutdown(): Promise<boolean>;
}

/** A listen address. */
export interface ListenAddress {
  /** Host name or IP literal (no brackets). */
  readonly hostname: string;
  /** Port, 0–65535. */
  readonly port: number;
}

/**
 * Parses `--listen`: `HOST:PORT`, `[IPv6]:PORT`, or `:PORT` (loopback).
 *
 * @throws {AirlockError} `INVALID_ARGUMENT` for anything else.
 */
export function parseListenAddress(s: string): ListenAddress {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\[\]\s]*)):(\d{1,5})$/.exec(s);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new AirlockError("INVALID_ARGUMENT", `invalid --listen "${s}": expected HOST:PORT or [IPv6]:PORT`);
  }
  return { hostname: m[1] ?? (m[2] || "127.0.0.1"), port };
}

/**
 * Whether a listen host is a loopback address: `localhost`, `127.0.0.0/8`, `::1`.
 *
 * @example
 * ```ts
 * isLoopback("127.0.0.1"); // true
 * isLoopback("0.0.0.0"); // false
 * ```
 */
export function isLoopback(hostname: string): boolean {
  const h = hostname.toLowerCase();
  if (h === "localhost" || h === "::1" || h === "0:0:0:0:0:0:0:1") return true;
  const v4 = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(h);
  return v4 !== null && v4.slice(1).every((x) => Number(x) <= 255);
}

/**
 * The listen rule: a non-loopback address needs TLS, unless the operator insists (`--insecure-listen`).
 *
 * @throws {AirlockError} `INVALID_ARGUMENT` when the rule is broken, or only one of the TLS files is given.
 */
export function checkListenRules(
  addr: ListenAddress,
  o: { tlsCert?: string; tlsKey?: string; insecureListen?: boolean },
): void {
  if ((o.tlsCert === undefined) !== (o.tlsKey === undefined)) {
    throw new AirlockError("INVALID_ARGUMENT", "--tls-cert and --tls-key go together: give both or neither");
  }
  if (o.tlsCert === undefined && !isLoopback(addr.hostname) && !o.insecureListen) {
    throw new AirlockError(
      "INVALID_ARGUMENT",
      `refusing to listen on ${addr.hostname} without TLS: bearer tokens would cross the network in clear ` +
        "text; give --tls-cert and --tls-key, or --insecure-listen if something else encrypts the traffic",
    );
  }
}

async function readPem(path: string, what: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    throw new AirlockError("IO_ERROR", `cannot read the ${what} "${path}": ${errorMessage(e)}`, { cause: e });
  }
}

/**
 * Starts the service: checks the listen rules first, then opens the token file, registries.d and the key (a
 * wrong passphrase fails here, before listening), and listens.
 *
 * @throws {AirlockError} for a broken listen rule, a bad token file, registries.d or key, or a port in use.
 */
export async function startServer(config: ServeConfig): Promise<RunningServer> {
  const log = config.logger;
  const addr = parseListenAddress(config.listen);
  checkListenRules(addr, config);
  checkAdmissionRules(config);
  const tls = config.tlsCert !== undefined && config.tlsKey !== undefined
    ? { cert: await readPem(config.tlsCert, "TLS certificate"), key: await readPem(config.tlsKey, "TLS key") }
    : undefined;
  const clientCa = config.clientCa === undefined ? undefined : await readPem(config.clientCa, "client CA");
  const settings = config.admissionConfig === undefined ? undefined : await loadAdmissionSettings(config);
  if (!tls && !isLoopback(addr.hostname)) {
    log.warn(
      `listening on ${addr.hostname} without TLS (--insecure-listen): tokens cross the network unencrypted`,
    );
  }

  const tokens = await TokenStore.open(config.tokenFile, {
    logger: log,
    checkIntervalMs: config.tokenCheckIntervalMs,
  });
  const registriesD = await loadRegistriesD({ dir: config.registriesD });
  let key: KeyBackend | undefined;
  if (config.keyRef !== undefined) {
    const warning = keyRefWarning(config.keyRef);
    if (warning) log.warn(warning);
    key = await openKey(config.keyRef, { passphraseFile: config.passphraseFile, ...config.openKeyOptions });
  }
  let client: RegistryClient | undefined;
  let engine: AdmissionEngine | undefined;
  try {
    client = clientFor(config.registry);
    const metrics = new Metrics();
    const operations = key && await createOperations({ client, key, registriesD, logger: log, metrics });
    if (settings) {
      for (const w of settings.warnings) log.warn(`admission: ${w}`);
      engine = createAdmissionEngine({ settings, client, registriesD });
    }
    const jobs = new JobStore({
      concurrency: config.jobs,
      history: config.history ?? 200,
      maxQueued: config.maxQueued ?? 1000,
      onFinished: (job) => {
        metrics.jobFinished(job.kind, job.state);
        log.info(
          `job ${job.id} ${job.state}: ${job.kind}, ${job.summary.total} image(s), ${job.summary.failed} failed`,
        );
      },
    });
    const app = createApp({
      operations,
      tokens,
      jobs,
      metrics,
      logger: log,
      limits: {
        maxBodyBytes: config.maxBodyBytes,
        maxImages: config.maxImages,
        ratePerMinute: config.ratePerMinute,
      },
      secureCookie: tls !== undefined,
      tokenCount: () => tokens.size,
      admission: engine && {
        engine,
        recent: new RecentDecisions(200),
        requireClientCert: clientCa !== undefined,
      },
    });

    const onError = (e: unknown) => {
      log.error(`request failed: ${errorMessage(e)}`);
      // the INTERNAL body whatever was thrown (the error itself is only logged)
      return Response.json(errorBody(undefined), { status: 500 });
    };
    let server: { readonly port: number; shutdown(): Promise<void> };
    if (clientCa !== undefined && tls !== undefined) {
      const { listenWithClientCa } = await import("./client_cert_listener.ts");
      server = await listenWithClientCa({
        hostname: addr.hostname,
        port: addr.port,
        ...tls,
        clientCa,
        fetch: (req, info) => app.fetch(req, info),
        onError,
      });
    } else {
      try {
        const s = Deno.serve({
          hostname: addr.hostname,
          port: addr.port,
          ...(tls ?? {}),
          onListen: () => {},
          onError,
        }, (req) => app.fetch(req, { clientCertVerified: false }));
        server = { port: s.addr.port, shutdown: () => s.shutdown() };
      } catch (e) {
        throw new AirlockError("IO_ERROR", `cannot listen on ${config.listen}: ${errorMessage(e)}`, {
          cause: e,
        });
      }
    }
    const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
    const url = `${tls ? "https" : "http"}://${host}:${server.port}`;
    const keyText = config.keyRef === undefined ? "no key" : `key ${displayKeyRef(config.keyRef)}`;
    log.info(`airlock serve listening on ${url} (${keyText}, ${tokens.size} token(s))`);
    if (settings) {
      log.info(
        `admission webhook on ${url}/v1/admission/validate and /mutate: ${settings.description}; ` +
          `${settings.exemptNamespaces.length} exempt namespace(s), ${settings.allowImages.length} allowImages ` +
          `pattern(s), cache ${settings.cacheTtlMs / 1000}s, timeout ${settings.timeoutMs / 1000}s` +
          (clientCa === undefined
            ? "; no client certificate required (--client-ca)"
            : "; client certificates required"),
      );
    }

    const c = client;
    let stopping: Promise<boolean> | undefined;
    const shutdown = (): Promise<boolean> =>
      stopping ??= (async () => {
        log.info(
          `shutting down: refusing new connections; waiting up to ${config.shutdownTimeoutMs} ms for ` +
            `${jobs.running} running and ${jobs.queued} queued job(s)`,
        );
        const closing = server.shutdown();
        const finished = await jobs.drain(config.shutdownTimeoutMs);
        if (!finished) log.warn("shutdown: some jobs did not finish in time and were cancelled");
        // Event streams are closed by now; connections still open after 5 s are cut.
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([closing, new Promise((r) => timer = setTimeout(r, 5_000))]);
        clearTimeout(timer);
        engine?.close();
        c.close();
        await key?.close();
        log.info("shutdown complete");
        return finished;
      })();
    return { url, port: server.port, jobs, shutdown };
  } catch (e) {
    engine?.close();
    client?.close();
    await key?.close();
    throw e;
  }
}

/**
 * The admission rules of `serve`: some work to do (`--key` or `--admission-config`), and TLS for the admission
 * webhook (the API server calls only HTTPS) and for `--client-ca`.
 *
 * @throws {AirlockError} `INVALID_ARGUMENT` naming the missing piece.
 */
export function checkAdmissionRules(
  o: { keyRef?: string; admissionConfig?: string; clientCa?: string; tlsCert?: string; tlsKey?: string },
): void {
  if (o.keyRef === undefined && o.admissionConfig === undefined) {
    throw new AirlockError(
      "INVALID_ARGUMENT",
      "--key is required: the service signs with the operator's key (or give --admission-config for a " +
        "verify-only admission webhook)",
    );
  }
  const tls = o.tlsCert !== undefined && o.tlsKey !== undefined;
  if (o.admissionConfig !== undefined && !tls) {
    throw new AirlockError(
      "INVALID_ARGUMENT",
      "--admission-config needs --tls-cert and --tls-key: the Kubernetes API server calls webhooks over HTTPS only",
    );
  }
  if (o.clientCa !== undefined && !tls) {
    throw new AirlockError("INVALID_ARGUMENT", "--client-ca needs --tls-cert and --tls-key");
  }
  if (o.clientCa !== undefined && o.admissionConfig === undefined) {
    throw new AirlockError(
      "INVALID_ARGUMENT",
      "--client-ca guards the admission endpoints: give --admission-config",
    );
  }
}

async function loadAdmissionSettings(config: ServeConfig): Promise<AdmissionSettings> {
  const settings = await loadAdmissionConfig(config.admissionConfig!);
  if (config.admissionTimeoutMs === undefined) return settings;
  checkTimeout(
    config.admissionTimeoutMs,
    "--admission-timeout",
    (m) => new AirlockError("INVALID_ARGUMENT", m),
  );
  return { ...settings, timeoutMs: config.admissionTimeoutMs };
}

/**
 * Runs the service until SIGINT or SIGTERM, then shuts down gracefully (a second signal exits at once with 130).
 * Returns the exit code: 0.
 */
export async function runServe(config: ServeConfig): Promise<number> {
  const server = await startServer(config);
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  let received = false;
  const stop = Promise.withResolvers<void>();
  const handler = () => {
    if (received) {
      config.logger.warn("second signal: exiting now; jobs still running are lost");
      Deno.exit(130);
    }
    received = true;
    stop.resolve();
  };
  for (const s of signals) Deno.addSignalListener(s, handler);
  try {
    await stop.promise;
    await server.shutdown();
  } finally {
    for (const s of signals) Deno.removeSignalListener(s, handler);
  }
  return 0;
}
