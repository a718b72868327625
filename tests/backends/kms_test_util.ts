/**
 * Helpers shared by the key backend tests (the Vault and cloud KMS ones run against FAKE services,
 * tests/testbed/fake_kms/): error assertions that also check that no secret leaks into the message, an
 * environment lookup from a record, a sign-then-verify check with airlock's verifier and `openssl`, the
 * `airlock public-key` checks, and the end-to-end `airlock sign` run and layer checks.
 *
 * @module
 */
import type { KeyBackend } from "../../backends/key_backend.ts";
import { AirlockError } from "../../core/errors.ts";
import { parsePublicKeyPem, verifySignature } from "../../core/signature/public_key.ts";
import { assert, assertEquals } from "../assert.ts";
import { airlock, type CliResult, show } from "../testbed/mod.ts";
import {
  b64decode,
  type Fetcher,
  opensslVerify,
  readSig,
  SIG_ANNOTATION,
  SIMPLE_SIGNING,
  verifyLayer,
} from "../testbed/signatures.ts";

/** An `env` option reading only `vars`. */
export function envOf(vars: Record<string, string | undefined>): (name: string) => string | undefined {
  return (name) => vars[name];
}

/**
 * Asserts that `fn` rejects with an {@linkcode AirlockError} of `code` whose message includes every string of
 * `includes` and none of `secrets` (also checked in the cause chain's messages); returns the error.
 */
export async function rejectsWith(
  fn: () => Promise<unknown>,
  code: string,
  includes: string[] = [],
  secrets: string[] = [],
): Promise<AirlockError> {
  try {
    await fn();
  } catch (e) {
    assert(e instanceof AirlockError, `not an AirlockError: ${e}`);
    assertEquals(e.code, code, e.message);
    for (const s of includes) assert(e.message.includes(s), `"${e.message}" does not include "${s}"`);
    for (let cur: unknown = e; cur instanceof Error; cur = cur.cause) {
      for (const s of secrets) assert(!cur.message.includes(s), `a secret leaked into "${cur.message}"`);
    }
    return e;
  }
  throw new Error(`expected ${code}`);
}

/**
 * Signs `message` with `key` and checks the signature with the key's exported public key — with airlock's
 * verifier always and with `openssl dgst -sha256 -verify` when `opensslDir` is given; returns the signature.
 */
export async function signAndVerify(
  key: KeyBackend,
  message: Uint8Array,
  opensslDir?: string,
): Promise<Uint8Array> {
  const pem = await key.publicKey();
  const sig = await key.sign(message);
  assert(await verifySignature(parsePublicKeyPem(pem), message, sig), "the signature does not verify");
  if (opensslDir) assert(await opensslVerify(pem, message, sig, opensslDir), "openssl does not verify");
  return sig;
}

/** What {@linkcode assertPublicKeyCli} runs and expects. */
export interface PublicKeyCliCheck {
  /** The key reference. */
  ref: string;
  /** HOME (and working directory) of the run. */
  home: string;
  /** The environment that opens the key. */
  env: Record<string, string>;
  /** The public key it must print. */
  pem: string;
  /** A variable set to a wrong `secret` on top of `env`: the run must exit 1 naming `reason`, not the secret. */
  wrong?: { variable: string; secret: string; reason: string };
}

/** Asserts that `airlock public-key --key REF` prints the key, and (with `wrong`) fails without the secret. */
export async function assertPublicKeyCli(check: PublicKeyCliCheck): Promise<void> {
  const args = ["public-key", "--key", check.ref];
  const r = await airlock(args, { home: check.home, env: check.env });
  assertEquals(r.code, 0, show(r));
  assertEquals(r.stdout, check.pem);
  if (!check.wrong) return;
  const { variable, secret, reason } = check.wrong;
  const bad = await airlock(args, { home: check.home, env: { ...check.env, [variable]: secret } });
  assertEquals(bad.code, 1, show(bad));
  assert(bad.stderr.includes(reason), show(bad));
  assert(!bad.stderr.includes(secret), show(bad));
}

/**
 * Runs `airlock sign -f list.txt --key REF --tls-verify=false --registries.d RD -o failed-N.txt` in `cwd` with
 * `env`, as the end-to-end tests do; asserts that it succeeds and returns what it printed.
 */
export async function cliSignList(
  cwd: string,
  ref: string,
  registriesD: string,
  n: number,
  env: Record<string, string>,
): Promise<CliResult> {
  const r = await airlock(
    [
      "sign",
      "-f",
      "list.txt",
      "--key",
      ref,
      "--tls-verify=false",
      "--registries.d",
      registriesD,
      "-o",
      `failed-${n}.txt`,
    ],
    { cwd, env },
  );
  assertEquals(r.code, 0, `sign with ${ref}: ${r.stderr}`);
  return r;
}

/** What {@linkcode assertOneLayerPerKey} checks. */
export interface SignedImage {
  /** The repository in the registry. */
  repo: string;
  /** The signed manifest's digest. */
  digest: string;
  /** The `docker-reference` each payload must name. */
  reference: string;
  /** The public keys (PEM) that signed it, one signature each. */
  pems: string[];
  /** How messages name key `k`. */
  label(k: number): string;
  /** A scratch directory for openssl. */
  workDir: string;
}

/**
 * Asserts that the `.sig` of `image.digest` holds one simple-signing layer per key and that each key verifies
 * exactly one of them, with airlock's verifier and openssl, whose payload names the digest and the reference.
 */
export async function assertOneLayerPerKey(reg: Fetcher, image: SignedImage): Promise<void> {
  const sig = await readSig(reg, image.repo, image.digest);
  const layers = sig?.layers.filter((l) => l.desc.mediaType === SIMPLE_SIGNING) ?? [];
  assertEquals(layers.length, image.pems.length);
  for (const [k, pem] of image.pems.entries()) {
    const pub = parsePublicKeyPem(pem);
    const matching = [];
    for (const l of layers) {
      if (await verifySignature(pub, l.payload, b64decode(l.desc.annotations?.[SIG_ANNOTATION] ?? ""))) {
        matching.push(l);
      }
    }
    assertEquals(matching.length, 1, `${image.label(k)} verifies ${matching.length} layers`);
    assertEquals(await verifyLayer(pem, matching[0], image.workDir), { airlock: true, openssl: true });
    assertEquals(matching[0].json?.critical.image["docker-manifest-digest"], image.digest);
    assertEquals(matching[0].json?.critical.identity["docker-reference"], image.reference);
  }
}
