/**
 * containers-registries.d(5): per-registry signature storage settings, read and merged the way
 * containers/image (`docker/registries_d.go`) does it, plus airlock's one rule for hosts that have no
 * registries.d at all (hangar's shipped `default.yaml`: `use-sigstore-attachments: true`).
 *
 * Every answer says which file and which scope decided it, so an error can tell the user what to change.
 *
 * @module
 */
import { AirlockError, errorMessage } from "../errors.ts";
import type { Reference } from "../reference.ts";

/** The system-wide registries.d directory containers/image reads when the per-user one does not exist. */
export const SYSTEM_REGISTRIES_D = "/etc/containers/registries.d";

/** The per-user registries.d directory, relative to `$HOME`. */
export const USER_REGISTRIES_D = ".config/containers/registries.d";

/**
 * The `file` named in a {@linkcode ConfigSource} when no registries.d directory exists and airlock applies
 * hangar's shipped default (`default-docker: {use-sigstore-attachments: true}`).
 */
export const BUILTIN_DEFAULT_FILE = "<built-in default: hangar package/registries.d/default.yaml>";

/** The settings of one scope (`default-docker` or one `docker:` namespace). Absent or `null` keys are `undefined`. */
export interface NamespaceConfig {
  /** `lookaside`: where simple-signing signatures are read (and written, without a staging location). */
  readonly lookaside?: string;
  /** `lookaside-staging`: where simple-signing signatures are written. */
  readonly lookasideStaging?: string;
  /** `sigstore`: deprecated spelling of `lookaside`. */
  readonly sigstore?: string;
  /** `sigstore-staging`: deprecated spelling of `lookaside-staging`. */
  readonly sigstoreStaging?: string;
  /** `use-sigstore-attachments`; `undefined` when the key is absent or `null` (the search continues). */
  readonly useSigstoreAttachments?: boolean;
}

/** One scope of the merged configuration with the file that defined it. */
export interface ScopedNamespace {
  /** The scope's settings. */
  readonly config: NamespaceConfig;
  /** The file that defined the scope ({@linkcode BUILTIN_DEFAULT_FILE} for airlock's built-in default). */
  readonly file: string;
}

/** The merged registries.d configuration. */
export interface RegistriesDConfig {
  /** The directory that was read, or `undefined` when none existed. */
  readonly directory: string | undefined;
  /** True when no registries.d directory existed and hangar's shipped default is in effect. */
  readonly builtinDefault: boolean;
  /** The `default-docker` scope, if any file defined it. */
  readonly defaultDocker?: ScopedNamespace;
  /** The `docker:` namespaces of all files, keyed as written (`host[:port][/path][:tag|@digest]`, `*.domain`). */
  readonly docker: ReadonlyMap<string, ScopedNamespace>;
}

/** Where a decision came from: a file and a scope in it (`default-docker` or `docker "<namespace>"`). */
export interface ConfigSource {
  /** The file that holds the deciding scope ({@linkcode BUILTIN_DEFAULT_FILE} for the built-in default). */
  readonly file: string;
  /** `default-docker`, or `docker "<namespace>"`. */
  readonly scope: string;
}

/** The answer of {@linkcode useSigstoreAttachments}. */
export interface AttachmentsDecision {
  /** Whether sigstore attachments (`.sig` tags) are read and written for the reference. */
  readonly value: boolean;
  /** Which file and scope decided; `undefined` when nothing configured the flag (containers/image's `false`). */
  readonly source?: ConfigSource;
}

/** Options of {@linkcode loadRegistriesD}. */
export interface LoadRegistriesDOptions {
  /** An explicit directory (`--registries.d DIR`); it must exist. */
  readonly dir?: string;
  /** The home directory (default `$HOME`). */
  readonly home?: string;
  /** The environment to read `HOME` from (default: the process environment). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** The system directory (default {@linkcode SYSTEM_REGISTRIES_D}); for tests. */
  readonly systemDir?: string;
}

