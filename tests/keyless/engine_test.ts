/**
 * Engine plumbing: the Deno `node:crypto.verify` shim, and that importing the engine (or the CLI) never evaluates
 * sigstore-js statically.
 */
import { Buffer } from "node:buffer";
import nodeCrypto from "node:crypto";
import { installCryptoVerifyShim, nativeDefaultDigestWorks } from "../../core/keyless/crypto_shim.ts";
import { assert, assertEquals } from "../assert.ts";

Deno.test("crypto shim: EC verify without a digest uses SHA-256; idempotent", () => {
  assertEquals(installCryptoVerifyShim(), false); // installed by the import already
  const { privateKey, publicKey } = nodeCrypto.generateKeyPairSync("ec", { namedCurve: "P-256" });
  const data = Buffer.from("airlock");
  const sig = nodeCrypto.sign("sha256", data, privateKey);
  assert(nodeCrypto.verify(undefined as unknown as null, data, publicKey, sig));
  assert(!nodeCrypto.verify(null, Buffer.from("other"), publicKey, sig));
  // Ed25519 is passed through untouched
  const ed = nodeCrypto.generateKeyPairSync("ed25519");
  assert(nodeCrypto.verify(null, data, ed.publicKey, nodeCrypto.sign(null, data, ed.privateKey)));
  // Documents the runtime bug the shim exists for (false on Deno 2.9.6; true once Deno fixes it).
  assertEquals(typeof nativeDefaultDigestWorks(), "boolean");
});

interface InfoModule {
  specifier: string;
  dependencies?: { code?: { specifier: string }; isDynamic?: boolean }[];
}

/** Modules reachable from `entry` through static, runtime (non type-only) imports. */
async function staticGraph(entry: string): Promise<Set<string>> {
  const out = await new Deno.Command(Deno.execPath(), { args: ["info", "--json", entry] }).output();
  assert(out.success, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as { roots: string[]; modules: InfoModule[] };
  const bySpec = new Map(info.modules.map((m) => [m.specifier, m]));
  const seen = new Set<string>();
  const visit = (s: string) => {
    if (seen.has(s)) return;
    seen.add(s);
    for (const d of bySpec.get(s)?.dependencies ?? []) {
      if (d.code && !d.isDynamic) visit(d.code.specifier);
    }
  };
  info.roots.forEach(visit);
  return seen;
}

Deno.test("importing the engine loads no sigstore-js module; sigstore.ts imports the shim statically", async () => {
  const graph = await staticGraph(new URL("../../core/keyless/mod.ts", import.meta.url).pathname);
  assertEquals([...graph].filter((s) => s.includes("@sigstore")), []);
  assert([...graph].some((s) => s.endsWith("core/keyless/crypto_shim.ts")));
});

Deno.test("the CLI does not import the keyless engine statically (fast --help)", async () => {
  const graph = await staticGraph(new URL("../../cli.ts", import.meta.url).pathname);
  assertEquals([...graph].filter((s) => s.includes("core/keyless/") || s.includes("@sigstore")), []);
});
