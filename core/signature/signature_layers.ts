/**
 * Reading the payload blobs of an attachment manifest (`.sig`, `.att`) without trusting the registry, in bounded
 * memory: a manifest with more layers than any signer writes, or whose layers announce more bytes in all than any
 * signer needs, is refused before a single blob is fetched; every blob is digest-checked by the client and read
 * up to its size limit; and blobs are fetched a few at a time, in manifest order, with at most
 * {@linkcode PAYLOAD_BYTES_IN_FLIGHT} announced bytes fetched ahead of the consumer, which gets each payload as
 * it comes and keeps only what it needs. Whatever the registry holds, one attachment manifest never costs more
 * than a few MiB of memory.
 *
 * {@linkcode readAttachmentLayers} is the one reader of `.sig` and `.att` layers (`verify`, `verify-attestation`,
 * `download attestation`, `sign validate`), as cosign's `pkg/oci` gives signatures and attestations one
 * interface: the suffix says which tag, `badBlob` what a missing, oversized or damaged blob means.
 *
 * @module
 */
import { LinkedAbort } from "../abort.ts";
import { AirlockError, isAirlockError } from "../errors.ts";
import type { Reference } from "../reference.ts";
import type { RegistryClient } from "../registry/client.ts";
import type { AttachmentLayer } from "./attachments.ts";
import { readAttachment } from "./attachment_store.ts";

/** Most layers accepted in one attachment manifest (cosign writes and reads at most 1000). */
export const MAX_ATTACHMENT_LAYERS = 1000;
/** Largest payload blob fetched (containers/image's limit for signatures). */
export const MAX_PAYLOAD_BYTES = 4 * 1024 * 1024;
/**
 * Most payload bytes read from one attachment manifest in all (the sum of the announced sizes of the layers that
 * are fetched; layers over {@linkcode MAX_PAYLOAD_BYTES} are not fetched and do not count). A simple-signing
 * payload is under 1 KiB, so this is room for every signature cosign allows and for several large attestations.
 */
export const MAX_ATTACHMENT_BYTES = 64 * 1024 * 1024;
/** Most announced payload bytes fetched ahead of the consumer (one larger payload is fetched alone). */
export const PAYLOAD_BYTES_IN_FLIGHT = 4 * 1024 * 1024;
/** Blobs fetched at once. */
const CONCURRENCY = 4;

/** What a payload read needs to know of a layer. */
export interface PayloadLayer {
  /** `algorithm:hex` digest of the blob. */
  readonly digest: string;
  /** Announced size of the blob. */
  readonly size: number;
}

/** One layer's payload, or why it could not be read (a problem of that layer's content). */
export interface PayloadRead<L extends PayloadLayer> {
  /** The layer. */
  readonly layer: L;
  /** The blob, checked against the layer's digest and size. */
  readonly payload?: Uint8Array;
  /** Why the blob is not usable: missing, over the size limit, not matching its digest or size. */
  readonly error?: AirlockError;
}

/** Registry errors that are about one layer's content (a reason), not about reaching the registry (an abort). */
const LAYER_CONTENT_ERRORS = new Set(["DIGEST_MISMATCH", "TOO_LARGE", "NOT_FOUND"]);

/**
 * Refuses an attachment manifest with more than `max` ({@linkcode MAX_ATTACHMENT_LAYERS}) layers.
 *
 * @throws {AirlockError} `TOO_LARGE` naming the manifest (`attachment manifest <repo>:<tag>`, …).
 */
export function checkLayerCount(count: number, name: string, max: number = MAX_ATTACHMENT_LAYERS): void {
  if (count > max) {
    throw new AirlockError("TOO_LARGE", `${name} has ${count} layers, more than the ${max} accepted`);
  }
}

/**
 * The error of a layer whose announced size is not a size, or is over {@linkcode MAX_PAYLOAD_BYTES}
 * (`<what> <digest><where> is <size> bytes, more than the 4194304 accepted`); `undefined` for any other layer.
 */
export function oversizedLayer(layer: PayloadLayer, what = "layer", where = ""): AirlockError | undefined {
  if (Number.isSafeInteger(layer.size) && layer.size >= 0 && layer.size <= MAX_PAYLOAD_BYTES) {
    return undefined;
  }
  return new AirlockError(
    "TOO_LARGE",
    `${what} ${layer.digest}${where} is ${layer.size} bytes, more than the ${MAX_PAYLOAD_BYTES} accepted`,
  );
}

/**
 * Reads the payloads of `layers` (blobs in the repository of `ref`), yielding one {@linkcode PayloadRead} per
 * layer in order. A layer whose blob is missing, too large or does not match is yielded with its `error`; any
 * other failure (network, authorization, cancellation) ends the reading with that error. Breaking out of the
 * loop cancels the fetches still running.
 *
 * @param opts `what` names the payloads in errors (`payload`, `layer`); `name` the manifest
 * @throws {AirlockError} `TOO_LARGE` before any fetch when the layers announce more than
 *   {@linkcode MAX_ATTACHMENT_BYTES} in all; registry errors.
 *
 * @example
 * ```ts
 * for await (const r of readPayloads(client, stored.ref, stored.layers, { name: "sha256-….sig" })) {
 *   if (r.payload) check(r.layer, r.payload); // r.payload is dropped after this turn
 * }
 * ```
 */
