/**
 * The admission configuration file of `airlock serve --admission-config FILE` (one YAML document): which images
 * the cluster may run. Exactly one of
 *
 * - `policy: /etc/containers/policy.json` — a containers policy, evaluated exactly as `sign validate --policy`
 *   evaluates it, for the reference the kubelet pulls and the platform manifests the nodes run (`arch`, `os`;
 *   default `amd64, arm64` / `linux`);
 * - `cosign:` — `key` (a public key PEM file) or the keyless identity (`certificateIdentity[Regexp]`,
 *   `certificateOidcIssuer[Regexp]`, `certificateGithubWorkflow*`) with `trustedRoot`, plus `insecureIgnoreTlog`,
 *   `insecureIgnoreSct`, `annotations`: what `airlock verify` accepts;
 *
 * and `exemptNamespaces` (never checked), `allowImages` (globs admitted without a signature), `cacheTTL` (how long
 * a verdict and a tag's digest are remembered, default 5m, 0 = not at all) and `timeout` (the longest a first
 * verdict may take, default 8s, at most 28s so that the API server's 30 s limit holds). Unknown keys, wrong types
 * and impossible combinations are errors: a malformed file keeps the service from starting.
 *
 * Relative paths are relative to the file's directory. {@linkcode parseAdmissionConfig} only reads the YAML (what
 * `serve webhook-config` needs); {@linkcode loadAdmissionConfig} also reads the policy, key and trusted root.
 *
 * @module
 */
import { dirname, isAbsolute, join } from "node:path";
import { AirlockError, errorMessage } from "../errors.ts";
import { parseGoDuration } from "../encoding/go_values.ts";
import { loadPolicyFile } from "../config/policy_config.ts";
import type { Policy, PolicyRequirement } from "../config/policy_types.ts";
import { DEFAULT_ARCH_LIST, DEFAULT_OS_LIST, type PlatformFilter } from "../platform.ts";
import { parsePublicKeyPem, type PublicKey } from "../signature/public_key.ts";
import type { IdentityPolicy, SigstoreTrustedRoot } from "../keyless/mod.ts";
import { compileImageGlob, type ImageGlob } from "./glob.ts";

/** Default `cacheTTL`. */
export const DEFAULT_CACHE_TTL_MS = 5 * 60_000;
/** Default `timeout` (`--admission-timeout`): under the API server's default 10 s. */
export const DEFAULT_ADMISSION_TIMEOUT_MS = 8_000;
/** The longest `timeout`: the webhook's `timeoutSeconds` (timeout + 2 s) must stay within the API server's 30 s. */
export const MAX_ADMISSION_TIMEOUT_MS = 28_000;
const MAX_CACHE_TTL_MS = 24 * 3600_000;
const MAX_CONFIG_BYTES = 1024 * 1024;

/** `cosign:` as written (paths resolved). */
export interface CosignModeSpec {
  /** Mode tag. */
  readonly kind: "cosign";
  /** A public key PEM file (`key`). */
  readonly keyPath?: string;
  /** Keyless: who must have signed. */
  readonly identity?: IdentityPolicy;
  /** A sigstore `trusted_root.json` (default: the embedded public-good root). */
  readonly trustedRootPath?: string;
  /** Accept signatures without a transparency-log proof. */
  readonly ignoreTlog: boolean;
  /** Keyless: no SCT required. */
  readonly ignoreSct: boolean;
  /** Annotations the payload's `optional` must carry (`-a k=v`). */
  readonly annotations?: Readonly<Record<string, string>>;
}

/** `policy:` as written (path resolved). */
export interface PolicyModeSpec {
  /** Mode tag. */
  readonly kind: "policy";
  /** The containers `policy.json`. */
  readonly policyPath: string;
  /** The platforms the nodes run (`arch`, `os`). */
  readonly platforms: PlatformFilter;
}

/** The configuration file, parsed and checked; the files it names are not read yet. */
export interface AdmissionConfigFile {
  /** The file it came from. */
  readonly file: string;
  /** How images are judged. */
  readonly mode: PolicyModeSpec | CosignModeSpec;
  /** Namespaces never checked (also left out of the webhook configuration's namespaceSelector). */
  readonly exemptNamespaces: readonly string[];
  /** Images admitted without a check. */
  readonly allowImages: readonly ImageGlob[];
  /** How long verdicts and tag resolutions are remembered, in ms (0: never). */
  readonly cacheTtlMs: number;
  /** The longest a review may wait for a verdict, in ms. */
  readonly timeoutMs: number;
}

