/**
 * Appending one layer to a sigstore attachment tag (`sha256-<hex>.sig` or `.att`) so that it is never lost, and
 * knowing when that is certain.
 *
 * Writing: read the tag, append after every existing layer (foreign ones kept), upload the blobs, PUT the
 * manifest — but only while the read it was built from is younger than S ({@linkcode WriteWindow}); an older
 * read is checked with a `HEAD` first, and a tag that changed meanwhile is read and merged again. A PUT whose
 * answer is lost is never sent again blindly: the tag is read again, which also tells whether it landed.
 *
 * Confirming: the registry offers no conditional PUT, so a writer on another host that read the tag before our
 * PUT can replace our layer, but only until S + T after our PUT took effect (every airlock writer keeps the rule
 * above; T is the registry's apply time, see `write_window.ts`). So the tag is read again once the manifest seen
 * with our layer is S + T old: if the tag still holds that manifest, the layer is safe for good; if it changed
 * and still holds the layer, the new manifest is watched the same way; if the layer is gone, it is appended
 * again. One read serves every layer written to one tag. Inside one process, appends to one tag are serialised
 * by a lock; among the processes of one host, by a lock file ({@linkcode HostLock}).
 *
 * `sign` (`.sig` layers) and `attest` (`.att` layers) share this machinery.
 *
 * @module
 */
import { AirlockError, errorMessage, isAirlockError } from "../errors.ts";
import type { Reference } from "../reference.ts";
import type { RegistryClient } from "../registry/client.ts";
import { isManifestUnknown, RegistryError } from "../registry/errors.ts";
import { backoffDelay, defaultRetryPolicy, isRetryableStatus, sleep } from "../registry/retry.ts";
import { NetworkError } from "../registry/transport.ts";
import type { Logger } from "../report.ts";
import {
  ANNOTATION_SIGNATURE,
  appendSignatureLayers,
  listAttachmentLayers,
  type NewAttachmentLayer,
} from "./attachments.ts";
import type { AttachmentManifest } from "./attachment_manifest.ts";
import { attachmentRef, attachmentState, readAttachment, type StoredAttachment } from "./attachment_store.ts";
import { checkLayerCount } from "./signature_layers.ts";
import { sha256Digest } from "../encoding/digest.ts";
import { MediaType } from "../registry/types.ts";
import { KeyedLock } from "../keyed_lock.ts";
import { HostLock } from "../host_lock.ts";
import { LatencyGauge, WRITE_WINDOW, type WriteWindow } from "./write_window.ts";

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

/** A read of an attachment tag: what it held, and when the read was sent and answered (`performance.now()`). */
export interface TagRead {
  /** The manifest found; `undefined` when the tag did not exist. */
  readonly stored: StoredAttachment | undefined;
  /** When the read was sent: the age a write built on it is measured from. */
  readonly sentAt: number;
  /** When its answer arrived: the tag held `stored` at some moment before. */
  readonly answeredAt: number;
}

/** The tag seen holding a manifest: which, what layers it has, and a moment (upper bound) it was there. */
export interface TagSighting {
  /** `sha256:` of the manifest. */
  readonly manifestDigest: string;
  /** Its layers: blob digest and signature annotation. */
  readonly layers: readonly { readonly digest: string; readonly signature?: string }[];
  /** When the answer showing it arrived (`performance.now()`). */
  readonly at: number;
}

/** An append done, still to be confirmed ({@linkcode AttachmentWriter.confirm}). */
export interface PendingAppend extends AttachmentAppend {
  /** The manifest with the layer, as written (or found), and when. */
  readonly seen: TagSighting;
}

/** Options of {@linkcode AttachmentWriter}. */
export interface AttachmentWriterOptions {
  /**
   * The writing rule (S and the least T). Default {@linkcode WRITE_WINDOW}; smaller values are for tests, where
   * no writer outside the test can touch the tags.
   */
  readonly window?: WriteWindow;
  /** Debug lines; default none. */
  readonly logger?: Logger;
  /**
   * The lock shared with other processes of this host; default a {@linkcode HostLock} in the default lock
   * directory (a warning is logged, once, when that cannot be used).
   */
  readonly hostLock?: HostLock;
}

