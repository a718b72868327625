/**
 * Signatures in a registry, for the tests and benchmarks: reading `.sig` tags back with plain `fetch` (never
 * through airlock's own client) and checking every blob's digest, verifying a layer with airlock's verifier AND
 * with `openssl`, writing crafted `.sig` tags (to a real registry or to the static fake), and signing images
 * in-process with airlock's own signer (the code `airlock sign` runs).
 *
 * Not re-exported by `mod.ts`: {@linkcode verifyLayer} and {@linkcode signInProcess} run product code, the
 * fakes of the test bed do not.
 *
 * @module
 */
import { join } from "node:path";
import { openKey } from "../../backends/key_backend.ts";
import { loadRegistriesD } from "../../core/config/registries_d.ts";
import { parseReference } from "../../core/reference.ts";
import type { RegistryClient } from "../../core/registry/client.ts";
import { signImages } from "../../core/sign.ts";
import { parsePublicKeyPem, verifySignature } from "../../core/signature/public_key.ts";
import { type PushTarget, rawSink } from "./images.ts";
import type { KeyFiles, TestSigner } from "./keys.ts";
import { putStaticBlob, putStaticManifest, type StaticContent } from "./static_registry.ts";
import { sha256Digest } from "./util.ts";

/** The signature annotation key containers/image and cosign write. */
export const SIG_ANNOTATION = "dev.cosignproject.cosign/signature";
/** Media type of a signature layer. */
export const SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json";
/** Media type of an OCI image manifest. */
export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
/** Media type of an OCI image config. */
export const OCI_CONFIG = "application/vnd.oci.image.config.v1+json";

const dec = new TextDecoder();
const enc = new TextEncoder();

/**
 * An OCI image manifest object: `schemaVersion`, `mediaType`, `config` (OCI config media type), `layers`, then
 * `extra` (in this key order, as a `.sig` manifest is written).
 *
 * @example
 * ```ts
 * const manifest = JSON.stringify(ociManifest({ digest: configDigest, size: config.length }, layers));
 * ```
 */
export function ociManifest(
  config: { digest: string; size: number },
  layers: unknown[],
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.size },
    layers,
    ...extra,
  };
}

/** A cosign-style payload (struct order, compact) for `digest`. */
export function cosignPayload(reference: string, digest: string, optional = "null"): string {
  return `{"critical":{"identity":{"docker-reference":"${reference}"},"image":{"docker-manifest-digest":` +
    `"${digest}"},"type":"cosign container image signature"},"optional":${optional}}`;
}

/** One layer of a `.sig` manifest, read back. */
export interface SigLayer {
  /** The descriptor as JSON (parsed). */
  desc: { mediaType: string; digest: string; size: number; annotations?: Record<string, string> };
  /** The payload blob bytes. */
  payload: Uint8Array;
  /** The parsed payload (simple-signing layers only). */
  json?: {
    critical: { identity: { "docker-reference": string }; image: { "docker-manifest-digest": string } };
    optional: Record<string, unknown>;
  };
}

/** A `.sig` tag read back with plain `fetch`. */
export interface SigRead {
  manifestBytes: Uint8Array;
  manifestText: string;
  manifest: {
    schemaVersion: number;
    mediaType: string;
    config: { mediaType: string; digest: string; size: number };
    layers: SigLayer["desc"][];
  };
  contentType: string | null;
  configBytes: Uint8Array;
  layers: SigLayer[];
}

/** Something that fetches registry paths (a TestRegistry or a TestProxy). */
export interface Fetcher {
  fetch(path: string, init?: RequestInit): Promise<Response>;
}

/** `sha256-<hex>.sig` of a digest. */
export function sigTag(digest: string): string {
  return digest.replace(":", "-") + ".sig";
}

/**
 * Reads the `.sig` tag of `digest` in `repo`; `undefined` when the registry answers 404. Checks that every blob
 * hashes to its digest.
 *
 * @example
 * ```ts
 * const sig = await readSig(reg, "a/single", digest);
 * ```
 */
