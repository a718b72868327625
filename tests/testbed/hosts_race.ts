/**
 * Signers on different hosts racing on the same images (issue 15 §1), shared by `tests/sign/sign_hosts_test.ts`
 * (a few runs, for CI) and `bench/concurrency_bench.ts` (≥ 30 trials per configuration, with and without CPU hogs).
 *
 * A run starts `processes` real `airlock sign` processes at the same moment, each with its own key and its own
 * `AIRLOCK_LOCK_DIR` (= its own host: only the registry is shared), on one list of fresh images with as many jobs
 * as images, so every process writes every tag of the run at once. Afterwards every `.sig` tag (index and
 * platforms) must hold one layer of each process that reported the image signed (exit 0, or the line not in its
 * failed list), each verified by exactly one key. A process may fail an image (exit 1, the line in its failed
 * list); it must never report `signed` for a layer that is not there. How many layers the confirmations found
 * removed and wrote again (`--debug`) is counted: the races were real.
 *
 * `keys.ts` and `signatures.ts` use airlock's own key generator and verifier, so this module is imported directly,
 * not through `mod.ts`.
 *
 * @module
 */
import { join } from "node:path";
import { parsePublicKeyPem, type PublicKey, verifySignature } from "../../core/signature/public_key.ts";
import { airlock, type CliResult } from "./cli.ts";
import { ATTACHMENTS_ON, writeList, writeRegistriesD } from "./files.ts";
import { pushMulti, pushSingle, type TestImage } from "./images.ts";
import { type KeyFiles, makeKey } from "./keys.ts";
import { startRegistry, type TestRegistry } from "./registry.ts";
import { b64decode, readSig, SIG_ANNOTATION, SIMPLE_SIGNING } from "./signatures.ts";
import { tempDir } from "./util.ts";

/** What {@linkcode raceHosts} runs. */
export interface RaceOptions {
  /** Signer processes per run (hosts). */
  readonly processes: number;
  /**
   * `multi`: multi-arch images, one repository each (3 tags per image, listed by each signer's census);
   * `single`: single-arch images, all tags of one repository per run (1 tag per image; the repository's listing
   * shared by all its lines).
   */
  readonly layout: "multi" | "single";
  /** Runs (each a fresh set of images, all processes started together). */
  readonly runs: number;
  /** Images per run (each image is one trial: all processes sign it at once). */
  readonly images: number;
  /** Whether two busy loops (one per core) load the CPU during a run; default: every run but the first. */
  readonly hogs?: (run: number) => boolean;
  /** Called after each run with the figures so far. */
  readonly onRun?: (run: number, soFar: RaceFigures) => void;
}

/** What a race found. */
export interface RaceFigures {
  /** Runs done. */
  runs: number;
  /** Images signed by all processes at once (runs × images). */
  trials: number;
  /** Signatures a process reported signed that are not in the registry afterwards (must be 0). */
  lost: number;
  /** Image results a process reported failed (allowed: never reported signed). */
  failedImages: number;
  /** Layers the confirmations found removed by another writer and wrote again. */
  repaired: number;
  /** Everything wrong: lost layers, duplicate layers of one key, unexpected exit codes. */
  problems: string[];
  /** A few failure lines (allowed ones), for the log. */
  failures: string[];
  /** Time of the runs without hogs, and with, in ms. */
  quietMs: number;
  hoggedMs: number;
}

/** Two busy loops (one per core), as separate processes; stopped by the returned function. */
export function startHogs(): () => Promise<void> {
  const hogs = Array.from(
    { length: 2 },
    () =>
      new Deno.Command("sh", { args: ["-c", "while :; do :; done"], stdout: "null", stderr: "null" }).spawn(),
  );
  return async () => {
    for (const h of hogs) {
      try {
        h.kill("SIGKILL");
      } catch { /* gone */ }
    }
    await Promise.all(hogs.map((h) => h.status));
  };
}