/** How images are judged, with the files read. */
export type AdmissionMode =
  | {
    /** containers policy. */
    readonly kind: "policy";
    /** Its path (for logs). */
    readonly path: string;
    /** The parsed policy. */
    readonly policy: Policy;
    /** The platforms the nodes run. */
    readonly platforms: PlatformFilter;
  }
  | {
    /** cosign verification. */
    readonly kind: "cosign";
    /** The key (`key`). */
    readonly publicKey?: PublicKey;
    /** Keyless identity. */
    readonly identity?: IdentityPolicy;
    /** The trusted root (keyless, or Rekor proofs of key signatures). */
    readonly trustedRoot?: SigstoreTrustedRoot;
    /** Accept signatures without a transparency-log proof. */
    readonly ignoreTlog: boolean;
    /** Keyless: no SCT required. */
    readonly ignoreSct: boolean;
    /** Annotations the payload must carry. */
    readonly annotations?: Readonly<Record<string, string>>;
  };

/** The configuration ready to use. */
export interface AdmissionSettings extends Omit<AdmissionConfigFile, "mode"> {
  /** How images are judged. */
  readonly mode: AdmissionMode;
  /** A short description for the start-up log line (`policy "/etc/…"`, `cosign key "…"`). */
  readonly description: string;
  /** Problems that do not stop the service (policy requirements airlock cannot evaluate). */
  readonly warnings: readonly string[];
}

type Invalid = (msg: string) => AirlockError;

const TOP_KEYS = new Set([
  "policy",
  "arch",
  "os",
  "cosign",
  "exemptNamespaces",
  "allowImages",
  "cacheTTL",
  "timeout",
]);

const COSIGN_STRINGS = {
  key: "keyPath",
  trustedRoot: "trustedRootPath",
  certificateIdentity: "subject",
  certificateIdentityRegexp: "subjectRegExp",
  certificateOidcIssuer: "issuer",
  certificateOidcIssuerRegexp: "issuerRegExp",
  certificateGithubWorkflowTrigger: "githubWorkflowTrigger",
  certificateGithubWorkflowSha: "githubWorkflowSha",
  certificateGithubWorkflowName: "githubWorkflowName",
  certificateGithubWorkflowRepository: "githubWorkflowRepository",
  certificateGithubWorkflowRef: "githubWorkflowRef",
} as const;
const COSIGN_KEYS = new Set([
  ...Object.keys(COSIGN_STRINGS),
  "insecureIgnoreTlog",
  "insecureIgnoreSct",
  "annotations",
]);

const NAMESPACE_RE = /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/;
const PLATFORM_WORD_RE = /^[a-z0-9._-]+$/;

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function kindOf(v: unknown): string {
  if (v === null || v === undefined) return "nothing";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  return `a ${typeof v}`;
}

function checkKeys(
  o: Record<string, unknown>,
  allowed: ReadonlySet<string>,
  where: string,
  invalid: Invalid,
) {
  for (const k of Object.keys(o)) {
    if (!allowed.has(k)) {
      throw invalid(`unknown key ${JSON.stringify(k)}${where} (known: ${[...allowed].join(", ")})`);
    }
  }
}

function stringValue(v: unknown, what: string, invalid: Invalid): string {
  if (typeof v !== "string" || v === "") {
    throw invalid(`${what} must be a non-empty string, got ${kindOf(v)}`);
  }
  return v;
}

function stringList(v: unknown, what: string, invalid: Invalid): string[] {
  if (!Array.isArray(v)) throw invalid(`${what} must be a list of strings, got ${kindOf(v)}`);
  return v.map((item, i) => stringValue(item, `${what}[${i}]`, invalid));
}

function boolValue(v: unknown, what: string, invalid: Invalid): boolean {
  if (typeof v !== "boolean") throw invalid(`${what} must be true or false, got ${kindOf(v)}`);
  return v;
}

function duration(v: unknown, what: string, invalid: Invalid): number {
  if (v === 0) return 0;
  if (typeof v !== "string") {
    throw invalid(`${what} must be a duration such as "8s" or "5m", got ${kindOf(v)}`);
  }
  let ms: number;
  try {
    ms = parseGoDuration(v);
  } catch (e) {
    throw invalid(`${what}: ${errorMessage(e)}`);
  }
  if (!Number.isFinite(ms) || ms < 0) throw invalid(`${what} must not be negative`);
  return ms;
}

/**
 * Parses the configuration text (YAML, one document). Relative paths are resolved against the directory of
 * `file`.
 *
 * @throws {AirlockError} `CONFIG_INVALID`: `invalid admission configuration "<file>": <reason>`.
 */