export async function readSig(reg: Fetcher, repo: string, digest: string): Promise<SigRead | undefined> {
  const res = await reg.fetch(`/v2/${repo}/manifests/${sigTag(digest)}`, {
    headers: { accept: OCI_MANIFEST },
  });
  if (res.status === 404) {
    await res.body?.cancel();
    return undefined;
  }
  if (res.status !== 200) throw new Error(`GET .sig of ${repo}@${digest}: ${res.status} ${await res.text()}`);
  const manifestBytes = new Uint8Array(await res.arrayBuffer());
  const manifestText = dec.decode(manifestBytes);
  const manifest = JSON.parse(manifestText) as SigRead["manifest"];
  const configBytes = await getBlob(reg, repo, manifest.config.digest);
  const layers: SigLayer[] = [];
  for (const desc of manifest.layers ?? []) {
    const payload = await getBlob(reg, repo, desc.digest);
    layers.push({
      desc,
      payload,
      json: desc.mediaType === SIMPLE_SIGNING ? JSON.parse(dec.decode(payload)) : undefined,
    });
  }
  return {
    manifestBytes,
    manifestText,
    manifest,
    contentType: res.headers.get("content-type"),
    configBytes,
    layers,
  };
}

/** GETs a blob and checks its digest. */
export async function getBlob(reg: Fetcher, repo: string, digest: string): Promise<Uint8Array> {
  const res = await reg.fetch(`/v2/${repo}/blobs/${digest}`);
  if (res.status !== 200) throw new Error(`GET blob ${digest}: ${res.status} ${await res.text()}`);
  const bytes = new Uint8Array(await res.arrayBuffer());
  const got = await sha256Digest(bytes);
  if (got !== digest) throw new Error(`blob ${digest} hashes to ${got}`);
  return bytes;
}

/** The tags of a repository (`[]` when it does not exist). */
export async function listTags(reg: Fetcher, repo: string): Promise<string[]> {
  const res = await reg.fetch(`/v2/${repo}/tags/list`);
  if (res.status === 404) {
    await res.body?.cancel();
    return [];
  }
  if (res.status !== 200) throw new Error(`tags/list ${repo}: ${res.status}`);
  return ((await res.json()) as { tags: string[] | null }).tags ?? [];
}

/**
 * Every `.sig` manifest of the given repositories: `repo:tag` → manifest text (to compare before/after).
 *
 * @example
 * ```ts
 * const before = await sigSnapshot(reg, ["a/single"]);
 * ```
 */
export async function sigSnapshot(reg: Fetcher, repos: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const repo of repos) {
    for (const tag of (await listTags(reg, repo)).filter((t) => t.endsWith(".sig")).sort()) {
      const res = await reg.fetch(`/v2/${repo}/manifests/${tag}`, { headers: { accept: OCI_MANIFEST } });
      out.set(`${repo}:${tag}`, await res.text());
    }
  }
  return out;
}

/** Standard base64 decoding. */
export function b64decode(s: string): Uint8Array {
  return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
}

/**
 * Verifies a signature layer with airlock's verifier (`core/signature/public_key.ts`) AND with
 * `openssl dgst -sha256 -verify`; returns both answers.
 *
 * @example
 * ```ts
 * assertEquals(await verifyLayer(pubPem, layer, tmp.path), { airlock: true, openssl: true });
 * ```
 */
export async function verifyLayer(
  publicPem: string,
  layer: SigLayer,
  workDir: string,
): Promise<{ airlock: boolean; openssl: boolean }> {
  const sig = b64decode(layer.desc.annotations?.[SIG_ANNOTATION] ?? "");
  const airlock = await verifySignature(parsePublicKeyPem(publicPem), layer.payload, sig);
  return { airlock, openssl: await opensslVerify(publicPem, layer.payload, sig, workDir) };
}

let opensslSeq = 0;

/** `openssl dgst -sha256 -verify pub.pem -signature sig.der payload`: true on "Verified OK". */
export async function opensslVerify(
  publicPem: string,
  payload: Uint8Array,
  sigDer: Uint8Array,
  workDir: string,
): Promise<boolean> {
  const dir = join(workDir, `openssl-${++opensslSeq}`);
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(join(dir, "pub.pem"), publicPem);
  await Deno.writeFile(join(dir, "sig.der"), sigDer);
  await Deno.writeFile(join(dir, "payload"), payload);
  const out = await new Deno.Command("openssl", {
    args: ["dgst", "-sha256", "-verify", "pub.pem", "-signature", "sig.der", "payload"],
    cwd: dir,
    stdout: "piped",
    stderr: "piped",
  }).output();
  await Deno.remove(dir, { recursive: true });
  return out.code === 0 && dec.decode(out.stdout).trim() === "Verified OK";
}

/** One layer of a crafted `.sig` manifest. */
export interface CraftedLayer {
  payload: Uint8Array;
  annotations?: Record<string, string>;
  mediaType?: string;
  /** Declare this size instead of the real one. */
  size?: number;
}

/** A signature layer: the payload signed with `signer` (independent of airlock). */
export function signedLayer(signer: TestSigner, payload: Uint8Array): CraftedLayer {
  return { payload, annotations: { [SIG_ANNOTATION]: signer.signB64(payload) } };
}

