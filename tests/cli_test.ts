import { assertEquals, assertStringIncludes } from "./assert.ts";

const cli = new URL("../cli.ts", import.meta.url).pathname;

async function run(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", cli, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("airlock version prints the version and exits 0", async () => {
  const r = await run("version");
  assertEquals(r.code, 0);
  assertStringIncludes(r.stdout, "airlock 0.1.0");
});

Deno.test("airlock with an unknown command exits non-zero", async () => {
  const r = await run("no-such-command");
  assertEquals(r.code !== 0, true);
  assertStringIncludes(r.stderr, "no-such-command");
});
