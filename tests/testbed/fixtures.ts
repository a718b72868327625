/**
 * Paths to the test data (`tests/fixtures/`, see its README for where each set came from) and a registry
 * serving a copy of the peer-skopeo fixture storage.
 *
 * The fixtures directory is found relative to this file (`../fixtures` from `tests/testbed/`); the environment
 * variable `AIRLOCK_FIXTURES` overrides it.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { type RegistryOptions, startRegistry, type TestRegistry } from "./registry.ts";
import { loadContainersImageFixture, type LoadedFixture, type StaticContent } from "./static_registry.ts";

/**
 * Absolute path of the fixtures directory (`tests/fixtures`).
 *
 * @example
 * ```ts
 * const pub = await Deno.readTextFile(fixturePath("peer-skopeo", "keys", "alice.pub"));
 * ```
 */
export const FIXTURES_DIR: string = Deno.env.get("AIRLOCK_FIXTURES") ??
  fileURLToPath(new URL("../fixtures", import.meta.url));

/** Absolute path of the peer-skopeo fixture set. */
export const PEER_SKOPEO_DIR: string = join(FIXTURES_DIR, "peer-skopeo");

/** Absolute path of the peer-skopeo registry storage root (serve a copy, never this directory). */
export const PEER_SKOPEO_STORAGE: string = join(PEER_SKOPEO_DIR, "registry");

/**
 * A path inside the fixtures directory.
 *
 * @example
 * ```ts
 * fixturePath("vectors", "public-good-trusted_root.json");
 * ```
 */
export function fixturePath(...parts: string[]): string {
  return join(FIXTURES_DIR, ...parts);
}

/** One layer of a peer-skopeo `.sig` manifest (every layer of the set has every field). */
export interface PeerSkopeoSignatureLayer {
  index: number;
  mediaType: string;
  digest: string;
  size: number;
  /** The payload's `critical.identity.docker-reference`. */
  identity: string;
  /** The payload's `critical.image.docker-manifest-digest`. */
  payloadManifestDigest: string;
  /** The payload's `optional`. */
  payloadOptional: { creator: string; timestamp: number };
  /** The layer's `dev.cosignproject.cosign/signature` annotation. */
  signatureAnnotation: string;
  /** Names of the keys (`keys` of cases.json) the signature verifies with. */
  verifiesWithKeys: string[];
}

/** One `sha256-<hex>.sig` tag of a peer-skopeo case. */
export interface PeerSkopeoSignatureTag {
  /** `image`, `index` or a platform such as `linux/amd64`. */
  for: string;
  manifestDigest: string;
  tag: string;
  sigManifestDigest: string;
  configDigest: string;
  layers: PeerSkopeoSignatureLayer[];
}

/** One expectation checked with skopeo (kept loose: read the fields a test needs). */
export interface PeerSkopeoCheck {
  check: string;
  key: string;
  reference: string;
  platform?: string;
  expect: "pass" | "fail";
  failure: string | null;
  [field: string]: unknown;
}

/** One case of `peer-skopeo/cases.json` (minimal typing; see CASES.md). */
export interface PeerSkopeoCase {
  id: string;
  title: string;
  repository: string;
  tag: string;
  reference: string;
  digestReference: string;
  mediaType: string;
  digest: string;
  platforms: { platform: string; digest: string; signed: boolean }[];
  signedBy: { key: string; identity: string; manifests: string[] }[];
  signatureTags: PeerSkopeoSignatureTag[];
  checks: PeerSkopeoCheck[];
  [field: string]: unknown;
}

/** One key of the peer-skopeo set. Paths are absolute. */
export interface PeerSkopeoKey {
  privateKey: string;
  publicKey: string;
  passphraseFile: string;
  passphrase: string;
  pemType: string;
  publicKeySpkiSha256: string;
  [field: string]: unknown;
}

/** `peer-skopeo/cases.json`, with key paths made absolute. */
export interface PeerSkopeoCases {
  /** The host every signature identity names (`registry.test:5000`). */
  identityHost: string;
  keys: Record<string, PeerSkopeoKey>;
  cases: PeerSkopeoCase[];
  [field: string]: unknown;
}

/**
 * Reads `peer-skopeo/cases.json`; key file paths in `keys` are made absolute.
 *
 * @example
 * ```ts
 * const { cases } = await loadPeerSkopeoCases();
 * const a1 = cases.find((c) => c.id === "A1")!;
 * ```
 */
export async function loadPeerSkopeoCases(): Promise<PeerSkopeoCases> {
  const data = JSON.parse(await Deno.readTextFile(join(PEER_SKOPEO_DIR, "cases.json"))) as PeerSkopeoCases;
  for (const key of Object.values(data.keys)) {
    key.privateKey = join(PEER_SKOPEO_DIR, key.privateKey);
    key.publicKey = join(PEER_SKOPEO_DIR, key.publicKey);
    key.passphraseFile = join(PEER_SKOPEO_DIR, key.passphraseFile);
  }
  return data;
}

