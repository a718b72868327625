/**
 * Starts the real distribution registry (`docker-registry` 2.8, Debian package) for tests: on 127.0.0.1 and a
 * port chosen at run time, with its own temporary storage, optionally with TLS (openssl-made certificates),
 * htpasswd (bcrypt) or token authentication (see `token_server.ts`). Everything it starts is stopped and every
 * temporary file removed by `stop()` / `await using`.
 *
 * @module
 */
import { dirname, join } from "node:path";
import bcrypt from "bcryptjs";
import { makeCa, makeLeaf } from "./certs.ts";
import { run } from "./exec.ts";
import { freePort } from "./ports.ts";
import { startTokenServer, type TokenServer, type TokenServerOptions } from "./token_server.ts";
import { removeDir } from "./util.ts";

/** Path of the registry binary (Debian's `docker-registry`). */
export const REGISTRY_BINARY = "docker-registry";

/** htpasswd authentication: bcrypt entries made with npm `bcryptjs`. */
export interface BasicAuthOptions {
  /** Selects htpasswd authentication. */
  kind: "basic";
  /** User name → password. */
  users: Record<string, string>;
  /** The `realm` in the Basic challenge (default `airlock-test`). */
  realm?: string;
  /**
   * bcrypt cost (default 4, the minimum). The registry runs bcrypt on every request it authenticates, so a
   * production cost (10+) would add tens of milliseconds to each request of a test.
   */
  bcryptCost?: number;
}

/** Token authentication: a token server (`startTokenServer`) is started and wired into the registry config. */
export interface TokenAuthOptions extends Omit<TokenServerOptions, "tls"> {
  /** Selects token authentication. */
  kind: "token";
  /**
   * With TLS, the token server still serves plain HTTP (a realm on `http://` announced by an HTTPS registry, a
   * misconfiguration the client must not send credentials to). Default: the token server serves HTTPS with the
   * registry's certificate, and `certDir` trusts it too.
   */
  plainRealm?: boolean;
}

/** Options of {@linkcode startRegistry}. */
export interface RegistryOptions {
  /**
   * `true`: make a CA and a leaf for `IP:127.0.0.1,DNS:localhost` and serve HTTPS. An object: serve HTTPS with
   * this certificate and key (paths); give `caCertPem` to get `client`, `caCertPem` and `certDir` back.
   */
  tls?: boolean | { cert: string; key: string; caCertPem?: string };
  /** Authentication; none when absent. */
  auth?: BasicAuthOptions | TokenAuthOptions;
  /** A registry storage directory (holding `docker/registry/v2`) to copy first; the original is never written. */
  storageFrom?: string;
  /** How long to wait for `GET /v2/` to answer (default 10 000 ms). */
  readyTimeoutMs?: number;
  /**
   * Write the registry's access log (one combined-format line per request) into its log file, for benchmarks that
   * count requests where they are served ({@linkcode TestRegistry.requestCount}).
   */
  accessLog?: boolean;
  /**
   * Listen on this port (of a registry stopped before, e.g. to serve a copy of its storage under the same name,
   * which signatures record) instead of a free one.
   */
  port?: number;
}

/** A running registry. Stop it with `stop()` or `await using`. */
export interface TestRegistry extends AsyncDisposable {
  /** `127.0.0.1:PORT`, the registry part of references. */
  readonly host: string;
  /** `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`. */
  readonly url: string;
  /** The port. */
  readonly port: number;
  /** Process id of the `docker-registry` process. */
  readonly pid: number;
  /** The temporary directory holding config, storage and certificates (removed by `stop()`). */
  readonly dir: string;
  /** The storage root (`storage.filesystem.rootdirectory`). */
  readonly storageDir: string;
  /** The config file written. */
  readonly configPath: string;
  /** The CA certificate (PEM) clients must trust, with TLS. */
  readonly caCertPem?: string;
  /** Path of that CA certificate, with TLS. */
  readonly caCertPath?: string;
  /** A containers-style certs.d root with TLS: `<certDir>/127.0.0.1:PORT/ca.crt`. */
  readonly certDir?: string;
  /** An HTTP client trusting the CA, with TLS (closed by `stop()`). */
  readonly client?: Deno.HttpClient;
  /** The token server, with token auth (stopped by `stop()`). */
  readonly tokenServer?: TokenServer;
  /** `fetch(url + path)` through `client` when there is one. */
  fetch(path: string, init?: RequestInit): Promise<Response>;
  /** The last few KiB the registry wrote to stdout/stderr (kept in `<dir>/registry.log`). */
  outputTail(): string;
  /**
   * With `accessLog`: how many requests the registry has answered so far (access log lines of its log file);
   * read it before and after a phase to count that phase's requests.
   */
  requestCount(): Promise<number>;
  /** Stops the registry (SIGTERM, then SIGKILL after 5 s), the token server, and removes the directory. */
  stop(): Promise<void>;
}

