/**
 * The signing pipeline: for each image, choose the manifests to sign, check that registries.d allows writing
 * attachments, then add one signature per manifest to its `.sig` tag — unless an equal one is there already.
 * The image manifest itself is never written again.
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
import { failedLines, inListOrder } from "./list_run.ts";
import { DEFAULT_ARCH_LIST, DEFAULT_OS_LIST, type PlatformFilter } from "./platform.ts";
import { runPool } from "./pool.ts";
import { formatReference, parseReference, type Reference } from "./reference.ts";
import type { RegistryClient } from "./registry/client.ts";
import type { Logger } from "./report.ts";
import { silentLogger } from "./report.ts";
import {
  ANNOTATION_SIGNATURE,
  findEquivalentSignature,
  type NewAttachmentLayer,
} from "./signature/attachments.ts";
import { readAttachment } from "./signature/attachment_store.ts";
import { checkLayerCount, readPayloads } from "./signature/signature_layers.ts";
import { AttachmentWriter, FRESH_READ_MS, type PendingAppend } from "./signature/attachment_writer.ts";
import { buildSimpleSigningPayload } from "./signature/payload.ts";
import { sha256Digest } from "./encoding/digest.ts";
import { base64Encode } from "./encoding/base64.ts";
import { parsePublicKeyPem, type PublicKey, verifySignature } from "./signature/public_key.ts";
import { selectTargets, type Target } from "./targets.ts";

/** How images are signed. */
export interface SignOptions {
  /** The registry client (credentials, TLS). */
  readonly client: RegistryClient;
  /** The signing key, opened once for the run. */
  readonly key: KeyBackend;
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
  /** Shortest wait before a written `.sig` tag is re-read (`confirmDelayMs` of {@linkcode AttachmentWriter}). */
  readonly confirmDelayMs?: number;
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
 * Signs images with one key. Holds the run's state: the public key (parsed once, for idempotency checks) and a
 * lock per `.sig` tag so that appends to one digest inside one run are serialised.
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
  readonly #publicKey: PublicKey;
  readonly #writer: AttachmentWriter;