/** Runs the race described by `o` against a fresh registry and returns what it found (asserts nothing). */
export async function raceHosts(o: RaceOptions): Promise<RaceFigures> {
  await using tmp = await tempDir("airlock-hosts-race-");
  await using reg = await startRegistry();
  const rd = await writeRegistriesD(tmp.path, ATTACHMENTS_ON);
  const keys: KeyFiles[] = [];
  for (let k = 0; k < o.processes; k++) keys.push(await makeKey(tmp.path, `k${k}`));
  const publicKeys = keys.map((k) => parsePublicKeyPem(k.publicPem));
  const hogs = o.hogs ?? ((run: number) => run > 0);
  const f: RaceFigures = {
    runs: 0,
    trials: 0,
    lost: 0,
    failedImages: 0,
    repaired: 0,
    problems: [],
    failures: [],
    quietMs: 0,
    hoggedMs: 0,
  };
  for (let run = 0; run < o.runs; run++) {
    // The images of a run are pushed just before it (a fresh set each time).
    const names = Array.from(
      { length: o.images },
      (_, i) =>
        o.layout === "multi"
          ? { repo: `hosts/r${run}/img${i}`, tag: "v1" }
          : { repo: `hosts/r${run}`, tag: `v${i}` },
    );
    const seed = (i: number) => `hosts-${o.processes}-${o.layout}-${run}-${i}`;
    const images: TestImage[] = await Promise.all(
      names.map(({ repo, tag }, i) =>
        o.layout === "multi" ? pushMulti(reg, repo, tag, seed(i)) : pushSingle(reg, repo, tag, seed(i))
      ),
    );
    await writeList(
      join(tmp.path, `list-${run}.txt`),
      names.map(({ repo, tag }) => `${reg.host}/${repo}:${tag}`),
    );

    const hogged = hogs(run);
    const stopHogs = hogged ? startHogs() : undefined;
    const t0 = performance.now();
    let results: CliResult[];
    try {
      results = await Promise.all(keys.map((k, p) =>
        airlock([
          "--debug",
          "sign",
          "-f",
          `list-${run}.txt`,
          "-k",
          k.key,
          "--sigstore-passphrase-file",
          k.pass,
          "--tls-verify=false",
          "--registries.d",
          rd,
          "-j",
          String(Math.min(20, o.images)),
          "-o",
          `failed-${run}-${p}.txt`,
        ], {
          cwd: tmp.path,
          // Another "host": its own lock directory, so only the registry is shared.
          env: { AIRLOCK_LOCK_DIR: join(tmp.path, `locks-${run}-${p}`) },
          stripLockNotice: true,
        })
      ));
    } finally {
      await stopHogs?.();
    }
    if (hogged) f.hoggedMs += performance.now() - t0;
    else f.quietMs += performance.now() - t0;

    for (const r of results) {
      f.repaired += r.stdout.split("overwritten by a concurrent writer").length - 1;
      if (f.failures.length < 3) {
        f.failures.push(
          ...`${r.stdout}\n${r.stderr}`.split("\n").filter((l) => l.includes("error occurred when sign"))
            .slice(
              0,
              3 - f.failures.length,
            ),
        );
      }
    }
    // Which lines each process reported failed (everything else it reported signed).
    const failedBy = await Promise.all(results.map(async (r, p) => {
      if (r.code === 0) return new Set<string>();
      if (r.code !== 1) f.problems.push(`run ${run}: process ${p} exited ${r.code}: ${r.stderr.slice(-800)}`);
      const text = await Deno.readTextFile(join(tmp.path, `failed-${run}-${p}.txt`)).catch(() => "");
      return new Set(text.split("\n").map((l) => l.trim()).filter((l) => l !== ""));
    }));
    for (const [i, img] of images.entries()) {
      const { repo, tag } = names[i];
      const line = `${reg.host}/${repo}:${tag}`;
      const reporters = keys.map((_, p) => p).filter((p) => !failedBy[p].has(line));
      f.failedImages += o.processes - reporters.length;
      for (const m of img.manifests) {
        const signers = await signersOf(reg, repo, m.digest, publicKeys);
        for (const p of reporters) {
          if (!signers.includes(p)) {
            f.lost++;
            f.problems.push(`run ${run}: ${repo}@${m.digest}: process ${p} reported signed, layer missing`);
          }
        }
        const counts = new Map<number, number>();
        for (const s of signers) counts.set(s, (counts.get(s) ?? 0) + 1);
        for (const [s, n] of counts) {
          if (n > 1) f.problems.push(`run ${run}: ${repo}@${m.digest}: key ${s} signed ${n} times`);
        }
      }
    }
    f.runs++;
    f.trials += o.images;
    o.onRun?.(run, f);
  }
  return f;
}

/** The processes (indexes into `keys`) whose signature layer is in the `.sig` tag of `digest`. */
async function signersOf(
  reg: TestRegistry,
  repo: string,
  digest: string,
  keys: PublicKey[],
): Promise<number[]> {
  const sig = await readSig(reg, repo, digest);
  const out: number[] = [];
  for (const l of sig?.layers ?? []) {
    if (l.desc.mediaType !== SIMPLE_SIGNING) continue;
    const s = b64decode(l.desc.annotations?.[SIG_ANNOTATION] ?? "");
    for (let k = 0; k < keys.length; k++) {
      if (await verifySignature(keys[k], l.payload, s)) out.push(k);
    }
  }
  return out;
}
