/**
 * Helpers of the `mirror` / `save` / `load` tests: signing images at the source in-process (airlock's own
 * signer, the same code `airlock sign` runs), credentials files, raw reads through plain `fetch`, and running the
 * CLI as a child process whose peak memory can be measured.
 *
 * @module
 */
import { join } from "node:path";
import { openKey } from "../../backends/key_backend.ts";
import { loadRegistriesD } from "../../core/config/registries_d.ts";
import { parseReference } from "../../core/reference.ts";
import { RegistryClient } from "../../core/registry/client.ts";
import { signImages } from "../../core/sign.ts";
import { CLI, type KeyFiles } from "../sign/helpers.ts";
import type { TestRegistry } from "../testbed/mod.ts";

const dec = new TextDecoder();

/** Signs `refs` with `key` (all platforms, index too) through airlock's library; throws when one fails. */
export async function signAt(
  refs: string[],
  key: KeyFiles,
  registriesD: string,
  client: RegistryClient,
): Promise<void> {
  const backend = await openKey(key.key, { passphraseFile: key.pass });
  try {
    const report = await signImages(
      refs.map((r, i) => ({
        status: "ok" as const,
        line: { id: i + 1, line: r, text: r, kind: "default" as const },
        reference: parseReference(r),
      })),
      {
        client,
        key: backend,
        registriesD: await loadRegistriesD({ dir: registriesD }),
        platforms: { arch: [], os: [], variant: [] },
        jobs: 4,
        timeoutMs: 0,
        confirmDelayMs: 1,
      },
    );
    if (report.failed.length > 0) {
      throw new Error(
        `signing failed: ${report.lines.map((l) => l.error?.message).filter(Boolean).join("; ")}`,
      );
    }
  } finally {
    await backend.close();
  }
}

/** Writes a containers auth.json with `user:password` for each host; returns its path. */
export async function writeAuthFile(
  dir: string,
  creds: Record<string, [string, string]>,
  name = "auth.json",
): Promise<string> {
  const auths: Record<string, { auth: string }> = {};
  for (const [host, [u, p]] of Object.entries(creds)) auths[host] = { auth: btoa(`${u}:${p}`) };
  const path = join(dir, name);
  await Deno.writeTextFile(path, JSON.stringify({ auths }));
  return path;
}

/** A registry reached with fixed request headers (basic credentials) and its HTTP client (TLS CA). */
export interface Endpoint {
  /** `host:port`. */
  readonly host: string;
  /** `fetch(path)` against the registry, with the headers. */
  fetch(path: string, init?: RequestInit): Promise<Response>;
}

/** An {@linkcode Endpoint} for a test registry, with basic credentials when given. */
export function endpoint(reg: TestRegistry, basic?: [string, string]): Endpoint {
  return {
    host: reg.host,
    fetch(path, init = {}) {
      const headers = new Headers(init.headers);
      if (basic) headers.set("authorization", `Basic ${btoa(`${basic[0]}:${basic[1]}`)}`);
      return reg.fetch(path, { ...init, headers });
    },
  };
}

/** `GET` a manifest's exact bytes and digest header; `undefined` on 404. */
export async function rawManifest(
  ep: Endpoint,
  repo: string,
  ref: string,
): Promise<{ bytes: Uint8Array; digest: string | null; type: string | null } | undefined> {
  const res = await ep.fetch(`/v2/${repo}/manifests/${ref}`, {
    headers: {
      accept: [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
      ].join(", "),
    },
  });
  if (res.status === 404) {
    await res.body?.cancel();
    return undefined;
  }
  if (res.status !== 200) throw new Error(`GET manifest ${repo}:${ref}: ${res.status} ${await res.text()}`);
  return {
    bytes: new Uint8Array(await res.arrayBuffer()),
    digest: res.headers.get("docker-content-digest"),
    type: res.headers.get("content-type"),
  };
}

/** `HEAD` of a blob: whether the repository has it. */
export async function hasBlob(ep: Endpoint, repo: string, digest: string): Promise<boolean> {
  const res = await ep.fetch(`/v2/${repo}/blobs/${digest}`, { method: "HEAD" });
  await res.body?.cancel();
  return res.status === 200;
}

/** The result of a CLI child process, with its peak resident memory. */
export interface MeasuredRun {
  code: number;
  stdout: string;
  stderr: string;
  /** Peak resident set size (VmHWM) in bytes, last value read before the process ended. */
  peakRss: number;
}

/** Environment of a CLI child: HOME = cwd, the parent's DENO_DIR, nothing else but PATH. */
async function childEnv(cwd: string, env: Record<string, string> = {}): Promise<Record<string, string>> {
  const info = await new Deno.Command(Deno.execPath(), { args: ["info", "--json"], stdout: "piped" })
    .output();
  const denoDir = (JSON.parse(dec.decode(info.stdout)) as { denoDir: string }).denoDir;
  return {
    HOME: cwd,
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    DENO_DIR: denoDir,
    NO_COLOR: "1",
    ...env,
  };
}

/**
 * Starts `deno run -A cli.ts <args>`; `onStart` gets the process (to kill it mid-way). Samples the child's
 * `VmHWM` every 20 ms while it runs.
 *
 * @example
 * ```ts
 * const r = await spawnCli(["mirror", …], { cwd });
 * ```
 */
export async function spawnCli(
  args: string[],
  opts: { cwd: string; env?: Record<string, string>; onStart?: (p: Deno.ChildProcess) => void },
): Promise<MeasuredRun> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    cwd: opts.cwd,
    clearEnv: true,
    env: await childEnv(opts.cwd, opts.env),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let peakRss = 0;
  let running = true;
  const sampler = (async () => {
    while (running) {
      try {
        const status = await Deno.readTextFile(`/proc/${child.pid}/status`);
        const m = /VmHWM:\s+(\d+) kB/.exec(status);
        if (m) peakRss = Math.max(peakRss, Number(m[1]) * 1024);
      } catch {
        // the process is gone
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  opts.onStart?.(child);
  const out = await child.output();
  running = false;
  await sampler;
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr), peakRss };
}