  private constructor(options: SignOptions, publicKey: PublicKey) {
    this.#o = options;
    this.#publicKey = publicKey;
    this.#writer = new AttachmentWriter(options.client, {
      confirmDelayMs: options.confirmDelayMs,
      logger: options.logger,
    });
  }

  /** Reads the key's public half once, then returns a signer. */
  static async create(options: SignOptions): Promise<Signer> {
    return new Signer(options, parsePublicKeyPem(await options.key.publicKey()));
  }

  /**
   * Signs every manifest of one image that needs it. Nothing is written when registries.d forbids any of them.
   * Errors of individual manifests are collected: the others are still signed, then the image fails.
   */
  async write(ref: Reference, signal?: AbortSignal): Promise<WrittenImage> {
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
    // 3. One signature per manifest; manifests of one image are independent tags, so in parallel.
    const settled = await Promise.allSettled(targets.map((t) => this.#signTarget(ref, t, signal)));
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
   * Confirms the layers written by {@linkcode Signer.write}: after a short random delay, re-reads each `.sig` tag
   * and appends again any layer a concurrent writer (another process) overwrote. The registry offers no
   * conditional PUT, so this is how two signers appending to one tag at once both end up in it.
   */
  async confirm(written: WrittenImage, signal?: AbortSignal): Promise<void> {
    await this.#writer.confirm(written.pending, signal);
  }

  #checkAttachmentsAllowed(t: Target): void {
    const decision = useSigstoreAttachments(this.#o.registriesD, parseReference(t.identity));
    if (!decision.value) throw attachmentsDisabledError(this.#o.registriesD, t.identity, decision, "writing");
  }

  async #signTarget(
    repo: Reference,
    target: Target,
    signal?: AbortSignal,
  ): Promise<{ signed: SignedTarget; pending?: PendingLayer }> {
    const o = this.#o;
    return await this.#writer.locked(repo, target.digest, undefined, async () => {
      let readAt = performance.now();
      let stored = await readAttachment(o.client, repo, target.digest, { signal });
      const readDone = performance.now();
      if (stored) checkLayerCount(stored.layers.length, signatureManifestName(stored.ref));
      if (stored && !o.force) {
        const found = await this.#findEqual(repo, target, stored.layers, signal);
        if (found) return { signed: { ...target, status: "present" as const, layerDigest: found } };
      }
      const payload = buildSimpleSigningPayload({
        dockerReference: target.identity,
        manifestDigest: target.digest,
        timestamp: Math.floor(o.now?.() ?? Date.now() / 1000),
        annotations: o.annotations,
      });
      const signature = await o.key.sign(payload);
      const layer: NewAttachmentLayer = {
        payload,
        annotations: { [ANNOTATION_SIGNATURE]: base64Encode(signature) },
      };
      const layerDigest = sha256Digest(payload);
      // A concurrent writer's layer can only be lost between our last read of the tag and our PUT. The equality
      // check above (one blob per existing signature) can take long on a busy host: then read the tag again, so
      // that only the uploads and the PUT stand between read and write. A 404 (no check) costs no second read,
      // however long the registry took to answer it.
      if (performance.now() - readDone > FRESH_READ_MS) {
        readAt = performance.now();
        stored = await readAttachment(o.client, repo, target.digest, { signal });
      }
      // cosign and airlock read at most 1000 layers: a signature appended as the 1001st would never be verified.
      if (stored) {
        checkLayerCount(
          stored.layers.length + 1,
          `with this signature, ${signatureManifestName(stored.ref)}`,
        );
      }
      const append = {
        repo,
        digest: target.digest,
        layer,
        layerDigest,
        label: `signature of ${target.identity}`,
      };
      const manifestDigest = await this.#writer.appendTo(append, stored, false, signal);
      const p: PendingLayer = { ...append, target, spanMs: performance.now() - readAt, manifestDigest };
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
    const query = {
      manifestDigest: target.digest,
      dockerReference: target.identity,
      annotations: this.#o.annotations,
      verify: (payload: Uint8Array, signature: Uint8Array) =>
        verifySignature(this.#publicKey, payload, signature),
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
export interface SignRunOptions extends SignOptions {
  /** Images signed at once (1–20). */
  readonly jobs: number;
  /** Deadline per image, covering all of its work; 0 = none. */
  readonly timeoutMs: number;
  /** Stops scheduling new images (in-flight writes finish). */
  readonly signal?: AbortSignal;
  /** Called as each image finishes. */
  readonly onProgress?: (done: number, total: number) => void;
}

/** One list line's outcome. */
export interface LineSignResult {
  /** The line's id (1-based, hangar's `IMG:n`). */
  readonly id: number;
  /** The original (trimmed) line, as the failed list records it. */
  readonly line: string;
  /** `failed` lines go to the failed list; `ignored` lines are mirror-format or unknown lines. */
  readonly status: "signed" | "unchanged" | "skipped" | "failed" | "ignored";
  /** The image result, when the image was reached. */
  readonly result?: ImageSignResult;
  /** What went wrong. */
  readonly error?: AirlockError;
}

/** The outcome of a run. */
export interface SignReport {
  /** One entry per list line, in list order. */
  readonly lines: readonly LineSignResult[];
  /** The lines that failed, in list order (for the failed list). */
  readonly failed: readonly string[];
}

/**
 * Signs every image of a resolved image list with a worker pool, then confirms the writes.
 *
 * @example
 * ```ts
 * const report = await signImages(resolveImageList(lines), { client, key, registriesD, jobs: 4, timeoutMs: 600_000 });
 * ```
 */
export async function signImages(
  images: readonly ResolvedImageLine[],
  o: SignRunOptions,
): Promise<SignReport> {
  const log = o.logger ?? silentLogger();
  const signer = await Signer.create(o);
  const work = images.filter((r) => r.status === "ok");
  const confirmations = new Map<number, Promise<void>>();
  // Each image's result line is printed when the image is done (its writes confirmed), each failure once.
  const failedNow = new Set<number>();
  const fail = (item: ResolvedImageLine & { status: "ok" }, e: unknown): AirlockError => {
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
  const results = await runPool(work, o.jobs, async (item, signal) => {
    const ref = item.reference;
    const fields = { IMG: item.line.id };
    log.info(`Signing [${formatReference(ref)}]`, fields);
    const written = await signer.write(ref, signal);
    if (written.result.status === "skipped") {
      log.warn(
        `Skip sign image [${formatReference(ref)}]: no available image for specified arch and os`,
        fields,
      );
    }
    // Confirmation runs while the worker moves on; its failure fails the image.
    const c = signer.confirm(written, o.signal);
    c.then(() => {
      if (written.result.status !== "skipped") log.info(signedLine(written.result), fields);
    }, (e) => fail(item, e));
    confirmations.set(item.line.id, c);
    return written.result;
  }, {
    signal: o.signal,
    timeoutMs: o.timeoutMs,
    onSettled: (i, r) => {
      if (!r.ok) fail(work[i], r.error);
      o.onProgress?.(++done, work.length);
    },
  });

  const byId = new Map<number, LineSignResult>();
  await Promise.all(work.map(async (item, i) => {
    const r = results[i];
    let error: unknown = r.ok ? undefined : r.error;
    if (r.ok) {
      try {
        await confirmations.get(item.line.id);
      } catch (e) {
        error = e;
      }
    }
    if (error !== undefined) {
      const err = fail(item, error);
      byId.set(item.line.id, { id: item.line.id, line: item.line.line, status: "failed", error: err });
    } else if (r.ok) {
      byId.set(item.line.id, {
        id: item.line.id,
        line: item.line.line,
        status: r.value.status,
        result: r.value,
      });
    }
  }));

  const lines: LineSignResult[] = inListOrder(images, byId, log, (line, error) => {
    log.error(`error occurred when sign [${line.line}]: ${error.message}`, { IMG: line.id });
  });
  return { lines, failed: failedLines(lines) };
}
