/**
 * Appending one layer to a sigstore attachment tag (`sha256-<hex>.sig` or `.att`) so that it is never lost:
 * read the tag, append after every existing layer (foreign ones kept), PUT, then — after a short random delay —
 * read the tag again and append once more whenever a concurrent writer (another process) overwrote it. The
 * registry offers no conditional PUT, so this is how two writers on different hosts appending to one tag at once
 * both end up in it. Inside one process, appends to one tag are serialised by a lock; among the processes of one
 * host, by a lock file ({@linkcode HostLock}), so there no write can be lost at all.
 *
 * `sign` (`.sig` layers) and `attest` (`.att` layers) share this machinery.
 *
 * @module
 */
import { AirlockError } from "../errors.ts";
import type { Reference } from "../reference.ts";
import type { RegistryClient } from "../registry/client.ts";
import { sleep } from "../registry/retry.ts";
import type { Logger } from "../report.ts";
import { ANNOTATION_SIGNATURE, appendSignatureLayers, type NewAttachmentLayer } from "./attachments.ts";
import {
  attachmentRef,
  attachmentState,
  readAttachment,
  type StoredAttachment,
  writeAttachment,
} from "./attachment_store.ts";
import { sha256Digest } from "../encoding/digest.ts";
import { MediaType } from "../registry/types.ts";
import { KeyedLock } from "../keyed_lock.ts";
import { HostLock } from "../host_lock.ts";

/** A layer to append, and where. */
export interface AttachmentAppend {
  /** The repository holding the attachment tag. */
  readonly repo: Reference;
  /** The digest the attachment belongs to. */
  readonly digest: string;
  /** Tag suffix: `sig` (default) or `att`. */
  readonly suffix?: string;
  /** The layer. */
  readonly layer: NewAttachmentLayer;
  /** `sha256:` of the layer blob. */
  readonly layerDigest: string;
  /** What the layer is for, in messages (`the signature of host/repo:tag`). */
  readonly label: string;
}

/** An append done, still to be confirmed ({@linkcode AttachmentWriter.confirm}). */
export interface PendingAppend extends AttachmentAppend {
  /** Milliseconds from reading the tag to having written it: how long a concurrent writer could interfere. */
  readonly spanMs: number;
  /**
   * The digest of the manifest written. While the tag still points at it, the layer is there: the confirmation
   * then costs a `HEAD` instead of reading and parsing the manifest.
   */
  readonly manifestDigest?: string;
}

/** Options of {@linkcode AttachmentWriter}. */
export interface AttachmentWriterOptions {
  /**
   * The shortest wait before re-reading a written tag to check that no concurrent writer lost our layer; the wait
   * is longer when the writes took long (see {@linkcode confirmWaitMs}), and a random extra of up to this amount
   * is added. Default 100 ms.
   */
  readonly confirmDelayMs?: number;
  /** Debug lines; default none. */
  readonly logger?: Logger;
  /**
   * The lock shared with other processes of this host; default a {@linkcode HostLock} in the default lock
   * directory (a warning is logged, once, when that cannot be used).
   */
  readonly hostLock?: HostLock;
}

/**
 * How long (ms) after the answer to a read of an attachment tag our own work (checking existing signatures,
 * signing) may take before we write; beyond that the tag is read again first. It keeps the read-to-write window
 * of every writer down to its requests, which the confirmation waits outlast.
 */
export const FRESH_READ_MS = 50;

/** The default shortest confirmation wait, in ms ({@linkcode AttachmentWriterOptions.confirmDelayMs}). */
export const CONFIRM_DELAY_MS = 100;

/** How many times the read-to-write span of a write the confirmation waits (before its random extra). */
export const CONFIRM_SPAN_FACTOR = 1.5;

/**
 * How long to wait before re-reading tags just written: a writer that read a tag before our PUT landed can
 * overwrite it until its own read-to-write span has passed. Its span is not known, but it works against the same
 * registry under the same load as our writes of the moment, so theirs is estimated by ours:
 * {@linkcode CONFIRM_SPAN_FACTOR} times the longest span of `pending`, and never less than `baseMs`.
 *
 * @example
 * ```ts
 * confirmWaitMs([{ spanMs: 40 }, { spanMs: 90 }], 100); // 135
 * ```
 */
export function confirmWaitMs(pending: readonly Pick<PendingAppend, "spanMs">[], baseMs: number): number {
  return Math.max(baseMs, CONFIRM_SPAN_FACTOR * Math.max(0, ...pending.map((p) => p.spanMs)));
}

/**
 * Appends layers to attachment tags without losing concurrent writers' layers.
 *
 * @example
 * ```ts
 * const writer = new AttachmentWriter(client);
 * const pending = await writer.locked(repo, digest, "att", async () => {
 *   const t0 = performance.now();
 *   const stored = await readAttachment(client, repo, digest, { suffix: "att" });
 *   await writer.appendTo(append, stored);
 *   return { ...append, spanMs: performance.now() - t0 };
 * });
 * await writer.confirm([pending]);
 * ```
 */
export class AttachmentWriter {
  readonly #client: RegistryClient;
  readonly #o: AttachmentWriterOptions;
  readonly #locks = new KeyedLock();
  readonly #hostLock: HostLock;

