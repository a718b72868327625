/**
 * Helpers shared by the benchmarks: running the real CLI (the runner of `tests/testbed/cli.ts`) while sampling
 * its peak resident memory, the signing set-up (key, passphrase, registries.d), pushing many images, hex, and
 * table printers.
 *
 * @module
 */
import { generateKeyPair, keyPairPaths, writeKeyPair } from "../backends/keygen.ts";
import { runPool } from "../core/pool.ts";
import { RegistryClient } from "../core/registry/client.ts";
import {
  airlock,
  ATTACHMENTS_ON,
  pushImage,
  signArgs,
  type TestImage,
  type TestRegistry,
  validateArgs,
  writeRegistriesD,
} from "../tests/testbed/mod.ts";

/** What {@linkcode runMeasured} measured. */
export interface MeasuredRun {
  /** Wall time in seconds, process start included. */
  readonly seconds: number;
  /** Peak resident memory (`VmHWM` of `/proc/<pid>/status`, sampled every 20 ms) in MiB. */
  readonly peakMiB: number;
  /** Exit code. */
  readonly code: number;
  /** Standard error, decoded. */
  readonly stderr: string;
}

/**
 * Runs `airlock ARGS…` in `cwd` with `HOME=cwd` and a clean environment, and measures wall time and peak memory.
 * Prints the tail of stderr when the run fails.
 *
 * @example
 * ```ts
 * const run = await runMeasured(["sign", "-f", "list.txt"], work);
 * ```
 */
export async function runMeasured(args: string[], cwd: string): Promise<MeasuredRun> {
  const r = await airlock(args, { cwd, timeoutMs: 0, measureMemory: true, stripLockNotice: true });
  if (r.code !== 0) console.error(r.stderr.slice(-2000));
  return { seconds: r.ms / 1000, peakMiB: r.peakRss / (1024 * 1024), code: r.code, stderr: r.stderr };
}

/** The files {@linkcode prepareSigning} writes, relative to the work directory. */
export const SIGNING = {
  /** Encrypted private key. */
  key: "bench.key",
  /** Public key. */
  pub: "bench.pub",
  /** Passphrase file. */
  pass: "pass",
  /** registries.d directory (attachments on). */
  registriesD: "registries.d",
} as const;

/**
 * Writes a fresh key pair (`bench.key`, `bench.pub`, passphrase "bench" in `pass`) and a registries.d directory
 * enabling sigstore attachments into `work` (see {@linkcode SIGNING}).
 */
export async function prepareSigning(work: string): Promise<void> {
  await writeKeyPair(await generateKeyPair({ passphrase: "bench" }), keyPairPaths(`${work}/bench`));
  await Deno.writeTextFile(`${work}/${SIGNING.pass}`, "bench\n");
  await writeRegistriesD(work, ATTACHMENTS_ON, SIGNING.registriesD, "d.yaml");
}

/**
 * `airlock sign -f LIST` with the files of {@linkcode prepareSigning}, `-j jobs`, measured.
 *
 * @example
 * ```ts
 * const run = await measureSign(work, "list.txt", 8);
 * ```
 */
export function measureSign(work: string, list: string, jobs: number): Promise<MeasuredRun> {
  return runMeasured(
    signArgs({ list, jobs, key: SIGNING, registriesD: SIGNING.registriesD, insecure: true }),
    work,
  );
}

/** `airlock sign validate -f LIST` with the public key of {@linkcode prepareSigning}, `-j jobs`, measured. */
export function measureValidate(work: string, list: string, jobs: number): Promise<MeasuredRun> {
  return runMeasured(
    validateArgs({ list, jobs, pub: SIGNING.pub, registriesD: SIGNING.registriesD, insecure: true }),
    work,
  );
}

/**
 * Builds (with `build(repository)`) and pushes one image per repository as `:v1`, 8 at a time; returns the
 * bytes of all blobs pushed.
 *
 * @example
 * ```ts
 * await pushImages(registry, repos, (seed) => buildMultiArchImage({ seed }));
 * ```
 */
