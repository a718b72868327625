/**
 * The real `kubectl` (Debian `kubernetes-client`, installed by `scripts/ensure_deps.sh`) for the admission tests:
 * applying a webhook's JSON Patch with `kubectl patch --local --type=json`, and reading YAML as kubectl reads it.
 * `AIRLOCK_KUBECTL` names another binary. When none can run, {@linkcode kubectlMissing} says why, and the tests that
 * need it print `skipped: …` (they are then not run, and say so).
 *
 * @module
 */
import { join } from "node:path";

/** The kubectl binary used. */
export const KUBECTL: string = Deno.env.get("AIRLOCK_KUBECTL") ?? "kubectl";

let probed: Promise<string | undefined> | undefined;

/**
 * `undefined` when kubectl runs here, else why not (checked once).
 *
 * @example
 * ```ts
 * const why = await kubectlMissing();
 * if (why) console.log(`skipped: ${why}`);
 * ```
 */
export function kubectlMissing(): Promise<string | undefined> {
  probed ??= (async () => {
    try {
      const out = await new Deno.Command(KUBECTL, {
        args: ["version", "--client"],
        stdout: "piped",
        stderr: "piped",
      })
        .output();
      return out.code === 0 ? undefined : `${KUBECTL} version --client exited ${out.code}`;
    } catch (e) {
      return `no ${KUBECTL} (Debian package kubernetes-client): ${e instanceof Error ? e.message : e}`;
    }
  })();
  return probed;
}

/** One kubectl run. */
export interface KubectlResult {
  /** Exit code. */
  readonly code: number;
  /** Standard output. */
  readonly stdout: string;
  /** Standard error. */
  readonly stderr: string;
}

/**
 * Runs kubectl with no cluster configured (an empty kubeconfig, HOME in `dir`), `stdin` piped in.
 *
 * @example
 * ```ts
 * const r = await kubectl(dir, ["patch", "--local", "-f", "pod.json", "--type=json", "-p", patch, "-o", "json"]);
 * ```
 */
export async function kubectl(
  dir: string,
  args: string[],
  o: { stdin?: string; server?: string } = {},
): Promise<KubectlResult> {
  const kubeconfig = join(dir, "kubeconfig");
  await Deno.writeTextFile(
    kubeconfig,
    o.server === undefined ? "apiVersion: v1\nkind: Config\n" : [
      "apiVersion: v1",
      "kind: Config",
      "clusters: [{name: fake, cluster: {server: " + JSON.stringify(o.server) + "}}]",
      "users: [{name: u, user: {}}]",
      "contexts: [{name: fake, context: {cluster: fake, user: u}}]",
      "current-context: fake",
      "",
    ].join("\n"),
  );
  const child = new Deno.Command(KUBECTL, {
    args: [...args],
    env: { HOME: dir, KUBECONFIG: kubeconfig, PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" },
    clearEnv: true,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(o.stdin ?? ""));
  await w.close();
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/**
 * Applies `patch` (RFC 6902) to `object` with `kubectl patch --local --type=json` and returns the result.
 *
 * @throws {Error} when kubectl refuses the patch (with its stderr).
 *
 * @example
 * ```ts
 * const patched = await kubectlPatch(dir, deployment, patchOf(answer));
 * ```
 */
export async function kubectlPatch(
  dir: string,
  object: unknown,
  patch: unknown,
): Promise<Record<string, unknown>> {
  const file = join(dir, `object-${crypto.randomUUID()}.json`);
  await Deno.writeTextFile(file, JSON.stringify(object));
  const r = await kubectl(dir, [
    "patch",
    "--local",
    "--type=json",
    "-f",
    file,
    "-p",
    JSON.stringify(patch),
    "-o",
    "json",
  ]);
  if (r.code !== 0) throw new Error(`kubectl patch failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}
