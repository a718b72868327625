/**
 * The signing pipeline: for each image, choose the manifests to sign, check that registries.d allows writing
 * attachments, then add one signature per manifest to its `.sig` tag — unless an equal one is there already —
 * and confirm that no concurrent writer removed it. The image manifest itself is never written again.
 *
 * @module
 */
import type { KeyBackend } from "../backends/key_backend.ts";
import {
  attachmentsDisabledError,
  type RegistriesDConfig,
  useSigstoreAttachments,
} from "./config/registries_d.ts";
import { AirlockError, errorMessage, isAirlockError, toAirlockError } from "./errors.ts";
import type { ResolvedImageLine } from "./image_list.ts";
import { imageCount, type ImageLine, lineCollector, runListInOrder } from "./list_run.ts";
import type { LineOutput, LineResult, ListReport } from "./list_run.ts";
import { DEFAULT_ARCH_LIST, DEFAULT_OS_LIST, type PlatformFilter } from "./platform.ts";
import { formatReference, parseReference, type Reference } from "./reference.ts";
import type { RegistryClient } from "./registry/client.ts";
import type { Logger } from "./report.ts";
import { silentLogger } from "./report.ts";
import {
  ANNOTATION_SIGNATURE,
  findEquivalentSignature,
  type NewAttachmentLayer,
  signatureTag,
} from "./signature/attachments.ts";
import { checkLayerCount, readPayloads } from "./signature/signature_layers.ts";
import { AttachmentWriter, type PendingAppend, type TagRead } from "./signature/attachment_writer.ts";
import { type CensusAnswer, TagCensus } from "./signature/tag_census.ts";
import type { WriteWindow } from "./signature/write_window.ts";
import { buildSimpleSigningPayload } from "./signature/payload.ts";
import { sha256Digest } from "./encoding/digest.ts";
import { base64Encode } from "./encoding/base64.ts";
import { parsePublicKeyPem, type PublicKey, verifySignature } from "./signature/public_key.ts";
import { selectTargets, type Target } from "./targets.ts";

/** How images are signed. */
export interface SignOptions {
  /** The registry client (credentials, TLS). */
  readonly client: RegistryClient;
  /**
   * The signing key, opened once for the run — or the promise of it while it is being opened (a key file's
   * scrypt): the first images are read meanwhile, nothing is written before it is open, and its failure fails
   * the run before any write.
   */
  readonly key: KeyBackend | Promise<KeyBackend>;
  /** registries.d: decides whether attachments may be written for each identity. */
  readonly registriesD: RegistriesDConfig;
  /** Which list children to sign; default `amd64,arm64` / `linux`. */
  readonly platforms?: PlatformFilter;
  /** Sign the index of a multi-arch image too (default `true`). */
  readonly signIndex?: boolean;
  /** Add a signature even when an equal one (same key, digest, identity, annotations) exists. */
  readonly force?: boolean;
  /** `--annotation k=v`: written into the payload's `optional`. */
  readonly annotations?: Readonly<Record<string, string>>;
  /** The clock, in unix seconds (payload timestamps). */
  readonly now?: () => number;
  /**
   * The writing rule (`window` of {@linkcode AttachmentWriter}); default the one every airlock writer follows.
   * Smaller values only for tests whose tags no other writer can touch.
   */
  readonly window?: WriteWindow;
  /** Log lines; default none. */
  readonly logger?: Logger;
}

/** One manifest's outcome. */
export interface SignedTarget extends Target {
  /** `signed`: a layer was added; `present`: an equal signature was already there. */
  readonly status: "signed" | "present";
  /** The digest of the payload layer written or found. */
  readonly layerDigest: string;
}

/** One image's outcome. */
export interface ImageSignResult {
  /** The image, fully normalised. */
  readonly reference: string;
  /** The digest of its top-level manifest. */
  readonly digest: string;
  /** `signed`: something was added; `unchanged`: everything was signed already; `skipped`: nothing matched the filter. */
  readonly status: "signed" | "unchanged" | "skipped";
  /** The manifests signed or found signed. */
  readonly targets: readonly SignedTarget[];
}

/** A write that still has to be confirmed (the layer must survive concurrent writers). */
export interface PendingLayer extends PendingAppend {
  /** The manifest the layer signs. */
  readonly target: Target;
}

