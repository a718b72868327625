/**
 * Fetching the signature layers of a manifest, without trusting the registry: the `.sig` manifest and every blob
 * are digest-checked by the client and size-limited, and a manifest with more layers than any signer writes is
 * refused before a single blob is fetched.
 *
 * @module
 */
import { AirlockError } from "../errors.ts";
import type { Reference } from "../reference.ts";
import type { RegistryClient } from "../registry/client.ts";
import { runPool } from "../pool.ts";
import type { AttachmentLayer } from "./attachments.ts";
import { readAttachment, type StoredAttachment } from "./attachment_store.ts";

/** Most layers accepted in one attachment manifest (cosign writes at most 1000). */
export const MAX_ATTACHMENT_LAYERS = 1000;
/** Largest payload blob fetched (containers/image's limit for signatures). */
export const MAX_PAYLOAD_BYTES = 4 * 1024 * 1024;

/** A layer with its blob fetched and checked against the layer digest. */
export interface FetchedLayer extends AttachmentLayer {
  /** The blob: for simple-signing layers, the payload bytes that were signed. */
  readonly payload: Uint8Array;
}

/** What {@linkcode fetchSignatureLayers} found for a digest. */
export interface SignatureLayers {
  /** The attachment manifest, or `undefined` when the digest has none. */
  readonly stored?: StoredAttachment;
  /** Every layer of the wanted media type(s), with its blob, in manifest order. */
  readonly layers: readonly FetchedLayer[];
  /** Layers of other media types (containers/image: "sigstore non-signature attachments"). */
  readonly otherLayers: number;
}

/** Options of {@linkcode fetchSignatureLayers}. */
export interface FetchLayersOptions {
  /** Tag suffix: `sig` (default) or `att`. */
  readonly suffix?: string;
  /** Only layers of these media types are fetched; default every layer. */
  readonly mediaTypes?: readonly string[];
  /** Cancels the fetches. */
  readonly signal?: AbortSignal;
  /** Blobs fetched at once (default 4). */
  readonly concurrency?: number;
}

/**
 * Reads the attachment tag of `digest` and fetches the blobs of its layers.
 *
 * @throws {AirlockError} `TOO_LARGE` for a manifest with more than {@linkcode MAX_ATTACHMENT_LAYERS} layers or a
 * blob over {@linkcode MAX_PAYLOAD_BYTES}; `DIGEST_MISMATCH` when a blob does not match its descriptor.
 *
 * @example
 * ```ts
 * const { layers } = await fetchSignatureLayers(client, ref, "sha256:…", { mediaTypes: [MediaType.cosignSimpleSigning] });
 * ```
 */
export async function fetchSignatureLayers(
  client: RegistryClient,
  repo: Reference,
  digest: string,
  opts: FetchLayersOptions = {},
): Promise<SignatureLayers> {
  const stored = await readAttachment(client, repo, digest, { suffix: opts.suffix, signal: opts.signal });
  if (!stored) return { layers: [], otherLayers: 0 };
  if (stored.layers.length > MAX_ATTACHMENT_LAYERS) {
    throw new AirlockError(
      "TOO_LARGE",
      `attachment manifest ${stored.ref.repository}:${stored.ref.tag} has ${stored.layers.length} layers, ` +
        `more than the ${MAX_ATTACHMENT_LAYERS} accepted`,
    );
  }
  const wanted = stored.layers.filter((l) => !opts.mediaTypes || opts.mediaTypes.includes(l.mediaType));
  for (const l of wanted) {
    if (l.size > MAX_PAYLOAD_BYTES) {
      throw new AirlockError(
        "TOO_LARGE",
        `layer ${l.digest} of ${stored.ref.repository}:${stored.ref.tag} is ${l.size} bytes, ` +
          `more than the ${MAX_PAYLOAD_BYTES} accepted`,
      );
    }
  }
  const results = await runPool(wanted, opts.concurrency ?? 4, async (l) => {
    const payload = await client.getBlob(stored.ref, l.digest, {
      maxBytes: MAX_PAYLOAD_BYTES,
      signal: opts.signal,
    });
    if (payload.length !== l.size) {
      throw new AirlockError(
        "DIGEST_MISMATCH",
        `layer ${l.digest}: ${payload.length} bytes read, the manifest says ${l.size}`,
      );
    }
    return { ...l, payload };
  });
  const layers: FetchedLayer[] = [];
  for (const r of results) {
    if (!r.ok) throw r.error;
    layers.push(r.value);
  }
  return { stored, layers, otherLayers: stored.layers.length - wanted.length };
}
