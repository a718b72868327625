/**
 * Registry credentials found the way containers/image (`pkg/docker/config`) finds them, with Docker's
 * `credsStore` as an extension: `auth.json` files, Docker's `config.json`, the legacy `~/.dockercfg`, and
 * `docker-credential-*` helpers. Also `login`/`logout` writing the containers `auth.json` format.
 *
 * No message this module produces ever contains a password, token or `auth` value.
 *
 * @module
 */
import { base64Encode } from "../encoding/base64.ts";
import { AirlockError, errorMessage } from "../errors.ts";
import type { Credential, CredentialLookup } from "./types.ts";

/** The environment as a plain record (`undefined` or empty = unset). */
export type Env = Readonly<Record<string, string | undefined>>;

/** Options shared by the credential functions. */
export interface CredentialOptions {
  /**
   * An explicit auth file (`--authfile`). As in podman/skopeo, an explicit file (this option, else
   * `REGISTRY_AUTH_FILE`) is the **only** file read, and the file written by `login`/`logout`.
   */
  readonly authFile?: string;
  /** The environment to read (`REGISTRY_AUTH_FILE`, `XDG_RUNTIME_DIR`, `XDG_CONFIG_HOME`, `DOCKER_CONFIG`,
   * `HOME`, `PATH`); default: the process environment. Defined values are also passed to credential helpers. */
  readonly env?: Env;
  /** The home directory (default `$HOME`). */
  readonly home?: string;
}

/** One file searched for credentials. */
export interface AuthFilePath {
  /** The file's path. */
  readonly path: string;
  /** True for `~/.dockercfg` (a bare map of entries, no `auths` wrapper; registry keys only). */
  readonly legacyFormat: boolean;
}

/** Where credentials were found: a file, and the helper that supplied them if one did. */
export interface CredentialSource {
  /** The auth file that held the entry or named the helper. */
  readonly file: string;
  /** The `auths` key that matched, when the credentials came from the file itself. */
  readonly key?: string;
  /** The helper (`docker-credential-<helper>`), when one supplied the credentials. */
  readonly helper?: string;
}

/** Credentials with their source (for `--debug` lines). */
export interface CredentialMatch {
  /** The credentials. */
  readonly credential: Credential;
  /** Where they came from. */
  readonly source: CredentialSource;
}

/**
 * A {@linkcode CredentialLookup} (by registry host) that can also look up by repository, honouring
 * namespaced `auths` keys (`host/ns/repo`, `host/ns`) as containers `auth.json` allows.
 */
export type RepositoryCredentialLookup = CredentialLookup & {
  /** Credentials for `registry/repository`: the longest matching `auths` key wins. */
  lookupForRepository(registry: string, repository: string): Promise<Credential | undefined>;
  /** Credentials and their source for a key (`host[:port]` or `host[:port]/path`), or `undefined`. */
  find(key: string): Promise<CredentialMatch | undefined>;
};

/**
 * The files searched for credentials, in order, as containers/image lists them: an explicit auth file (option
 * or `REGISTRY_AUTH_FILE`) alone; otherwise `$XDG_RUNTIME_DIR/containers/auth.json` (on Linux; without
 * `XDG_RUNTIME_DIR`, `/run/containers/$UID/auth.json`), `${XDG_CONFIG_HOME:-~/.config}/containers/auth.json`,
 * `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`, and `~/.dockercfg`.
 *
 * @example
 * ```ts
 * for (const p of authFilePaths()) console.log(p.path);
 * ```
 */
