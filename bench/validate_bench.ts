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
import {
  floorTable,
  measureSign,
  measureValidate,
  prepareSigning,
  pushImages,
  validateFloor,
} from "./bench_util.ts";

const N = Number(Deno.env.get("BENCH_IMAGES") ?? 200);
const JOBS = (Deno.env.get("BENCH_JOBS") ?? "1,4,8").split(",").map(Number);

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
    const floor = await validateFloor(registry.url, repos, j);
    const run = await measureValidate(work, "list.txt", j);
    table.add(j, 2 * N, floor, run);
  }
  table.print();
  console.log(
    "mf/s = platform manifests validated per second; airlock's time includes process start (~0.2 s).",
  );
} finally {
  await Deno.remove(work, { recursive: true });
}