  /**
   * Creates a writer; its locks serialise appends to one tag made through it.
   *
   * @param client the registry client the tags are read and written with
   * @param options confirmation delay and logger
   */
  constructor(client: RegistryClient, options: AttachmentWriterOptions = {}) {
    this.#client = client;
    this.#o = options;
    this.#hostLock = options.hostLock ?? new HostLock({
      onUnavailable: (reason) =>
        options.logger?.warn(
          `Cannot use the ${reason}; concurrent airlock processes on this host are coordinated only by re-reading`,
        ),
    });
  }

  /**
   * Reads the tag, appends the layer unless an identical one is there, and returns the pending append to confirm.
   * Runs under the tag's lock.
   */
  append(a: AttachmentAppend, signal?: AbortSignal): Promise<PendingAppend> {
    return this.locked(a.repo, a.digest, a.suffix, async () => {
      const t0 = performance.now();
      const stored = await readAttachment(this.#client, a.repo, a.digest, { suffix: a.suffix, signal });
      const manifestDigest = await this.appendTo(a, stored, false, signal);
      return { ...a, spanMs: performance.now() - t0, manifestDigest };
    });
  }

  /**
   * PUTs `stored` (just read) plus the layer; `payloadUploaded` when its blob is in the registry already. The
   * caller holds the tag's lock. Returns the digest of the manifest written.
   */
  async appendTo(
    a: AttachmentAppend,
    stored: StoredAttachment | undefined,
    payloadUploaded = false,
    signal?: AbortSignal,
  ): Promise<string> {
    const c = this.#client;
    const state = stored ? await attachmentState(c, stored, signal) : undefined;
    return await writeAttachment(
      c,
      attachmentRef(a.repo, a.digest, a.suffix),
      appendSignatureLayers(state, [a.layer]),
      signal,
      payloadUploaded ? new Set([a.layerDigest]) : undefined,
    );
  }

  /**
   * Confirms appends: after a short random delay, re-reads each tag and appends again any layer a concurrent
   * writer overwrote, until every layer is there (at most 8 rounds).
   *
   * @throws {AirlockError} `REGISTRY_ERROR` when a layer keeps being overwritten
   */
  async confirm<P extends PendingAppend>(written: readonly P[], signal?: AbortSignal): Promise<void> {
    let pending: PendingAppend[] = [...written];
    const base = this.#o.confirmDelayMs ?? CONFIRM_DELAY_MS;
    for (let round = 0; pending.length > 0; round++) {
      if (round >= 8) {
        throw new AirlockError(
          "REGISTRY_ERROR",
          `${pending[0].label} kept being overwritten by concurrent writers`,
        );
      }
      await sleep(confirmWaitMs(pending, base) + Math.random() * base, signal);
      const lost: PendingAppend[] = [];
      await Promise.all(pending.map(async (p) => {
        if (!(await this.#holds(p, signal))) lost.push(p);
      }));
      pending = [];
      for (const p of lost) {
        this.#o.logger?.debug(`${capitalise(p.label)} was overwritten by a concurrent writer; adding again`);
        pending.push({
          ...p,
          ...(await this.locked(p.repo, p.digest, p.suffix, () => this.#repair(p, signal))),
        });
      }
    }
  }

  /**
   * Whether the tag still holds `p.layer`. When the tag still points at the manifest we wrote (one `HEAD`), it
   * does; otherwise the manifest now there is read and searched.
   */
  async #holds(p: PendingAppend, signal?: AbortSignal): Promise<boolean> {
    if (p.manifestDigest !== undefined) {
      const ref = attachmentRef(p.repo, p.digest, p.suffix);
      const now = await this.#client.headManifest(ref, { accept: [MediaType.ociManifest], signal });
      if (now?.digest === p.manifestDigest) return true;
      if (now === undefined) return false;
    }
    const stored = await readAttachment(this.#client, p.repo, p.digest, { suffix: p.suffix, signal });
    return holdsLayer(stored, p);
  }

  /**
   * Appends `p.layer` to the current state of its tag (to repair a lost write); returns the read-to-write span
   * and the digest of the manifest now at the tag.
   */
  async #repair(
    p: PendingAppend,
    signal?: AbortSignal,
  ): Promise<{ spanMs: number; manifestDigest?: string }> {
    const t0 = performance.now();
    const stored = await readAttachment(this.#client, p.repo, p.digest, { suffix: p.suffix, signal });
    if (holdsLayer(stored, p)) {
      return { spanMs: performance.now() - t0, manifestDigest: stored?.manifestDigest };
    }
    const manifestDigest = await this.appendTo(p, stored, true, signal);
    return { spanMs: performance.now() - t0, manifestDigest };
  }

  /**
   * Runs `fn` after every earlier append to the same tag through this writer has finished, holding the tag's
   * host-wide lock. `fn` must not call `locked` itself.
   */
  async locked<T>(
    repo: Reference,
    digest: string,
    suffix: string | undefined,
    fn: () => Promise<T>,
  ): Promise<T> {
    const key = `${repo.registry}/${repo.repository}@${digest}.${suffix ?? "sig"}`;
    return await this.#locks.run(key, () => this.#hostLock.run(key, fn));
  }
}

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/**
 * Whether a stored tag still holds a layer. Payloads of different signers can be byte-identical (same identity,
 * digest and second), so the signature annotation must match too, not only the blob digest.
 *
 * @example
 * ```ts
 * holdsLayer(await readAttachment(client, repo, digest), { layer, layerDigest });
 * ```
 */
export function holdsLayer(
  stored: StoredAttachment | undefined,
  p: { readonly layer: NewAttachmentLayer; readonly layerDigest?: string },
): boolean {
  const digest = p.layerDigest ?? sha256Digest(p.layer.payload);
  const signature = p.layer.annotations?.[ANNOTATION_SIGNATURE];
  return stored?.layers.some((l) => l.digest === digest && l.signature === signature) ?? false;
}
