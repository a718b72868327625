/**
 * The credential files containers/image and Docker keep (`auth.json`, `config.json`, the legacy `~/.dockercfg`):
 * read and checked strictly (a malformed file is an error naming the line and column, never a silent miss),
 * written atomically with mode 0600 by `login`/`logout`; and the small path, environment and encoding utilities
 * the credential lookup shares. No message here ever contains a password, token or `auth` value.
 *
 * @module
 */
import { base64Encode } from "../encoding/base64.ts";
import { AirlockError, errorMessage } from "../errors.ts";
import type { AuthFilePath, CredentialOptions, Env } from "./credentials.ts";

/** One `auths` entry: the base64 `user:password`, or an identity token. */
export interface AuthEntry {
  /** base64 of `user:password`. */
  readonly auth?: string;
  /** An OAuth identity token. */
  readonly identitytoken?: string;
}

/** An auth file as the lookup reads it. */
export interface ParsedAuthFile {
  /** `auths` entries in file order. */
  readonly auths: ReadonlyArray<readonly [string, AuthEntry]>;
  /** Registry → credential helper name. */
  readonly credHelpers: Readonly<Record<string, string>>;
  /** The default credential helper. */
  readonly credsStore?: string;
}

// --- files -------------------------------------------------------------------------------------------------------

/** Reads and checks one auth file; `undefined` when it does not exist. */
export async function readAuthFile(file: AuthFilePath): Promise<ParsedAuthFile | undefined> {
  const raw = await readJson(file.path);
  if (raw === undefined) return undefined;
  return file.legacyFormat
    ? { auths: checkAuths(file.path, raw, ""), credHelpers: {} }
    : checkConfig(file.path, raw as Record<string, unknown>);
}

async function readJson(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw new AirlockError("CREDENTIALS", `reading ${path}: ${errorMessage(e)}`, { cause: e });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    // The parser's message can quote the file's text, which may hold secrets: report a position only.
    const m = /position (\d+)/.exec(errorMessage(e));
    const where = m ? ` at ${lineColumn(text, Number(m[1]))}` : "";
    throw new AirlockError("CREDENTIALS", `reading ${path}: invalid JSON${where}`);
  }
  if (value === null) return {};
  if (!isObject(value)) {
    throw new AirlockError("CREDENTIALS", `reading ${path}: the top level must be a JSON object`);
  }
  return value;
}

function checkConfig(path: string, raw: Record<string, unknown>): ParsedAuthFile {
  const credHelpers: Record<string, string> = {};
  if (raw.credHelpers !== undefined && raw.credHelpers !== null) {
    if (!isObject(raw.credHelpers)) {
      throw new AirlockError("CREDENTIALS", `reading ${path}: "credHelpers" must be an object`);
    }
    for (const [host, helper] of Object.entries(raw.credHelpers)) {
      if (typeof helper !== "string") {
        throw new AirlockError("CREDENTIALS", `reading ${path}: credHelpers["${host}"] must be a string`);
      }
      credHelpers[host] = helper;
    }
  }
  if (raw.credsStore !== undefined && raw.credsStore !== null && typeof raw.credsStore !== "string") {
    throw new AirlockError("CREDENTIALS", `reading ${path}: "credsStore" must be a string`);
  }
  return {
    auths: raw.auths === undefined || raw.auths === null ? [] : checkAuths(path, raw.auths, "auths"),
    credHelpers,
    credsStore: typeof raw.credsStore === "string" ? raw.credsStore : undefined,
  };
}

function checkAuths(path: string, auths: unknown, field: string): Array<[string, AuthEntry]> {
  const where = field ? `"${field}"` : "the top level";
  if (!isObject(auths)) throw new AirlockError("CREDENTIALS", `reading ${path}: ${where} must be an object`);
  const out: Array<[string, AuthEntry]> = [];
  for (const [key, entry] of Object.entries(auths)) {
    if (entry === null) {
      out.push([key, {}]);
      continue;
    }
    if (!isObject(entry)) {
      throw new AirlockError("CREDENTIALS", `reading ${path}: entry "${key}" must be an object`);
    }
    for (const f of ["auth", "identitytoken"] as const) {
      if (entry[f] !== undefined && entry[f] !== null && typeof entry[f] !== "string") {
        throw new AirlockError("CREDENTIALS", `reading ${path}: "${f}" of entry "${key}" must be a string`);
      }
    }
    out.push([key, {
      auth: typeof entry.auth === "string" ? entry.auth : undefined,
      identitytoken: typeof entry.identitytoken === "string" ? entry.identitytoken : undefined,
    }]);
  }
  return out;
}