/**
 * Reads and merges a registries.d directory as containers/image does: the explicit `dir`, else
 * `$HOME/.config/containers/registries.d` if it exists, else `/etc/containers/registries.d`. All `*.yaml` files
 * are merged in sorted name order; a second `default-docker`, or the same `docker:` namespace in two files, is an
 * error. Unknown keys are ignored. When neither default directory exists (and no `dir` was given), the result is
 * hangar's shipped default with `builtinDefault: true`. The YAML parser is loaded only when a file is found.
 *
 * @throws {AirlockError} `INVALID_ARGUMENT` when an explicit `dir` does not exist; `CONFIG_INVALID` for a file
 * that does not parse or a duplicate scope; `IO_ERROR` when a directory or file cannot be read.
 *
 * @example
 * ```ts
 * const config = await loadRegistriesD({ dir: flags["registries.d"] });
 * const { value, source } = useSigstoreAttachments(config, ref);
 * ```
 */
export async function loadRegistriesD(opts: LoadRegistriesDOptions = {}): Promise<RegistriesDConfig> {
  let dir: string;
  if (opts.dir !== undefined && opts.dir !== "") {
    dir = opts.dir;
    if (!(await pathExists(dir))) {
      throw new AirlockError("INVALID_ARGUMENT", `registries.d directory "${dir}" does not exist`);
    }
  } else {
    const home = opts.home ?? readEnv(opts.env, "HOME");
    const userDir = home ? joinPath(home, USER_REGISTRIES_D) : undefined;
    const systemDir = opts.systemDir ?? SYSTEM_REGISTRIES_D;
    if (userDir !== undefined && (await pathExists(userDir))) {
      dir = userDir;
    } else if (await pathExists(systemDir)) {
      dir = systemDir;
    } else {
      return builtinDefaultConfig();
    }
  }
  return await loadDirectory(dir);
}

/**
 * The configuration airlock uses when no registries.d directory exists: hangar's shipped `default.yaml`,
 * `default-docker: {use-sigstore-attachments: true}`.
 */
export function builtinDefaultConfig(): RegistriesDConfig {
  return {
    directory: undefined,
    builtinDefault: true,
    defaultDocker: { config: { useSigstoreAttachments: true }, file: BUILTIN_DEFAULT_FILE },
    docker: new Map(),
  };
}

/**
 * Parses registries.d file contents given as `[path, text]` pairs, merged in the given order, with the same
 * rules as {@linkcode loadRegistriesD}. For callers that hold the files already (and for tests).
 *
 * @throws {AirlockError} `CONFIG_INVALID` for a file that does not parse or a duplicate scope.
 */
export async function parseRegistriesD(
  files: ReadonlyArray<readonly [path: string, text: string]>,
  directory?: string,
): Promise<RegistriesDConfig> {
  let defaultDocker: ScopedNamespace | undefined;
  const docker = new Map<string, ScopedNamespace>();
  const yaml = files.length > 0 ? await import("yaml") : undefined;
  for (const [path, text] of files) {
    const parsed = parseFile(yaml!, path, text);
    if (parsed.defaultDocker !== undefined) {
      if (defaultDocker !== undefined) {
        throw new AirlockError(
          "CONFIG_INVALID",
          `Error parsing signature storage configuration: "default-docker" defined both in "${defaultDocker.file}" and "${path}"`,
        );
      }
      defaultDocker = { config: parsed.defaultDocker, file: path };
    }
    for (const [ns, config] of parsed.docker) {
      const previous = docker.get(ns);
      if (previous !== undefined) {
        throw new AirlockError(
          "CONFIG_INVALID",
          `Error parsing signature storage configuration: "docker" namespace "${ns}" defined both in "${previous.file}" and "${path}"`,
        );
      }
      docker.set(ns, { config, file: path });
    }
  }
  return { directory, builtinDefault: false, defaultDocker, docker };
}