/** Options of {@linkcode AttachmentWriter.append} and {@linkcode AttachmentWriter.appendLocked}. */
export interface AppendOptions {
  /** What the tag held, when the caller has just read it (or learnt from a tag listing that it is absent). */
  readonly base?: TagRead;
  /**
   * A repair: the layer's blob is in the repository already, and the tag is checked (`HEAD`) right before the
   * PUT whatever the age of the read, since other writers are known to be writing it.
   */
  readonly repair?: boolean;
  /** Cancels the append while nothing that could change the tag has been sent. */
  readonly signal?: AbortSignal;
}

/** How old a read may be when a repair is PUT without a `HEAD` first (ms). */
const REPAIR_READ_AGE_MS = 20;
/** Tries of one append (each: read, merge, PUT) before it fails. */
const MAX_WRITE_ATTEMPTS = 10;
/** `HEAD`s in a row, each answered later than S, before an append gives up. */
const MAX_REFRESHES = 8;
/** Confirmation reads of one tag before it counts as always changing. */
const MAX_READS = 200;
/** The shortest pause between confirmation reads of a tag others are writing (ms). */
const POLL_MIN_MS = 100;
/** Times a lost layer is appended again. */
const MAX_REPAIRS = 8;
/** Failed confirmation reads (registry unreachable) tolerated, a wait apart, before the layer counts as unconfirmed. */
const MAX_READ_FAILURES = 3;

/** The default gauge: every writer of this process learns from every request of the others. */
let sharedGauge: LatencyGauge | undefined;

/**
 * Appends layers to attachment tags without losing concurrent writers' layers, and confirms them.
 *
 * @example
 * ```ts
 * const writer = new AttachmentWriter(client);
 * const pending = await writer.append({ repo, digest, suffix: "att", layer, layerDigest, label: "attestation" });
 * await writer.confirm([pending]);
 * ```
 */
export class AttachmentWriter {
  readonly #client: RegistryClient;
  readonly #o: AttachmentWriterOptions;
  readonly #locks = new KeyedLock();
  readonly #hostLock: HostLock;
  readonly #gauge: LatencyGauge;
  readonly #watches = new Map<string, TagWatch>();

