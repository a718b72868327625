import { AirlockError } from "../../core/errors.ts";
import { goQuote } from "../../core/encoding/go_quote.ts";
import {
  escapeControls,
  HangarLogger,
  type LoggerOptions,
  removeStaleFailedList,
  silentLogger,
  syncSink,
  writeFailedList,
} from "../../core/report.ts";
import { assert, assertEquals, assertRejects } from "../assert.ts";

const at = new Date(2024, 0, 2, 15, 48, 53); // local time, as hangar prints

function capture(opts: Partial<LoggerOptions> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const log = new HangarLogger({
    stdout: (s) => out.push(s),
    stderr: (s) => err.push(s),
    now: () => at,
    ...opts,
  });
  return { log, out, err };
}

Deno.test("logger: hangar line layout and routing", () => {
  const { log, out, err } = capture();
  log.info("Signing [harbor.io/sign-test/nginx:1.25]", { IMG: 1 });
  log.info("Done");
  log.warn("Invalid worker num: 30, set to 1");
  log.error("error occurred on [IMG: 1] [...]: boom");
  log.fatal("some images failed to sign");
  log.debug("hidden at info level");
  assertEquals(out, [
    "[15:48:53] [INFO] [IMG:1] Signing [harbor.io/sign-test/nginx:1.25]\n",
    "[15:48:53] [INFO] Done\n",
  ]);
  assertEquals(err, [
    "[15:48:53] [WARN] Invalid worker num: 30, set to 1\n",
    "[15:48:53] [ERRO] error occurred on [IMG: 1] [...]: boom\n",
    "[15:48:53] [FATA] some images failed to sign\n",
  ]);
});

Deno.test("logger: debug level, hidden time, single-digit times", () => {
  const { log, out } = capture({ level: "debug", hideTime: true });
  log.debug("Debug mode enabled, force worker number to 1");
  log.info("Done");
  assertEquals(out, ["- [DEBU] Debug mode enabled, force worker number to 1\n", "- [INFO] Done\n"]);
  const early = capture({ now: () => new Date(2024, 0, 2, 3, 4, 5) });
  early.log.info("x");
  assertEquals(early.out, ["[03:04:05] [INFO] x\n"]);
  assert(early.log.enabled("info") && !early.log.enabled("debug"));
});

Deno.test("logger: level threshold above info drops info", () => {
  const { log, out, err } = capture({ level: "error" });
  log.info("a");
  log.warn("b");
  log.error("c");
  assertEquals(out, []);
  assertEquals(err, ["[15:48:53] [ERRO] c\n"]);
});

Deno.test("logger: allToStderr keeps stdout free for machine output", () => {
  const { log, out, err } = capture({ allToStderr: true, level: "debug" });
  log.debug("d");
  log.info("i");
  log.warn("w");
  assertEquals(out, []);
  assertEquals(err.length, 3);
});

Deno.test("logger: fields (IMG first, others sorted), multi-line messages, colours", () => {
  const { log, out } = capture();
  log.info("m", { zeta: "z", IMG: 7, alpha: 1, skipped: undefined });
  log.info("Sign failed image list: \na\nb");
  assertEquals(out, [
    "[15:48:53] [INFO] [IMG:7] [alpha:1] [zeta:z] m\n",
    "[15:48:53] [INFO] Sign failed image list: \na\nb\n",
  ]);
  const c = capture({ color: true });
  c.log.info("Done");
  c.log.warn("w", { IMG: 2 });
  c.log.error("e");
  c.log.fatal("f");
  c.log.debug("d");
  assertEquals(c.out, ["[15:48:53]\x1b[36m [INFO] \x1b[0mDone\n"]);
  assertEquals(c.err, [
    "[15:48:53]\x1b[33m [WARN] [IMG:2] \x1b[0mw\n",
    "[15:48:53]\x1b[31m [ERRO] \x1b[0me\n",
    "[15:48:53]\x1b[31m [FATA] \x1b[0mf\n",
  ]);
  const dbg = capture({ color: true, level: "debug" });
  dbg.log.debug("d");
  assertEquals(dbg.out, ["[15:48:53]\x1b[37m [DEBU] \x1b[0md\n"]);
});

Deno.test("logger: control characters and text-reordering marks are escaped; tab and newline kept", () => {
  const { log, out } = capture({ hideTime: true });
  log.info("evil\x1b[2J\rX\u202eY\tZ\x00\x7f\x9b\nsecond line", { IMG: "a\x07" });
  assertEquals(out, ["- [INFO] [IMG:a\\x07] evil\\x1b[2J\\x0dX\\u202eY\tZ\\x00\\x7f\\x9b\nsecond line\n"]);
  assertEquals(escapeControls("plain ünïcode ✓"), "plain ünïcode ✓");
});

Deno.test("silentLogger and syncSink", () => {
  const s = silentLogger();
  s.error("nothing happens");
  assert(!s.enabled("fatal"));
  const chunks: string[] = [];
  const dec = new TextDecoder();
  // a writer that takes at most 3 bytes per call
  const sink = syncSink({
    writeSync(p: Uint8Array) {
      const n = Math.min(3, p.length);
      chunks.push(dec.decode(p.subarray(0, n)));
      return n;
    },
  });
  sink("hello, world\n");
  assertEquals(chunks.join(""), "hello, world\n");
  assert(chunks.length > 1);
});

Deno.test("goQuote matches Go's %q", () => {
  assertEquals(goQuote("a b c"), '"a b c"');
  assertEquals(goQuote('say "hi"'), '"say \\"hi\\""');
  assertEquals(goQuote("back\\slash"), '"back\\\\slash"');
  assertEquals(goQuote("tab\there\r\n"), '"tab\\there\\r\\n"');
  assertEquals(goQuote("\x01\x7f\x07"), '"\\x01\\x7f\\a"');
  assertEquals(goQuote("héllo 世界"), '"héllo 世界"');
  assertEquals(goQuote("\u00a0\u200b"), '"\\u00a0\\u200b"');
  assertEquals(goQuote("\u{e0001}"), '"\\U000e0001"');
});

Deno.test("writeFailedList: input order, first occurrence kept, truncates", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/sign-failed.txt`;
    await Deno.writeTextFile(path, "stale-line-1\nstale-line-2\nstale-line-3\n");
    const written = await writeFailedList(path, ["b:1", "a:1", "b:1", "c # x", "a:1"]);
    assertEquals(written, ["b:1", "a:1", "c # x"]);
    assertEquals(await Deno.readTextFile(path), "b:1\na:1\nc # x\n");
    const e = await assertRejects(() => writeFailedList(dir, ["x"]), AirlockError, "failed image list");
    assertEquals(e.code, "IO_ERROR");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("removeStaleFailedList: removes a leftover file, missing is fine, never a directory", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/sign-failed.txt`;
    await Deno.writeTextFile(path, "old\n");
    assertEquals(await removeStaleFailedList(path), true);
    assertEquals(await Deno.stat(path).then(() => true, () => false), false);
    assertEquals(await removeStaleFailedList(path), false);
    const sub = `${dir}/sub`;
    await Deno.mkdir(sub);
    const e = await assertRejects(() => removeStaleFailedList(sub), AirlockError, "stale failed image list");
    assertEquals(e.code, "IO_ERROR");
    assert((await Deno.stat(sub)).isDirectory);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
