/**
 * The job store of `airlock serve`: every accepted request becomes a job with a random id, runs when a slot is
 * free (at most `concurrency` at once, the rest queued in order), reports a result per image, and is kept in a
 * bounded history once finished. Each job keeps its events (`state`, `image`, `done`) so that an event stream
 * opened at any time replays what happened and then follows live (fan-out to every subscriber).
 *
 * Runtime-agnostic: no Deno API here.
 *
 * @example
 * ```ts
 * const jobs = new JobStore({ concurrency: 4, history: 200, maxQueued: 100 });
 * const job = jobs.submit({ kind: "sign", submittedBy: "ci", images: ["r.io/a:1"], work: async (ctx) => {
 *   ctx.report(0, { image: "r.io/a:1", status: "signed", reference: "r.io/a:1", digest: "sha256:…", targets: [], error: null });
 * } });
 * ```
 *
 * @module
 */
import { AirlockError, errorMessage, isAirlockError } from "../core/errors.ts";

/** What a job does. */
export type JobKind = "sign" | "validate" | "verify";

/** Where a job is: `succeeded` when every image passed, `failed` when some did not, `cancelled` on shutdown. */
export type JobState = "queued" | "running" | "succeeded" | "failed" | "cancelled";

/** One manifest of an image's result (signed, found signed, accepted, or verified). */
export interface TargetResult {
  /** The manifest digest. */
  readonly digest: string;
  /** The identity in the payload (sign, validate). */
  readonly identity?: string;
  /** `index` or `image` (sign, validate). */
  readonly kind?: string;
  /** `os/arch[/variant]`, or `null` when unknown. */
  readonly platform?: string | null;
  /**
   * Per kind: `signed`/`present` (`unconfirmed` on a failed image: written, but whether a concurrent writer
   * removed it again could not be checked), `accepted`/`rejected`, `verified`.
   */
  readonly status: string;
  /** The payload layer written or found (sign), or the verified layer (verify). */
  readonly layerDigest?: string;
  /** Why a manifest was rejected (validate). */
  readonly reason?: string | null;
}

/** One image's result. */
export interface ImageResult {
  /** The image as the request named it. */
  readonly image: string;
  /**
   * `pending` until it is done; then sign: `signed`/`unchanged`/`skipped`/`failed`; validate:
   * `passed`/`failed`/`skipped`; verify: `verified`/`failed`.
   */
  readonly status: string;
  /** The fully normalised reference, once resolved. */
  readonly reference: string | null;
  /** The digest of the top-level manifest, once read. */
  readonly digest: string | null;
  /** The manifests signed or checked. */
  readonly targets: readonly TargetResult[];
  /** What went wrong. */
  readonly error: { readonly code: string; readonly message: string } | null;
}

/** A job as the API shows it. */
export interface JobView {
  /** Random id (UUID). */
  readonly id: string;
  /** What the job does. */
  readonly kind: JobKind;
  /** Where it is. */
  readonly state: JobState;
  /** The name of the token that submitted it. */
  readonly submittedBy: string;
  /** ISO 8601 times. */
  readonly createdAt: string;
  /** When it started running. */
  readonly startedAt: string | null;
  /** When it finished. */
  readonly finishedAt: string | null;
  /** Counts: images, images done, images failed. */
  readonly summary: { readonly total: number; readonly done: number; readonly failed: number };
  /** Per image, in request order. */
  readonly images: readonly ImageResult[];
  /** A failure of the job as a whole (not of one image). */
  readonly error: { readonly code: string; readonly message: string } | null;
}

/** One server-sent event of a job. */
export interface JobEvent {
  /** 1, 2, 3… within the job (the SSE `id`). */
  readonly seq: number;
  /** `state`: `{state}`; `image`: `{index, result, done, total}`; `done`: the final {@linkcode JobView}. */
  readonly event: "state" | "image" | "done";
  /** The event's JSON payload. */
  readonly data: unknown;
}

/** What a job's work gets. */
export interface JobContext {
  /** The job id. */
  readonly id: string;
  /** The name of the token that submitted it. */
  readonly submittedBy: string;
  /** Aborted when the service stops waiting for the job (shutdown past its grace period). */
  readonly signal: AbortSignal;
  /** Records the result of image `index` (emits an `image` event). */
  report(index: number, result: ImageResult): void;
}

/** The work of a job. It reports every image; a throw fails the job as a whole. */
export type JobWork = (ctx: JobContext) => Promise<void>;