/** The result of the write phase of one image. */
export interface WrittenImage {
  /** The outcome, final once {@linkcode Signer.confirm} resolves. */
  readonly result: ImageSignResult;
  /** Layers written in this run, to be confirmed. */
  readonly pending: readonly PendingLayer[];
}

/**
 * Signs images with one key. Holds the run's state: the key (and its public half, for idempotency checks), the
 * attachment writer (a lock per `.sig` tag so that appends to one digest inside one run are serialised, and the
 * confirmations) and the tag census (one tag listing per repository).
 *
 * @example
 * ```ts
 * const signer = await Signer.create({ client, key, registriesD });
 * const written = await signer.write(parseReference("127.0.0.1:5000/a/b:v1"));
 * await signer.confirm(written);
 * ```
 */
export class Signer {
  readonly #o: SignOptions;
  readonly #key: Promise<KeyBackend>;
  readonly #publicKey: Promise<PublicKey>;
  readonly #writer: AttachmentWriter;
  readonly #census: TagCensus;
  /** Lines per repository announced by {@linkcode Signer.expect} (a listing pays off for two tags or more). */
  readonly #linesPerRepository = new Map<string, number>();

  private constructor(options: SignOptions) {
    this.#o = options;
    this.#key = Promise.resolve(options.key);
    this.#publicKey = this.#key.then(async (k) => parsePublicKeyPem(await k.publicKey()));
    // Observed by whoever awaits them; a failure must not count as unhandled meanwhile.
    this.#publicKey.catch(() => {});
    this.#writer = new AttachmentWriter(options.client, { window: options.window, logger: options.logger });
    this.#census = new TagCensus(options.client);
  }

  /** Returns a signer; the key may still be opening (see {@linkcode SignOptions.key}). */
  static create(options: SignOptions): Promise<Signer> {
    return Promise.resolve(new Signer(options));
  }

  /**
   * Announces that `ref` will be signed in this run: when a repository has several, one listing of its tags
   * replaces a read of each `.sig` tag (as for a multi-arch image, whose manifests share one repository).
   */
  expect(ref: Reference): void {
    const key = repositoryKey(ref);
    this.#linesPerRepository.set(key, (this.#linesPerRepository.get(key) ?? 0) + 1);
  }

  /** {@linkcode Signer.expect} for a whole list at once: lines per `registry/repository` (see {@linkcode repositoryKey}). */
  expectCounts(counts: ReadonlyMap<string, number>): void {
    for (const [key, n] of counts) {
      if (n > 1) this.#linesPerRepository.set(key, (this.#linesPerRepository.get(key) ?? 0) + n);
    }
  }

  /** Resolves when the key is open and its public half read; rejects with the key's failure. */
  get ready(): Promise<void> {
    return this.#publicKey.then(() => {});
  }

