import { AirlockError, isAirlockError } from "../../core/errors.ts";
import { formatDuration, type PoolResult, runPool } from "../../core/pool.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../assert.ts";

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Sleeps `ms`, rejecting with the signal's reason as soon as it aborts. */
function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

function values<R>(results: PoolResult<R>[]): (R | string)[] {
  return results.map((r) => (r.ok ? r.value : `error:${(r.error as Error).message}`));
}

Deno.test("runPool: results come back in input order whatever the completion order", async () => {
  const delays = [30, 5, 20, 1, 10, 0];
  const settledOrder: number[] = [];
  const results = await runPool(delays, 3, async (ms, _signal, i) => {
    await sleep(ms);
    return `item${i}:${ms}`;
  }, { onSettled: (i) => settledOrder.push(i) });
  assertEquals(values(results), ["item0:30", "item1:5", "item2:20", "item3:1", "item4:10", "item5:0"]);
  assertEquals([...settledOrder].sort(), [0, 1, 2, 3, 4, 5]);
  assert(settledOrder[0] !== 0, "the slow first item should not settle first");
});

Deno.test("runPool: never more than `jobs` in flight, and it reaches the bound", async () => {
  for (const jobs of [1, 3, 8]) {
    let inFlight = 0;
    let max = 0;
    const started: number[] = [];
    await runPool(Array.from({ length: 12 }, (_, i) => i), jobs, async (i) => {
      started.push(i);
      inFlight++;
      max = Math.max(max, inFlight);
      await sleep(2 + (i % 3) * 3);
      inFlight--;
    });
    assertEquals(max, jobs, `jobs=${jobs}`);
    assertEquals(started, [...started].sort((a, b) => a - b), "items start in input order");
  }
});

Deno.test("runPool: jobs above the item count and empty input", async () => {
  assertEquals(values(await runPool([1, 2], 20, (x) => Promise.resolve(x * 2))), [2, 4]);
  assertEquals(await runPool([], 4, () => Promise.resolve(1)), []);
});

Deno.test("runPool: failures are results, not rejections (sync throws too)", async () => {
  const results = await runPool([1, 2, 3], 2, (x) => {
    if (x === 2) throw new Error("sync boom");
    if (x === 3) return Promise.reject(new AirlockError("NOT_FOUND", "manifest unknown"));
    return Promise.resolve(x);
  });
  assertEquals(values(results), [1, "error:sync boom", "error:manifest unknown"]);
  assert(!results[2].ok && isAirlockError(results[2].error, "NOT_FOUND"));
});

Deno.test("runPool: the per-item deadline aborts the item's signal with a TIMEOUT error", async () => {
  const seen: unknown[] = [];
  const results = await runPool([5, 200, 5], 3, async (ms, signal) => {
    try {
      await abortableSleep(ms, signal);
      return ms;
    } catch (e) {
      seen.push(e);
      throw e;
    }
  }, { timeoutMs: 60 });
  assert(results[0].ok && results[2].ok);
  const r = results[1];
  assert(!r.ok);
  assert(isAirlockError(r.error, "TIMEOUT"));
  assertStringIncludes((r.error as Error).message, "context deadline exceeded");
  assertStringIncludes((r.error as Error).message, "60ms");
  assertEquals(seen.length, 1);
  assertEquals(seen[0], r.error, "the work saw the same error as its signal's reason");
});

Deno.test("runPool: the deadline covers all of an item's work, not each step", async () => {
  // three steps of 40 ms, each below the 90 ms deadline, together above it
  const results = await runPool(["img"], 1, async (_x, signal) => {
    for (let step = 0; step < 3; step++) await abortableSleep(40, signal);
    return "done";
  }, { timeoutMs: 90 });
  assert(!results[0].ok && isAirlockError(results[0].error, "TIMEOUT"));
});