const live = new Set<number>();
const liveDirs = new Set<string>();

// Safety net: if the test process ends with registries still running (a test that forgot `await using`, an
// uncaught error), do not leave orphaned docker-registry processes behind.
globalThis.addEventListener("unload", () => {
  for (const pid of live) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch { /* already gone */ }
  }
  for (const dir of liveDirs) {
    try {
      Deno.removeSync(dir, { recursive: true });
    } catch { /* best effort */ }
  }
});

/**
 * Process ids of registries started by this module and not stopped yet (tests assert it is empty).
 *
 * @example
 * ```ts
 * assertEquals(liveRegistryPids(), []);
 * ```
 */
export function liveRegistryPids(): number[] {
  return [...live];
}

/**
 * Process ids of the running children of this process whose command name is `name` (read from `/proc`).
 *
 * @example
 * ```ts
 * assertEquals(childPidsNamed("docker-registry").filter((p) => mine.includes(p)), []);
 * ```
 */
export function childPidsNamed(name: string): number[] {
  const pids: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    let stat: string;
    try {
      stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
    } catch {
      continue;
    }
    // "pid (comm) state ppid …"; comm may contain spaces and parentheses, so split at the last ')'.
    const close = stat.lastIndexOf(")");
    const comm = stat.slice(stat.indexOf("(") + 1, close);
    const fields = stat.slice(close + 2).split(" ");
    if (comm === name.slice(0, 15) && Number(fields[1]) === Deno.pid && fields[0] !== "Z") {
      pids.push(Number(entry.name));
    }
  }
  return pids;
}

/**
 * Starts `docker-registry serve` on 127.0.0.1 and a free port and waits until `GET /v2/` answers 200 or 401.
 * Fails with the tail of the registry's output when it does not come up in time.
 *
 * @example
 * ```ts
 * await using reg = await startRegistry({ tls: true, auth: { kind: "basic", users: { alice: "pw" } } });
 * const res = await reg.fetch("/v2/", { headers: { authorization: `Basic ${btoa("alice:pw")}` } });
 * ```
 */