/** What {@linkcode JobStore.submit} takes. */
export interface JobSpec {
  /** What the job does. */
  readonly kind: JobKind;
  /** The submitting token's name. */
  readonly submittedBy: string;
  /** The images, as requested (one result each). */
  readonly images: readonly string[];
  /** Does the work. */
  readonly work: JobWork;
}

/** Options of {@linkcode JobStore}. */
export interface JobStoreOptions {
  /** Jobs running at once (≥ 1). */
  readonly concurrency: number;
  /** Finished jobs kept (older ones are forgotten). */
  readonly history: number;
  /** Jobs waiting for a slot before submissions are refused with `UNAVAILABLE`. */
  readonly maxQueued: number;
  /** The clock, in ms since the epoch (default `Date.now`). */
  readonly now?: () => number;
  /** Called when a job finishes (metrics). */
  readonly onFinished?: (job: JobView) => void;
}

/** Receives a job's events; `undefined` means "the stream is closed by the server". */
export type JobListener = (event: JobEvent | undefined) => void;

/** A subscription to a job's events. */
export interface JobSubscription {
  /** Events that happened already (after the `afterSeq` given), to send first. */
  readonly replay: readonly JobEvent[];
  /** Whether the job was finished already (the replay ends with `done`). */
  readonly finished: boolean;
  /** Stops the live events. */
  unsubscribe(): void;
}

interface Job {
  readonly id: string;
  readonly kind: JobKind;
  readonly submittedBy: string;
  readonly createdAt: number;
  readonly work: JobWork;
  readonly controller: AbortController;
  state: JobState;
  startedAt?: number;
  finishedAt?: number;
  images: ImageResult[];
  done: number;
  error: { code: string; message: string } | null;
  readonly events: JobEvent[];
  readonly listeners: Set<JobListener>;
}

const FINISHED: ReadonlySet<JobState> = new Set(["succeeded", "failed", "cancelled"]);

/**
 * Jobs: submission, scheduling, results, history and event fan-out.
 *
 * @example
 * ```ts
 * const view = jobs.submit({ kind: "verify", submittedBy: name, images, work });
 * const sub = jobs.subscribe(view.id, 0, (ev) => send(ev));
 * ```
 */
export class JobStore {
  readonly #o: JobStoreOptions;
  readonly #now: () => number;
  readonly #jobs = new Map<string, Job>();
  readonly #queue: Job[] = [];
  readonly #finishedOrder: string[] = [];
  #running = 0;
  #closed = false;
  #idle: (() => void)[] = [];

