/**
 * Sigstore bundles stored as OCI 1.1 referrers (cosign v3's default for `sign` and `attest`, spec/cosign.md §2.8),
 * found without trusting the registry:
 *
 * 1. the referrers API (`GET /v2/<repo>/referrers/<digest>`) when the registry offers it;
 * 2. otherwise the referrers **tag scheme**: the tag `sha256-<hex>` (no suffix) holding an OCI index of the
 *    referrers, as go-containerregistry falls back to (and writes);
 * 3. each listed manifest whose `artifactType` is a sigstore bundle type (or absent) is fetched by digest
 *    (digest-checked), and kept when it names the digest as its `subject` and has exactly one layer whose media
 *    type starts with `application/vnd.dev.sigstore.bundle` (cosign `GetBundles`); that layer's blob is fetched,
 *    size-limited and digest-checked.
 *
 * Nothing is verified here: the caller verifies each bundle. A bundle whose blob cannot be read is reported with
 * a reason rather than failing the lookup, so that a bad referrer cannot hide a good one.
 *
 * @module
 */
import { AirlockError } from "../errors.ts";
import type { Reference } from "../reference.ts";
import type { RegistryClient } from "../registry/client.ts";
import { isManifestUnknown } from "../registry/errors.ts";
import { type Descriptor, MediaType } from "../registry/types.ts";
import { mapInOrder } from "../pool.ts";
import { MAX_ATTACHMENT_BYTES, MAX_ATTACHMENT_LAYERS, MAX_PAYLOAD_BYTES } from "./signature_layers.ts";

/** Prefix of the media types (and artifact types) of sigstore bundles. */
export const SIGSTORE_BUNDLE_MEDIA_TYPE_PREFIX = "application/vnd.dev.sigstore.bundle";

/** One sigstore bundle found as a referrer. */
export interface ReferrerBundle {
  /** The referrer manifest's digest. */
  readonly manifestDigest: string;
  /** The referrer manifest's annotations (`dev.sigstore.bundle.predicateType`, …). */
  readonly annotations: Readonly<Record<string, string>>;
  /** The bundle layer's blob (the bundle JSON), when it could be read. */
  readonly bundle?: Uint8Array;
  /** Why the bundle could not be read. */
  readonly error?: string;
}

/** What {@linkcode findReferrerBundles} found. */
export interface ReferrerBundles {
  /** How the referrers were listed: the API, the tag scheme, or not at all (the lookup failed). */
  readonly source: "api" | "tag" | "none";
  /** The bundles, in listing order. */
  readonly bundles: readonly ReferrerBundle[];
}

/** Errors that concern one referrer's content (a reason), not reaching the registry (an abort). */
const CONTENT_ERRORS = new Set(["DIGEST_MISMATCH", "TOO_LARGE", "NOT_FOUND", "UNSUPPORTED_MEDIA_TYPE"]);

/**
 * The tag of the referrers tag scheme for `digest`: `sha256:<hex>` → `sha256-<hex>`.
 */
export function referrersTag(digest: string): string {
  return digest.replace(":", "-");
}

/**
 * Finds the sigstore bundles attached to `digest` as OCI referrers (see the module doc). A failing listing (other
 * than a cancellation) gives `source: "none"` and no bundles, as cosign then falls back to the legacy tags.
 *
 * @example
 * ```ts
 * const { bundles } = await findReferrerBundles(client, ref, digest);
 * for (const b of bundles) if (b.bundle) await verifyKeyless({ bundle: b.bundle }, options);
 * ```
 */
export async function findReferrerBundles(
  client: RegistryClient,
  repo: Reference,
  digest: string,
  opts: { signal?: AbortSignal } = {},
): Promise<ReferrerBundles> {
  const found = referrerBundles(client, repo, digest, opts);
  const bundles: ReferrerBundle[] = [];
  for await (const b of found.bundles) bundles.push(b);
  return { source: await found.source, bundles };
}

/**
 * {@linkcode findReferrerBundles} one bundle at a time, in listing order: the referrers are read two at a time,
 * so that only a few MiB are held whatever the registry lists, and a caller that checks each bundle as it comes
 * holds none of them. The bundles of one digest may not exceed {@linkcode MAX_ATTACHMENT_BYTES} in all.
 *
 * @throws {AirlockError} (from the iteration) `TOO_LARGE` past that total; registry errors other than a referrer's
 *   content.
 *
 * @example
 * ```ts
 * const { bundles } = referrerBundles(client, ref, digest);
 * for await (const b of bundles) if (b.bundle) await verifyKeyless({ bundle: b.bundle }, options);
 * ```
 */