export function authFilePaths(opts: CredentialOptions = {}): AuthFilePath[] {
  const explicit = explicitAuthFile(opts);
  if (explicit !== undefined) return [{ path: explicit, legacyFormat: false }];
  const home = homeOf(opts);
  const paths: AuthFilePath[] = [];
  if (Deno.build.os === "linux") {
    const runtimeDir = envOf(opts, "XDG_RUNTIME_DIR");
    if (runtimeDir !== undefined) {
      // containers/image skips (with a warning) an XDG_RUNTIME_DIR that does not exist; so do we, silently.
      if (existsSync(runtimeDir)) {
        paths.push({ path: join(runtimeDir, "containers/auth.json"), legacyFormat: false });
      }
    } else {
      const uid = currentUid();
      if (uid !== undefined) paths.push({ path: `/run/containers/${uid}/auth.json`, legacyFormat: false });
    }
  } else if (home !== undefined) {
    paths.push({ path: join(home, ".config/containers/auth.json"), legacyFormat: false });
  }
  const configHome = envOf(opts, "XDG_CONFIG_HOME") ??
    (home !== undefined ? join(home, ".config") : undefined);
  if (configHome !== undefined) {
    const p = join(configHome, "containers/auth.json");
    if (!paths.some((x) => x.path === p)) paths.push({ path: p, legacyFormat: false });
  }
  const dockerConfig = envOf(opts, "DOCKER_CONFIG");
  if (dockerConfig !== undefined) {
    paths.push({ path: join(dockerConfig, "config.json"), legacyFormat: false });
  } else if (home !== undefined) {
    paths.push({ path: join(home, ".docker/config.json"), legacyFormat: false });
  }
  if (home !== undefined) paths.push({ path: join(home, ".dockercfg"), legacyFormat: true });
  return paths;
}

/**
 * The file `login`/`logout` write, as podman picks it: the explicit auth file (option or `REGISTRY_AUTH_FILE`),
 * else `$XDG_RUNTIME_DIR/containers/auth.json`, else `${XDG_CONFIG_HOME:-~/.config}/containers/auth.json`.
 *
 * @throws {AirlockError} `CREDENTIALS` when `XDG_RUNTIME_DIR` is set to a directory that does not exist, or
 * no home directory is known.
 *
 * @example
 * ```ts
 * defaultAuthFile({ env: { XDG_RUNTIME_DIR: "/run/user/1000" } }); // "/run/user/1000/containers/auth.json"
 * ```
 */
export function defaultAuthFile(opts: CredentialOptions = {}): string {
  const explicit = explicitAuthFile(opts);
  if (explicit !== undefined) return explicit;
  const runtimeDir = envOf(opts, "XDG_RUNTIME_DIR");
  if (runtimeDir !== undefined && Deno.build.os === "linux") {
    if (!existsSync(runtimeDir)) {
      throw new AirlockError(
        "CREDENTIALS",
        `"${runtimeDir}" directory set by $XDG_RUNTIME_DIR does not exist. Either create the directory or unset $XDG_RUNTIME_DIR.`,
      );
    }
    return join(runtimeDir, "containers/auth.json");
  }
  const home = homeOf(opts);
  const configHome = envOf(opts, "XDG_CONFIG_HOME") ??
    (home !== undefined ? join(home, ".config") : undefined);
  if (configHome === undefined) {
    throw new AirlockError(
      "CREDENTIALS",
      "cannot choose an auth file: neither $HOME nor $XDG_CONFIG_HOME is set",
    );
  }
  return join(configHome, "containers/auth.json");
}

/**
 * Creates a credential lookup over the files of {@linkcode authFilePaths}. For each file in order:
 * `credHelpers[host]` (runs `docker-credential-<helper> get`), then `auths` (exact key, then parent
 * namespaces down to `host[:port]`; then `http(s)://host[/…]` and, for Docker Hub, `index.docker.io` forms),
 * then `credsStore`. The first file that yields credentials wins; a file that does not exist is skipped.
 * Results are cached per key for the life of the lookup.
 *
 * Helpers get the registry host (`docker.io` for Docker Hub) on stdin; `credsStore` gets Docker's server
 * address (`https://index.docker.io/v1/` for Docker Hub). A helper answering "credentials not found" means none.
 *
 * @throws {AirlockError} `CREDENTIALS` (from the returned functions) for a malformed file (naming the file), a
 * helper that is not on `PATH` (naming the helper) or fails.
 *
 * @example
 * ```ts
 * const lookup = createCredentialLookup();
 * const cred = await lookup("registry.example.com:5000");
 * ```
 */
