/**
 * Helpers shared by the registry client tests: a TLS proxy in front of a test registry (so request counts are
 * measured on the verifying `fetch` path), and a certs.d root trusting it.
 *
 * @module
 */
import { join } from "node:path";
import { makeCa, makeLeaf, startProxy, type TestProxy, type TestRegistry } from "../../testbed/mod.ts";
import type { Credential } from "../../../core/registry/types.ts";

/** A TLS proxy and a certs.d root (for `certDirs`) that trusts it. */
export interface TlsProxy extends AsyncDisposable {
  /** The proxy. */
  readonly proxy: TestProxy;
  /** certs.d root with `<proxy host>/ca.crt`. */
  readonly certDir: string;
}

/**
 * Starts a TLS proxy (own CA and leaf) in front of `reg`, with a certs.d root that trusts it.
 *
 * @example
 * ```ts
 * await using p = await startTlsProxy(reg);
 * const client = new RegistryClient({ certDirs: [p.certDir] });
 * ```
 */
export async function startTlsProxy(reg: TestRegistry): Promise<TlsProxy> {
  const dir = await Deno.makeTempDir({ prefix: "airlock-regtest-" });
  const ca = await makeCa(dir);
  const leaf = await makeLeaf(dir, ca);
  const proxy = await startProxy(reg.url, {
    upstreamClient: reg.client,
    tls: { certPem: leaf.certPem, keyPem: leaf.keyPem },
  });
  const certDir = join(dir, "certs.d");
  await Deno.mkdir(join(certDir, proxy.host), { recursive: true });
  await Deno.writeTextFile(join(certDir, proxy.host, "ca.crt"), ca.certPem);
  const stop = async () => {
    await proxy.stop();
    await Deno.remove(dir, { recursive: true });
  };
  return { proxy, certDir, [Symbol.asyncDispose]: stop };
}

/**
 * A credential lookup answering `cred` for `host` only; counts calls.
 *
 * @example
 * ```ts
 * const lookup = credentialsFor(reg.host, { username: "alice", password: "pw" });
 * ```
 */
export function credentialsFor(
  host: string,
  cred: Credential,
): ((registry: string) => Promise<Credential | undefined>) & { calls: number } {
  const fn = (registry: string) => {
    fn.calls++;
    return Promise.resolve(registry === host ? cred : undefined);
  };
  fn.calls = 0;
  return fn;
}

/** Requests-per-second of `n` sequential runs of `op`. */
export async function rate(n: number, op: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await op();
  return Math.round(n / ((performance.now() - t0) / 1000));
}
