/**
 * Bearer tokens of `airlock serve`. The token file holds one `NAME SHA256HEX` line per token: a name (for audit
 * lines) and the hex SHA-256 of the token; the tokens themselves are never stored. Blank lines and lines starting
 * with `#` are ignored.
 *
 * A presented token is hashed and compared with every stored hash in constant time (no early exit, so the time
 * does not tell which entry matched or how much of a hash did). The file is re-read when it changes (checked at
 * most every {@linkcode TokenStoreOptions.checkIntervalMs} on the request path), so deleting a line revokes the
 * token within that interval; a file that disappears or cannot be read revokes every token (fail closed).
 *
 * {@linkcode addToken} creates a random token (256 bits), appends its hash to the file (mode 0600) and returns
 * the token, which the caller shows once.
 *
 * @example
 * ```ts
 * const store = await TokenStore.open("/etc/airlock/tokens");
 * const name = await store.authenticate(bearer); // "ci-builder-1" or undefined
 * ```
 *
 * @module
 */
import { AirlockError, errorMessage } from "../core/errors.ts";
import { type Logger, silentLogger } from "../core/report.ts";

/** Token names: what audit lines and job records show. */
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
const HASH_RE = /^[0-9a-fA-F]{64}$/;
/** Longer bearer values are refused without hashing (airlock's own tokens are 51 characters). */
const MAX_TOKEN_LENGTH = 512;
/** The prefix of tokens made by {@linkcode generateToken}, so that scanners can recognise leaked ones. */
export const TOKEN_PREFIX = "airlock_";

/** One line of a token file. */
export interface TokenEntry {
  /** The token's name. */
  readonly name: string;
  /** SHA-256 of the token (32 bytes). */
  readonly hash: Uint8Array;
}

/** A parsed token file: the valid entries and a description of every bad line. */
export interface ParsedTokenFile {
  /** Valid entries, in file order. */
  readonly entries: readonly TokenEntry[];
  /** `line N: …` for each line that was not used. */
  readonly problems: readonly string[];
}

/**
 * Checks a token name (letters, digits, `.`, `_`, `@`, `-`; at most 64; starting with a letter or digit).
 *
 * @throws {AirlockError} `INVALID_ARGUMENT` for a bad name.
 */
export function checkTokenName(name: string): void {
  if (!NAME_RE.test(name)) {
    throw new AirlockError(
      "INVALID_ARGUMENT",
      `invalid token name ${JSON.stringify(name)}: use 1-64 letters, digits, '.', '_', '@' or '-', ` +
        "starting with a letter or digit",
    );
  }
}

/**
 * Parses the text of a token file. Never throws: bad lines (wrong field count, bad name, bad hash, a repeated
 * name) are left out and described in `problems`.
 */
export function parseTokenFile(text: string): ParsedTokenFile {
  const entries: TokenEntry[] = [];
  const problems: string[] = [];
  const seen = new Set<string>();
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const fields = line.split(/\s+/);
    const where = `line ${i + 1}`;
    if (fields.length !== 2) {
      problems.push(`${where}: expected "NAME SHA256HEX", got ${fields.length} fields`);
    } else if (!NAME_RE.test(fields[0])) {
      problems.push(`${where}: invalid token name ${JSON.stringify(fields[0])}`);
    } else if (!HASH_RE.test(fields[1])) {
      problems.push(`${where}: the hash of ${fields[0]} is not 64 hex digits`);
    } else if (seen.has(fields[0])) {
      problems.push(`${where}: token name ${fields[0]} appears twice`);
    } else {
      seen.add(fields[0]);
      entries.push({ name: fields[0], hash: fromHex(fields[1]) });
    }
  });
  return { entries, problems };
}

/**
 * The hex SHA-256 of a token, as the token file stores it.
 */
export async function hashTokenHex(token: string): Promise<string> {
  return toHex(await sha256(token));
}

/**
 * Compares two byte strings in time that does not depend on where they differ.
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false; // lengths are public (SHA-256 digests here)
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/**
 * A new random token: {@linkcode TOKEN_PREFIX} and 32 random bytes in base64url (43 characters).
 */
