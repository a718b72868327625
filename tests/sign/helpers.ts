/**
 * Helpers shared by the `airlock sign` tests: running the real CLI in a child process with a clean environment,
 * key pairs made once, registries.d directories, and reading `.sig` tags back with plain `fetch` (never through
 * airlock's own client), checking every signature with airlock's verifier and with `openssl`.
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { generateKeyPair } from "../../backends/keygen.ts";
import { parsePublicKeyPem, verifySignature } from "../../core/signature/public_key.ts";
import { buildImage, buildMultiArchImage, pushImage, rawSink, type TestImage } from "../testbed/mod.ts";
import type { TestRegistry } from "../testbed/mod.ts";

/** Absolute path of `cli.ts`. */
export const CLI: string = fileURLToPath(new URL("../../cli.ts", import.meta.url));

/** The signature annotation key containers/image and cosign write. */
export const SIG_ANNOTATION = "dev.cosignproject.cosign/signature";
/** Media type of a signature layer. */
export const SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json";

const dec = new TextDecoder();
const enc = new TextEncoder();

let denoDir: string | undefined;

/**
 * The DENO_DIR of this process: the children get a temporary HOME, and Deno's cache would otherwise move
 * there (every child would download its npm packages again).
 */
async function currentDenoDir(): Promise<string> {
  if (denoDir !== undefined) return denoDir;
  const out = await new Deno.Command(Deno.execPath(), { args: ["info", "--json"], stdout: "piped" }).output();
  denoDir = (JSON.parse(dec.decode(out.stdout)) as { denoDir: string }).denoDir;
  return denoDir;
}

/** What a CLI run printed and returned. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Wall time in milliseconds. */
  ms: number;
}

/** Options of {@linkcode runCli}. */
export interface RunCliOptions {
  /** Working directory (also HOME, so no user configuration of this machine is read). */
  cwd: string;
  /** Extra environment variables (e.g. `COSIGN_PASSWORD`); nothing else is inherited but PATH. */
  env?: Record<string, string>;
}

/**
 * Runs `deno run -A cli.ts <args>` with a clean environment: HOME = `cwd`, PATH, DENO_DIR, `NO_COLOR`, and
 * `opts.env`. `COSIGN_PASSWORD` and the machine's HOME are never passed on.
 *
 * @example
 * ```ts
 * const r = await runCli(["sign", "-f", "list.txt", ...], { cwd: tmp.path });
 * ```
 */
export async function runCli(args: string[], opts: RunCliOptions): Promise<CliResult> {
  const t = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    cwd: opts.cwd,
    clearEnv: true,
    env: {
      HOME: opts.cwd,
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      DENO_DIR: await currentDenoDir(),
      NO_COLOR: "1",
      ...opts.env,
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
    ms: performance.now() - t,
  };
}

/** A key pair on disk. */
export interface KeyFiles {
  /** Encrypted private key file. */
  key: string;
  /** Public key PEM file. */
  pub: string;
  /** Passphrase file (no trailing newline). */
  pass: string;
  /** The passphrase. */
  passphrase: string;
  /** The public key PEM. */
  publicPem: string;
}

/**
 * Generates an ECDSA P-256 key pair with scrypt N=32768 (the cheapest parameters containers/image accepts)
 * and writes `<name>.key`, `<name>.pub`, `<name>.pass` into `dir`.
 *
 * @example
 * ```ts
 * const k = await makeKey(tmp.path, "k1");
 * ```
 */
export async function makeKey(dir: string, name: string, passphrase?: string): Promise<KeyFiles> {
  const pass = passphrase ?? `airlock-test-secret-${name}-${crypto.randomUUID().slice(0, 8)}`;
  const pair = await generateKeyPair({
    passphrase: pass,
    scryptN: 32768,
    pemType: "ENCRYPTED COSIGN PRIVATE KEY",
  });
  const files = {
    key: join(dir, `${name}.key`),
    pub: join(dir, `${name}.pub`),
    pass: join(dir, `${name}.pass`),
  };
  await Deno.writeTextFile(files.key, pair.privatePem);
  await Deno.writeTextFile(files.pub, pair.publicPem);
  await Deno.writeTextFile(files.pass, pass);
  return { ...files, passphrase: pass, publicPem: pair.publicPem };
}

