/**
 * Helpers shared by the Vault and cloud KMS backend tests (which run against FAKE services,
 * tests/testbed/fake_kms/): error assertions that also check that no secret leaks into the message, an
 * environment lookup from a record, and a sign-then-verify check with airlock's verifier and `openssl`.
 *
 * @module
 */
import type { KeyBackend } from "../../backends/key_backend.ts";
import { AirlockError } from "../../core/errors.ts";
import { parsePublicKeyPem, verifySignature } from "../../core/signature/public_key.ts";
import { assert, assertEquals } from "../assert.ts";
import { opensslVerify } from "../sign/helpers.ts";

/** An `env` option reading only `vars`. */
export function envOf(vars: Record<string, string | undefined>): (name: string) => string | undefined {
  return (name) => vars[name];
}

/**
 * Asserts that `fn` rejects with an {@linkcode AirlockError} of `code` whose message includes every string of
 * `includes` and none of `secrets` (also checked in the cause chain's messages); returns the message.
 */
export async function rejectsWith(
  fn: () => Promise<unknown>,
  code: string,
  includes: string[] = [],
  secrets: string[] = [],
): Promise<string> {
  try {
    await fn();
  } catch (e) {
    assert(e instanceof AirlockError, `not an AirlockError: ${e}`);
    assertEquals(e.code, code, e.message);
    for (const s of includes) assert(e.message.includes(s), `"${e.message}" does not include "${s}"`);
    for (let cur: unknown = e; cur instanceof Error; cur = cur.cause) {
      for (const s of secrets) assert(!cur.message.includes(s), `a secret leaked into "${cur.message}"`);
    }
    return e.message;
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
