import { assertEquals, assertStringIncludes } from "./assert.ts";

// The demo is the README's first command: it must run end to end on its own registry and end with the tampered
// image rejected (the demo itself throws when the tampered image is accepted or a good image is refused).
Deno.test("deno task demo runs end to end and rejects the tampered image", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", new URL("../scripts/demo.ts", import.meta.url).pathname],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  assertEquals(out.code, 0, `demo failed:\n${stdout.slice(-3000)}\n${stderr.slice(-3000)}`);
  assertStringIncludes(stdout, "Demo finished");
  assertStringIncludes(stderr, "some images failed validation");
  assertStringIncludes(stdout, "-> verify exit status 10"); // cosign: no signatures found
});