export async function parseAdmissionConfig(text: string, file: string): Promise<AdmissionConfigFile> {
  const invalid: Invalid = (msg) =>
    new AirlockError("CONFIG_INVALID", `invalid admission configuration ${JSON.stringify(file)}: ${msg}`);
  const yaml = await import("yaml");
  const docs = yaml.parseAllDocuments(text, { uniqueKeys: true });
  if (!Array.isArray(docs) || docs.length !== 1) throw invalid("expected exactly one YAML document");
  const doc = docs[0];
  if (doc.errors.length > 0) throw invalid(doc.errors[0].message);
  let root: unknown;
  try {
    root = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    throw invalid(errorMessage(e));
  }
  if (!isMapping(root)) throw invalid(`the top level must be a mapping, got ${kindOf(root)}`);
  checkKeys(root, TOP_KEYS, "", invalid);
  const base = dirname(file);
  const resolve = (p: string) => isAbsolute(p) ? p : join(base, p);

  const hasPolicy = root.policy !== undefined && root.policy !== null;
  const hasCosign = root.cosign !== undefined && root.cosign !== null;
  if (hasPolicy === hasCosign) {
    throw invalid(
      hasPolicy
        ? `give "policy" or "cosign", not both`
        : `nothing is allowed: give "policy" (a containers policy.json) or "cosign" (a key or a keyless identity)`,
    );
  }
  let mode: PolicyModeSpec | CosignModeSpec;
  if (hasPolicy) {
    mode = {
      kind: "policy",
      policyPath: resolve(stringValue(root.policy, `"policy"`, invalid)),
      platforms: {
        arch: platformList(root.arch, `"arch"`, DEFAULT_ARCH_LIST, invalid),
        os: platformList(root.os, `"os"`, DEFAULT_OS_LIST, invalid),
        variant: [],
      },
    };
  } else {
    if (root.arch !== undefined || root.os !== undefined) {
      throw invalid(`"arch" and "os" apply to "policy"; cosign verifies the digest the image names`);
    }
    mode = cosignSpec(root.cosign, resolve, invalid);
  }

  const exemptNamespaces = root.exemptNamespaces === undefined || root.exemptNamespaces === null
    ? []
    : stringList(root.exemptNamespaces, `"exemptNamespaces"`, invalid);
  for (const ns of exemptNamespaces) {
    if (!NAMESPACE_RE.test(ns)) {
      throw invalid(`"exemptNamespaces": ${JSON.stringify(ns)} is not a namespace name`);
    }
  }
  const allowImages = root.allowImages === undefined || root.allowImages === null
    ? []
    : stringList(root.allowImages, `"allowImages"`, invalid).map((p) => {
      try {
        return compileImageGlob(p);
      } catch (e) {
        throw invalid(errorMessage(e));
      }
    });
  const cacheTtlMs = root.cacheTTL === undefined
    ? DEFAULT_CACHE_TTL_MS
    : duration(root.cacheTTL, `"cacheTTL"`, invalid);
  if (cacheTtlMs > MAX_CACHE_TTL_MS) throw invalid(`"cacheTTL" must be at most 24h`);
  const timeoutMs = root.timeout === undefined
    ? DEFAULT_ADMISSION_TIMEOUT_MS
    : checkTimeout(duration(root.timeout, `"timeout"`, invalid), `"timeout"`, invalid);
  return { file, mode, exemptNamespaces, allowImages, cacheTtlMs, timeoutMs };
}

/**
 * Checks an admission timeout: above 0, at most {@linkcode MAX_ADMISSION_TIMEOUT_MS}.
 *
 * @throws {AirlockError} from `invalid` when it is out of range.
 */
export function checkTimeout(ms: number, what: string, invalid: Invalid): number {
  if (!(ms > 0) || ms > MAX_ADMISSION_TIMEOUT_MS) {
    throw invalid(`${what} must be above 0 and at most 28s (the API server waits 30 s at most)`);
  }
  return ms;
}

function platformList(v: unknown, what: string, fallback: readonly string[], invalid: Invalid): string[] {
  if (v === undefined || v === null) return [...fallback];
  const list = stringList(v, what, invalid);
  if (list.length === 0) throw invalid(`${what} must not be empty`);
  for (const w of list) {
    if (!PLATFORM_WORD_RE.test(w)) throw invalid(`${what}: ${JSON.stringify(w)} is not a platform name`);
  }
  return list;
}

