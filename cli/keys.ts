/**
 * Key commands: `generate-key-pair` (cosign's names), `generate-sigstore-key` (hangar's names) and
 * `public-key` (the public key of any key reference).
 *
 * @module
 */
import type { Command } from "commander";
import { AirlockError } from "../core/errors.ts";
import { generateKeyPair, keyPairPaths, writeKeyPair } from "../backends/keygen.ts";
import { pluginName } from "../backends/key_backend.ts";
import { pinValueWarning } from "../backends/pkcs11/uri.ts";
import { readPassphraseFile, terminalPrompt } from "../backends/passphrase.ts";
import { type GlobalFlags, runCommand, writeStdout } from "./common.ts";
import { ALLOW_UNENCRYPTED_HELP, openKeyWithWarning } from "./key_flags.ts";
import type { Logger } from "../core/report.ts";

/**
 * Registers the key commands on the program.
 */
export function registerKeys(program: Command): void {
  program.command("generate-key-pair")
    .description("generate an encrypted ECDSA P-256 key pair: cosign.key and cosign.pub")
    .option("--output-key-prefix <prefix>", "file name prefix", "cosign")
    .option(
      "--passphrase-file <file>",
      "read the passphrase from the first line of FILE (else COSIGN_PASSWORD)",
    )
    .option("-y, --yes", "overwrite existing files")
    .option(
      "--key <ref>",
      "generate the key in a token or KMS instead (pkcs11:…, NAME://… plugin); writes only <prefix>.pub",
    )
    .action((
      flags: { outputKeyPrefix: string; passphraseFile?: string; yes?: boolean; key?: string },
      cmd: Command,
    ) =>
      runCommand(
        cmd.optsWithGlobals<GlobalFlags>(),
        (log) =>
          flags.key !== undefined
            ? generateRemote(log, {
              ref: flags.key,
              prefix: flags.outputKeyPrefix,
              overwrite: flags.yes ?? false,
            })
            : generate(log, {
              prefix: flags.outputKeyPrefix,
              passphraseFile: flags.passphraseFile,
              overwrite: flags.yes ?? false,
            }),
      )
    );

  program.command("generate-sigstore-key")
    .description("generate an encrypted sigstore key pair for sign: sigstore.key and sigstore.pub")
    .option("-p, --prefix <prefix>", "file name prefix", "sigstore")
    .option("--passphrase-file <file>", "read the passphrase from the first line of FILE")
    .option("-y, --auto-yes", "overwrite existing files")
    .action((flags: { prefix: string; passphraseFile?: string; autoYes?: boolean }, cmd: Command) =>
      runCommand(cmd.optsWithGlobals<GlobalFlags>(), (log) =>
        generate(log, {
          prefix: flags.prefix,
          passphraseFile: flags.passphraseFile,
          overwrite: flags.autoYes ?? false,
        }))
    );

  program.command("public-key")
    .description("print the public key (PEM) of a key reference")
    .requiredOption(
      "--key <ref>",
      "key reference: a key file, pkcs11:…, hashivault://…, awskms://…, NAME://…",
    )
    .option("--passphrase-file <file>", "read the key passphrase from the first line of FILE")
    .option("--allow-unencrypted-key", ALLOW_UNENCRYPTED_HELP)
    .action((flags: { key: string; passphraseFile?: string; allowUnencryptedKey?: boolean }, cmd: Command) =>
      runCommand(cmd.optsWithGlobals<GlobalFlags>(), async (log) => {
        const key = await openKeyWithWarning(flags.key, {
          passphraseFile: flags.passphraseFile,
          allowUnencryptedKey: flags.allowUnencryptedKey,
        }, log);
        try {
          writeStdout(await key.publicKey());
        } finally {
          await key.close();
        }
      })
    );
}

async function generate(
  log: Logger,
  o: { prefix: string; passphraseFile?: string; overwrite: boolean },
): Promise<void> {
  const passphrase = await newPassphrase(o.passphraseFile);
  if (passphrase.length < 5) log.warn(`The passphrase of key "${o.prefix}.key" is too weak!`);
  // Both commands write what cosign writes today: ENCRYPTED SIGSTORE PRIVATE KEY, scrypt N=65536.
  const pair = await generateKeyPair({ passphrase });
  const paths = keyPairPaths(o.prefix);
  await writeKeyPair(pair, paths, { overwrite: o.overwrite });
  log.info(`Private key written to "${paths.keyFile}" (mode 0600), public key to "${paths.pubFile}"`);
}

/**
 * `generate-key-pair --key REF`: the private key is created where REF says (a PKCS#11 token: ECDSA P-256 with
 * the URI's label and id; a KMS plugin: its `createKey` with the default algorithm) and only the public key is
 * written, as `cosign generate-key-pair --kms` does.
 */
async function generateRemote(
  log: Logger,
  o: { ref: string; prefix: string; overwrite: boolean },
): Promise<void> {
  const pubFile = `${o.prefix}.pub`;
  if (!o.overwrite) {
    try {
      await Deno.lstat(pubFile);
      throw new AirlockError("FILE_EXISTS", `file "${pubFile}" already exists`);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  let publicPem: string;
  if (o.ref.startsWith("pkcs11:")) {
    const warning = pinValueWarning(o.ref);
    if (warning) log.warn(warning);
    const { generatePkcs11KeyPair } = await import("../backends/pkcs11/key.ts");
    const made = await generatePkcs11KeyPair(o.ref);
    publicPem = made.publicPem;
    log.info(`ECDSA P-256 key pair generated on the PKCS#11 token (id ${toHex(made.id)})`);
  } else if (pluginName(o.ref) !== undefined) {
    const { createPluginKey } = await import("../backends/plugin.ts");
    const made = await createPluginKey(o.ref);
    publicPem = made.publicPem;
    log.info(`Key created through the KMS plugin (algorithm ${made.algorithm})`);
  } else {
    throw new AirlockError(
      "INVALID_ARGUMENT",
      `--key must be a pkcs11: URI or a NAME:// KMS reference, not "${o.ref}"`,
    );
  }
  try {
    await Deno.writeTextFile(pubFile, publicPem, { mode: 0o644, createNew: !o.overwrite });
  } catch (e) {
    if (e instanceof Deno.errors.AlreadyExists) {
      throw new AirlockError("FILE_EXISTS", `file "${pubFile}" already exists`);
    }
    throw new AirlockError("IO_ERROR", `writing "${pubFile}": ${(e as Error).message}`, { cause: e });
  }
  log.info(`Public key written to "${pubFile}"`);
}

function toHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** A new key's passphrase: the file's first line, else COSIGN_PASSWORD, else asked twice on a terminal. */
async function newPassphrase(file?: string): Promise<string> {
  if (file !== undefined) return new TextDecoder().decode(await readPassphraseFile(file));
  const env = Deno.env.get("COSIGN_PASSWORD");
  if (env !== undefined) return env;
  if (!Deno.stdin.isTerminal()) {
    throw new AirlockError(
      "KEY_PASSPHRASE",
      "no passphrase for the new key: use --passphrase-file or COSIGN_PASSWORD (stdin is not a terminal)",
    );
  }
  const a = await terminalPrompt("Enter password for private key: ");
  const b = await terminalPrompt("Enter password for private key again: ");
  if (a !== b) throw new AirlockError("KEY_PASSPHRASE", "passwords do not match");
  return a;
}
