/**
 * Helpers for the `airlock serve` tests: an in-process service on a runtime port of 127.0.0.1 (the real
 * `startServer`, hence real `Deno.serve` and real HTTP), tokens made with `addToken`, a captured log, and small
 * HTTP helpers (JSON calls, waiting for a job, reading an event stream). A `airlock serve` child process is
 * `spawnAirlock` of `tests/testbed/cli.ts`.
 *
 * @module
 */
import { join } from "node:path";
import { HangarLogger } from "../../core/report.ts";
import { type RunningServer, type ServeConfig, startServer } from "../../server/serve.ts";
import { addToken } from "../../server/tokens.ts";
import type { JobView } from "../../server/jobs.ts";
import { type KeyFiles, makeKey } from "../testbed/keys.ts";
import { ATTACHMENTS_ON, writeRegistriesD } from "../testbed/mod.ts";

/** A service started for a test. */
export interface TestService extends AsyncDisposable {
  /** The running server. */
  readonly server: RunningServer;
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  /** Tokens by name. */
  readonly tokens: Record<string, string>;
  /** The token file. */
  readonly tokenFile: string;
  /** Every log line so far. */
  readonly log: string[];
  /** The key files when the service signs with a file key. */
  readonly key?: KeyFiles;
  /** `fetch(url + path)` with the token of `as` (default: the first token) unless `as` is `null`. */
  call(path: string, init?: RequestInit & { as?: string | null }): Promise<Response>;
  /** POSTs JSON with the first token; returns status and parsed body. */
  post(path: string, body: unknown, as?: string): Promise<{ status: number; body: Record<string, unknown> }>;
  /** Waits for a job to finish (polling) and returns it. */
  wait(id: string): Promise<JobView>;
}

/** Options of {@linkcode startService}. */
export interface TestServiceOptions {
  /** Scratch directory (keys, token file, registries.d). */
  readonly dir: string;
  /** Token names to create (default `["ci"]`). */
  readonly tokenNames?: string[];
  /** A key reference; default: a new file key in `dir`. */
  readonly keyRef?: string;
  /** Registry options (default: plain HTTP allowed). */
  readonly registry?: ServeConfig["registry"];
  /** Overrides of the configuration. */
  readonly config?: Partial<ServeConfig>;
}

/**
 * Starts `startServer` on 127.0.0.1 with a fresh token file and registries.d enabling attachments.
 *
 * @example
 * ```ts
 * await using svc = await startService({ dir: tmp.path });
 * ```
 */
export async function startService(o: TestServiceOptions): Promise<TestService> {
  const tokenFile = join(o.dir, "tokens");
  const tokens: Record<string, string> = {};
  for (const name of o.tokenNames ?? ["ci"]) tokens[name] = (await addToken(tokenFile, name)).token;
  const rd = await writeRegistriesD(o.dir, ATTACHMENTS_ON, "serve-registries.d");
  let key: KeyFiles | undefined;
  if (o.keyRef === undefined) key = await makeKey(o.dir, "service");
  const log: string[] = [];
  const sink = (s: string) => log.push(s);
  const server = await startServer({
    keyRef: o.keyRef ?? key!.key,
    passphraseFile: key?.pass,
    tokenFile,
    listen: "127.0.0.1:0",
    registry: o.registry ?? { tlsVerify: false },
    registriesD: rd,
    maxBodyBytes: 64 * 1024,
    maxImages: 50,
    ratePerMinute: 10_000,
    jobs: 4,
    shutdownTimeoutMs: 10_000,
    logger: new HangarLogger({ stdout: sink, stderr: sink, hideTime: true }),
    tokenCheckIntervalMs: 0,
    ...o.config,
  });
  const first = Object.keys(tokens)[0];
  const call = (path: string, init: RequestInit & { as?: string | null } = {}) => {
    const { as, ...rest } = init;
    const headers = new Headers(rest.headers);
    const name = as === undefined ? first : as;
    if (name !== null && !headers.has("authorization")) {
      headers.set("authorization", `Bearer ${tokens[name]}`);
    }
    return fetch(server.url + path, { ...rest, headers });
  };
  const svc: TestService = {
    server,
    url: server.url,
    tokens,
    tokenFile,
    log,
    key,
    call,
    async post(path, body, as) {
      const res = await call(path, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
        as,
      });
      return { status: res.status, body: await res.json() };
    },
    async wait(id) {
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline) {
        const res = await call(`/v1/jobs/${id}`);
        const job = (await res.json()) as JobView;
        if (["succeeded", "failed", "cancelled"].includes(job.state)) return job;
        await new Promise((r) => setTimeout(r, 25));
      }
      throw new Error(`job ${id} did not finish`);
    },
    async [Symbol.asyncDispose]() {
      await server.shutdown();
    },
  };
  return svc;
}

/** One parsed server-sent event. */
export interface SseEvent {
  /** `id:` */
  id?: string;
  /** `event:` */
  event?: string;
  /** `data:` lines joined, parsed as JSON. */
  data: unknown;
}

/**
 * Reads a whole event stream (until the server closes it) and parses its events; comments are skipped.
 *
 * @example
 * ```ts
 * const events = await readSse(await svc.call(`/v1/jobs/${id}/events`));
 * ```
 */
export async function readSse(res: Response): Promise<SseEvent[]> {
  const text = await res.text();
  const events: SseEvent[] = [];
  for (const block of text.split("\n\n")) {
    const ev: { id?: string; event?: string; data: string[] } = { data: [] };
    for (const line of block.split("\n")) {
      if (line.startsWith("id: ")) ev.id = line.slice(4);
      else if (line.startsWith("event: ")) ev.event = line.slice(7);
      else if (line.startsWith("data: ")) ev.data.push(line.slice(6));
    }
    if (ev.data.length > 0) events.push({ id: ev.id, event: ev.event, data: JSON.parse(ev.data.join("\n")) });
  }
  return events;
}