function cosignSpec(v: unknown, resolve: (p: string) => string, invalid: Invalid): CosignModeSpec {
  if (!isMapping(v)) throw invalid(`"cosign" must be a mapping, got ${kindOf(v)}`);
  checkKeys(v, COSIGN_KEYS, ` in "cosign"`, invalid);
  const s: Record<string, string | undefined> = {};
  for (const [yamlKey, field] of Object.entries(COSIGN_STRINGS)) {
    const value = v[yamlKey];
    s[field] = value === undefined || value === null
      ? undefined
      : stringValue(value, `"cosign.${yamlKey}"`, invalid);
  }
  const identity: IdentityPolicy = {
    subject: s.subject,
    subjectRegExp: s.subjectRegExp,
    issuer: s.issuer,
    issuerRegExp: s.issuerRegExp,
    githubWorkflowTrigger: s.githubWorkflowTrigger,
    githubWorkflowSha: s.githubWorkflowSha,
    githubWorkflowName: s.githubWorkflowName,
    githubWorkflowRepository: s.githubWorkflowRepository,
    githubWorkflowRef: s.githubWorkflowRef,
  };
  const keyless = Object.values(identity).some((x) => x !== undefined);
  if (s.keyPath !== undefined && keyless) {
    throw invalid(`"cosign.key" and the keyless "cosign.certificate*" fields exclude each other`);
  }
  if (s.keyPath === undefined) {
    if (!keyless) {
      throw invalid(
        `"cosign" needs "key", or "certificateIdentity[Regexp]" and "certificateOidcIssuer[Regexp]"`,
      );
    }
    if ((identity.subject === undefined) === (identity.subjectRegExp === undefined)) {
      throw invalid(`"cosign" needs exactly one of "certificateIdentity" and "certificateIdentityRegexp"`);
    }
    if ((identity.issuer === undefined) === (identity.issuerRegExp === undefined)) {
      throw invalid(
        `"cosign" needs exactly one of "certificateOidcIssuer" and "certificateOidcIssuerRegexp"`,
      );
    }
  }
  let annotations: Record<string, string> | undefined;
  if (v.annotations !== undefined && v.annotations !== null) {
    if (!isMapping(v.annotations)) throw invalid(`"cosign.annotations" must be a mapping of strings`);
    annotations = {};
    for (const [k, value] of Object.entries(v.annotations)) {
      if (typeof value !== "string") {
        throw invalid(`"cosign.annotations.${k}" must be a string, got ${kindOf(value)}`);
      }
      Object.defineProperty(annotations, k, { value, enumerable: true, writable: true, configurable: true });
    }
  }
  const flag = (key: string) =>
    v[key] === undefined || v[key] === null ? false : boolValue(v[key], `"cosign.${key}"`, invalid);
  return {
    kind: "cosign",
    keyPath: s.keyPath === undefined ? undefined : resolve(s.keyPath),
    identity: keyless ? identity : undefined,
    trustedRootPath: s.trustedRootPath === undefined ? undefined : resolve(s.trustedRootPath),
    ignoreTlog: flag("insecureIgnoreTlog"),
    ignoreSct: flag("insecureIgnoreSct"),
    annotations,
  };
}

async function readSmall(path: string, what: string, invalid: Invalid): Promise<Uint8Array> {
  try {
    const info = await Deno.stat(path);
    if (!info.isFile) throw invalid(`${what} "${path}" is not a file`);
    if (info.size > MAX_CONFIG_BYTES) throw invalid(`${what} "${path}" is over 1 MiB`);
    return await Deno.readFile(path);
  } catch (e) {
    if (e instanceof AirlockError) throw e;
    throw invalid(`cannot read the ${what} "${path}": ${errorMessage(e)}`);
  }
}

/**
 * Reads the configuration file and everything it names (the policy and its key files, or the key / trusted
 * root), so that a service never starts with something it cannot use.
 *
 * @throws {AirlockError} `CONFIG_INVALID` for every problem, naming the file.
 */
