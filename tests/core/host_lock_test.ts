/**
 * The host-wide lock: work on one key waits for another holder, in this process and in another process; keys are
 * spread over a bounded number of lock files; an unusable lock directory is reported and work still runs.
 *
 * @module
 */
import { join } from "node:path";
import { HostLock } from "../../core/host_lock.ts";
import { assert, assertEquals } from "../assert.ts";
import { tempDir } from "../testbed/mod.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("host lock: a second holder of one key waits for the first (two lock objects, one directory)", async () => {
  await using tmp = await tempDir("airlock-hostlock-");
  const a = new HostLock({ dir: tmp.path });
  const b = new HostLock({ dir: tmp.path });
  const events: string[] = [];
  const first = a.run("reg/repo@sha256:1.sig", async () => {
    events.push("a in");
    await sleep(150);
    events.push("a out");
  });
  await sleep(20);
  const second = b.run("reg/repo@sha256:1.sig", () => {
    events.push("b in");
    return Promise.resolve();
  });
  await Promise.all([first, second]);
  assertEquals(events, ["a in", "a out", "b in"]);
  // The directory is the user's own.
  const info = await Deno.lstat(tmp.path);
  assertEquals((info.mode ?? 0) & 0o022, 0);
});

Deno.test("host lock: another process holding the key makes this one wait until it lets go", async () => {
  await using tmp = await tempDir("airlock-hostlock-");
  const module = new URL("../../core/host_lock.ts", import.meta.url).href;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `import { HostLock } from ${JSON.stringify(module)};
       await new HostLock({ dir: ${JSON.stringify(tmp.path)} }).run("k", async () => {
         console.log("held");
         await new Promise((r) => setTimeout(r, 300));
         console.log("leaving " + Date.now());
       });`,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("held\n")) {
    const { value, done } = await lines.read();
    if (done) break;
    out += value;
  }
  assertEquals(out, "held\n");
  let entered = 0;
  await new HostLock({ dir: tmp.path }).run("k", () => Promise.resolve(entered = Date.now()));
  for (;;) {
    const { value, done } = await lines.read();
    if (done) break;
    out += value;
  }
  assertEquals((await child.status).code, 0);
  const left = Number(/leaving (\d+)/.exec(out)?.[1]);
  assert(entered >= left, `entered at ${entered}, while the other process held the lock until ${left}`);
});

Deno.test("host lock: 300 keys use at most that many of the 4096 bucket files, named by hash", async () => {
  await using tmp = await tempDir("airlock-hostlock-");
  const lock = new HostLock({ dir: tmp.path });
  for (let i = 0; i < 300; i++) await lock.run(`reg/repo@sha256:${i}.sig`, () => Promise.resolve());
  const names: string[] = [];
  for await (const e of Deno.readDir(tmp.path)) names.push(e.name);
  assert(names.length <= 300 && names.length > 250, `${names.length} lock files`);
  assert(names.every((n) => /^[0-9a-f]{3}\.lock$/.test(n)), names.join(" "));
});

Deno.test("host lock: a directory writable by others or a symbolic link is refused, and work still runs", async () => {
  await using tmp = await tempDir("airlock-hostlock-");
  const open = join(tmp.path, "open");
  await Deno.mkdir(open);
  await Deno.chmod(open, 0o777);
  const link = join(tmp.path, "link");
  await Deno.mkdir(join(tmp.path, "target"), { mode: 0o700 });
  await Deno.symlink(join(tmp.path, "target"), link);
  for (const [dir, why] of [[open, "writable by others"], [link, "not a directory"]]) {
    const reasons: string[] = [];
    const lock = new HostLock({ dir, onUnavailable: (r) => reasons.push(r) });
    let ran = 0;
    await lock.run("k", () => Promise.resolve(ran++));
    await lock.run("k", () => Promise.resolve(ran++));
    assertEquals(ran, 2);
    assertEquals(reasons, [`lock directory ${dir}: ${why}`]);
  }
  // Nothing was written into the refused directories.
  for (const dir of [open, join(tmp.path, "target")]) {
    for await (const e of Deno.readDir(dir)) throw new Error(`unexpected ${e.name} in ${dir}`);
  }
});
