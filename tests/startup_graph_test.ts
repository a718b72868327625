/**
 * Start-up path: what `airlock --help` (and every command) evaluates before parsing its arguments is the static
 * import graph of cli.ts. Heavy modules — sigstore-js, hono, yaml, pkijs/asn1js, cloud SDKs, and any module that
 * opens a native library with `Deno.dlopen` — must be reached only through `import()` inside the commands that
 * need them. This reads the graph with `deno info --json` (dynamic imports are marked there and skipped).
 *
 * The timing itself is measured, not asserted, by bench/startup_bench.ts.
 *
 * @module
 */
import { assertEquals } from "./assert.ts";

const ROOT = new URL("..", import.meta.url);

/** npm packages that must never be on the start-up path (name prefixes). */
const HEAVY_NPM = [
  "hono",
  "@sigstore/",
  "yaml",
  "pkijs",
  "asn1js",
  "@peculiar/",
  "@smithy/",
  "@aws-",
  "@azure/",
  "@google",
];

interface InfoDependency {
  specifier: string;
  code?: { specifier: string };
  isDynamic?: boolean;
}
interface InfoModule {
  specifier: string;
  dependencies?: InfoDependency[];
}
interface Info {
  roots: string[];
  modules: InfoModule[];
  redirects: Record<string, string>;
}

/** The modules cli.ts evaluates at start-up: its static (non-type, non-dynamic) import closure. */
async function staticClosure(entry: string): Promise<Set<string>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "--config", new URL("deno.json", ROOT).pathname, new URL(entry, ROOT).pathname],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as Info;
  const modules = new Map(info.modules.map((m) => [m.specifier, m]));
  const seen = new Set<string>();
  const stack = [...info.roots];
  while (stack.length > 0) {
    let s = stack.pop()!;
    s = info.redirects[s] ?? s;
    if (seen.has(s)) continue;
    seen.add(s);
    for (const dep of modules.get(s)?.dependencies ?? []) {
      if (!dep.isDynamic && dep.code) stack.push(dep.code.specifier);
    }
  }
  return seen;
}

/** `npm:/name@1.2.3/sub` → `name`; `npm:/@scope/name@1.2.3` → `@scope/name`. */
function npmName(specifier: string): string {
  const rest = specifier.replace(/^npm:\/?/, "");
  const m = /^(@[^/]+\/[^@/]+|[^@/]+)/.exec(rest);
  return m ? m[1] : rest;
}

Deno.test("start-up path of cli.ts: no sigstore-js, hono, yaml, pkijs, cloud SDK or FFI module is loaded", async () => {
  const closure = await staticClosure("cli.ts");
  const npm = [...new Set([...closure].filter((s) => s.startsWith("npm:")).map(npmName))];
  const heavy = npm.filter((n) => HEAVY_NPM.some((h) => n === h || n.startsWith(h)));
  assertEquals(
    heavy,
    [],
    `heavy npm packages loaded at start-up: ${heavy.join(", ")} (load them with import())`,
  );

  const ffi: string[] = [];
  for (const s of closure) {
    if (!s.startsWith("file:")) continue;
    const text = await Deno.readTextFile(new URL(s));
    if (/Deno\s*\.\s*dlopen\s*\(/.test(text)) ffi.push(s.slice(ROOT.href.length));
  }
  assertEquals(ffi, [], `modules calling Deno.dlopen loaded at start-up: ${ffi.join(", ")}`);
});

Deno.test("start-up path: `airlock version` reads the trusted root's date from the small data module only", async () => {
  const closure = await staticClosure("cli/version.ts");
  const keyless = [...closure].filter((s) => s.includes("/core/keyless/"));
  assertEquals(keyless, [], "cli/version.ts must import the trusted root data lazily");
});
