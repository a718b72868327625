/**
 * Sigstore attachments in a registry: reading the current `.sig`/`.att` manifest of a digest, and writing a
 * new state with the fewest requests (blob uploads are monolithic POST + PUT; no HEAD, no PATCH).
 *
 * @module
 */
import { AirlockError } from "../errors.ts";
import type { Reference } from "../reference.ts";
import type { RegistryClient } from "../registry/client.ts";
import { isManifestUnknown } from "../registry/errors.ts";
import { MediaType } from "../registry/types.ts";
import { goQuote } from "../encoding/go_quote.ts";
import {
  type AppendResult,
  type AttachmentLayer,
  listAttachmentLayers,
  signatureTag,
} from "./attachments.ts";
import {
  type AttachmentState,
  parseAttachmentConfig,
  parseAttachmentManifest,
} from "./attachment_manifest.ts";

/** The `.sig` (or `.att`) tag of a digest as found in the registry. */
export interface StoredAttachment {
  /** The tag reference (`host/repo:sha256-<hex>.sig`). */
  readonly ref: Reference;
  /** `sha256:` of the manifest bytes read. */
  readonly manifestDigest: string;
  /** The manifest, parsed as containers/image keeps it. */
  readonly manifest: AttachmentState["manifest"];
  /** Its layers with the cosign annotations picked out. */
  readonly layers: AttachmentLayer[];
}

/**
 * The reference of the attachment tag of `digest` in the repository of `repo`.
 */
export function attachmentRef(repo: Reference, digest: string, suffix = "sig"): Reference {
  return { registry: repo.registry, repository: repo.repository, tag: signatureTag(digest, suffix) };
}

/**
 * Reads the attachment manifest of `digest`; `undefined` when none exists yet, in every form registries say so
 * (containers/image's rule, Harbor's `UNKNOWN … not found` included). An OCI image manifest is required, as
 * containers/image requires it; with `cosignName` (`verify`'s reading) a Docker schema 2 manifest is accepted too, as
 * cosign writes them with `COSIGN_DOCKER_MEDIA_TYPES=1`, and the manifest is named `cosignName` in the error.
 */
export async function readAttachment(
  client: RegistryClient,
  repo: Reference,
  digest: string,
  opts: { suffix?: string; signal?: AbortSignal; cosignName?: string } = {},
): Promise<StoredAttachment | undefined> {
  const ref = attachmentRef(repo, digest, opts.suffix);
  const accept: string[] = opts.cosignName === undefined
    ? [MediaType.ociManifest]
    : [MediaType.ociManifest, MediaType.dockerManifest];
  let fetched;
  try {
    fetched = await client.getManifest(ref, { accept, signal: opts.signal });
  } catch (e) {
    if (isManifestUnknown(e)) return undefined;
    throw e;
  }
  if (!accept.includes(fetched.mediaType)) {
    const mediaType = opts.cosignName === undefined ? `"${fetched.mediaType}"` : goQuote(fetched.mediaType);
    throw new AirlockError(
      "UNSUPPORTED_MEDIA_TYPE",
      `unexpected MIME type for ${
        opts.cosignName ?? "sigstore attachment manifest"
      } ${ref.repository}:${ref.tag}: ` +
        mediaType,
    );
  }
  // Both forms have the same shape; the layers are read as an OCI manifest's.
  const manifest = parseAttachmentManifest(fetched.bytes, {
    contentType: MediaType.ociManifest,
    tag: ref.tag,
  });
  return { ref, manifestDigest: fetched.digest, manifest, layers: listAttachmentLayers(manifest) };
}

/**
 * Reads the config blob of a stored attachment, completing the state an append starts from.
 */
export async function attachmentState(
  client: RegistryClient,
  stored: StoredAttachment,
  signal?: AbortSignal,
): Promise<AttachmentState> {
  const digest = stored.manifest.config.digest;
  const bytes = await client.getBlob(stored.ref, digest, { signal });
  return { manifest: stored.manifest, config: parseAttachmentConfig(bytes, digest) };
}

/**
 * Writes an appended state: the new layer blobs and the config blob (in parallel), then the manifest at the tag;
 * returns the digest of the manifest written.
 * Layer blobs whose digest is in `uploaded` are not sent again (the signer uploads its payload blob before it
 * reads the tag for the final time, to keep the read-modify-write window short).
 */
export async function writeAttachment(
  client: RegistryClient,
  ref: Reference,
  result: AppendResult,
  signal?: AbortSignal,
  uploaded: ReadonlySet<string> = new Set(),
): Promise<string> {
  await Promise.all([
    ...result.layersToUpload
      .filter((l) => !uploaded.has(l.digest))
      .map((l) => client.uploadBlob(ref, l.bytes, { digest: l.digest, signal })),
    client.uploadBlob(ref, result.configBytes, { digest: result.configDigest, signal }),
  ]);
  return await client.putManifest(ref, result.manifestBytes, MediaType.ociManifest, { signal });
}
