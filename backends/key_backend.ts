/**
 * The signing key abstraction and `openKey`, which picks a backend by the reference's scheme.
 *
 * | reference | backend |
 * |---|---|
 * | `pkcs11:…` | PKCS#11 token ({@link ./pkcs11/key.ts}) |
 * | `hashivault://NAME`, `openbao://NAME` | HashiCorp Vault / OpenBao transit ({@link ./hashivault.ts}) |
 * | `awskms://…` | AWS KMS ({@link ./awskms.ts}) |
 * | `gcpkms://…` | Google Cloud KMS ({@link ./gcpkms.ts}) |
 * | `azurekms://…` | Azure Key Vault ({@link ./azurekms.ts}) |
 * | `k8s://NS/NAME` | Kubernetes secret (not yet) |
 * | any other `NAME://…` | KMS plugin `sigstore-kms-NAME` ({@link ./plugin.ts}) |
 * | anything else | an encrypted cosign/sigstore key file ({@link ./file.ts}) |
 *
 * Adding a backend = one file in `backends/` + one row in {@linkcode KEY_OPENERS} (with its hooks, e.g. how
 * its references are shown in logs). Backend modules are
 * loaded with `import()` of a static specifier, so only the backend in use is loaded and `deno compile`
 * still embeds them.
 *
 * Hashing: every backend signs SHA-256 of the message, whatever the key (ECDSA on any curve, RSA PKCS#1 v1.5),
 * as containers/image (`LoadSignerVerifier(key, crypto.SHA256)`) and cosign's key loading do (spec/hangar.md
 * §5.4, §7.1, §7.3); Ed25519 signs the message itself (pure Ed25519).
 *
 * @example
 * ```ts
 * const key = await openKey("cosign.key", { passphraseFile: "pass.txt" });
 * try {
 *   const sig = await key.sign(payload);
 * } finally {
 *   await key.close();
 * }
 * ```
 *
 * @module
 */
import { AirlockError } from "../core/errors.ts";
import { pinValueWarning, redactPkcs11Uri } from "./pkcs11/uri.ts";
import { parsePublicKeyPem } from "../core/signature/public_key.ts";
import {
  type KeyBackend,
  type KeyBackendRow,
  type KeyOpener,
  type OpenKeyOptions,
  pluginName,
} from "./key_types.ts";

export type { KeyBackend, KeyBackendRow, KeyOpener, OpenKeyOptions } from "./key_types.ts";
export { pluginName } from "./key_types.ts";

/** A backend that is planned but not implemented yet. */
function notYet(scheme: string): KeyOpener {
  return () => Promise.reject(new AirlockError("KEY_UNSUPPORTED", `${scheme} keys are not supported yet`));
}

/**
 * The dispatch table: reference prefix → opener, and the backend's own hooks. Checked in order; the first
 * prefix that matches wins. References with another `NAME://` scheme go to the KMS plugin opener, everything
 * else to the key file opener.
 */
export const KEY_OPENERS: readonly KeyBackendRow[] = [
  {
    prefix: "pkcs11:",
    open: async (ref, options) => (await import("./pkcs11/key.ts")).openPkcs11Key(ref, options),
    display: redactPkcs11Uri,
    warning: pinValueWarning,
  },
  { prefix: "hashivault://", open: async (ref, o) => (await import("./hashivault.ts")).openVaultKey(ref, o) },
  { prefix: "openbao://", open: async (ref, o) => (await import("./hashivault.ts")).openVaultKey(ref, o) },
  { prefix: "awskms://", open: async (ref, o) => (await import("./awskms.ts")).openAwsKmsKey(ref, o) },
  { prefix: "gcpkms://", open: async (ref, o) => (await import("./gcpkms.ts")).openGcpKmsKey(ref, o) },
  { prefix: "azurekms://", open: async (ref, o) => (await import("./azurekms.ts")).openAzureKmsKey(ref, o) },
  { prefix: "k8s://", open: notYet("k8s://") },
];

/**
 * A key reference fit for log lines and messages: secrets a reference may carry (a PKCS#11 `pin-value`) are
 * replaced by `***`, by the hooks of the backends.
 */
export function displayKeyRef(ref: string): string {
  return KEY_OPENERS.reduce((r, row) => row.display?.(r) ?? r, ref);
}

/** A warning to print when a key reference carries a secret that process listings and shell history expose. */
export function keyRefWarning(ref: string): string | undefined {
  for (const row of KEY_OPENERS) {
    const w = row.warning?.(ref);
    if (w !== undefined) return w;
  }
  return undefined;
}

/** Opens `NAME://…` references through the KMS plugin protocol (executable `sigstore-kms-NAME`, ./plugin.ts). */
const openPluginKey: KeyOpener = async (ref, options) =>
  (await import("./plugin.ts")).openPluginKey(ref, options);

/** Opens an encrypted key file; the module (scrypt, secretbox) loads only when a file key is used. */
const openFileKey: KeyOpener = async (ref, options) => (await import("./file.ts")).openKeyFile(ref, options);

/**
 * Whether `ref` names a key file (the only backend that reads a passphrase), as {@linkcode openKey} decides.
 *
 * @example
 * ```ts
 * isKeyFileRef("cosign.key");              // true
 * isKeyFileRef("pkcs11:token=t;object=k"); // false
 * ```
 */
export function isKeyFileRef(ref: string): boolean {
  return !KEY_OPENERS.some((row) => ref.startsWith(row.prefix)) && pluginName(ref) === undefined;
}

/**
 * Opens the signing key named by `ref` (see the module doc for the schemes). Opening does the expensive and
 * fallible work once (decrypting a key file, logging into a token), so a wrong passphrase fails here, before
 * any network call.
 *
 * Errors: `KEY_UNSUPPORTED` (backend not available, unsupported key type, an RSA key under 2048 bits, an
 * unencrypted key file without `allowUnencryptedKey`), `KEY_INVALID`, `KEY_PASSPHRASE`, `IO_ERROR`.
 *
 * @example
 * ```ts
 * const key = await openKey("sigstore.key", { passphrase: "secret" });
 * const pem = await key.publicKey();
 * ```
 */
export async function openKey(ref: string, options: OpenKeyOptions = {}): Promise<KeyBackend> {
  const opener = KEY_OPENERS.find((row) => ref.startsWith(row.prefix))?.open ??
    (pluginName(ref) !== undefined ? openPluginKey : openFileKey);
  const key = await opener(ref, options);
  try {
    // Whatever holds it, a key too weak to trust (RSA under 2048 bits) is refused before it signs anything.
    parsePublicKeyPem(await key.publicKey());
  } catch (e) {
    await key.close().catch(() => {});
    if (e instanceof AirlockError) {
      throw new AirlockError(e.code, `key "${displayKeyRef(ref)}": ${e.message}`, { cause: e });
    }
    throw e;
  }
  return key;
}