  /**
   * Creates a writer; its locks serialise appends to one tag made through it.
   *
   * @param client the registry client the tags are read and written with
   * @param options writing rule, logger, host lock
   */
  constructor(client: RegistryClient, options: AttachmentWriterOptions = {}) {
    this.#client = client;
    this.#o = options;
    this.#gauge = options.window
      ? new LatencyGauge(options.window)
      : (sharedGauge ??= new LatencyGauge(WRITE_WINDOW));
    this.#hostLock = options.hostLock ?? new HostLock({
      onUnavailable: (reason) =>
        options.logger?.warn(
          `Cannot use the ${reason}; concurrent airlock processes on this host are coordinated only by re-reading`,
        ),
    });
  }

  /** The writing rule in use and the registry's recent latency (how long confirmations wait). */
  get gauge(): LatencyGauge {
    return this.#gauge;
  }

  /** Reads an attachment tag (`GET`), noting when the read was sent and answered. */
  async readTag(repo: Reference, digest: string, suffix?: string, signal?: AbortSignal): Promise<TagRead> {
    const sentAt = performance.now();
    const stored = await readAttachment(this.#client, repo, digest, { suffix, signal });
    const answeredAt = performance.now();
    this.#gauge.record(answeredAt - sentAt);
    return { stored, sentAt, answeredAt };
  }

  /**
   * Appends the layer (unless an identical one is there) under the tag's lock; returns the pending append to
   * confirm.
   */
  append(a: AttachmentAppend, opts: AppendOptions = {}): Promise<PendingAppend> {
    return this.locked(a.repo, a.digest, a.suffix, () => this.appendLocked(a, opts));
  }

  /**
   * {@linkcode append} for a caller that holds the tag's lock ({@linkcode locked}) already, e.g. because it read
   * the tag itself to look for an equal signature first (`opts.base`).
   *
   * @throws {AirlockError} when the tag cannot be read or written (after `MAX_WRITE_ATTEMPTS` tries for
   * transient failures); `CANCELLED`/`TIMEOUT` from `opts.signal` only while nothing was sent
   */
  async appendLocked(a: AttachmentAppend, opts: AppendOptions = {}): Promise<PendingAppend> {
    const c = this.#client;
    const ref = attachmentRef(a.repo, a.digest, a.suffix);
    let read = opts.base;
    let payloadUploaded = opts.repair ?? false;
    // Under contention (a repair), the tag is checked again unless it was read just now.
    const maxAge = opts.repair ? REPAIR_READ_AGE_MS : this.#gauge.window.readMaxAgeMs;
    const configsUploaded = new Set<string>();
    // Once a PUT was sent, its fate is found out whatever happens to the caller's signal.
    let signal = opts.signal;
    let lastFailure: unknown;
    for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt++) {
      try {
        read ??= await this.readTag(a.repo, a.digest, a.suffix, signal);
      } catch (e) {
        if (lastFailure === undefined) throw e;
        throw new AirlockError(
          isAirlockError(e) ? e.code : "REGISTRY_ERROR",
          `the ${a.label} may have been written: the answer to its write was lost (${
            errorMessage(lastFailure)
          }) and the tag could not be read again: ${errorMessage(e)}`,
          { cause: e },
        );
      }
      if (holdsLayer(read.stored, a)) return { ...a, seen: sightingOf(read.stored!, read.answeredAt) };
      // cosign and airlock read at most 1000 layers: a layer appended as the 1001st would never be verified.
      if (read.stored) {
        checkLayerCount(
          read.stored.layers.length + 1,
          `with the ${a.label}, attachment manifest ${read.stored.ref.repository}:${read.stored.ref.tag}`,
        );
      }
      const state = read.stored
        ? await this.#timed(() => attachmentState(c, read!.stored!, signal))
        : undefined;
      const result = appendSignatureLayers(state, [a.layer]);
      await Promise.all([
        payloadUploaded || result.added === 0 ? undefined : (async () => {
          await c.uploadBlob(ref, a.layer.payload, { digest: a.layerDigest, signal });
          payloadUploaded = true;
        })(),
        configsUploaded.has(result.configDigest) ? undefined : (async () => {
          await c.uploadBlob(ref, result.configBytes, { digest: result.configDigest, signal });
          configsUploaded.add(result.configDigest);
        })(),
      ]);
      // Bounded staleness: the PUT goes out only while the read it is built on is younger than S.
      const fresh = await this.#refresh(ref, read, maxAge, signal);
      if (fresh === undefined) {
        // The tag changed since it was read: read it and merge again.
        read = undefined;
        continue;
      }
      if (signal?.aborted) throw signal.reason;
      const sentAt = performance.now();
      try {
        await c.putManifest(ref, result.manifestBytes, MediaType.ociManifest, { retry: false });
      } catch (e) {
        signal = undefined;
        if (!isTransient(e)) throw e;
        lastFailure = e;
        this.#o.logger?.debug(
          `Writing the ${a.label} failed (${
            errorMessage(e)
          }); reading the tag again to see whether it landed`,
        );
        read = undefined;
        await sleep(backoffDelay(attempt, defaultRetryPolicy));
        continue;
      }
      const at = performance.now();
      this.#gauge.record(at - sentAt);
      return {
        ...a,
        seen: { manifestDigest: result.manifestDigest, layers: layerKeys(result.manifest), at },
      };
    }
    throw new AirlockError(
      "REGISTRY_ERROR",
      `the ${a.label} could not be written after ${MAX_WRITE_ATTEMPTS} tries` +
        (lastFailure ? `: ${errorMessage(lastFailure)}` : ": the tag kept changing"),
      { cause: lastFailure },
    );
  }

  /**
   * Confirms appends: each tag is read again once the manifest last seen holding the layers is S + T old (one
   * read per tag, whatever the number of layers written to it), and any layer a concurrent writer removed is
   * appended again, until every layer is in a manifest that stayed at its tag for S + T. Not cancellable: it only
   * reads, and repairs what was already written.
   *
   * @throws {AirlockError} `REGISTRY_ERROR` naming the first layer that could not be confirmed (kept being
   * overwritten, or could not be written again); the registry's error when it could not be read
   */
  async confirm(written: readonly PendingAppend[]): Promise<void> {
    const settled = await Promise.allSettled(written.map((p) => this.#watch(p)));
    const failed = settled.find((s) => s.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
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
    const key = tagKey(repo, digest, suffix);
    return await this.#locks.run(key, () => this.#hostLock.run(key, fn));
  }

  /**
   * `read` itself while it is younger than S; else the tag's state now (a `HEAD`, repeated while its answers come
   * later than S) when it is still the one read; `undefined` when the tag changed.
   */
  async #refresh(
    ref: Reference,
    read: TagRead,
    maxAge: number,
    signal?: AbortSignal,
  ): Promise<TagRead | undefined> {
    const limit = this.#gauge.window.readMaxAgeMs;
    for (let n = 0; performance.now() - read.sentAt > (n === 0 ? maxAge : limit); n++) {
      if (n >= MAX_REFRESHES) {
        throw new AirlockError(
          "TIMEOUT",
          `${ref.registry}/${ref.repository}:${ref.tag}: the registry answered ${n} reads in a row later than ` +
            `${limit} ms, too slowly to write safely beside other writers`,
        );
      }
      const sentAt = performance.now();
      const now = await this.#timed(() =>
        this.#client.headManifest(ref, { accept: [MediaType.ociManifest], signal })
      );
      if (now?.digest !== read.stored?.manifestDigest) return undefined;
      read = { stored: read.stored, sentAt, answeredAt: performance.now() };
    }
    return read;
  }

  /** Registers `p` with the watch of its tag (started when there is none); resolves when `p` is confirmed. */
  #watch(p: PendingAppend): Promise<void> {
    const key = tagKey(p.repo, p.digest, p.suffix);
    return new Promise<void>((resolve, reject) => {
      const w = this.#watches.get(key);
      if (w !== undefined) {
        w.waiting.push({ p, resolve, reject });
        // The later write was built on a read after the earlier ones; layers it lacks are found missing below.
        if (p.seen.at > w.seen.at) w.seen = p.seen;
        return;
      }
      const watch: TagWatch = { key, first: p, seen: p.seen, waiting: [{ p, resolve, reject }] };
      this.#watches.set(key, watch);
      this.#run(watch);
    });
  }

  /** The confirmation loop of one tag (see {@linkcode confirm}); settles every pending registered with it. */
  async #run(w: TagWatch): Promise<void> {
    try {
      await this.#confirmTag(w);
    } catch (e) {
      for (const i of w.waiting) i.reject(e);
    } finally {
      // Synchronously with the loop's end: a pending registered later starts a new watch.
      if (this.#watches.get(w.key) === w) this.#watches.delete(w.key);
    }
  }

  async #confirmTag(w: TagWatch): Promise<void> {
    const ref = attachmentRef(w.first.repo, w.first.digest, w.first.suffix);
    let reads = 0, repairs = 0, readFailures = 0;
    const fail = (items: readonly Waiting[], why: (p: PendingAppend) => AirlockError) => {
      for (const i of items) i.reject(why(i.p));
      w.waiting = w.waiting.filter((i) => !items.includes(i));
    };
    // After a change was seen (others are writing the tag), the tag is read every quarter window so that the next
    // change is seen early and the manifest then there is the one timed; before, one read at S + T is enough.
    let polling = false;
    while (w.waiting.length > 0) {
      // Wait until the manifest seen is S + T old; T follows the registry's latency, re-evaluated on waking.
      const settle = this.#gauge.settleMs();
      const due = w.seen.at + settle - performance.now();
      if (due > 0) {
        if (!polling) {
          await sleep(due);
          continue;
        }
        await sleep(Math.min(due, Math.max(POLL_MIN_MS, settle / 4)));
      }
      if (++reads > MAX_READS) {
        fail(w.waiting, (p) =>
          new AirlockError(
            "REGISTRY_ERROR",
            `the ${p.label} could not be confirmed: its tag kept changing (${MAX_READS} reads)`,
          ));
        return;
      }
      let sighting: TagSighting;
      try {
        const sentAt = performance.now();
        const head = await this.#client.headManifest(ref, { accept: [MediaType.ociManifest] });
        this.#gauge.record(performance.now() - sentAt);
        if (head?.digest === w.seen.manifestDigest) {
          // Not S + T old yet (polling): look again later.
          if (sentAt - w.seen.at < this.#gauge.settleMs()) continue;
          // Unchanged for S + T: every layer of that manifest is safe for good.
          this.#o.logger?.debug(
            `Confirmed ${ref.repository}:${ref.tag}: unchanged for ${Math.round(sentAt - w.seen.at)} ms ` +
              `(S + T = ${Math.round(settle)} ms), read ${reads}`,
          );
          const safe = w.waiting.filter((i) => holdsLayer(w.seen, i.p));
          for (const i of safe) i.resolve();
          w.waiting = w.waiting.filter((i) => !safe.includes(i));
          if (w.waiting.length === 0) return;
          sighting = w.seen;
        } else {
          const read = await this.readTag(w.first.repo, w.first.digest, w.first.suffix);
          sighting = read.stored ? sightingOf(read.stored, read.answeredAt) : absent(read.answeredAt);
          polling = true;
        }
      } catch (e) {
        if (++readFailures > MAX_READ_FAILURES) {
          fail(w.waiting, (p) =>
            new AirlockError(
              isAirlockError(e) ? e.code : "REGISTRY_ERROR",
              `the ${p.label} was written but could not be confirmed: ${errorMessage(e)}`,
              { cause: e },
            ));
          return;
        }
        // Check again once more of the window has passed (the registry may be restarting).
        w.seen = { ...w.seen, at: performance.now() };
        continue;
      }
      const missing = w.waiting.filter((i) => !holdsLayer(sighting, i.p));
      w.seen = sighting;
      if (missing.length === 0) continue;
      if (++repairs > MAX_REPAIRS) {
        fail(
          missing,
          (p) =>
            new AirlockError("REGISTRY_ERROR", `the ${p.label} kept being overwritten by concurrent writers`),
        );
        continue;
      }
      polling = true;
      for (const i of missing) {
        this.#o.logger?.debug(`The ${i.p.label} was overwritten by a concurrent writer; adding it again`);
        try {
          const again = await this.append(i.p, { repair: true });
          if (again.seen.at > w.seen.at) w.seen = again.seen;
        } catch (e) {
          fail([i], (p) =>
            new AirlockError(
              "REGISTRY_ERROR",
              `the ${p.label} was removed by a concurrent writer and could not be written again: ${
                errorMessage(e)
              }`,
              { cause: e },
            ));
        }
      }
    }
  }

  /** Runs one registry request, recording how long it took (T follows the slowest). */
  async #timed<T>(fn: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      this.#gauge.record(performance.now() - t0);
    }
  }
}

