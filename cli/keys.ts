/**
 * Key commands: `generate-key-pair` (cosign's names), `generate-sigstore-key` (hangar's names) and
 * `public-key` (the public key of any key reference).
 *
 * @module
 */
import type { Command } from "commander";
import { AirlockError } from "../core/errors.ts";
import { generateKeyPair, keyPairPaths, writeKeyPair } from "../backends/keygen.ts";
import { openKey } from "../backends/key_backend.ts";
import { readPassphraseFile, terminalPrompt } from "../backends/passphrase.ts";
import { type GlobalFlags, runCommand, writeStdout } from "./common.ts";
import type { Logger } from "../core/report.ts";

/**
 * Registers the key commands on the program.
 *
 * @example
 * ```ts
 * registerKeys(program);
 * ```
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
    .action((flags: { outputKeyPrefix: string; passphraseFile?: string; yes?: boolean }, cmd: Command) =>
      runCommand(cmd.optsWithGlobals<GlobalFlags>(), (log) =>
        generate(log, {
          prefix: flags.outputKeyPrefix,
          passphraseFile: flags.passphraseFile,
          overwrite: flags.yes ?? false,
        }))
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
    .action((flags: { key: string; passphraseFile?: string }, cmd: Command) =>
      runCommand(cmd.optsWithGlobals<GlobalFlags>(), async () => {
        const key = await openKey(flags.key, { passphraseFile: flags.passphraseFile });
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