interface EditableFile {
  /** The whole file, unknown fields included; `auths` is always an object. */
  raw: Record<string, unknown>;
  auths: Record<string, unknown>;
  credHelpers: Readonly<Record<string, string>>;
}

/** Reads an auth file for editing (login, logout); a missing file is an empty one. */
export async function readEditable(path: string): Promise<EditableFile> {
  const raw = (await readJson(path) ?? {}) as Record<string, unknown>;
  const checked = checkConfig(path, raw);
  if (!isObject(raw.auths)) raw.auths = {};
  return { raw, auths: raw.auths as Record<string, unknown>, credHelpers: checked.credHelpers };
}

/** Writes `contents` to `path` atomically (temporary file + rename) with mode 0600. */
export async function writeAuthFile(path: string, contents: Record<string, unknown>): Promise<void> {
  const dir = dirname(path);
  const tmp = `${dir}/.${basename(path)}.tmp-${crypto.randomUUID()}`;
  try {
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    await Deno.writeTextFile(tmp, JSON.stringify(contents, null, "\t") + "\n", {
      mode: 0o600,
      createNew: true,
    });
    if (Deno.build.os !== "windows") await Deno.chmod(tmp, 0o600); // the umask never widens 0600, but be explicit
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw new AirlockError("IO_ERROR", `writing ${path}: ${errorMessage(e)}`, { cause: e });
  }
}

// --- small utilities ---------------------------------------------------------------------------------------------

/** Checks a lookup key as containers/image does: no scheme, no `@`, no `:` after `host[:port]/`. */
export function validateKey(key: string): void {
  if (key === "") throw new AirlockError("INVALID_ARGUMENT", "empty registry name");
  if (/^https?:\/\//.test(key)) {
    throw new AirlockError("INVALID_ARGUMENT", `key ${key} contains http[s]:// prefix`);
  }
  if (key.includes("@")) throw new AirlockError("INVALID_ARGUMENT", `key ${key} contains a '@' character`);
  const slash = key.indexOf("/");
  if (slash !== -1 && key.slice(slash + 1).includes(":")) {
    throw new AirlockError("INVALID_ARGUMENT", `key ${key} contains a ':' character after host[:port]`);
  }
}

/** The key `login`/`logout` store a registry under: no scheme, no trailing slash, checked. */
export function normalizeLoginKey(registry: string): string {
  const key = registry.replace(/^https?:\/\//, "").replace(/\/+$/, "");
  validateKey(key);
  return key;
}

/** The `host[:port]` of a lookup key. */
export function hostOf(key: string): string {
  const slash = key.indexOf("/");
  return slash === -1 ? key : key.slice(0, slash);
}

/** The auth file named by `--authfile` or `REGISTRY_AUTH_FILE`, when one is. */
export function explicitAuthFile(opts: CredentialOptions): string | undefined {
  if (opts.authFile !== undefined && opts.authFile !== "") return opts.authFile;
  return envOf(opts, "REGISTRY_AUTH_FILE");
}

/** The home directory (`HOME`). */
export function homeOf(opts: CredentialOptions): string | undefined {
  return opts.home ?? envOf(opts, "HOME");
}

/** An environment variable; empty counts as unset. */
export function envOf(opts: CredentialOptions, name: string): string | undefined {
  const v = opts.env ? opts.env[name] : Deno.env.get(name);
  return v === undefined || v === "" ? undefined : v;
}

/** The set variables of an environment record. */
export function definedEntries(env: Env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
  return out;
}

/** The process uid, when the permission to read it is granted. */
export function currentUid(): number | undefined {
  try {
    if (Deno.permissions.querySync({ name: "sys", kind: "uid" }).state !== "granted") return undefined;
    return Deno.uid() ?? undefined;
  } catch {
    return undefined;
  }
}

/** Whether `path` exists. */
export function existsSync(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Whether `v` is a JSON object. */
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** `dir/rel`. */
export function join(dir: string, rel: string): string {
  return dir.endsWith("/") ? dir + rel : `${dir}/${rel}`;
}

function dirname(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? (i === 0 ? "/" : ".") : path.slice(0, i);
}

function basename(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

function lineColumn(text: string, pos: number): string {
  const before = text.slice(0, pos);
  const line = before.split("\n").length;
  return `line ${line}, column ${pos - before.lastIndexOf("\n")}`;
}

/** Standard base64 of the UTF-8 bytes of `s`. */
export function encodeBase64(s: string): string {
  return base64Encode(new TextEncoder().encode(s));
}

/** Lenient (`atob`) base64, as auth files hold it: unpadded values are accepted. */
export function decodeBase64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