export async function loadAdmissionConfig(file: string): Promise<AdmissionSettings> {
  const invalid: Invalid = (msg) =>
    new AirlockError("CONFIG_INVALID", `invalid admission configuration ${JSON.stringify(file)}: ${msg}`);
  const text = new TextDecoder("utf-8", { fatal: true });
  let source: string;
  try {
    source = text.decode(await readSmall(file, "configuration file", invalid));
  } catch (e) {
    if (e instanceof AirlockError) throw e;
    throw invalid("the file is not UTF-8 text");
  }
  const cfg = await parseAdmissionConfig(source, file);
  const warnings: string[] = [];
  if (cfg.mode.kind === "policy") {
    let policy: Policy;
    try {
      policy = await loadPolicyFile(cfg.mode.policyPath);
    } catch (e) {
      throw invalid(errorMessage(e));
    }
    await checkPolicyKeys(policy, invalid, warnings);
    return {
      ...cfg,
      mode: { kind: "policy", path: cfg.mode.policyPath, policy, platforms: cfg.mode.platforms },
      description: `policy ${JSON.stringify(cfg.mode.policyPath)} for ${cfg.mode.platforms.os.join(",")}/` +
        cfg.mode.platforms.arch.join(","),
      warnings,
    };
  }
  const m = cfg.mode;
  let publicKey: PublicKey | undefined;
  if (m.keyPath !== undefined) {
    try {
      publicKey = parsePublicKeyPem(await readSmall(m.keyPath, "key", invalid));
    } catch (e) {
      if (e instanceof AirlockError && e.code === "CONFIG_INVALID") throw e;
      throw invalid(`the key "${m.keyPath}" is not a public key PEM: ${errorMessage(e)}`);
    }
  }
  let trustedRoot: SigstoreTrustedRoot | undefined;
  const k = m.identity !== undefined || m.trustedRootPath !== undefined
    ? await import("../keyless/mod.ts")
    : undefined;
  if (k && m.trustedRootPath !== undefined) {
    try {
      trustedRoot = await k.loadTrustedRoot(m.trustedRootPath);
    } catch (e) {
      throw invalid(errorMessage(e));
    }
  }
  if (k && m.identity !== undefined) {
    try {
      if (m.identity.subjectRegExp !== undefined) {
        k.compileGoRegExp(m.identity.subjectRegExp, "cosign.certificateIdentityRegexp");
      }
      if (m.identity.issuerRegExp !== undefined) {
        k.compileGoRegExp(m.identity.issuerRegExp, "cosign.certificateOidcIssuerRegexp");
      }
    } catch (e) {
      throw invalid(errorMessage(e));
    }
    trustedRoot ??= await k.publicGoodTrustedRoot();
  }
  const who = publicKey !== undefined
    ? `key ${JSON.stringify(m.keyPath)}`
    : `identity ${m.identity!.subject ?? `~${m.identity!.subjectRegExp}`} from ${
      m.identity!.issuer ?? `~${m.identity!.issuerRegExp}`
    }`;
  return {
    ...cfg,
    mode: {
      kind: "cosign",
      publicKey,
      identity: m.identity,
      trustedRoot,
      ignoreTlog: m.ignoreTlog,
      ignoreSct: m.ignoreSct,
      annotations: m.annotations,
    },
    description: `cosign ${who}${m.ignoreTlog ? " (transparency log not required)" : ""}`,
    warnings,
  };
}

/** Every requirement of a policy, once. */
function requirements(policy: Policy): PolicyRequirement[] {
  const all = new Set<PolicyRequirement>(policy.default);
  for (const scopes of Object.values(policy.transports)) {
    for (const reqs of Object.values(scopes)) for (const r of reqs) all.add(r);
  }
  return [...all];
}

/** Key files of `sigstoreSigned` requirements must be readable public keys; unsupported kinds are warned about. */
async function checkPolicyKeys(policy: Policy, invalid: Invalid, warnings: string[]): Promise<void> {
  for (const r of requirements(policy)) {
    if (r.type === "signedBy" || r.type === "signedBaseLayer") {
      warnings.push(
        `policy requirement "${r.type}" cannot be evaluated by airlock: images it applies to are denied`,
      );
      continue;
    }
    if (r.type !== "sigstoreSigned") continue;
    if (
      r.fulcio || r.pki || r.rekorPublicKeyPath || r.rekorPublicKeyPaths || r.rekorPublicKeyData ||
      r.rekorPublicKeyDatas
    ) {
      warnings.push(
        `policy requirement "sigstoreSigned" with ${
          r.fulcio ? "fulcio" : r.pki ? "pki" : "rekorPublicKey*"
        } ` +
          "cannot be evaluated by airlock yet: images it applies to are denied",
      );
      continue;
    }
    const paths = r.keyPath !== undefined ? [r.keyPath] : [...(r.keyPaths ?? [])];
    for (const p of paths) {
      try {
        parsePublicKeyPem(await readSmall(p, "policy key", invalid));
      } catch (e) {
        if (e instanceof AirlockError && e.code === "CONFIG_INVALID") throw e;
        throw invalid(`the policy key "${p}" is not a public key PEM: ${errorMessage(e)}`);
      }
    }
  }
}