Deno.test("runPool: a timed-out item keeps its slot until its work settles; its late value is dropped", async () => {
  let inFlight = 0;
  let max = 0;
  const settled: [number, PoolResult<string>][] = [];
  const results = await runPool([0, 1, 2], 1, async (i) => {
    inFlight++;
    max = Math.max(max, inFlight);
    await sleep(i === 0 ? 80 : 1); // item 0 ignores its signal
    inFlight--;
    return `v${i}`;
  }, { timeoutMs: 30, onSettled: (i, r) => settled.push([i, r]) });
  assertEquals(max, 1);
  assert(!results[0].ok && isAirlockError(results[0].error, "TIMEOUT"));
  assertEquals(values(results).slice(1), ["v1", "v2"]);
  assertEquals(settled.length, 3, "onSettled once per item");
  assertEquals(settled[0][0], 0);
});

Deno.test("runPool: timeout 0 means none", async () => {
  const results = await runPool([1], 1, async () => {
    await sleep(20);
    return "ok";
  }, { timeoutMs: 0 });
  assertEquals(values(results), ["ok"]);
});

Deno.test("runPool: outer abort stops scheduling; running items finish with a live signal", async () => {
  const ctrl = new AbortController();
  const calls: number[] = [];
  let firstSignalAborted: boolean | undefined;
  const results = await runPool([0, 1, 2, 3], 1, async (i, signal) => {
    calls.push(i);
    if (i === 0) {
      ctrl.abort();
      await sleep(10);
      firstSignalAborted = signal.aborted;
    }
    return i;
  }, { signal: ctrl.signal });
  assertEquals(calls, [0]);
  assertEquals(firstSignalAborted, false);
  assert(results[0].ok && results[0].value === 0);
  for (const r of results.slice(1)) {
    assert(!r.ok && isAirlockError(r.error, "CANCELLED"));
    assertStringIncludes((r.error as Error).message, "context canceled");
  }
});

Deno.test("runPool: an already-aborted signal runs nothing", async () => {
  const ctrl = new AbortController();
  ctrl.abort();
  let called = 0;
  const settled: number[] = [];
  const results = await runPool([1, 2, 3], 2, () => {
    called++;
    return Promise.resolve(0);
  }, { signal: ctrl.signal, onSettled: (i) => settled.push(i) });
  assertEquals(called, 0);
  assertEquals(results.length, 3);
  assert(results.every((r) => !r.ok && isAirlockError(r.error, "CANCELLED")));
  assertEquals(settled.sort(), [0, 1, 2]);
});

Deno.test("runPool: an onSettled exception does not stop the pool and is rethrown at the end", async () => {
  let ran = 0;
  await assertRejects(
    () =>
      runPool([1, 2, 3], 1, () => {
        ran++;
        return Promise.resolve(0);
      }, {
        onSettled: (i) => {
          if (i === 0) throw new Error("hook failed");
        },
      }),
    Error,
    "hook failed",
  );
  assertEquals(ran, 3);
});

Deno.test("runPool: bad arguments", async () => {
  const e = await assertRejects(
    () => runPool([1], 0, () => Promise.resolve(1)),
    AirlockError,
    "worker number",
  );
  assertEquals(e.code, "INVALID_ARGUMENT");
  await assertRejects(() => runPool([1], 1.5, () => Promise.resolve(1)), AirlockError, "worker number");
  await assertRejects(
    () => runPool([1], 1, () => Promise.resolve(1), { timeoutMs: -1 }),
    AirlockError,
    "timeout",
  );
});

Deno.test("formatDuration prints Go durations", () => {
  assertEquals(formatDuration(600_000), "10m0s");
  assertEquals(formatDuration(90_000), "1m30s");
  assertEquals(formatDuration(5_400_000), "1h30m0s");
  assertEquals(formatDuration(1_500), "1.5s");
  assertEquals(formatDuration(250), "250ms");
  assertEquals(formatDuration(0), "0s");
});