export async function startRegistry(opts: RegistryOptions = {}): Promise<TestRegistry> {
  const dir = await Deno.makeTempDir({ prefix: "airlock-registry-" });
  liveDirs.add(dir);
  let tokenServer: TokenServer | undefined;
  let client: Deno.HttpClient | undefined;
  try {
    const storageDir = join(dir, "storage");
    await Deno.mkdir(storageDir);
    if (opts.storageFrom !== undefined) {
      await Deno.stat(join(opts.storageFrom, "docker"));
      await run("cp", ["-a", `${opts.storageFrom}/.`, `${storageDir}/`]);
      await run("chmod", ["-R", "u+w", storageDir]);
    }

    let tls: { cert: string; key: string } | undefined;
    let caCertPem: string | undefined;
    let caCertPath: string | undefined;
    if (opts.tls === true) {
      const tlsDir = join(dir, "tls");
      await Deno.mkdir(tlsDir);
      const ca = await makeCa(tlsDir);
      const leaf = await makeLeaf(tlsDir, ca);
      tls = { cert: leaf.certPath, key: leaf.keyPath };
      caCertPem = ca.certPem;
      caCertPath = ca.certPath;
    } else if (typeof opts.tls === "object") {
      tls = { cert: opts.tls.cert, key: opts.tls.key };
      caCertPem = opts.tls.caCertPem;
      if (caCertPem !== undefined) {
        caCertPath = join(dir, "ca.crt");
        await Deno.writeTextFile(caCertPath, caCertPem);
      }
    }
    if (caCertPem !== undefined) client = Deno.createHttpClient({ caCerts: [caCertPem] });

    let auth: Record<string, unknown> | undefined;
    if (opts.auth?.kind === "basic") {
      const cost = opts.auth.bcryptCost ?? 4;
      const lines = Object.entries(opts.auth.users).map(([u, p]) => `${u}:${bcrypt.hashSync(p, cost)}`);
      const path = join(dir, "htpasswd");
      await Deno.writeTextFile(path, lines.join("\n") + "\n");
      auth = { htpasswd: { realm: opts.auth.realm ?? "airlock-test", path } };
    } else if (opts.auth?.kind === "token") {
      const { kind: _kind, plainRealm, ...tokenOpts } = opts.auth;
      const tokenTls = tls && !plainRealm
        ? { certPem: await Deno.readTextFile(tls.cert), keyPem: await Deno.readTextFile(tls.key), caCertPem }
        : undefined;
      tokenServer = await startTokenServer({ ...tokenOpts, tls: tokenTls });
      auth = {
        token: {
          realm: tokenServer.realm,
          service: tokenServer.service,
          issuer: tokenServer.issuer,
          rootcertbundle: tokenServer.certPath,
        },
      };
    }

    const configPath = join(dir, "config.yml");
    const deadline = Date.now() + (opts.readyTimeoutMs ?? 10_000);
    for (let attempt = 1;; attempt++) {
      const port = opts.port ?? freePort();
      const host = `127.0.0.1:${port}`;
      const config = {
        version: "0.1",
        log: { level: "error", accesslog: { disabled: !opts.accessLog } },
        storage: {
          filesystem: { rootdirectory: storageDir },
          delete: { enabled: true },
          cache: { blobdescriptor: "inmemory" },
        },
        http: {
          addr: host,
          headers: { "X-Content-Type-Options": ["nosniff"] },
          ...(tls ? { tls: { certificate: tls.cert, key: tls.key } } : {}),
        },
        ...(auth ? { auth } : {}),
      };
      // JSON is YAML: the registry's YAML parser reads it as it is.
      await Deno.writeTextFile(configPath, JSON.stringify(config, null, 2) + "\n");
      const url = `${tls ? "https" : "http"}://${host}`;
      const proc = spawnRegistry(configPath);
      const ready = await waitReady(proc, url, client, deadline);
      if (ready === "ready") {
        let certDir: string | undefined;
        if (caCertPem !== undefined) {
          certDir = join(dir, "certs.d");
          // The registry and its token server (same certificate, another port) are trusted through certs.d.
          const hosts = [
            host,
            ...(tokenServer?.url.startsWith("https:") ? [new URL(tokenServer.url).host] : []),
          ];
          for (const h of hosts) {
            await Deno.mkdir(join(certDir, h), { recursive: true });
            await Deno.writeTextFile(join(certDir, h, "ca.crt"), caCertPem);
          }
        }
        return handle({
          proc,
          host,
          url,
          port,
          dir,
          storageDir,
          configPath,
          caCertPem,
          caCertPath,
          certDir,
          client,
          tokenServer,
        });
      }
      await proc.stop();
      const tail = proc.tail();
      if (ready === "exited" && tail.includes("address already in use") && attempt < 3) continue;
      throw new Error(
        `docker-registry did not start on ${host} (${ready === "exited" ? "it exited" : "timeout"}); config ${
          JSON.stringify(config)
        }; output:\n${tail}`,
      );
    }
  } catch (e) {
    client?.close();
    await tokenServer?.stop();
    await removeDir(dir);
    liveDirs.delete(dir);
    throw e;
  }
}

interface RegistryProcess {
  pid: number;
  /** Resolves when the process has exited. */
  exited: Promise<Deno.CommandStatus>;
  hasExited(): boolean;
  tail(): string;
  stop(): Promise<void>;
}

const TAIL_BYTES = 8192;

/**
 * Spawns the registry with its output going to `<dir of config>/registry.log` (through `sh -c 'exec …'`, so the
 * pid is the registry's own). No pipe and an unref'd status keep a forgotten registry from holding the Deno
 * process open; the `unload` handler above then kills it. `stop()` re-refs the process before waiting for it.
 */
