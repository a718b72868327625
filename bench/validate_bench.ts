/**
 * Validation benchmark: `airlock sign validate` over N multi-arch images (2 platforms each = 2N platform
 * signatures) signed by `airlock sign`, with `-j 1`, `-j 4` and `-j 8`; prints wall time, manifests per second and
 * peak memory next to the floor measured in the same run: a bare loop doing only the GETs validation needs (the
 * index by tag, then per platform the `.sig` manifest and its payload blob, platforms of one image in parallel,
 * `jobs` images in flight). Prints figures; asserts nothing. `BENCH_IMAGES` sets N (default 200), `BENCH_JOBS`
 * the job counts.
 *
 * @module
 */
import { buildMultiArchImage, startRegistry, writeList } from "../tests/testbed/mod.ts";
import { runPool } from "../core/pool.ts";
import { floorTable, measureSign, prepareSigning, pushImages, runMeasured, SIGNING } from "./bench_util.ts";

const N = Number(Deno.env.get("BENCH_IMAGES") ?? 200);
const JOBS = (Deno.env.get("BENCH_JOBS") ?? "1,4,8").split(",").map(Number);
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const INDEX_ACCEPT =
  "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json";

await using registry = await startRegistry();
const work = await Deno.makeTempDir({ prefix: "airlock-validate-bench-" });
try {
  console.log(
    `registry ${registry.host}; ${N} multi-arch images (${2 * N} platform signatures); jobs ${
      JOBS.join(", ")
    }`,
  );
  const repos = Array.from({ length: N }, (_, i) => `vbench/img${i}`);
  const t0 = performance.now();
  await pushImages(registry, repos, (seed) => buildMultiArchImage({ seed }));
  await writeList(`${work}/list.txt`, repos.map((r) => `${registry.host}/${r}:v1`));
  await prepareSigning(work);
  const signed = await measureSign(work, "list.txt", 8);
  if (signed.code !== 0) throw new Error("signing failed");
  console.log(`pushed and signed ${N} images in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const table = floorTable("mf/s");
  for (const j of JOBS) {
    const floor = await floorLoop(registry.url, repos, j);
    const run = await runMeasured([
      "sign",
      "validate",
      "-f",
      "list.txt",
      "-p",
      SIGNING.pub,
      "--registries.d",
      SIGNING.registriesD,
      "--tls-verify=false",
      "-j",
      String(j),
    ], work);
    table.add(j, 2 * N, floor, run);
  }
  table.print();
  console.log(
    "mf/s = platform manifests validated per second; airlock's time includes process start (~0.2 s).",
  );
} finally {
  await Deno.remove(work, { recursive: true });
}

/** The floor: the index by tag, then per platform its `.sig` manifest and payload blob. Returns seconds. */
async function floorLoop(base: string, repos: string[], jobs: number): Promise<number> {
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
      ) as {
        layers: { digest: string }[];
      };
      for (const l of sig.layers) await get(`/v2/${repo}/blobs/${l.digest}`);
    }));
  });
  return (performance.now() - t0) / 1000;
}