interface Waiting {
  readonly p: PendingAppend;
  resolve(): void;
  reject(e: unknown): void;
}

interface TagWatch {
  readonly key: string;
  /** Names the tag. */
  readonly first: PendingAppend;
  /** The manifest last seen at the tag. */
  seen: TagSighting;
  /** Appends not confirmed yet. */
  waiting: Waiting[];
}

function tagKey(repo: Reference, digest: string, suffix: string | undefined): string {
  return `${repo.registry}/${repo.repository}@${digest}.${suffix ?? "sig"}`;
}

function layerKeys(m: AttachmentManifest): TagSighting["layers"] {
  return (m.layers ?? []).map((l) => ({
    digest: l.digest,
    signature: l.annotations?.[ANNOTATION_SIGNATURE],
  }));
}

function sightingOf(stored: StoredAttachment, at: number): TagSighting {
  return {
    manifestDigest: stored.manifestDigest,
    layers: listAttachmentLayers(stored.manifest).map((l) => ({ digest: l.digest, signature: l.signature })),
    at,
  };
}

function absent(at: number): TagSighting {
  return { manifestDigest: "", layers: [], at };
}

/** Failures after which the state of the tag is unknown and another try may succeed. */
function isTransient(e: unknown): boolean {
  if (e instanceof NetworkError) return e.retryable || e.code === "TIMEOUT";
  if (e instanceof RegistryError) return isRetryableStatus(e.status) && !isManifestUnknown(e);
  return false;
}

/**
 * Whether a stored tag (or a sighting of one) holds a layer. Payloads of different signers can be byte-identical
 * (same identity, digest and second), so the signature annotation must match too, not only the blob digest.
 */
export function holdsLayer(
  stored:
    | { readonly layers: readonly { readonly digest: string; readonly signature?: string }[] }
    | undefined,
  p: { readonly layer: NewAttachmentLayer; readonly layerDigest?: string },
): boolean {
  const digest = p.layerDigest ?? sha256Digest(p.layer.payload);
  const signature = p.layer.annotations?.[ANNOTATION_SIGNATURE];
  return stored?.layers.some((l) => l.digest === digest && l.signature === signature) ?? false;
}