function spawnRegistry(configPath: string): RegistryProcess {
  const logPath = join(dirname(configPath), "registry.log");
  const child = new Deno.Command("/bin/sh", {
    args: ["-c", 'exec "$0" serve "$1" >>"$2" 2>&1', REGISTRY_BINARY, configPath, logPath],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  child.unref();
  live.add(child.pid);
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    live.delete(child.pid);
    return s;
  });
  const tail = (): string => {
    try {
      const text = Deno.readTextFileSync(logPath);
      return text.slice(-TAIL_BYTES);
    } catch {
      return "";
    }
  };
  let stopping: Promise<void> | undefined;
  return {
    pid: child.pid,
    exited: status,
    hasExited: () => exited,
    tail,
    stop: () =>
      stopping ??= (async () => {
        child.ref();
        if (!exited) {
          try {
            child.kill("SIGTERM");
          } catch { /* already gone */ }
          let timer: ReturnType<typeof setTimeout> | undefined;
          const killed = await Promise.race([
            status.then(() => false),
            new Promise<boolean>((r) => timer = setTimeout(() => r(true), 5000)),
          ]);
          clearTimeout(timer);
          if (killed) {
            try {
              child.kill("SIGKILL");
            } catch { /* already gone */ }
          }
        }
        await status;
      })(),
  };
}

async function waitReady(
  proc: RegistryProcess,
  url: string,
  client: Deno.HttpClient | undefined,
  deadline: number,
): Promise<"ready" | "exited" | "timeout"> {
  while (Date.now() < deadline) {
    if (proc.hasExited()) return "exited";
    try {
      const res = await fetch(`${url}/v2/`, { client, signal: AbortSignal.timeout(1000) });
      await res.body?.cancel();
      if (res.status === 200 || res.status === 401) return "ready";
    } catch {
      // not listening yet
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([proc.exited, new Promise((r) => timer = setTimeout(r, 10))]);
    clearTimeout(timer);
  }
  return proc.hasExited() ? "exited" : "timeout";
}

function handle(p: {
  proc: RegistryProcess;
  host: string;
  url: string;
  port: number;
  dir: string;
  storageDir: string;
  configPath: string;
  caCertPem?: string;
  caCertPath?: string;
  certDir?: string;
  client?: Deno.HttpClient;
  tokenServer?: TokenServer;
}): TestRegistry {
  let stopping: Promise<void> | undefined;
  const seen = { offset: 0, count: 0 };
  const stop = (): Promise<void> =>
    stopping ??= (async () => {
      try {
        await p.proc.stop();
      } finally {
        p.client?.close();
        await p.tokenServer?.stop();
        await removeDir(p.dir);
        liveDirs.delete(p.dir);
      }
    })();
  return {
    host: p.host,
    url: p.url,
    port: p.port,
    pid: p.proc.pid,
    dir: p.dir,
    storageDir: p.storageDir,
    configPath: p.configPath,
    caCertPem: p.caCertPem,
    caCertPath: p.caCertPath,
    certDir: p.certDir,
    client: p.client,
    tokenServer: p.tokenServer,
    fetch: (path: string, init?: RequestInit) => fetch(`${p.url}${path}`, { ...init, client: p.client }),
    outputTail: () => p.proc.tail(),
    requestCount: () => countAccessLines(join(p.dir, "registry.log"), seen),
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

/** Access log lines (`"GET /v2/… HTTP/1.1" 200 …`) of the log file after `seen.offset`, added to `seen.count`. */
async function countAccessLines(path: string, seen: { offset: number; count: number }): Promise<number> {
  using file = await Deno.open(path, { read: true });
  await file.seek(seen.offset, Deno.SeekMode.Start);
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(1 << 20);
  for (let n = await file.read(buf); n !== null; n = await file.read(buf)) chunks.push(buf.slice(0, n));
  const text = new TextDecoder().decode(await new Blob(chunks as Uint8Array<ArrayBuffer>[]).bytes());
  const complete = text.slice(0, text.lastIndexOf("\n") + 1);
  seen.offset += new TextEncoder().encode(complete).length;
  seen.count += complete.split("\n").filter((l) => /"(GET|HEAD|POST|PUT|PATCH|DELETE) \/v2\//.test(l)).length;
  return seen.count;
}