/**
 * The policy-configuration identity of a reference as containers/image forms it: `host/repo:tag` or
 * `host/repo@digest`. A reference with neither gets `:latest` (the docker transport's default); one with both
 * uses the digest (the docker transport rejects such references; airlock addresses manifests by digest).
 *
 * @example
 * ```ts
 * policyConfigurationIdentity({ registry: "docker.io", repository: "library/nginx", tag: "1.25" });
 * // "docker.io/library/nginx:1.25"
 * ```
 */
export function policyConfigurationIdentity(ref: Reference): string {
  const name = `${ref.registry}/${ref.repository}`;
  if (ref.digest) return `${name}@${ref.digest}`;
  return `${name}:${ref.tag ?? "latest"}`;
}

/**
 * The namespaces searched after the identity, most specific first: `host/a/b`, `host/a`, `host`, then the
 * wildcard domains of the host with any port stripped (`*.example.com`, `*.com` for `reg.example.com:5000`).
 *
 * @example
 * ```ts
 * policyConfigurationNamespaces({ registry: "reg.example.com:5000", repository: "team/app" });
 * // ["reg.example.com:5000/team/app", "reg.example.com:5000/team", "reg.example.com:5000", "*.example.com", "*.com"]
 * ```
 */
export function policyConfigurationNamespaces(ref: Reference): string[] {
  const result: string[] = [];
  let name = `${ref.registry}/${ref.repository}`;
  for (;;) {
    result.push(name);
    const slash = name.lastIndexOf("/");
    if (slash === -1) break;
    name = name.slice(0, slash);
  }
  const colon = name.indexOf(":");
  if (colon !== -1) name = name.slice(0, colon);
  for (;;) {
    const dot = name.indexOf(".");
    if (dot === -1) break;
    name = name.slice(dot + 1);
    result.push(`*.${name}`);
  }
  return result;
}

/**
 * Whether sigstore attachments are used for `ref`, as containers/image decides it: the identity
 * (`host/repo:tag` or `@digest`), then each namespace from most to least specific (including `*.domain`
 * wildcards, port stripped), then `default-docker`, else `false`. The first scope that exists **and** sets the
 * flag to a non-null value wins; a scope with the key absent or `null` does not stop the search.
 *
 * @example
 * ```ts
 * const d = useSigstoreAttachments(config, ref);
 * if (!d.value) throw new AirlockError("ATTACHMENTS_DISABLED", `… (${describeSource(d.source)})`);
 * ```
 */
export function useSigstoreAttachments(config: RegistriesDConfig, ref: Reference): AttachmentsDecision {
  for (const [scope, ns] of scopesFor(config, ref)) {
    const value = ns.config.useSigstoreAttachments;
    if (value !== undefined) return { value, source: { file: ns.file, scope } };
  }
  return { value: false };
}

/** The answer of {@linkcode lookasideLocation}. */
export interface LookasideLocation {
  /** The configured URL (or path), as written; the repository path is not appended. */
  readonly url: string;
  /** Which key supplied it. */
  readonly key: "lookaside" | "lookaside-staging" | "sigstore" | "sigstore-staging";
  /** Which file and scope decided. */
  readonly source: ConfigSource;
}

/**
 * The lookaside (simple-signing signature storage) location configured for `ref`, for writing if `write`:
 * the same scope order as {@linkcode useSigstoreAttachments}; within a scope `lookaside-staging`, then
 * `sigstore-staging` (writing only), then `lookaside`, then `sigstore`. `undefined` when none is configured
 * (containers/image then uses its built-in local directory).
 */
export function lookasideLocation(
  config: RegistriesDConfig,
  ref: Reference,
  write: boolean,
): LookasideLocation | undefined {
  for (const [scope, ns] of scopesFor(config, ref)) {
    const c = ns.config;
    const source = { file: ns.file, scope };
    if (write && c.lookasideStaging) return { url: c.lookasideStaging, key: "lookaside-staging", source };
    if (write && c.sigstoreStaging) return { url: c.sigstoreStaging, key: "sigstore-staging", source };
    if (c.lookaside) return { url: c.lookaside, key: "lookaside", source };
    if (c.sigstore) return { url: c.sigstore, key: "sigstore", source };
  }
  return undefined;
}

