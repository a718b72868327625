/**
 * Helpers of the `airlock verify` tests: running the real CLI, checking that a failure is a clean one, and an
 * independent signer (node:crypto ECDSA P-256 / SHA-256, DER signatures, as cosign stores them) for hostile
 * `.sig` content served by the fake static registry.
 *
 * @module
 */
import { createPrivateKey, generateKeyPairSync, type KeyObject, sign } from "node:crypto";
import { join } from "node:path";
import { assert, assertEquals } from "../assert.ts";
import { airlock, type CliResult, show } from "../cli/cli_util.ts";

export { show };
export type { CliResult };

/**
 * Runs `airlock verify --tls-verify=false ARGS…` in `home` (clean environment). Deno's own notice about waiting
 * for the node_modules lock (when several runs start at once) is removed from stderr; nothing else is touched.
 */
export async function verify(home: string, args: string[]): Promise<CliResult> {
  const r = await airlock(["verify", "--tls-verify=false", ...args], { home, timeoutMs: 60_000 });
  return { ...r, stderr: r.stderr.replace(/^Blocking waiting for file lock on [^\n]*\n/gm, "") };
}

/** Asserts a run failed with `code`, cosign's two error lines containing `includes`, and no stack trace. */
export function assertCleanFailure(r: CliResult, code: number, includes: string): void {
  assertEquals(r.code, code, show(r));
  assert(r.stderr.startsWith("Error: "), show(r));
  assert(r.stderr.includes("\nerror during command execution: "), show(r));
  assert(r.stderr.includes(includes), `stderr lacks ${JSON.stringify(includes)}\n${show(r)}`);
  assertNoCrash(r);
  assertEquals(r.stdout, "", show(r));
}

/** Asserts stderr holds no stack trace and no uncaught-error report. */
export function assertNoCrash(r: CliResult): void {
  assert(!/\n\s+at .+:\d+:\d+/.test(r.stderr), `stack trace in stderr\n${show(r)}`);
  assert(!/Uncaught|panicked|RangeError|TypeError/.test(r.stderr), `crash in stderr\n${show(r)}`);
}

/** The stderr header cosign prints for a verified image (key mode, no SET verified). */
export function cosignHeader(name: string, annotations = false): string {
  return `\nVerification for ${name} --\n` +
    "The following checks were performed on each of these signatures:\n" +
    (annotations ? "  - The specified annotations were verified.\n" : "") +
    "  - The cosign claims were validated\n" +
    "  - The signatures were verified against the specified public key\n";
}

/** An ECDSA P-256 key made with node:crypto, its public PEM written to `<dir>/<name>.pub`. */
export interface TestSigner {
  /** Path of the public key PEM. */
  readonly pub: string;
  /** DER ECDSA-SHA256 signature of `data`. */
  sign(data: Uint8Array): Uint8Array;
  /** Standard base64 of {@linkcode TestSigner.sign}. */
  signB64(data: Uint8Array): string;
}

/** Makes a {@linkcode TestSigner}. */
export async function makeSigner(dir: string, name: string): Promise<TestSigner> {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const pub = join(dir, `${name}.pub`);
  await Deno.writeTextFile(pub, publicKey.export({ type: "spki", format: "pem" }) as string);
  const key: KeyObject = createPrivateKey(privateKey.export({ type: "pkcs8", format: "pem" }) as string);
  const signDer = (data: Uint8Array) => new Uint8Array(sign("sha256", data, key));
  return { pub, sign: signDer, signB64: (data) => btoa(String.fromCharCode(...signDer(data))) };
}

/** A cosign-style payload (struct order, compact) for `digest`. */
export function cosignPayload(reference: string, digest: string, optional = "null"): string {
  return `{"critical":{"identity":{"docker-reference":"${reference}"},"image":{"docker-manifest-digest":` +
    `"${digest}"},"type":"cosign container image signature"},"optional":${optional}}`;
}