export function generateToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  const b64 = btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_").replace(
    /=+$/,
    "",
  );
  return TOKEN_PREFIX + b64;
}

/** What {@linkcode addToken} did. */
export interface AddedToken {
  /** The new token: show it once, never store it. */
  readonly token: string;
  /** Whether the file was created. */
  readonly created: boolean;
  /** Set when an existing file was readable or writable by others and was restricted to 0600. */
  readonly modeFixedFrom?: number;
}

/**
 * Creates a token named `name`, appends `NAME SHA256HEX` to the token file (created with mode 0600; an existing
 * file is restricted to 0600) and returns the token.
 *
 * @throws {AirlockError} `INVALID_ARGUMENT` for a bad name or a name already in the file; `CONFIG_INVALID` when
 * the existing file has bad lines; `IO_ERROR` when the file cannot be read or written.
 *
 * @example
 * ```ts
 * const { token } = await addToken("/etc/airlock/tokens", "ci-builder-1");
 * console.log(token); // shown once
 * ```
 */
export async function addToken(path: string, name: string): Promise<AddedToken> {
  checkTokenName(name);
  let existing: string | undefined;
  let mode: number | undefined;
  try {
    existing = await Deno.readTextFile(path);
    mode = (await Deno.stat(path)).mode ?? undefined;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw ioError(`cannot read the token file "${path}"`, e);
  }
  if (existing !== undefined) {
    const parsed = parseTokenFile(existing);
    if (parsed.problems.length > 0) {
      throw new AirlockError(
        "CONFIG_INVALID",
        `token file "${path}" has bad lines; fix them first:\n${parsed.problems.join("\n")}`,
      );
    }
    if (parsed.entries.some((e) => e.name === name)) {
      throw new AirlockError(
        "INVALID_ARGUMENT",
        `token name ${name} is in "${path}" already: delete its line to revoke it, or choose another name`,
      );
    }
  }
  const token = generateToken();
  const sep = existing !== undefined && existing !== "" && !existing.endsWith("\n") ? "\n" : "";
  const line = `${sep}${name} ${await hashTokenHex(token)}\n`;
  let modeFixedFrom: number | undefined;
  try {
    const file = await Deno.open(path, { append: true, create: true, mode: 0o600 });
    try {
      await file.write(new TextEncoder().encode(line));
    } finally {
      file.close();
    }
    const perm = mode === undefined ? undefined : mode & 0o777;
    if (perm === undefined || (perm & 0o077) !== 0) {
      await Deno.chmod(path, 0o600);
      if (perm !== undefined) modeFixedFrom = perm;
    }
  } catch (e) {
    throw ioError(`cannot write the token file "${path}"`, e);
  }
  return {
    token,
    created: existing === undefined,
    ...(modeFixedFrom !== undefined ? { modeFixedFrom } : {}),
  };
}

/** Answers "which token is this?" for the HTTP app (which knows nothing about files). */
export interface TokenAuthenticator {
  /** The name of the token, or `undefined` when it is not (or no longer) valid. */
  authenticate(token: string): Promise<string | undefined>;
}

/** Options of {@linkcode TokenStore.open}. */
export interface TokenStoreOptions {
  /** Where reloads and problems are logged. */
  readonly logger?: Logger;
  /** The file is checked for changes at most this often, in ms (default 250). */
  readonly checkIntervalMs?: number;
  /** The clock, in ms (default `Date.now`). */
  readonly now?: () => number;
}

/**
 * The tokens of a token file, kept current: the file is re-read when a request comes in and the last read is
 * older than the check interval; if its text changed, the new entries replace the old ones.
 *
 * @example
 * ```ts
 * const store = await TokenStore.open(path, { logger });
 * if (await store.authenticate(token) === undefined) return unauthorized();
 * ```
 */