/**
 * A phrase naming where a decision came from, for messages: `docker namespace "reg.io/team" in
 * /etc/containers/registries.d/a.yaml`, `default-docker in …`, airlock's built-in default, or that nothing
 * configured it.
 *
 * @example
 * ```ts
 * describeSource({ file: "/etc/containers/registries.d/a.yaml", scope: "default-docker" });
 * // "default-docker in /etc/containers/registries.d/a.yaml"
 * ```
 */
export function describeSource(source: ConfigSource | undefined): string {
  if (source === undefined) return "not configured in any registries.d file";
  if (source.file === BUILTIN_DEFAULT_FILE) {
    return `${source.scope} of airlock's built-in default (no registries.d)`;
  }
  return `${source.scope} in ${source.file}`;
}

/**
 * The error for a reference whose sigstore attachments registries.d turns off, naming what to change: the file
 * and scope that set `use-sigstore-attachments: false`, or the registries.d directory in which no file sets it
 * (containers/image then neither reads nor writes `.sig` tags). `reading` is what `sign validate` says instead of
 * "no signature exists"; `writing` is what `sign` says before writing anything.
 *
 * @example
 * ```ts
 * const d = useSigstoreAttachments(config, ref);
 * if (!d.value) throw attachmentsDisabledError(config, "host/repo:1", d, "reading");
 * ```
 */
export function attachmentsDisabledError(
  config: RegistriesDConfig,
  identity: string,
  decision: AttachmentsDecision,
  action: "reading" | "writing",
): AirlockError {
  let where: string;
  let fix: string;
  if (decision.source !== undefined) {
    where = `use-sigstore-attachments is false for ${describeSource(decision.source)}`;
    fix = `set "use-sigstore-attachments: true" there`;
  } else {
    where = config.directory !== undefined
      ? `use-sigstore-attachments is not set for it in any file of the registries.d directory ${config.directory}`
      : `use-sigstore-attachments is ${describeSource(undefined)}`;
    fix =
      `add "use-sigstore-attachments: true" under default-docker, or under the registry's or namespace's ` +
      `docker entry, in a file there`;
  }
  return new AirlockError(
    "ATTACHMENTS_DISABLED",
    `${action} sigstore attachments is disabled by configuration for ${identity} (${where}); ${fix}`,
  );
}

// ---------------------------------------------------------------------------------------------------------------

/** Every scope present in `config` that applies to `ref`, in search order, with its label. */
function* scopesFor(config: RegistriesDConfig, ref: Reference): Generator<[string, ScopedNamespace]> {
  for (const name of [policyConfigurationIdentity(ref), ...policyConfigurationNamespaces(ref)]) {
    const ns = config.docker.get(name);
    if (ns !== undefined) yield [`docker "${name}"`, ns];
  }
  if (config.defaultDocker !== undefined) yield ["default-docker", config.defaultDocker];
}

async function loadDirectory(dir: string): Promise<RegistriesDConfig> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.name.endsWith(".yaml")) names.push(entry.name);
    }
  } catch (e) {
    throw new AirlockError("IO_ERROR", `reading registries.d directory "${dir}": ${errorMessage(e)}`, {
      cause: e,
    });
  }
  names.sort();
  const files: [string, string][] = [];
  for (const name of names) {
    const path = joinPath(dir, name);
    try {
      files.push([path, await Deno.readTextFile(path)]);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) continue; // removed since the listing, as containers/image allows
      throw new AirlockError("IO_ERROR", `reading ${path}: ${errorMessage(e)}`, { cause: e });
    }
  }
  return await parseRegistriesD(files, dir);
}

type YamlModule = typeof import("yaml");

interface ParsedFile {
  defaultDocker?: NamespaceConfig;
  docker: Map<string, NamespaceConfig>;
}