/**
 * Writes a registries.d directory `<parent>/<name>` with one `default.yaml` holding `yaml`; returns its path.
 *
 * @example
 * ```ts
 * const rd = await writeRegistriesD(tmp.path, "default-docker:\n  use-sigstore-attachments: true\n");
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

/** hangar's shipped registries.d content. */
export const ATTACHMENTS_ON = "default-docker:\n  use-sigstore-attachments: true\n";

/** One layer of a `.sig` manifest, read back. */
export interface SigLayer {
  /** The descriptor as JSON (parsed). */
  desc: { mediaType: string; digest: string; size: number; annotations?: Record<string, string> };
  /** The payload blob bytes. */
  payload: Uint8Array;
  /** The parsed payload (simple-signing layers only). */
  json?: {
    critical: { identity: { "docker-reference": string }; image: { "docker-manifest-digest": string } };
    optional: Record<string, unknown>;
  };
}

/** A `.sig` tag read back with plain `fetch`. */
export interface SigRead {
  manifestBytes: Uint8Array;
  manifestText: string;
  manifest: {
    schemaVersion: number;
    mediaType: string;
    config: { mediaType: string; digest: string; size: number };
    layers: SigLayer["desc"][];
  };
  contentType: string | null;
  configBytes: Uint8Array;
  layers: SigLayer[];
}

/** Something that fetches registry paths (a TestRegistry or a TestProxy). */
export interface Fetcher {
  fetch(path: string, init?: RequestInit): Promise<Response>;
}

/** `sha256-<hex>.sig` of a digest. */
export function sigTag(digest: string): string {
  return digest.replace(":", "-") + ".sig";
}

/**
 * Reads the `.sig` tag of `digest` in `repo`; `undefined` when the registry answers 404. Checks that every blob
 * hashes to its digest.
 *
 * @example
 * ```ts
 * const sig = await readSig(reg, "a/single", digest);
 * ```
 */
export async function readSig(reg: Fetcher, repo: string, digest: string): Promise<SigRead | undefined> {
  const res = await reg.fetch(`/v2/${repo}/manifests/${sigTag(digest)}`, {
    headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
  });
  if (res.status === 404) {
    await res.body?.cancel();
    return undefined;
  }
  if (res.status !== 200) throw new Error(`GET .sig of ${repo}@${digest}: ${res.status} ${await res.text()}`);
  const manifestBytes = new Uint8Array(await res.arrayBuffer());
  const manifestText = dec.decode(manifestBytes);
  const manifest = JSON.parse(manifestText) as SigRead["manifest"];
  const configBytes = await getBlob(reg, repo, manifest.config.digest);
  const layers: SigLayer[] = [];
  for (const desc of manifest.layers ?? []) {
    const payload = await getBlob(reg, repo, desc.digest);
    layers.push({
      desc,
      payload,
      json: desc.mediaType === SIMPLE_SIGNING ? JSON.parse(dec.decode(payload)) : undefined,
    });
  }
  return {
    manifestBytes,
    manifestText,
    manifest,
    contentType: res.headers.get("content-type"),
    configBytes,
    layers,
  };
}

/** GETs a blob and checks its digest. */
export async function getBlob(reg: Fetcher, repo: string, digest: string): Promise<Uint8Array> {
  const res = await reg.fetch(`/v2/${repo}/blobs/${digest}`);
  if (res.status !== 200) throw new Error(`GET blob ${digest}: ${res.status} ${await res.text()}`);
  const bytes = new Uint8Array(await res.arrayBuffer());
  const got = await sha256(bytes);
  if (got !== digest) throw new Error(`blob ${digest} hashes to ${got}`);
  return bytes;
}