/**
 * Pushes a crafted `.sig` manifest for `digest` in `repo` of a real registry with the given layers (blobs
 * uploaded once each; `repeat` repeats the whole layer list). Returns the manifest bytes.
 */
export async function pushSig(
  reg: PushTarget,
  repo: string,
  digest: string,
  layers: CraftedLayer[],
  repeat = 1,
): Promise<Uint8Array> {
  const sink = rawSink(reg.url, undefined, reg.client);
  const ref = { registry: reg.host, repository: repo };
  const descs: Record<string, unknown>[] = [];
  const uploaded = new Set<string>();
  for (const l of layers) {
    const d = await sha256Digest(l.payload);
    if (!uploaded.has(d)) {
      await sink.uploadBlob(ref, l.payload, { digest: d });
      uploaded.add(d);
    }
    descs.push({
      mediaType: l.mediaType ?? SIMPLE_SIGNING,
      digest: d,
      size: l.size ?? l.payload.length,
      ...(l.annotations ? { annotations: l.annotations } : {}),
    });
  }
  const config = enc.encode(
    `{"architecture":"","os":"","config":{},"rootfs":{"type":"layers","diff_ids":[]}}`,
  );
  const configDigest = await sha256Digest(config);
  await sink.uploadBlob(ref, config, { digest: configDigest });
  const all = Array.from({ length: repeat }, () => descs).flat();
  const manifest = enc.encode(
    JSON.stringify(ociManifest({ digest: configDigest, size: config.length }, all)),
  );
  await sink.putManifest({ ...ref, tag: sigTag(digest) }, manifest, OCI_MANIFEST);
  return manifest;
}

/**
 * Stores a one-layer signature manifest in the static fake registry under `tag`, as cosign writes `.sig` and
 * `.att` tags: the layer blob, a config naming it in `diff_ids`, and the manifest.
 *
 * @example
 * ```ts
 * await putStaticSignatureTag(content, "a/b", sigTag(digest), { mediaType: SIMPLE_SIGNING, payload, annotations });
 * ```
 */
export async function putStaticSignatureTag(
  content: StaticContent,
  repo: string,
  tag: string,
  layer: { mediaType: string; payload: Uint8Array; annotations: Record<string, string> },
): Promise<void> {
  const blob = await putStaticBlob(content, repo, layer.payload);
  const config = enc.encode(
    `{"architecture":"","os":"","config":{},"rootfs":{"type":"layers","diff_ids":["${blob}"]}}`,
  );
  const configDigest = await putStaticBlob(content, repo, config);
  await putStaticManifest(
    content,
    repo,
    ociManifest({ digest: configDigest, size: config.length }, [{
      mediaType: layer.mediaType,
      digest: blob,
      size: layer.payload.length,
      annotations: layer.annotations,
    }]),
    { tag },
  );
}

/**
 * Signs `refs` with `key` (all platforms, index too) through airlock's library, `jobs` at a time; returns the
 * number of images that failed, or throws naming the failures unless `allowFailures`.
 *
 * @example
 * ```ts
 * await signInProcess([`${reg.host}/a/b:v1`], key, rd, client);
 * ```
 */
export async function signInProcess(
  refs: string[],
  key: Pick<KeyFiles, "key" | "pass">,
  registriesD: string,
  client: RegistryClient,
  opts: { jobs?: number; allowFailures?: boolean } = {},
): Promise<number> {
  const backend = await openKey(key.key, { passphraseFile: key.pass });
  try {
    const report = await signImages(
      refs.map((r, i) => ({
        status: "ok" as const,
        line: { id: i + 1, line: r, text: r, kind: "default" as const },
        reference: parseReference(r),
      })),
      {
        client,
        key: backend,
        registriesD: await loadRegistriesD({ dir: registriesD }),
        platforms: { arch: [], os: [], variant: [] },
        jobs: opts.jobs ?? 4,
        timeoutMs: 0,
        // Nobody else writes the test registry's tags: a short confirmation wait is enough.
        window: { readMaxAgeMs: 500, applyMinMs: 10 },
      },
    );
    if (report.failed.length > 0 && !opts.allowFailures) {
      throw new Error(
        `signing failed: ${report.lines.map((l) => l.error?.message).filter(Boolean).join("; ")}`,
      );
    }
    return report.failed.length;
  } finally {
    await backend.close();
  }
}

/** {@linkcode cosignPayload} as UTF-8 bytes, `optional: null`. */
export function cosignPayloadBytes(reference: string, digest: string): Uint8Array {
  return enc.encode(cosignPayload(reference, digest));
}