export async function pushImages(
  registry: Pick<TestRegistry, "host">,
  repos: string[],
  build: (repository: string) => Promise<TestImage>,
): Promise<number> {
  const client = new RegistryClient({ tlsVerify: false });
  let bytes = 0;
  try {
    await runPool(repos, 8, async (repository) => {
      const img = await build(repository);
      for (const b of img.blobs.values()) bytes += b.length;
      await pushImage(img, { registry: registry.host, repository }, "v1", client);
    });
  } finally {
    client.close();
  }
  return bytes;
}

/**
 * Lowercase hex of bytes.
 *
 * @example
 * ```ts
 * hex(new Uint8Array([1, 255])); // "01ff"
 * ```
 */
export function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Prints a table with right-aligned columns.
 *
 * @example
 * ```ts
 * printTable(["jobs", "s"], [["1", "2.5"]]);
 * ```
 */
export function printTable(head: string[], rows: string[][]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i])).join("  ");
  console.log(line(head));
  for (const r of rows) console.log(line(r));
}

/**
 * The table of a floor-vs-airlock benchmark: per job count, the floor's and airlock's seconds and `unit` per
 * second (over `count` items), their ratio, airlock's peak memory and exit code. When a second floor is given
 * (`reads`: the floor plus the reads airlock is required to make), its seconds and airlock's ratio to it are
 * printed too.
 *
 * @example
 * ```ts
 * const table = floorTable("sig/s");
 * table.add(8, 600, floorSeconds, run);
 * table.print();
 * ```
 */
export function floorTable(unit: string): {
  add(jobs: number, count: number, floor: number, run: MeasuredRun, reads?: number): void;
  print(): void;
} {
  const rows: string[][] = [];
  let withReads = false;
  return {
    add(jobs, count, floor, run, reads) {
      withReads ||= reads !== undefined;
      rows.push([
        String(jobs),
        floor.toFixed(2),
        (count / floor).toFixed(1),
        ...(reads === undefined ? [] : [reads.toFixed(2)]),
        run.seconds.toFixed(2),
        (count / run.seconds).toFixed(1),
        (run.seconds / floor).toFixed(2),
        ...(reads === undefined ? [] : [(run.seconds / reads).toFixed(2)]),
        run.peakMiB.toFixed(0),
        String(run.code),
      ]);
    },
    print() {
      printTable(
        [
          "jobs",
          "floor s",
          `floor ${unit}`,
          ...(withReads ? ["floor+reads s"] : []),
          "airlock s",
          `airlock ${unit}`,
          "airlock/floor",
          ...(withReads ? ["airlock/(floor+reads)"] : []),
          "peak MiB",
          "exit",
        ],
        rows,
      );
    },
  };
}

/** The media type of an OCI image manifest (what a `.sig` tag holds). */
export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
/** The `Accept` of a read by tag of a multi-arch image's index. */
export const INDEX_ACCEPT =
  "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json";

/** The validation floor: the index by tag, then per platform its `.sig` manifest and payload blob. Seconds. */
export async function validateFloor(base: string, repos: string[], jobs: number): Promise<number> {
  const get = async (path: string, accept?: string): Promise<Uint8Array> => {
    const res = await fetch(`${base}${path}`, accept ? { headers: { accept } } : {});
    if (res.status !== 200) throw new Error(`GET ${path}: ${res.status}`);
    return new Uint8Array(await res.arrayBuffer());
  };
  const json = (b: Uint8Array) => JSON.parse(new TextDecoder().decode(b));
  const t0 = performance.now();
  await runPool(repos, jobs, async (repo) => {
    const index = json(await get(`/v2/${repo}/manifests/v1`, INDEX_ACCEPT)) as {
      manifests: { digest: string }[];
    };
    await Promise.all(index.manifests.map(async (m) => {
      const sig = json(
        await get(`/v2/${repo}/manifests/${m.digest.replace(":", "-")}.sig`, OCI_MANIFEST),
      ) as { layers: { digest: string }[] };
      for (const l of sig.layers) await get(`/v2/${repo}/blobs/${l.digest}`);
    }));
  });
  return (performance.now() - t0) / 1000;
}
