/**
 * Helpers of the `airlock verify` tests: running `airlock verify` (through the shared runner of
 * `tests/testbed/cli.ts`), checking that a failure is a clean one, and cosign's verification header.
 *
 * @module
 */
import { assert, assertEquals } from "../assert.ts";
import { airlock, type CliResult, show } from "../testbed/mod.ts";

/**
 * Runs `airlock verify --tls-verify=false ARGS…` in `home` (clean environment). Deno's own notice about waiting
 * for the node_modules lock (when several runs start at once) is removed from stderr; nothing else is touched.
 */
export async function verify(home: string, args: string[]): Promise<CliResult> {
  return await airlock(["verify", "--tls-verify=false", ...args], {
    home,
    timeoutMs: 60_000,
    stripLockNotice: true,
  });
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