/** yaml.v3 semantics: first document only, unknown keys ignored, keys case-sensitive, duplicates rejected. */
function parseFile(yaml: YamlModule, path: string, text: string): ParsedFile {
  const invalid = (msg: string) => new AirlockError("CONFIG_INVALID", `parsing ${path}: ${msg}`);
  const docs = yaml.parseAllDocuments(text, { merge: true });
  const doc = Array.isArray(docs) ? docs[0] : undefined;
  if (doc === undefined) return { docker: new Map() };
  if (doc.errors.length > 0) throw invalid(doc.errors[0].message);
  let root: unknown;
  try {
    root = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    throw invalid(errorMessage(e));
  }
  const result: ParsedFile = { docker: new Map() };
  if (root === null || root === undefined) return result;
  if (!isPlainObject(root)) throw invalid(`the top level must be a mapping, got ${kindOf(root)}`);
  if (Object.hasOwn(root, "default-docker")) {
    const value = root["default-docker"];
    if (value !== null && value !== undefined) {
      result.defaultDocker = parseNamespace(value, `"default-docker"`, invalid);
    }
  }
  if (Object.hasOwn(root, "docker")) {
    const value = root["docker"];
    if (value !== null && value !== undefined) {
      if (!isPlainObject(value)) throw invalid(`"docker" must be a mapping, got ${kindOf(value)}`);
      for (const [ns, nsValue] of Object.entries(value)) {
        // A present key with a null value is a scope with nothing set (yaml.v3 stores the zero value).
        result.docker.set(
          ns,
          nsValue === null || nsValue === undefined
            ? {}
            : parseNamespace(nsValue, `"docker" namespace "${ns}"`, invalid),
        );
      }
    }
  }
  return result;
}

function parseNamespace(
  value: unknown,
  where: string,
  invalid: (msg: string) => AirlockError,
): NamespaceConfig {
  if (!isPlainObject(value)) throw invalid(`${where} must be a mapping, got ${kindOf(value)}`);
  const str = (key: string): string | undefined => {
    const v = value[key];
    if (v === null || v === undefined) return undefined;
    if (typeof v === "string") return v === "" ? undefined : v;
    if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") return String(v);
    throw invalid(`"${key}" in ${where} must be a string, got ${kindOf(v)}`);
  };
  let useSigstoreAttachments: boolean | undefined;
  const raw = value["use-sigstore-attachments"];
  if (typeof raw === "boolean") {
    useSigstoreAttachments = raw;
  } else if (typeof raw === "string" && YAML11_TRUE.has(raw)) {
    useSigstoreAttachments = true; // yaml.v3 accepts YAML 1.1 booleans for a bool-typed field
  } else if (typeof raw === "string" && YAML11_FALSE.has(raw)) {
    useSigstoreAttachments = false;
  } else if (raw !== null && raw !== undefined) {
    throw invalid(`"use-sigstore-attachments" in ${where} must be a boolean, got ${JSON.stringify(raw)}`);
  }
  return {
    lookaside: str("lookaside"),
    lookasideStaging: str("lookaside-staging"),
    sigstore: str("sigstore"),
    sigstoreStaging: str("sigstore-staging"),
    useSigstoreAttachments,
  };
}

const YAML11_TRUE = new Set(["y", "Y", "yes", "Yes", "YES", "on", "On", "ON"]);
const YAML11_FALSE = new Set(["n", "N", "no", "No", "NO", "off", "Off", "OFF"]);

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Map);
}

function kindOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a sequence";
  if (typeof v === "object") return "a mapping";
  return `a ${typeof v}`;
}

async function pathExists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw new AirlockError("IO_ERROR", `checking ${path}: ${errorMessage(e)}`, { cause: e });
  }
}

function readEnv(
  env: Readonly<Record<string, string | undefined>> | undefined,
  name: string,
): string | undefined {
  const v = env ? env[name] : Deno.env.get(name);
  return v === "" ? undefined : v;
}

function joinPath(dir: string, name: string): string {
  return dir.endsWith("/") ? dir + name : `${dir}/${name}`;
}