export function createCredentialLookup(opts: CredentialOptions = {}): RepositoryCredentialLookup {
  const cache = new Map<string, Promise<CredentialMatch | undefined>>();
  const find = (key: string): Promise<CredentialMatch | undefined> => {
    validateKey(key);
    let p = cache.get(key);
    if (p === undefined) {
      p = findCredentials(key, opts);
      p.catch(() => cache.delete(key));
      cache.set(key, p);
    }
    return p;
  };
  const lookup = async (registry: string) => (await find(registry))?.credential;
  return Object.assign(lookup, {
    lookupForRepository: async (registry: string, repository: string) =>
      (await find(repository ? `${registry}/${repository}` : registry))?.credential,
    find,
  });
}

/** Options of {@linkcode login}, {@linkcode logout} and {@linkcode logoutAll}. */
export type LoginOptions = CredentialOptions;

/**
 * Stores credentials for `registry` (`host[:port]`, or a namespace `host[:port]/path`; a leading `https://`
 * and a trailing `/` are dropped) in the auth file of {@linkcode defaultAuthFile}, in the containers format
 * `{"auths":{"<key>":{"auth":"base64(user:pass)"}}}`. Other entries and unknown fields are preserved; the file is
 * written atomically with mode 0600 (its directory is created 0700). If the file has `credHelpers[host]`, the
 * helper stores the credentials instead (`docker-credential-<helper> store`), as podman does. An identity token
 * is stored as `identitytoken` (with `auth` = base64(`<token>:`), the form containers/image reads back).
 *
 * @returns where the credentials went: the file path, or `credential helper: <name>`.
 * @throws {AirlockError} `INVALID_ARGUMENT` for a malformed key; `CREDENTIALS` for an unreadable or malformed
 * file or a failing helper; `IO_ERROR` when the file cannot be written.
 *
 * @example
 * ```ts
 * await login("registry.example.com:5000", { username: "ci", password: secret });
 * ```
 */
export async function login(
  registry: string,
  credential: Credential,
  opts: LoginOptions = {},
): Promise<string> {
  const key = normalizeLoginKey(registry);
  const path = defaultAuthFile(opts);
  const contents = await readEditable(path);
  const host = hostOf(key);
  const helper = contents.credHelpers[host];
  if (helper !== undefined && key === host) {
    const username = "identityToken" in credential ? "<token>" : credential.username;
    const secret = "identityToken" in credential ? credential.identityToken : credential.password;
    await runHelper(helper, "store", JSON.stringify({ ServerURL: key, Username: username, Secret: secret }), {
      opts,
      configuredIn: path,
      secret,
    });
    return `credential helper: ${helper}`;
  }
  const entry: Record<string, string> = "identityToken" in credential
    ? { auth: encodeBase64("<token>:"), identitytoken: credential.identityToken }
    : { auth: encodeBase64(`${credential.username}:${credential.password}`) };
  contents.auths[key] = entry;
  await writeAuthFile(path, contents.raw);
  return path;
}

/**
 * Removes the credentials stored for `registry` (same key rules as {@linkcode login}) from the auth file of
 * {@linkcode defaultAuthFile}, and from the helper its `credHelpers` names for the host.
 *
 * @returns the file that was edited.
 * @throws {AirlockError} `NOT_FOUND` with `not logged into <registry>` when nothing was stored for it there
 * (the message adds where other credentials for it come from, if any); `CREDENTIALS`/`IO_ERROR` as for login.
 *
 * @example
 * ```ts
 * await logout("registry.example.com:5000");
 * ```
 */
export async function logout(registry: string, opts: LoginOptions = {}): Promise<string> {
  const key = normalizeLoginKey(registry);
  const path = defaultAuthFile(opts);
  const contents = await readEditable(path);
  let loggedIn = false;
  const helper = contents.credHelpers[key];
  if (helper !== undefined) {
    loggedIn = await runHelper(helper, "erase", key, { opts, configuredIn: path }) !== undefined;
  }
  if (Object.hasOwn(contents.auths, key)) {
    delete contents.auths[key];
    loggedIn = true;
    await writeAuthFile(path, contents.raw);
  }
  if (!loggedIn) {
    let hint = "";
    try {
      const other = await findCredentials(key, opts);
      if (other !== undefined) {
        hint = other.source.helper
          ? ` (credentials for it come from credential helper "${other.source.helper}" named in ${other.source.file}; remove them there)`
          : ` (credentials for it are stored in ${other.source.file}; remove them there)`;
      }
    } catch {
      // the hint is best effort
    }
    throw new AirlockError("NOT_FOUND", `not logged into ${key}${hint}`);
  }
  return path;
}

