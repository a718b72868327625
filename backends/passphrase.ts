/**
 * Where the passphrase of an encrypted key file comes from, in cosign/skopeo order:
 * 1. an explicit value (library callers, `airlock serve`);
 * 2. a passphrase file (`--sigstore-passphrase-file`): its **first line**, without the trailing `\n` or `\r\n`.
 *    An empty first line is an empty passphrase, which is valid (cosign and skopeo accept it). This differs on
 *    purpose from hangar v1, which applied `bytes.TrimSpace` to the whole file and then refused empty passphrases;
 *    with first-line semantics leading/trailing spaces can be part of a passphrase;
 * 3. the `COSIGN_PASSWORD` environment variable when it is **set** (an empty value is an empty passphrase);
 * 4. an interactive prompt without echo, only when stdin is a terminal; otherwise a clear `KEY_PASSPHRASE` error.
 *
 * Passphrases never appear in error messages.
 *
 * @module
 */
import { AirlockError } from "../core/errors.ts";

/** The environment variable cosign (and airlock) read the key passphrase from. */
export const PASSPHRASE_ENV = "COSIGN_PASSWORD";

/** Where a key passphrase may come from; the first source present wins (see the module doc). */
export interface PassphraseOptions {
  /** The passphrase itself. A string is encoded as UTF-8. */
  passphrase?: Uint8Array | string;
  /** A file whose first line is the passphrase (`--sigstore-passphrase-file`). */
  passphraseFile?: string;
  /**
   * Reads an environment variable; defaults to `Deno.env.get` (a missing `--allow-env` permission counts as
   * "not set"). Pass `() => undefined` to ignore the environment.
   */
  env?: (name: string) => string | undefined;
  /**
   * Asks the user; receives the prompt text. Defaults to {@linkcode terminalPrompt}. Used only when
   * {@linkcode PassphraseOptions.isTerminal} says stdin is a terminal.
   */
  prompt?: (message: string) => Promise<string>;
  /** Whether stdin is an interactive terminal; defaults to `Deno.stdin.isTerminal()`. */
  isTerminal?: () => boolean;
}

/** Which source a resolved passphrase came from (for log lines such as "Read the passphrase from …"). */
export type PassphraseSource = "value" | "file" | "env" | "prompt";

/** A resolved passphrase. The caller should `fill(0)` the bytes once the key is decrypted. */
export interface ResolvedPassphrase {
  /** The passphrase bytes (UTF-8 for text sources). */
  passphrase: Uint8Array;
  /** Where it came from. */
  source: PassphraseSource;
}

/**
 * The first line of a passphrase file's contents, without its line terminator (`\n` or `\r\n`).
 */
export function firstLine(bytes: Uint8Array): Uint8Array {
  const nl = bytes.indexOf(0x0a);
  let end = nl < 0 ? bytes.length : nl;
  if (nl >= 0 && end > 0 && bytes[end - 1] === 0x0d) end--;
  return bytes.slice(0, end);
}

/**
 * Reads a passphrase file: its first line, trailing `\n`/`\r\n` removed; an empty file gives an empty
 * passphrase. Throws `IO_ERROR` (`failed to read "<file>": …`) when the file cannot be read.
 */
export async function readPassphraseFile(path: string): Promise<Uint8Array> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new AirlockError("IO_ERROR", `failed to read "${path}": ${(e as Error).message}`, { cause: e });
  }
  const line = firstLine(bytes);
  bytes.fill(0);
  return line;
}

/**
 * `Deno.env.get`, with a missing `--allow-env` permission counted as "not set": the default `env` option of the
 * key backends.
 */
export function defaultEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no --allow-env: treated as not set
  }
}

/**
 * `Deno.stdin.isTerminal()`, `false` when it cannot be asked: the default `isTerminal` option of the key backends.
 */
export function defaultIsTerminal(): boolean {
  try {
    return Deno.stdin.isTerminal();
  } catch {
    return false;
  }
}

/**
 * Resolves the passphrase for `keyName` from {@linkcode PassphraseOptions} (order in the module doc).
 * Throws `KEY_PASSPHRASE` when no source is available (stdin is not a terminal and nothing else was given),
 * and `IO_ERROR` when the passphrase file cannot be read.
 *
 * @param keyName the key file, named in the prompt and in errors
 */
export async function resolvePassphrase(
  keyName: string,
  options: PassphraseOptions,
): Promise<ResolvedPassphrase> {
  const enc = new TextEncoder();
  if (options.passphrase !== undefined) {
    const p = options.passphrase;
    return { passphrase: typeof p === "string" ? enc.encode(p) : p.slice(), source: "value" };
  }
  if (options.passphraseFile !== undefined) {
    return { passphrase: await readPassphraseFile(options.passphraseFile), source: "file" };
  }
  const fromEnv = (options.env ?? defaultEnv)(PASSPHRASE_ENV);
  if (fromEnv !== undefined) return { passphrase: enc.encode(fromEnv), source: "env" };
  if ((options.isTerminal ?? defaultIsTerminal)()) {
    const answer = await (options.prompt ?? terminalPrompt)(`Enter the passphrase for key "${keyName}": `);
    return { passphrase: enc.encode(answer), source: "prompt" };
  }
  throw new AirlockError(
    "KEY_PASSPHRASE",
    `no passphrase for key "${keyName}": stdin is not a terminal, so airlock cannot ask for it; ` +
      `give a passphrase file or set ${PASSPHRASE_ENV}`,
  );
}

/**
 * Asks for a secret on the terminal without echoing it: writes `message` to stderr, switches stdin to raw
 * mode, reads up to Enter, and restores the mode. Backspace edits; Ctrl-C or Ctrl-D on an empty line aborts
 * with a `CANCELLED` error. Requires stdin to be a terminal.
 */
export async function terminalPrompt(message: string): Promise<string> {
  const enc = new TextEncoder();
  await Deno.stderr.write(enc.encode(message));
  const stdin = Deno.stdin;
  stdin.setRaw(true);
  const chars: number[] = [];
  const buf = new Uint8Array(256);
  try {
    read: for (;;) {
      const n = await stdin.read(buf);
      if (n === null) break;
      for (const b of buf.subarray(0, n)) {
        if (b === 0x0d || b === 0x0a) break read;
        if (b === 0x03 || (b === 0x04 && chars.length === 0)) {
          throw new AirlockError("CANCELLED", "passphrase prompt cancelled");
        }
        if (b === 0x7f || b === 0x08) {
          while (chars.length && (chars[chars.length - 1] & 0xc0) === 0x80) chars.pop(); // UTF-8 tail
          chars.pop();
        } else chars.push(b);
      }
    }
  } finally {
    buf.fill(0);
    stdin.setRaw(false);
    await Deno.stderr.write(enc.encode("\n"));
  }
  const bytes = new Uint8Array(chars);
  chars.fill(0);
  const s = new TextDecoder().decode(bytes);
  bytes.fill(0);
  return s;
}