/**
 * The bytes of blob `digest` in the peer-skopeo registry storage (read only).
 *
 * @example
 * ```ts
 * const payload = peerSkopeoBlob(layer.digest);
 * ```
 */
export function peerSkopeoBlob(digest: string): Uint8Array {
  const hex = digest.slice("sha256:".length);
  return Deno.readFileSync(
    join(PEER_SKOPEO_STORAGE, "docker", "registry", "v2", "blobs", "sha256", hex.slice(0, 2), hex, "data"),
  );
}

/**
 * Starts a registry serving a fresh copy of the peer-skopeo storage (other options as `startRegistry`).
 *
 * @example
 * ```ts
 * await using reg = await startPeerSkopeoRegistry();
 * const res = await fetch(`${reg.url}/v2/a/single/manifests/v1`);
 * ```
 */
export function startPeerSkopeoRegistry(
  opts: Omit<RegistryOptions, "storageFrom"> = {},
): Promise<TestRegistry> {
  return startRegistry({ ...opts, storageFrom: PEER_SKOPEO_STORAGE });
}

/**
 * A containers policy.json (its text) for signatures that name `signedPrefix` (the peer-skopeo fixture's
 * `registry.test:5000`) served at `host`: reject by default; for `host`, `sigstoreSigned` with `keyPath` and
 * `remapIdentity {prefix: host, signedPrefix}`.
 *
 * @example
 * ```ts
 * await Deno.writeTextFile("policy.json", remapPolicy(reg.host, keys.alice.publicKey, "registry.test:5000"));
 * ```
 */
export function remapPolicy(host: string, keyPath: string, signedPrefix: string): string {
  return JSON.stringify({
    default: [{ type: "reject" }],
    transports: {
      docker: {
        [host]: [{
          type: "sigstoreSigned",
          keyPath,
          signedIdentity: { type: "remapIdentity", prefix: host, signedPrefix },
        }],
      },
    },
  });
}

/** Absolute path of the oracle-skopeo fixture set (data made or judged by upstream skopeo for airlock). */
export const ORACLE_SKOPEO_DIR: string = join(FIXTURES_DIR, "oracle-skopeo");

/** One check of `oracle-skopeo/verdicts.json`: what skopeo 1.14.5 decided for a reference under a policy. */
export interface OracleVerdict {
  /** Case id (`B1-tag-all`, …). */
  id: string;
  /** The reference skopeo pulled, naming `registry.test:5000`. */
  reference: string;
  /** `all` (`copy --all`), `image` (a single-arch image), or the platform chosen (`linux/amd64`, …). */
  platform: string;
  /** The policy file in `oracle-skopeo/image-policies/` (`@KEYS@` stands for the key directory). */
  policy: string;
  /** A file of `oracle-skopeo/image-registries.d/` used as registries.d; absent: attachments on everywhere. */
  registriesD?: string;
  /** skopeo's exit code. */
  exit: number;
  /** Whether skopeo accepted the image (exit 0). */
  accepted: boolean;
  /** skopeo's message when it refused (`Source image rejected: …`). */
  message: string;
}

/**
 * The checks of the oracle-skopeo image fixture, with skopeo's verdicts.
 *
 * @example
 * ```ts
 * const verdicts = await loadOracleVerdicts();
 * ```
 */
export async function loadOracleVerdicts(): Promise<OracleVerdict[]> {
  return JSON.parse(await Deno.readTextFile(join(ORACLE_SKOPEO_DIR, "verdicts.json"))) as OracleVerdict[];
}

/**
 * Starts a registry serving a copy of the oracle-skopeo storage (images and signatures named
 * `registry.test:5000/b/…`, see tests/fixtures/README.md).
 *
 * @example
 * ```ts
 * await using reg = await startOracleSkopeoRegistry();
 * ```
 */
export function startOracleSkopeoRegistry(
  opts: Omit<RegistryOptions, "storageFrom"> = {},
): Promise<TestRegistry> {
  return startRegistry({ ...opts, storageFrom: join(ORACLE_SKOPEO_DIR, "registry") });
}

/**
 * containers/image's `dir-img-cosign-<name>` fixture (`vectors/containers-image/dir-img-cosign-<name>-manifest.json`
 * and its `-signature-1`) loaded into `content` as `<repo>:<tag>` with {@linkcode loadContainersImageFixture}.
 *
 * @example
 * ```ts
 * const keyless = await loadCosignFixture(content, "ci/keyless", "v1", "fulcio-rekor-valid");
 * ```
 */
export function loadCosignFixture(
  content: StaticContent,
  repo: string,
  tag: string,
  name: string,
): Promise<LoadedFixture> {
  const file = (suffix: string) =>
    fixturePath("vectors", "containers-image", `dir-img-cosign-${name}-${suffix}`);
  return loadContainersImageFixture(content, repo, tag, {
    manifest: file("manifest.json"),
    signatures: [file("signature-1")],
  });
}
