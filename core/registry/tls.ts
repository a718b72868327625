/**
 * TLS material for a registry, found the way containers/image finds it (`docker/docker_client.go`
 * `dockerCertDir` and `pkg/tlsclientconfig.SetupCertificates`):
 *
 * - With a `--cert-dir` directory (`certDir`), that one directory is used for every registry, and the certs.d
 *   roots are not consulted at all (containers/image's `DockerCertPath` replaces the per-host lookup).
 * - Otherwise the certs.d roots are searched in order and the **first** `<root>/<host:port>` directory that
 *   exists is used (they are not merged). Default roots: `$HOME/.config/containers/certs.d`,
 *   `/etc/containers/certs.d`, `/etc/docker/certs.d`.
 * - In the chosen directory, every `*.crt` is an extra CA (added to the system roots), every `*.cert` is a client
 *   certificate whose key is the `*.key` of the same base name (one without the other is an error).
 *
 * @module
 */

import { AirlockError } from "../errors.ts";

/** What to present and trust when talking TLS to one host. */
export interface TlsMaterial {
  /** The directory the material came from, when one was found. */
  readonly dir?: string;
  /** Extra CA certificates (PEM), trusted in addition to the system roots. */
  readonly caCerts: readonly string[];
  /** A client certificate chain (PEM) and its key, when the directory holds one. */
  readonly clientCert?: { readonly cert: string; readonly key: string };
}

/** Where to look for TLS material. */
export interface CertLookup {
  /** certs.d roots, searched in order; the first `<root>/<host:port>` that exists wins. */
  readonly certDirs?: readonly string[];
  /** A single directory used for every registry (skopeo's `--cert-dir`); replaces the certs.d lookup. */
  readonly certDir?: string;
}

/**
 * The default certs.d roots, in containers/image's order: the user's, then the system's.
 */
export function defaultCertDirs(): string[] {
  const dirs: string[] = [];
  let home: string | undefined;
  try {
    home = Deno.env.get("HOME");
  } catch {
    home = undefined; // no env permission: system roots only
  }
  if (home) dirs.push(`${home.replace(/\/+$/, "")}/.config/containers/certs.d`);
  dirs.push("/etc/containers/certs.d", "/etc/docker/certs.d");
  return dirs;
}

/**
 * Finds the TLS material for `hostPort` (`host[:port]` as the user wrote it; `docker.io` for Docker Hub, as
 * containers/image does). Returns empty material when no directory applies.
 *
 * @example
 * ```ts
 * const m = await loadTlsMaterial("127.0.0.1:5000", { certDirs: ["/tmp/certs.d"] });
 * m.caCerts.length; // number of *.crt files in /tmp/certs.d/127.0.0.1:5000
 * ```
 */
export async function loadTlsMaterial(hostPort: string, lookup: CertLookup = {}): Promise<TlsMaterial> {
  const dir = lookup.certDir ?? (await firstExisting(
    (lookup.certDirs ?? defaultCertDirs()).map((root) => `${root.replace(/\/+$/, "")}/${hostPort}`),
  ));
  if (dir === undefined) return { caCerts: [] };
  return await readCertDir(dir);
}

async function firstExisting(dirs: string[]): Promise<string | undefined> {
  for (const dir of dirs) {
    try {
      const info = await Deno.stat(dir);
      if (info.isDirectory) return dir;
    } catch (e) {
      // Missing or unreadable directories are skipped, as containers/image does.
      if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.PermissionDenied) continue;
      if (e instanceof Deno.errors.NotCapable) continue;
      throw new AirlockError("IO_ERROR", `reading certificate directory ${dir}: ${(e as Error).message}`, {
        cause: e,
      });
    }
  }
  return undefined;
}

async function readCertDir(dir: string): Promise<TlsMaterial> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isFile || entry.isSymlink) names.push(entry.name);
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { dir, caCerts: [] };
    throw new AirlockError("IO_ERROR", `reading certificate directory ${dir}: ${(e as Error).message}`, {
      cause: e,
    });
  }
  names.sort();
  const read = async (name: string) => {
    try {
      return await Deno.readTextFile(`${dir}/${name}`);
    } catch (e) {
      throw new AirlockError("IO_ERROR", `reading ${dir}/${name}: ${(e as Error).message}`, { cause: e });
    }
  };
  const caCerts: string[] = [];
  let clientCert: { cert: string; key: string } | undefined;
  for (const name of names) {
    if (name.endsWith(".crt")) {
      caCerts.push(await read(name));
    } else if (name.endsWith(".cert")) {
      const keyName = name.slice(0, -".cert".length) + ".key";
      if (!names.includes(keyName)) {
        throw new AirlockError("TLS_ERROR", `missing key ${keyName} for client certificate ${dir}/${name}`);
      }
      // Deno's HTTP client takes one client identity: the first pair (by name) is used.
      clientCert ??= { cert: await read(name), key: await read(keyName) };
    } else if (name.endsWith(".key")) {
      const certName = name.slice(0, -".key".length) + ".cert";
      if (!names.includes(certName)) {
        throw new AirlockError("TLS_ERROR", `missing client certificate ${certName} for key ${dir}/${name}`);
      }
    }
  }
  return { dir, caCerts, ...(clientCert ? { clientCert } : {}) };
}