/**
 * Removes every credential from the auth file of {@linkcode defaultAuthFile}: all `auths` entries, and for each
 * `credHelpers` entry the helper's stored credentials and the entry itself. A missing file is left missing.
 *
 * @returns the file that was edited.
 * @throws {AirlockError} `CREDENTIALS`/`IO_ERROR` as for login.
 *
 * @example
 * ```ts
 * await logoutAll();
 * ```
 */
export async function logoutAll(opts: LoginOptions = {}): Promise<string> {
  const path = defaultAuthFile(opts);
  if (!existsSync(path)) return path;
  const contents = await readEditable(path);
  for (const [host, helper] of Object.entries(contents.credHelpers)) {
    await runHelper(helper, "erase", host, { opts, configuredIn: path });
  }
  contents.raw.auths = {};
  if (Object.hasOwn(contents.raw, "credHelpers")) contents.raw.credHelpers = {};
  await writeAuthFile(path, contents.raw);
  return path;
}

// --- lookup ------------------------------------------------------------------------------------------------------

interface AuthEntry {
  readonly auth?: string;
  readonly identitytoken?: string;
}

interface ParsedAuthFile {
  readonly auths: ReadonlyArray<readonly [string, AuthEntry]>;
  readonly credHelpers: Readonly<Record<string, string>>;
  readonly credsStore?: string;
}

async function findCredentials(key: string, opts: CredentialOptions): Promise<CredentialMatch | undefined> {
  const registry = hostOf(key);
  for (const file of authFilePaths(opts)) {
    const parsed = await readAuthFile(file);
    if (parsed === undefined) continue;
    const found = await findInFile(key, registry, file, parsed, opts);
    if (found !== undefined) return found;
  }
  return undefined;
}

async function findInFile(
  key: string,
  registry: string,
  file: AuthFilePath,
  parsed: ParsedAuthFile,
  opts: CredentialOptions,
): Promise<CredentialMatch | undefined> {
  // 1. credHelpers: registry host only (namespaced keys are not supported by helpers).
  const helper = parsed.credHelpers[registry];
  if (helper !== undefined) {
    const out = await runHelper(helper, "get", registry, { opts, configuredIn: file.path });
    const credential = out === undefined ? undefined : helperCredential(out, helper);
    return credential ? { credential, source: { file: file.path, helper } } : undefined;
  }
  // 2. auths: exact key, then parent namespaces down to the host (legacy files: the host only); then URL-shaped
  // and Docker Hub keys, normalised to a host. The first matching key decides for the file's `auths`; an entry
  // without "user:pass" (Docker's marker for a credsStore) yields nothing.
  const matched = matchAuthKey(key, registry, file.legacyFormat, parsed.auths);
  if (matched !== undefined) {
    const found = decodeEntry(file.path, matched[0], matched[1]);
    if (found !== undefined) return found;
  }
  // 3. credsStore (Docker's default store; containers/image does not read it).
  if (parsed.credsStore !== undefined && parsed.credsStore !== "") {
    const server = normalizeRegistry(registry) === "index.docker.io"
      ? "https://index.docker.io/v1/"
      : registry;
    const out = await runHelper(parsed.credsStore, "get", server, { opts, configuredIn: file.path });
    const credential = out === undefined ? undefined : helperCredential(out, parsed.credsStore);
    if (credential) return { credential, source: { file: file.path, helper: parsed.credsStore } };
  }
  return undefined;
}

