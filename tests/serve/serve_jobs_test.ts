/**
 * Jobs of `airlock serve` over real HTTP: concurrent sign requests (distinct images, and several for one image
 * with different annotations, whose signatures must all survive), the server-sent event stream of a job (live, replayed after
 * the end, resumed with `Last-Event-ID`), `/healthz`, `/metrics` (counters move with the work done),
 * `/openapi.json`, and 404s.
 *
 * @module
 */
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { pushMulti, pushSingle, startRegistry, tempDir } from "../testbed/mod.ts";
import { readSse, startService } from "./helpers.ts";
import { readSig, verifyLayer } from "../testbed/signatures.ts";
import type { JobView } from "../../server/jobs.ts";

function metric(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(series + " "));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

Deno.test("serve: concurrent jobs, event streams, health, metrics, OpenAPI", async (t) => {
  await using tmp = await tempDir("airlock-serve-jobs-");
  await using reg = await startRegistry();
  await using svc = await startService({ dir: tmp.path, tokenNames: ["ci", "ops"] });
  const h = reg.host;

  await t.step("/healthz needs no token; /openapi.json lists the paths", async () => {
    const health = await svc.call("/healthz", { as: null });
    assertEquals([health.status, await health.json()], [200, { status: "ok" }]);
    const res = await svc.call("/openapi.json", { as: null });
    assertEquals(res.status, 200);
    const doc = JSON.parse(await res.text());
    assertEquals(doc.openapi, "3.1.0");
    for (
      const p of [
        "/v1/sign",
        "/v1/validate",
        "/v1/verify",
        "/v1/jobs",
        "/v1/jobs/{id}",
        "/v1/jobs/{id}/events",
        "/v1/public-key",
        "/healthz",
        "/metrics",
      ]
    ) assert(p in doc.paths, `${p} in the OpenAPI document`);
    assertEquals(doc.components.schemas.SignRequest.additionalProperties, false);
    assertEquals(
      Object.keys(doc.components.schemas.SignRequest.properties).sort(),
      ["annotations", "arch", "force", "images", "jobs", "os", "signIndex", "timeout"],
    );
  });

  const before = await (await svc.call("/metrics")).text();

  await t.step("12 concurrent jobs: 8 distinct images and 4 different signatures of one image", async () => {
    const singles = await Promise.all(
      Array.from({ length: 8 }, (_, i) => pushSingle(reg, `conc/app${i}`, "v1", `serve-conc-${i}`)),
    );
    const shared = await pushSingle(reg, "conc/shared", "v1", "serve-conc-shared");
    const requests = [
      ...singles.map((_, i) => ({ images: [`${h}/conc/app${i}:v1`] })),
      // distinct payloads (the file key signs deterministically: equal payloads give equal layers)
      ...Array.from(
        { length: 4 },
        (_, i) => ({ images: [`${h}/conc/shared:v1`], annotations: { n: String(i) } }),
      ),
    ];
    const answers = await Promise.all(requests.map((r, i) => svc.post("/v1/sign", r, i % 2 ? "ops" : "ci")));
    assertEquals(answers.map((a) => a.status), requests.map(() => 202));
    assertEquals(new Set(answers.map((a) => a.body.id)).size, 12);
    const jobs = await Promise.all(answers.map((a) => svc.wait(a.body.id as string)));
    assertEquals(
      jobs.map((j) => j.state),
      jobs.map(() => "succeeded"),
      JSON.stringify(jobs.map((j) => j.images)),
    );
    assertEquals(jobs.slice(0, 8).map((j) => j.images[0].digest), singles.map((s) => s.top.digest));
    for (const [i, s] of singles.entries()) {
      const sig = await readSig(reg, `conc/app${i}`, s.top.digest);
      assertEquals(sig?.layers.length, 1);
      assertEquals(await verifyLayer(svc.key!.publicPem, sig!.layers[0], tmp.path), {
        airlock: true,
        openssl: true,
      });
    }
    // 4 concurrent appends to one .sig tag: none lost
    const sig = await readSig(reg, "conc/shared", shared.top.digest);
    assertEquals(sig?.layers.length, 4);
    assertEquals(
      new Set(sig!.layers.map((l) => l.desc.annotations?.["dev.cosignproject.cosign/signature"])).size,
      4,
    );
    const list = (await (await svc.call("/v1/jobs?limit=100")).json()).jobs as JobView[];
    assertEquals(list.length, 12);
    assertEquals(new Set(list.map((j) => j.submittedBy)), new Set(["ci", "ops"]));
  });

  await t.step("/metrics: counters moved by the work done", async () => {
    const after = await (await svc.call("/metrics")).text();
    assertEquals(metric(after, "airlock_signatures_total") - metric(before, "airlock_signatures_total"), 12);
    assertEquals(metric(after, 'airlock_jobs_total{operation="sign",state="succeeded"}'), 12);
    assertEquals(metric(after, 'airlock_images_total{operation="sign",status="signed"}'), 12);
    assert(metric(after, 'airlock_http_requests_total{method="POST",route="/v1/sign",status="202"}') >= 12);
    assert(metric(after, 'airlock_http_request_duration_seconds_count{route="/v1/sign"}') >= 12);
    assertMatch(after, /airlock_http_request_duration_seconds_bucket\{route="\/v1\/sign",le="\+Inf"\} \d+/);
    assertMatch(after, /# TYPE airlock_http_request_duration_seconds histogram/);
    assertEquals(metric(after, "airlock_jobs_running"), 0);
    assertEquals(metric(after, "airlock_tokens"), 2);
  });

  await t.step("the event stream: state, one event per image, done; replayed; resumable", async () => {
    const multi = await pushMulti(reg, "sse/multi", "v1", "serve-sse-multi");
    const one = await pushSingle(reg, "sse/one", "v1", "serve-sse-one");
    const submitted = await svc.post("/v1/sign", {
      images: [`${h}/sse/one:v1`, `${h}/sse/multi:v1`, `${h}/sse/missing:v1`],
      jobs: 1,
    });
    assertEquals(submitted.status, 202);
    const id = submitted.body.id as string;
    // opened right away: follows the job live until `done`
    const res = await svc.call(`/v1/jobs/${id}/events`);
    assertEquals(res.status, 200);
    assertEquals(res.headers.get("content-type"), "text/event-stream");
    const live = await readSse(res);
    assertEquals(live.map((e) => e.event), ["state", "state", "image", "image", "image", "done"]);
    assertEquals(live.map((e) => e.id), ["1", "2", "3", "4", "5", "6"]);
    assertEquals(live.slice(0, 2).map((e) => (e.data as { state: string }).state), ["queued", "running"]);
    const images = live.slice(2, 5).map((e) =>
      e.data as {
        index: number;
        done: number;
        total: number;
        result: { status: string; digest: string | null };
      }
    );
    assertEquals(images.map((e) => [e.index, e.done, e.total]), [[0, 1, 3], [1, 2, 3], [2, 3, 3]]);
    assertEquals(images.map((e) => e.result.status), ["signed", "signed", "failed"]);
    assertEquals(images.map((e) => e.result.digest), [one.top.digest, multi.top.digest, null]);
    const done = live[5].data as JobView;
    assertEquals(done.state, "failed");
    assertEquals(done.images[2].error?.code, "NOT_FOUND");
    // after the end: the whole history, then the stream closes
    const replay = await readSse(await svc.call(`/v1/jobs/${id}/events`));
    assertEquals(replay, live);
    // resumed after event 4
    const resumed = await readSse(
      await svc.call(`/v1/jobs/${id}/events`, { headers: { "last-event-id": "4" } }),
    );
    assertEquals(resumed.map((e) => e.id), ["5", "6"]);
  });

  await t.step("unknown jobs and routes: 404", async () => {
    const a = await svc.call("/v1/jobs/00000000-0000-0000-0000-000000000000");
    assertEquals([a.status, (await a.json()).error.code], [404, "NOT_FOUND"]);
    const b = await svc.call("/v1/jobs/nope/events");
    assertEquals([b.status, (await b.json()).error.code], [404, "NOT_FOUND"]);
    const c = await svc.call("/v1/nothing");
    assertEquals(c.status, 404);
    await c.body?.cancel();
  });
});