export async function* readPayloads<L extends PayloadLayer>(
  client: RegistryClient,
  ref: Reference,
  layers: readonly L[],
  opts: { signal?: AbortSignal; name?: string; what?: string } = {},
): AsyncGenerator<PayloadRead<L>> {
  const what = opts.what ?? "layer";
  const announced = layers.reduce((n, l) => n + (oversizedLayer(l) ? 0 : l.size), 0);
  if (announced > MAX_ATTACHMENT_BYTES) {
    throw new AirlockError(
      "TOO_LARGE",
      `${
        opts.name ?? "attachment manifest"
      }: its ${layers.length} layers announce ${announced} bytes, more than ` +
        `the ${MAX_ATTACHMENT_BYTES} read from one attachment manifest`,
    );
  }
  const link = new LinkedAbort(opts.signal);
  const signal = link.signal;
  const fetchOne = async (l: L): Promise<PayloadRead<L>> => {
    const tooLarge = oversizedLayer(l, what);
    if (tooLarge) return { layer: l, error: tooLarge };
    try {
      // Read no more than announced: a blob longer than its descriptor says cannot use more memory.
      const payload = await client.getBlob(ref, l.digest, { maxBytes: l.size, signal });
      if (payload.length !== l.size) {
        return {
          layer: l,
          error: new AirlockError(
            "DIGEST_MISMATCH",
            `${what} ${l.digest}: ${payload.length} bytes read, the manifest says ${l.size}`,
          ),
        };
      }
      return { layer: l, payload };
    } catch (e) {
      if (isAirlockError(e) && LAYER_CONTENT_ERRORS.has(e.code) && !signal.aborted) {
        return { layer: l, error: e };
      }
      throw e;
    }
  };
  const cost = (l: L) => (oversizedLayer(l) ? 0 : l.size);
  const pending: { layer: L; read: Promise<PayloadRead<L>> }[] = [];
  let next = 0;
  let ahead = 0;
  try {
    while (next < layers.length || pending.length > 0) {
      // Start fetches while fewer than CONCURRENCY run and the budget allows (one always may).
      while (
        next < layers.length && pending.length < CONCURRENCY &&
        (pending.length === 0 || ahead + cost(layers[next]) <= PAYLOAD_BYTES_IN_FLIGHT)
      ) {
        const layer = layers[next++];
        const read = fetchOne(layer);
        read.catch(() => {}); // awaited below in order; a failure after a break is not unhandled
        pending.push({ layer, read });
        ahead += cost(layer);
      }
      const head = pending.shift()!;
      const result = await head.read;
      ahead -= cost(head.layer);
      yield result;
    }
  } finally {
    link.abort(new AirlockError("CANCELLED", "payload reading stopped"));
    link.dispose();
  }
}

/** One layer of an attachment manifest, with its payload when it was read. */
export type AttachmentLayerRead = PayloadRead<AttachmentLayer>;

/** Options of {@linkcode readAttachmentLayers}. */
export interface ReadAttachmentLayersOptions {
  /** The tag suffix: `sig` (default) or `att`. */
  readonly suffix?: "sig" | "att";
  /**
   * What a missing, oversized or damaged blob means: `reason` — the layer is yielded with its `error` (one bad
   * layer appended by someone with push rights must not hide a good one: verify); `error` — it is thrown, an
   * oversized one before any blob is fetched (a signature that cannot be read rejects the image: validate).
   */
  readonly badBlob: "reason" | "error";
  /** Names the manifest in errors, before `<repo>:<tag>`: `signature manifest`, `attestation manifest`, …. */
  readonly kind: string;
  /** Names a payload in errors (`payload`, default `layer`). */
  readonly what?: string;
  /** Most layers accepted (default {@linkcode MAX_ATTACHMENT_LAYERS}). */
  readonly maxLayers?: number;
  /** Which layers' blobs are read (default every layer); the others are yielded without a payload. */
  readonly fetch?: (layer: AttachmentLayer) => boolean;
  /** Read as cosign does (`verify`): Docker schema 2 manifests too, the manifest named `kind` in a MIME error. */
  readonly cosign?: boolean;
  /** Cancels the registry requests. */
  readonly signal?: AbortSignal;
}

/**
 * The layers of the `.sig` (or `.att`) tag of `digest` in the repository of `repo`, in manifest order, each with
 * its payload blob read as {@linkcode readPayloads} reads them (bounded count, sizes and memory, digest-checked);
 * nothing when there is no tag.
 *
 * @throws {AirlockError} `TOO_LARGE` for too many layers or bytes; `UNSUPPORTED_MEDIA_TYPE`,
 *   `ATTACHMENT_INVALID` for a manifest that is not one; with `badBlob: "error"`, a layer's blob error; registry
 *   errors.
 */
export async function* readAttachmentLayers(
  client: RegistryClient,
  repo: Reference,
  digest: string,
  opts: ReadAttachmentLayersOptions,
): AsyncGenerator<AttachmentLayerRead> {
  const { signal, what = "layer" } = opts;
  const stored = await readAttachment(client, repo, digest, {
    suffix: opts.suffix,
    signal,
    cosignName: opts.cosign ? opts.kind : undefined,
  });
  if (!stored) return;
  const where = `${stored.ref.repository}:${stored.ref.tag}`;
  const name = `${opts.kind} ${where}`;
  checkLayerCount(stored.layers.length, name, opts.maxLayers);
  const fetch = opts.fetch ?? (() => true);
  const wanted = stored.layers.filter(fetch);
  if (opts.badBlob === "error") {
    for (const l of wanted) {
      const tooLarge = oversizedLayer(l, what, ` of ${where}`);
      if (tooLarge) throw tooLarge;
    }
  }
  const reads = readPayloads(client, stored.ref, wanted, { signal, name, what })[Symbol.asyncIterator]();
  try {
    for (const layer of stored.layers) {
      if (!fetch(layer)) {
        yield { layer };
        continue;
      }
      const { value: r } = await reads.next();
      if (!r) throw new AirlockError("REGISTRY_ERROR", `${what} ${layer.digest} was not read`);
      if (r.error && opts.badBlob === "error") throw r.error;
      yield r;
    }
  } finally {
    await reads.return(undefined);
  }
}