export function referrerBundles(
  client: RegistryClient,
  repo: Reference,
  digest: string,
  opts: { signal?: AbortSignal } = {},
): { source: Promise<ReferrerBundles["source"]>; bundles: AsyncGenerator<ReferrerBundle> } {
  let setSource: (s: ReferrerBundles["source"]) => void = () => {};
  const source = new Promise<ReferrerBundles["source"]>((resolve) => (setSource = resolve));
  async function* bundles(): AsyncGenerator<ReferrerBundle> {
    const signal = opts.signal;
    let listed: Descriptor[] | undefined;
    try {
      listed = await client.referrers(repo, digest, { signal });
      if (listed === undefined) {
        listed = await referrersFromTag(client, repo, digest, signal);
        setSource("tag");
      } else setSource("api");
    } catch (e) {
      setSource("none");
      if (signal?.aborted) throw e;
      return;
    }
    const candidates = listed.filter((d) =>
      d.artifactType === undefined || d.artifactType === "" ||
      d.artifactType.startsWith(SIGSTORE_BUNDLE_MEDIA_TYPE_PREFIX)
    ).slice(0, MAX_ATTACHMENT_LAYERS);
    let total = 0;
    const read = async (d: Descriptor, itemSignal: AbortSignal) => {
      try {
        return await readReferrer(client, repo, digest, d, itemSignal);
      } catch (e) {
        if (e instanceof AirlockError && CONTENT_ERRORS.has(e.code) && !itemSignal.aborted) {
          return { manifestDigest: d.digest, annotations: d.annotations ?? {}, error: e.message };
        }
        throw e;
      }
    };
    for await (const b of mapInOrder(candidates, 2, read, signal)) {
      if (b === undefined) continue;
      total += b.bundle?.length ?? 0;
      if (total > MAX_ATTACHMENT_BYTES) {
        throw new AirlockError(
          "TOO_LARGE",
          `the sigstore bundles referring to ${digest} hold more than the ${MAX_ATTACHMENT_BYTES} bytes read`,
        );
      }
      yield b;
    }
  }
  return { source, bundles: bundles() };
}

/** The referrers index at the tag `sha256-<hex>`; none when the tag does not exist or is not an index. */
async function referrersFromTag(
  client: RegistryClient,
  repo: Reference,
  digest: string,
  signal?: AbortSignal,
): Promise<Descriptor[]> {
  let fetched;
  try {
    fetched = await client.getManifest(
      { registry: repo.registry, repository: repo.repository, tag: referrersTag(digest) },
      { accept: [MediaType.ociIndex], signal },
    );
  } catch (e) {
    if (isManifestUnknown(e)) return [];
    throw e;
  }
  if (fetched.mediaType !== MediaType.ociIndex) return [];
  const doc = parseObject(fetched.bytes);
  const manifests = doc?.manifests;
  if (!Array.isArray(manifests)) return [];
  return manifests.filter((d): d is Descriptor =>
    typeof d === "object" && d !== null && typeof (d as Descriptor).digest === "string"
  );
}

function parseObject(bytes: Uint8Array): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(new TextDecoder().decode(bytes));
    return v && typeof v === "object" && !Array.isArray(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Reads one listed referrer: `undefined` when it is not a sigstore bundle for `digest`. */
async function readReferrer(
  client: RegistryClient,
  repo: Reference,
  digest: string,
  d: Descriptor,
  signal?: AbortSignal,
): Promise<ReferrerBundle | undefined> {
  const ref: Reference = { registry: repo.registry, repository: repo.repository, digest: d.digest };
  const m = await client.getManifest(ref, { accept: [MediaType.ociManifest], signal });
  const doc = parseObject(m.bytes);
  if (!doc) return undefined;
  const subject = doc.subject as Descriptor | undefined;
  if (subject?.digest !== digest) return undefined;
  const layers = Array.isArray(doc.layers) ? doc.layers as Descriptor[] : [];
  if (
    layers.length !== 1 || typeof layers[0]?.mediaType !== "string" ||
    !layers[0].mediaType.startsWith(SIGSTORE_BUNDLE_MEDIA_TYPE_PREFIX)
  ) {
    return undefined;
  }
  const annotations: Record<string, string> = {};
  if (doc.annotations && typeof doc.annotations === "object") {
    for (const [k, v] of Object.entries(doc.annotations)) if (typeof v === "string") annotations[k] = v;
  }
  const layer = layers[0];
  const base = { manifestDigest: m.digest, annotations };
  if (!Number.isSafeInteger(layer.size) || layer.size < 0 || layer.size > MAX_PAYLOAD_BYTES) {
    return {
      ...base,
      error: `bundle ${layer.digest} is ${layer.size} bytes, more than ${MAX_PAYLOAD_BYTES}`,
    };
  }
  const bundle = await client.getBlob(ref, layer.digest, { maxBytes: layer.size, signal });
  if (bundle.length !== layer.size) {
    return {
      ...base,
      error: `bundle ${layer.digest}: ${bundle.length} bytes read, the manifest says ${layer.size}`,
    };
  }
  return { ...base, bundle };
}
