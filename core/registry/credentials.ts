/**
 * Registry credentials found the way containers/image (`pkg/docker/config`) finds them, with Docker's
 * `credsStore` as an extension: `auth.json` files, Docker's `config.json`, the legacy `~/.dockercfg`, and
 * `docker-credential-*` helpers. Also `login`/`logout` writing the containers `auth.json` format.
 *
 * No message this module produces ever contains a password, token or `auth` value.
 *
 * @module
 */
import { AirlockError } from "../errors.ts";
import type { Credential, CredentialLookup } from "./types.ts";
import {
  currentUid,
  decodeBase64,
  encodeBase64,
  envOf,
  existsSync,
  explicitAuthFile,
  homeOf,
  hostOf,
  isObject,
  join,
  normalizeLoginKey,
  readAuthFile,
  readEditable,
  validateKey,
  writeAuthFile,
} from "./credential_files.ts";
import type { AuthEntry, ParsedAuthFile } from "./credential_files.ts";
import { runHelper } from "./credential_helpers.ts";

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