  /**
   * Signs every manifest of one image that needs it. Nothing is written when registries.d forbids any of them.
   * Errors of individual manifests are collected: the others are still signed, then the image fails.
   * `onWritten` hears of every layer the registry accepted, as soon as it did — also when the image fails later
   * (or its deadline passes), so that no signature written goes unaccounted.
   */
  async write(
    ref: Reference,
    signal?: AbortSignal,
    onWritten?: (p: PendingLayer) => void,
  ): Promise<WrittenImage> {
    const o = this.#o;
    const filter = o.platforms ?? { arch: DEFAULT_ARCH_LIST, os: DEFAULT_OS_LIST, variant: [] };
    // 1. What to sign.
    const { top, targets, entryErrors } = await selectTargets(o.client, ref, {
      filter,
      includeIndex: o.signIndex ?? true,
      signal,
    });
    const reference = formatReference(ref);
    // No platform manifest matches the filter: nothing is written, not even the index (hangar's skip).
    if (!targets.some((t) => t.kind === "image")) {
      targets.length = 0;
      if (entryErrors.length === 0) {
        return { result: { reference, digest: top.digest, status: "skipped", targets: [] }, pending: [] };
      }
    }
    // 2. May we write? Checked for every identity before anything is written.
    for (const t of targets) this.#checkAttachmentsAllowed(t);
    // 3. Which .sig tags exist: one listing of the repository when it serves more than one tag.
    const lines = this.#linesPerRepository.get(repositoryKey(ref)) ?? 1;
    const census = targets.length > 1 || lines > 1 ? await this.#census.lookup(ref, signal) : undefined;
    // 4. One signature per manifest; manifests of one image are independent tags, so in parallel.
    const settled = await Promise.allSettled(
      targets.map((t) => this.#signTarget(ref, t, census, signal, onWritten)),
    );
    const errors: unknown[] = [...entryErrors];
    const done: SignedTarget[] = [];
    const pending: PendingLayer[] = [];
    for (const s of settled) {
      if (s.status === "rejected") errors.push(s.reason);
      else {
        done.push(s.value.signed);
        if (s.value.pending) pending.push(s.value.pending);
      }
    }
    if (errors.length > 0) throw joinErrors(errors);
    const status = done.every((t) => t.status === "present") ? "unchanged" : "signed";
    return { result: { reference, digest: top.digest, status, targets: done }, pending };
  }

  /**
   * Confirms the layers written by {@linkcode Signer.write}: each `.sig` tag is read again once no writer that
   * read it before our write can still write it, and any layer a concurrent writer (another host) removed is
   * appended again. The registry offers no conditional PUT, so this is how signers appending to one tag at once
   * all end up in it.
   */
  async confirm(written: WrittenImage): Promise<void> {
    await this.#writer.confirm(written.pending);
  }

  /** {@linkcode confirm} for one layer, as soon as it is written (one read per tag serves every layer of it). */
  async confirmLayer(p: PendingLayer): Promise<void> {
    await this.#writer.confirm([p]);
  }

  #checkAttachmentsAllowed(t: Target): void {
    const decision = useSigstoreAttachments(this.#o.registriesD, parseReference(t.identity));
    if (!decision.value) throw attachmentsDisabledError(this.#o.registriesD, t.identity, decision, "writing");
  }

  async #signTarget(
    repo: Reference,
    target: Target,
    census: CensusAnswer | undefined,
    signal?: AbortSignal,
    onWritten?: (p: PendingLayer) => void,
  ): Promise<{ signed: SignedTarget; pending?: PendingLayer }> {
    const o = this.#o;
    const w = this.#writer;
    return await w.locked(repo, target.digest, undefined, async () => {
      // What the tag holds: absent when the repository's listing did not name it (no read needed), else read.
      const base: TagRead = census && !census.tags.has(signatureTag(target.digest))
        ? { stored: undefined, sentAt: census.sentAt, answeredAt: census.answeredAt }
        : await w.readTag(repo, target.digest, undefined, signal);
      if (base.stored) checkLayerCount(base.stored.layers.length, signatureManifestName(base.stored.ref));
      if (base.stored && !o.force) {
        const found = await this.#findEqual(repo, target, base.stored.layers, signal);
        if (found) return { signed: { ...target, status: "present" as const, layerDigest: found } };
      }
      const payload = buildSimpleSigningPayload({
        dockerReference: target.identity,
        manifestDigest: target.digest,
        timestamp: Math.floor(o.now?.() ?? Date.now() / 1000),
        annotations: o.annotations,
      });
      const signature = await (await this.#key).sign(payload);
      const layer: NewAttachmentLayer = {
        payload,
        annotations: { [ANNOTATION_SIGNATURE]: base64Encode(signature) },
      };
      const append = {
        repo,
        digest: target.digest,
        layer,
        layerDigest: sha256Digest(payload),
        label: `signature of ${target.identity}`,
      };
      // The writer re-checks the tag first when `base` has grown too old meanwhile (bounded staleness).
      const p: PendingLayer = { ...(await w.appendLocked(append, { base, signal })), target };
      onWritten?.(p);
      o.logger?.debug(`Signed [${target.identity}] ${target.digest}`);
      return { signed: { ...target, status: "signed" as const, layerDigest: p.layerDigest }, pending: p };
    });
  }

  /** The digest of an existing layer equal to the one we would write (same key, digest, identity, annotations). */
  async #findEqual(
    repo: Reference,
    target: Target,
    layers: readonly {
      mediaType: string;
      digest: string;
      size: number;
      annotations: Readonly<Record<string, string>>;
      isSignature: boolean;
      signature?: string;
    }[],
    signal?: AbortSignal,
  ): Promise<string | undefined> {
    const candidates = layers.filter((l) => l.isSignature && l.signature);
    if (candidates.length === 0) return undefined;
    // One payload at a time, a few fetched ahead, stopping at the first equal one: memory stays at a few MiB
    // whatever the .sig holds. A layer whose blob is unusable is simply not equal.
    const publicKey = await this.#publicKey;
    const query = {
      manifestDigest: target.digest,
      dockerReference: target.identity,
      annotations: this.#o.annotations,
      verify: (payload: Uint8Array, signature: Uint8Array) => verifySignature(publicKey, payload, signature),
    };
    for await (const r of readPayloads(this.#o.client, repo, candidates, { signal })) {
      if (!r.payload) continue;
      // No `digest` in the decoded layer: the payload was checked against it when read.
      const decoded = { mediaType: r.layer.mediaType, annotations: r.layer.annotations, payload: r.payload };
      if (await findEquivalentSignature([decoded], query)) return r.layer.digest;
    }
    return undefined;
  }
}

/**
 * The key under which a run counts the lines of one repository: `registry/repository`.
 */
export function repositoryKey(ref: Reference): string {
  return `${ref.registry}/${ref.repository}`;
}

/** `signature manifest <repo>:<tag>`, for messages. */
function signatureManifestName(ref: Reference): string {
  return `signature manifest ${ref.repository}:${ref.tag}`;
}

/** Several manifest errors of one image become one error whose message lists them, one per line. */
function joinErrors(errors: unknown[]): unknown {
  if (errors.length === 1) return errors[0];
  const first = errors.find((e) => isAirlockError(e));
  return new AirlockError(
    isAirlockError(first) ? first.code : "REGISTRY_ERROR",
    errors.map(errorMessage).join("\n"),
    { cause: errors[0] },
  );
}

/**
 * The result line of a signed image: `Signed [ref]: 3 signatures written, 0 already present`, or
 * `Unchanged [ref]: 3 signatures already present` when nothing was missing.
 */
function signedLine(r: ImageSignResult): string {
  const written = r.targets.filter((t) => t.status === "signed").length;
  const present = r.targets.length - written;
  const sigs = (n: number) => `${n} signature${n === 1 ? "" : "s"}`;
  return r.status === "unchanged"
    ? `Unchanged [${r.reference}]: ${sigs(present)} already present`
    : `Signed [${r.reference}]: ${sigs(written)} written, ${present} already present`;
}

/** Options of {@linkcode signImages}. */
export interface SignRunOptions extends SignOptions, LineOutput<LineSignResult> {
  /** Images signed at once (1–20). */
  readonly jobs: number;
  /** Deadline per image, covering all of its work; 0 = none. */
  readonly timeoutMs: number;
  /**
   * Stops scheduling new images. Work already sent finishes: a signature whose write was sent is still confirmed
   * and reported.
   */
  readonly signal?: AbortSignal;
  /** Called as each image finishes. */
  readonly onProgress?: (done: number, total: number) => void;
  /**
   * Lines per `registry/repository` in the list, when the lines come one at a time (counted from an array
   * otherwise): a repository that serves several has its tags listed once instead of each `.sig` tag read.
   */
  readonly linesPerRepository?: ReadonlyMap<string, number>;
}

/** A signature the registry accepted for a line that failed nevertheless (another manifest failed, a deadline). */
export interface WrittenTarget extends Target {
  /** The digest of the payload layer written. */
  readonly layerDigest: string;
  /** Whether it was confirmed (safe from concurrent writers); `false` when the confirmation failed. */
  readonly confirmed: boolean;
}

/** One list line's outcome. */
export interface LineSignResult
  extends LineResult<"signed" | "unchanged" | "skipped" | "failed" | "ignored", ImageSignResult> {
  /** For a failed line: the signatures it wrote all the same (every write the registry accepted is reported). */
  readonly written?: readonly WrittenTarget[];
}

/** The outcome of a run. */
export type SignReport = ListReport<LineSignResult>;

/** What one line wrote, and the confirmation of each layer. */
interface LineWrites {
  readonly pending: PendingLayer[];
  readonly confirmations: Promise<void>[];
}

/**
 * Signs every image of a resolved image list with a worker pool, confirming each write as soon as it is made.
 * When `o.key` is still opening, the first images are read meanwhile; if it fails to open, the run rejects with
 * that error and nothing has been written.
 */
export async function signImages(
  images: Iterable<ResolvedImageLine> | AsyncIterable<ResolvedImageLine>,
  o: SignRunOptions,
): Promise<SignReport> {
  const log = o.logger ?? silentLogger();
  const signer = await Signer.create(o);
  // A key that fails to open stops the run; no image has written anything then (signing comes before writing).
  const keyFailed = new AbortController();
  signer.ready.catch((e) => keyFailed.abort(e));
  if (o.linesPerRepository) signer.expectCounts(o.linesPerRepository);
  else if (Array.isArray(images)) {
    for (const item of images) if (item.status === "ok") signer.expect(item.reference);
  }
  const total = imageCount(images, o.total);
  const out = lineCollector<LineSignResult>(o);
  // What each image in flight wrote (dropped once its line is given out).
  const writes = new Map<number, LineWrites>();
  // Each image's result line is printed when the image is done (its writes confirmed), each failure once.
  const failedNow = new Set<number>();
  const fail = (item: ImageLine, e: unknown): AirlockError => {
    const err = toAirlockError(e);
    if (!failedNow.has(item.line.id)) {
      failedNow.add(item.line.id);
      log.error(`error occurred when sign [${formatReference(item.reference)}]: ${err.message}`, {
        IMG: item.line.id,
      });
    }
    return err;
  };
  let done = 0;
  await runListInOrder<ImageSignResult, LineSignResult>(images, {
    jobs: o.jobs,
    timeoutMs: o.timeoutMs,
    signal: o.signal ? AbortSignal.any([o.signal, keyFailed.signal]) : keyFailed.signal,
  }, {
    work: async (item, signal) => {
      const ref = item.reference;
      const fields = { IMG: item.line.id };
      const lineWrites: LineWrites = { pending: [], confirmations: [] };
      writes.set(item.line.id, lineWrites);
      log.info(`Signing [${formatReference(ref)}]`, fields);
      const written = await signer.write(ref, signal, (p) => {
        // Confirmation runs while the worker moves on; it is not cancelled with the run (see `signal`).
        const c = signer.confirmLayer(p);
        c.catch(() => {});
        lineWrites.pending.push(p);
        lineWrites.confirmations.push(c);
      });
      if (written.result.status === "skipped") {
        log.warn(
          `Skip sign image [${formatReference(ref)}]: no available image for specified arch and os`,
          fields,
        );
      }
      // The image is done when its writes are confirmed; a failed confirmation fails it.
      Promise.all(lineWrites.confirmations).then(() => {
        if (written.result.status !== "skipped") log.info(signedLine(written.result), fields);
      }, (e) => fail(item, e));
      return written.result;
    },
    settled: (item, r) => {
      if (!r.ok && !keyFailed.signal.aborted) fail(item, r.error);
      o.onProgress?.(++done, total);
    },
    finish: async (item, r) => {
      const w = writes.get(item.line.id);
      writes.delete(item.line.id);
      const confirmed = await Promise.allSettled(w?.confirmations ?? []);
      const unconfirmed = confirmed.find((c) => c.status === "rejected") as PromiseRejectedResult | undefined;
      const error: unknown = r.ok ? unconfirmed?.reason : r.error;
      if (error === undefined && r.ok) {
        return { id: item.line.id, line: item.line.line, status: r.value.status, result: r.value };
      }
      const err = keyFailed.signal.aborted ? toAirlockError(error) : fail(item, error);
      failedNow.delete(item.line.id);
      const written: WrittenTarget[] = (w?.pending ?? []).map((p, k) => ({
        ...p.target,
        layerDigest: p.layerDigest,
        confirmed: confirmed[k].status === "fulfilled",
      }));
      for (const t of written) {
        log.warn(
          `The signature of [${t.identity}] ${t.digest} was written${
            t.confirmed ? "" : " but not confirmed"
          } although the image failed`,
          { IMG: item.line.id },
        );
      }
      return {
        id: item.line.id,
        line: item.line.line,
        status: "failed",
        error: err,
        ...(written.length > 0 ? { written } : {}),
      };
    },
    unresolved: (r) => {
      if (r.status === "ignored") {
        log.warn(r.warning);
        return { id: r.line.id, line: r.line.line, status: "ignored" };
      }
      log.error(`error occurred when sign [${r.line.line}]: ${r.error.message}`, { IMG: r.line.id });
      return { id: r.line.id, line: r.line.line, status: "failed", error: r.error };
    },
    emit: (line) => out.add(line as LineSignResult),
  });
  if (keyFailed.signal.aborted) throw keyFailed.signal.reason;
  return out.report();
}