function matchAuthKey(
  key: string,
  registry: string,
  legacyFormat: boolean,
  auths: ReadonlyArray<readonly [string, AuthEntry]>,
): readonly [string, AuthEntry] | undefined {
  const byKey = new Map(auths);
  for (const candidate of legacyFormat ? [registry] : parentKeys(key)) {
    const entry = byKey.get(candidate);
    if (entry !== undefined) return [candidate, entry];
  }
  const normalized = normalizeRegistry(registry);
  return auths.find(([k]) => normalizeAuthFileKey(k, legacyFormat) === normalized);
}

/** `host/a/b` → `host/a/b`, `host/a`, `host`. */
function parentKeys(key: string): string[] {
  const keys: string[] = [];
  for (let k = key;;) {
    keys.push(k);
    const slash = k.lastIndexOf("/");
    if (slash === -1) return keys;
    k = k.slice(0, slash);
  }
}

function normalizeRegistry(registry: string): string {
  return registry === "registry-1.docker.io" || registry === "docker.io" ? "index.docker.io" : registry;
}

function normalizeAuthFileKey(key: string, legacyFormat: boolean): string {
  let stripped = key.replace(/^http:\/\//, "");
  stripped = stripped.replace(/^https:\/\//, "");
  if (legacyFormat || stripped !== key) stripped = stripped.split("/")[0];
  return normalizeRegistry(stripped);
}

function decodeEntry(path: string, key: string, entry: AuthEntry): CredentialMatch | undefined {
  let decoded = "";
  if (entry.auth !== undefined && entry.auth !== "") {
    try {
      decoded = new TextDecoder("utf-8", { fatal: true }).decode(decodeBase64(entry.auth));
    } catch {
      throw new AirlockError(
        "CREDENTIALS",
        `reading ${path}: the "auth" field of entry "${key}" is not valid base64`,
      );
    }
  }
  const colon = decoded.indexOf(":");
  // No "user:pass" (e.g. Docker's empty marker entry for a credsStore): no credentials here, as containers/image.
  if (colon === -1) return undefined;
  const username = decoded.slice(0, colon);
  const password = decoded.slice(colon + 1).replace(/^\0+|\0+$/g, "");
  const source = { file: path, key };
  if (entry.identitytoken) return { credential: { identityToken: entry.identitytoken }, source };
  if (username === "" && password === "") return undefined;
  return { credential: { username, password }, source };
}

function helperCredential(stdout: string, helper: string): Credential | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch {
    throw new AirlockError(
      "CREDENTIALS",
      `credential helper "docker-credential-${helper}" returned invalid JSON`,
    );
  }
  if (!isObject(parsed)) {
    throw new AirlockError(
      "CREDENTIALS",
      `credential helper "docker-credential-${helper}" returned invalid JSON`,
    );
  }
  const username = typeof parsed.Username === "string" ? parsed.Username : "";
  const secret = typeof parsed.Secret === "string" ? parsed.Secret : "";
  if (username === "<token>") return secret ? { identityToken: secret } : undefined;
  if (username === "" && secret === "") return undefined;
  return { username, password: secret };
}

// --- files -------------------------------------------------------------------------------------------------------

/** Reads and checks one auth file; `undefined` when it does not exist. */
async function readAuthFile(file: AuthFilePath): Promise<ParsedAuthFile | undefined> {
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

async function readEditable(path: string): Promise<EditableFile> {
  const raw = (await readJson(path) ?? {}) as Record<string, unknown>;
  const checked = checkConfig(path, raw);
  if (!isObject(raw.auths)) raw.auths = {};
  return { raw, auths: raw.auths as Record<string, unknown>, credHelpers: checked.credHelpers };
}

/** Writes `contents` to `path` atomically (temporary file + rename) with mode 0600. */
async function writeAuthFile(path: string, contents: Record<string, unknown>): Promise<void> {
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

// --- helpers -----------------------------------------------------------------------------------------------------

interface HelperContext {
  readonly opts: CredentialOptions;
  /** The file that named the helper, for messages. */
  readonly configuredIn: string;
  /** A secret sent to the helper, scrubbed from any message. */
  readonly secret?: string;
}

/**
 * Runs `docker-credential-<helper> <action>` with `input` on stdin. Returns stdout, or `undefined` when the
 * helper says the credentials are not found.
 */
async function runHelper(
  helper: string,
  action: "get" | "store" | "erase",
  input: string,
  ctx: HelperContext,
): Promise<string | undefined> {
  const name = `docker-credential-${helper}`;
  if (helper === "" || helper.includes("/")) {
    throw new AirlockError(
      "CREDENTIALS",
      `invalid credential helper name "${helper}" in ${ctx.configuredIn}`,
    );
  }
  const executable = findExecutable(name, envOf(ctx.opts, "PATH") ?? "");
  if (executable === undefined) {
    throw new AirlockError(
      "CREDENTIALS",
      `credential helper "${name}" (named in ${ctx.configuredIn}) was not found in $PATH`,
    );
  }
  let output: Deno.CommandOutput;
  try {
    const child = new Deno.Command(executable, {
      args: [action],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env: ctx.opts.env ? definedEntries(ctx.opts.env) : undefined,
      signal: AbortSignal.timeout(HELPER_TIMEOUT_MS),
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(input));
    await writer.close();
    output = await child.output();
  } catch (e) {
    throw new AirlockError("CREDENTIALS", `running credential helper "${name}": ${errorMessage(e)}`, {
      cause: e,
    });
  }
  const dec = new TextDecoder();
  const stdout = dec.decode(output.stdout);
  if (output.success) return stdout;
  const text = stdout.trim() || dec.decode(output.stderr).trim();
  if (/credentials not found/i.test(text)) return undefined;
  let firstLine = text.split("\n")[0].slice(0, 200);
  if (ctx.secret) firstLine = firstLine.replaceAll(ctx.secret, "***");
  throw new AirlockError(
    "CREDENTIALS",
    `credential helper "${name}" ${action} failed (exit ${output.code})${firstLine ? `: ${firstLine}` : ""}`,
  );
}

const HELPER_TIMEOUT_MS = 60_000;

function findExecutable(name: string, pathVar: string): string | undefined {
  for (const dir of pathVar.split(Deno.build.os === "windows" ? ";" : ":")) {
    if (dir === "") continue;
    for (
      const candidate of Deno.build.os === "windows"
        ? [`${dir}\\${name}.exe`, `${dir}\\${name}`]
        : [join(dir, name)]
    ) {
      try {
        const st = Deno.statSync(candidate);
        if (st.isFile && (Deno.build.os === "windows" || ((st.mode ?? 0) & 0o111) !== 0)) return candidate;
      } catch {
        // not here
      }
    }
  }
  return undefined;
}

// --- small utilities ---------------------------------------------------------------------------------------------

/** Checks a lookup key as containers/image does: no scheme, no `@`, no `:` after `host[:port]/`. */
function validateKey(key: string): void {
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

function normalizeLoginKey(registry: string): string {
  const key = registry.replace(/^https?:\/\//, "").replace(/\/+$/, "");
  validateKey(key);
  return key;
}

function hostOf(key: string): string {
  const slash = key.indexOf("/");
  return slash === -1 ? key : key.slice(0, slash);
}

function explicitAuthFile(opts: CredentialOptions): string | undefined {
  if (opts.authFile !== undefined && opts.authFile !== "") return opts.authFile;
  return envOf(opts, "REGISTRY_AUTH_FILE");
}

function homeOf(opts: CredentialOptions): string | undefined {
  return opts.home ?? envOf(opts, "HOME");
}

function envOf(opts: CredentialOptions, name: string): string | undefined {
  const v = opts.env ? opts.env[name] : Deno.env.get(name);
  return v === undefined || v === "" ? undefined : v;
}

function definedEntries(env: Env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
  return out;
}

function currentUid(): number | undefined {
  try {
    if (Deno.permissions.querySync({ name: "sys", kind: "uid" }).state !== "granted") return undefined;
    return Deno.uid() ?? undefined;
  } catch {
    return undefined;
  }
}

function existsSync(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function join(dir: string, rel: string): string {
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
function encodeBase64(s: string): string {
  return base64Encode(new TextEncoder().encode(s));
}

/** Lenient (`atob`) base64, as auth files hold it: unpadded values are accepted. */
function decodeBase64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