/** `sha256:<hex>`. */
export async function sha256(bytes: Uint8Array): Promise<string> {
  const h = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return "sha256:" + Array.from(h, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The tags of a repository (`[]` when it does not exist). */
export async function listTags(reg: Fetcher, repo: string): Promise<string[]> {
  const res = await reg.fetch(`/v2/${repo}/tags/list`);
  if (res.status === 404) {
    await res.body?.cancel();
    return [];
  }
  if (res.status !== 200) throw new Error(`tags/list ${repo}: ${res.status}`);
  return ((await res.json()) as { tags: string[] | null }).tags ?? [];
}

/**
 * Every `.sig` manifest of the given repositories: `repo:tag` → manifest text (to compare before/after).
 *
 * @example
 * ```ts
 * const before = await sigSnapshot(reg, ["a/single"]);
 * ```
 */
export async function sigSnapshot(reg: Fetcher, repos: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const repo of repos) {
    for (const tag of (await listTags(reg, repo)).filter((t) => t.endsWith(".sig")).sort()) {
      const res = await reg.fetch(`/v2/${repo}/manifests/${tag}`, {
        headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
      });
      out.set(`${repo}:${tag}`, await res.text());
    }
  }
  return out;
}

/** Standard base64 decoding. */
export function b64decode(s: string): Uint8Array {
  return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
}

/**
 * Verifies a signature layer with airlock's verifier (`core/signature/public_key.ts`) AND with
 * `openssl dgst -sha256 -verify`; returns both answers.
 *
 * @example
 * ```ts
 * assertEquals(await verifyLayer(pubPem, layer), { airlock: true, openssl: true });
 * ```
 */
export async function verifyLayer(
  publicPem: string,
  layer: SigLayer,
  workDir: string,
): Promise<{ airlock: boolean; openssl: boolean }> {
  const sig = b64decode(layer.desc.annotations?.[SIG_ANNOTATION] ?? "");
  const airlock = await verifySignature(parsePublicKeyPem(publicPem), layer.payload, sig);
  return { airlock, openssl: await opensslVerify(publicPem, layer.payload, sig, workDir) };
}

let opensslSeq = 0;

/** `openssl dgst -sha256 -verify pub.pem -signature sig.der payload`: true on "Verified OK". */
export async function opensslVerify(
  publicPem: string,
  payload: Uint8Array,
  sigDer: Uint8Array,
  workDir: string,
): Promise<boolean> {
  const dir = join(workDir, `openssl-${++opensslSeq}`);
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(join(dir, "pub.pem"), publicPem);
  await Deno.writeFile(join(dir, "sig.der"), sigDer);
  await Deno.writeFile(join(dir, "payload"), payload);
  const out = await new Deno.Command("openssl", {
    args: ["dgst", "-sha256", "-verify", "pub.pem", "-signature", "sig.der", "payload"],
    cwd: dir,
    stdout: "piped",
    stderr: "piped",
  }).output();
  await Deno.remove(dir, { recursive: true });
  return out.code === 0 && dec.decode(out.stdout).trim() === "Verified OK";
}

/** Pushes a single-arch image (seeded) to `repo:tag`; returns it. */
export async function pushSingle(
  reg: TestRegistry,
  repo: string,
  tag: string | undefined,
  seed: string,
  platform = "linux/amd64",
): Promise<TestImage> {
  const img = await buildImage({ seed, platform });
  await pushImage(
    img,
    { registry: reg.host, repository: repo },
    tag,
    rawSink(reg.url, undefined, reg.client),
  );
  return img;
}

/** Pushes a multi-arch image (seeded) to `repo:tag`; returns it. */
export async function pushMulti(
  reg: TestRegistry,
  repo: string,
  tag: string | undefined,
  seed: string,
  opts: { platforms?: string[]; omitPlatform?: number[]; format?: "oci" | "docker" } = {},
): Promise<TestImage> {
  const img = await buildMultiArchImage({ seed, ...opts });
  await pushImage(
    img,
    { registry: reg.host, repository: repo },
    tag,
    rawSink(reg.url, undefined, reg.client),
  );
  return img;
}

/** Writes an image list file (lines joined with `\n`, trailing newline). */
export async function writeList(path: string, lines: string[]): Promise<string> {
  await Deno.writeFile(path, enc.encode(lines.join("\n") + "\n"));
  return path;
}

/** Asserts that no secret appears in any output of a run. */
export function leaksSecret(r: CliResult, secrets: string[]): string | undefined {
  return secrets.find((s) => s !== "" && (r.stdout.includes(s) || r.stderr.includes(s)));
}