  /** @param options concurrency, history and queue bounds */
  constructor(options: JobStoreOptions) {
    if (options.concurrency < 1) throw new AirlockError("INVALID_ARGUMENT", "job concurrency must be ≥ 1");
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  /** Jobs running now. */
  get running(): number {
    return this.#running;
  }

  /** Jobs waiting for a slot. */
  get queued(): number {
    return this.#queue.length;
  }

  /**
   * Accepts a job; it runs when a slot is free.
   *
   * @throws {AirlockError} `UNAVAILABLE` when the store is closed (shutting down) or the queue is full.
   */
  submit(spec: JobSpec): JobView {
    if (this.#closed) throw new AirlockError("UNAVAILABLE", "the service is shutting down");
    if (this.#running >= this.#o.concurrency && this.#queue.length >= this.#o.maxQueued) {
      throw new AirlockError("UNAVAILABLE", `too many jobs waiting (${this.#queue.length}); try again later`);
    }
    const job: Job = {
      id: crypto.randomUUID(),
      kind: spec.kind,
      submittedBy: spec.submittedBy,
      createdAt: this.#now(),
      work: spec.work,
      controller: new AbortController(),
      state: "queued",
      images: spec.images.map((image) => pendingResult(image)),
      done: 0,
      error: null,
      events: [],
      listeners: new Set(),
    };
    this.#jobs.set(job.id, job);
    this.#emit(job, "state", { state: job.state });
    this.#queue.push(job);
    this.#pump();
    return view(job);
  }

  /** A job by id (`undefined` when unknown or forgotten). */
  get(id: string): JobView | undefined {
    const job = this.#jobs.get(id);
    return job ? view(job) : undefined;
  }

  /** The most recent jobs, newest first. */
  list(limit = 50): JobView[] {
    const all = [...this.#jobs.values()];
    const out: JobView[] = [];
    for (let i = all.length - 1; i >= 0 && out.length < limit; i--) out.push(view(all[i]));
    return out;
  }

  /**
   * Subscribes to a job's events: the events after `afterSeq` are returned to replay, later ones go to
   * `listener` as they happen. `undefined` when the job is unknown.
   */
  subscribe(id: string, afterSeq: number, listener: JobListener): JobSubscription | undefined {
    const job = this.#jobs.get(id);
    if (!job) return undefined;
    const replay = job.events.filter((e) => e.seq > afterSeq);
    const finished = FINISHED.has(job.state);
    if (!finished) job.listeners.add(listener);
    return { replay, finished, unsubscribe: () => job.listeners.delete(listener) };
  }

  /** Refuses new submissions from now on. */
  close(): void {
    this.#closed = true;
  }

  /**
   * Closes the store and waits for every accepted job (queued ones included) to finish. After `graceMs`, the
   * jobs still running are aborted (no new image starts; images being written finish) and waited for up to
   * `abortWaitMs` more. Then every event stream is closed. Returns whether everything finished.
   */
  async drain(graceMs: number, abortWaitMs = 5_000): Promise<boolean> {
    this.close();
    let finished = await this.#waitIdle(graceMs);
    if (!finished) {
      for (const job of this.#jobs.values()) {
        if (!FINISHED.has(job.state)) job.controller.abort(new AirlockError("CANCELLED", "service shutdown"));
      }
      finished = await this.#waitIdle(abortWaitMs);
    }
    for (const job of this.#jobs.values()) {
      for (const l of job.listeners) l(undefined);
      job.listeners.clear();
    }
    return finished;
  }

  #waitIdle(ms: number): Promise<boolean> {
    if (this.#running === 0 && this.#queue.length === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#idle = this.#idle.filter((f) => f !== done);
        resolve(false);
      }, ms);
      const done = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.#idle.push(done);
    });
  }

  #pump(): void {
    while (this.#running < this.#o.concurrency && this.#queue.length > 0) {
      const job = this.#queue.shift()!;
      this.#running++;
      this.#run(job).finally(() => {
        this.#running--;
        this.#pump();
        if (this.#running === 0 && this.#queue.length === 0) {
          const waiters = this.#idle;
          this.#idle = [];
          for (const w of waiters) w();
        }
      });
    }
  }

  async #run(job: Job): Promise<void> {
    job.state = "running";
    job.startedAt = this.#now();
    this.#emit(job, "state", { state: job.state });
    const ctx: JobContext = {
      id: job.id,
      submittedBy: job.submittedBy,
      signal: job.controller.signal,
      report: (index, result) => {
        if (index < 0 || index >= job.images.length || job.images[index].status !== "pending") return;
        job.images[index] = result;
        job.done++;
        this.#emit(job, "image", { index, result, done: job.done, total: job.images.length });
      },
    };
    try {
      await job.work(ctx);
      if (job.done < job.images.length) {
        job.error = { code: "INTERNAL", message: "the job ended without a result for every image" };
      }
    } catch (e) {
      job.error = isAirlockError(e)
        ? { code: e.code, message: e.message }
        : { code: "INTERNAL", message: errorMessage(e) };
    }
    const failed = job.error !== null ||
      job.images.some((i) => i.status === "failed" || i.status === "pending");
    job.state = job.controller.signal.aborted ? "cancelled" : failed ? "failed" : "succeeded";
    job.finishedAt = this.#now();
    const final = view(job);
    this.#emit(job, "done", final);
    job.listeners.clear();
    this.#remember(job);
    try {
      this.#o.onFinished?.(final);
    } catch { /* metrics must not break jobs */ }
  }

  #emit(job: Job, event: JobEvent["event"], data: unknown): void {
    const ev: JobEvent = { seq: job.events.length + 1, event, data };
    job.events.push(ev);
    for (const l of job.listeners) l(ev);
  }

  #remember(job: Job): void {
    this.#finishedOrder.push(job.id);
    while (this.#finishedOrder.length > this.#o.history) this.#jobs.delete(this.#finishedOrder.shift()!);
  }
}

function pendingResult(image: string): ImageResult {
  return { image, status: "pending", reference: null, digest: null, targets: [], error: null };
}

function iso(ms: number | undefined): string | null {
  return ms === undefined ? null : new Date(ms).toISOString();
}

function view(job: Job): JobView {
  return {
    id: job.id,
    kind: job.kind,
    state: job.state,
    submittedBy: job.submittedBy,
    createdAt: iso(job.createdAt)!,
    startedAt: iso(job.startedAt),
    finishedAt: iso(job.finishedAt),
    summary: {
      total: job.images.length,
      done: job.done,
      failed: job.images.filter((i) => i.status === "failed").length,
    },
    images: [...job.images],
    error: job.error,
  };
}