export class TokenStore implements TokenAuthenticator {
  readonly #path: string;
  readonly #log: Logger;
  readonly #interval: number;
  readonly #now: () => number;
  #entries: readonly TokenEntry[] = [];
  #text: string | undefined;
  #checkedAt = -Infinity;
  #checking: Promise<void> | undefined;

  private constructor(path: string, o: TokenStoreOptions) {
    this.#path = path;
    this.#log = o.logger ?? silentLogger();
    this.#interval = o.checkIntervalMs ?? 250;
    this.#now = o.now ?? Date.now;
  }

  /**
   * Reads the token file; it must exist and every line must be valid (at start, mistakes are errors; later
   * reloads skip bad lines with a warning instead). A file others may write to is reported as a warning.
   *
   * @throws {AirlockError} `CONFIG_INVALID` for a missing file or bad lines, `IO_ERROR` when it cannot be read.
   */
  static async open(path: string, o: TokenStoreOptions = {}): Promise<TokenStore> {
    const store = new TokenStore(path, o);
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new AirlockError(
          "CONFIG_INVALID",
          `token file "${path}" does not exist; create a token with: airlock serve token-add --token-file ` +
            `${path} NAME`,
        );
      }
      throw ioError(`cannot read the token file "${path}"`, e);
    }
    const parsed = parseTokenFile(text);
    if (parsed.problems.length > 0) {
      throw new AirlockError("CONFIG_INVALID", `token file "${path}":\n${parsed.problems.join("\n")}`);
    }
    const mode = (await Deno.stat(path)).mode;
    if (mode !== null && (mode & 0o022) !== 0) {
      store.#log.warn(
        `token file "${path}" is writable by group or others (mode ${(mode & 0o777).toString(8)}): ` +
          "anyone who can write it can add tokens; chmod 600 it",
      );
    }
    if (parsed.entries.length === 0) {
      store.#log.warn(
        `token file "${path}" holds no tokens: every request will be refused until one is added`,
      );
    }
    store.#entries = parsed.entries;
    store.#text = text;
    store.#checkedAt = store.#now();
    return store;
  }

  /** How many tokens are valid now. */
  get size(): number {
    return this.#entries.length;
  }

  /** The name of `token`, or `undefined`. Re-reads the file first when the last read is old enough. */
  async authenticate(token: string): Promise<string | undefined> {
    await this.refresh();
    if (token.length === 0 || token.length > MAX_TOKEN_LENGTH) return undefined;
    const hash = await sha256(token);
    let found: string | undefined;
    for (const e of this.#entries) {
      // every entry is compared, whatever matched before
      if (constantTimeEqual(e.hash, hash) && found === undefined) found = e.name;
    }
    return found;
  }

  /** Re-reads the file when the last check is older than the interval (`force`: now). */
  refresh(force = false): Promise<void> {
    if (!force && this.#now() - this.#checkedAt < this.#interval) return Promise.resolve();
    this.#checking ??= this.#reload().finally(() => {
      this.#checking = undefined;
    });
    return this.#checking;
  }

  async #reload(): Promise<void> {
    let text: string;
    try {
      text = await Deno.readTextFile(this.#path);
    } catch (e) {
      this.#checkedAt = this.#now();
      // `#text` is undefined only after a failed read: the error is logged once per outage
      if (this.#text !== undefined) {
        this.#log.error(
          `cannot read the token file "${this.#path}": ${errorMessage(e)}; refusing every token`,
        );
      }
      this.#entries = [];
      this.#text = undefined;
      return;
    }
    this.#checkedAt = this.#now();
    if (text === this.#text) return;
    const parsed = parseTokenFile(text);
    for (const p of parsed.problems) this.#log.warn(`token file "${this.#path}" ${p}: line ignored`);
    this.#entries = parsed.entries;
    this.#text = text;
    this.#log.info(`token file "${this.#path}" reloaded: ${parsed.entries.length} token(s)`);
  }
}

function ioError(what: string, e: unknown): AirlockError {
  return new AirlockError("IO_ERROR", `${what}: ${errorMessage(e)}`, { cause: e });
}

async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
}

function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function fromHex(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}
