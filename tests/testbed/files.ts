/**
 * Files the CLI reads, written for a test or benchmark: registries.d directories, image lists, containers auth
 * files.
 *
 * @module
 */
import { join } from "node:path";

/** hangar's shipped registries.d content: sigstore attachments on for every registry. */
export const ATTACHMENTS_ON = "default-docker:\n  use-sigstore-attachments: true\n";

/**
 * Writes a registries.d directory `<parent>/<name>` with one `<file>` holding `yaml`; returns its path.
 *
 * @example
 * ```ts
 * const rd = await writeRegistriesD(tmp.path, ATTACHMENTS_ON);
 * ```
 */
export async function writeRegistriesD(
  parent: string,
  yaml: string,
  name = "registries.d",
  file = "default.yaml",
): Promise<string> {
  const dir = join(parent, name);
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(join(dir, file), yaml);
  return dir;
}

/**
 * Writes an image list file (lines joined with `\n`, trailing newline); returns its path.
 *
 * @example
 * ```ts
 * await writeList(join(tmp.path, "list.txt"), [`${reg.host}/a/b:v1`]);
 * ```
 */
export async function writeList(path: string, lines: string[]): Promise<string> {
  await Deno.writeTextFile(path, lines.join("\n") + "\n");
  return path;
}

/**
 * Writes a containers auth.json with `user:password` for each host; returns its path.
 *
 * @example
 * ```ts
 * const auth = await writeAuthFile(tmp.path, { [reg.host]: ["alice", "secret"] });
 * ```
 */
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

/** Whether `path` exists (anything `Deno.stat` can see). */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}
