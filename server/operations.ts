/**
 * What the jobs of `airlock serve` do: the library's pipelines (`signImages`, `validateImages`, `verifyImage`
 * from `mod.ts`), called with the operator's key, registry client and registries.d, exactly as the CLI calls them.
 * Each image of a request runs as its own one-line list, so its result is reported (and streamed) as soon as it
 * is known; `jobs` images of one request run at once.
 *
 * Every signature written produces one audit line (token name, identity, digest, time, job) through the logger.
 *
 * @example
 * ```ts
 * const ops = await createOperations({ client, key, registriesD, logger });
 * await ops.run(request, jobContext);
 * ```
 *
 * @module
 */
import {
  AirlockError,
  errorMessage,
  formatReference,
  hangarValidatePolicy,
  isAirlockError,
  type KeyBackend,
  type Logger,
  parsePublicKeyPem,
  PolicyEvaluator,
  type RegistryClient,
  type ResolvedImageLine,
  signImages,
  validateImages,
  verifyImage,
} from "../mod.ts";
import type { RegistriesDConfig } from "../core/config/registries_d.ts";
import { runPool } from "../core/pool.ts";
import { errorJson, type LogFields, targetJson } from "../core/report.ts";
import type { ImageResult, JobContext, TargetResult } from "./jobs.ts";
import type { JobRequest, SignRequest, ValidateRequest, VerifyRequest } from "./requests.ts";

/** Counters the operations move (see `metrics.ts`). */
export interface OperationMetrics {
  /** Signatures written. */
  signatures(n: number): void;
  /** One image's outcome. */
  imageResult(operation: string, status: string): void;
}

/** The operator's choices, fixed when the service starts. */
export interface OperationsOptions {
  /** Registry client: the server's own credentials and TLS settings. */
  readonly client: RegistryClient;
  /** The signing key (`--key`). */
  readonly key: KeyBackend;
  /** registries.d (`--registries.d`). */
  readonly registriesD: RegistriesDConfig;
  /** Log and audit lines. */
  readonly logger: Logger;
  /** Counters. */
  readonly metrics?: OperationMetrics;
  /** The clock for audit lines (default `() => new Date()`). */
  readonly now?: () => Date;
}

/** The work behind the API, as the HTTP app sees it. */
export interface Operations {
  /** The service key's public key, SPKI PEM. */
  publicKey(): Promise<string>;
  /** Runs a job request, reporting each image's result to `ctx`. */
  run(request: JobRequest, ctx: JobContext): Promise<void>;
}

/**
 * Binds the pipelines to the operator's key and registry settings. Reads the public key once.
 */
export async function createOperations(o: OperationsOptions): Promise<Operations> {
  const pem = await o.key.publicKey();
  const publicKey = parsePublicKeyPem(pem);
  const keyData = new TextEncoder().encode(pem);
  const now = o.now ?? (() => new Date());

  /** Runs `one` for every image, `jobs` at once; images the pool never started are reported cancelled. */
  async function forEachImage<T>(
    items: readonly T[],
    req: JobRequest,
    ctx: JobContext,
    one: (item: T, index: number, log: Logger, signal: AbortSignal) => Promise<ImageResult>,
    poolTimeoutMs = 0,
  ): Promise<void> {
    const results = await runPool(items, req.jobs, async (item, signal, i) => {
      const result = await one(item, i, jobLogger(o.logger, ctx.id, i + 1), signal);
      o.metrics?.imageResult(req.kind, result.status);
      ctx.report(i, result);
    }, { signal: ctx.signal, timeoutMs: poolTimeoutMs });
    results.forEach((r, i) => {
      if (r.ok) return;
      o.metrics?.imageResult(req.kind, "failed");
      ctx.report(i, failed(req.images[i], r.error));
    });
  }

  function sign(req: SignRequest, ctx: JobContext): Promise<void> {
    return forEachImage(req.lines, req, ctx, async (line, i, log) => {
      const report = await signImages([line], {
        client: o.client,
        key: o.key,
        registriesD: o.registriesD,
        platforms: { arch: req.arch, os: req.os, variant: [] },
        signIndex: req.signIndex,
        force: req.force,
        annotations: req.annotations,
        jobs: 1,
        timeoutMs: req.timeoutMs,
        signal: ctx.signal,
        logger: log,
      });
      const l = report.lines[0];
      // Every signature the registry accepted is audited, also when the image failed afterwards (another
      // manifest failed, the deadline passed, the confirmation failed: then `confirmed=false`).
      const written = [
        ...(l.result?.targets ?? []).filter((t) => t.status === "signed").map((t) => ({
          ...t,
          confirmed: true,
        })),
        ...(l.written ?? []),
      ];
      for (const t of written) {
        o.logger.info(
          `audit: signature written token=${ctx.submittedBy} image=${t.identity} digest=${t.digest} ` +
            `time=${now().toISOString()} job=${ctx.id} layer=${t.layerDigest}` +
            (t.confirmed ? "" : " confirmed=false"),
        );
      }
      o.metrics?.signatures(written.length);
      const result = lineResult(
        req.images[i],
        line,
        l,
        (t) => ({ ...targetJson(t), layerDigest: t.layerDigest }),
      );
      if (l.status !== "failed" || !l.written) return result;
      // A failed image still reports what it wrote.
      const targets = l.written.map((t) => ({
        ...targetJson({ ...t, status: t.confirmed ? "signed" : "unconfirmed" }),
        layerDigest: t.layerDigest,
      }));
      return { ...result, targets };
    });
  }

  function validate(req: ValidateRequest, ctx: JobContext): Promise<void> {
    const policy = new PolicyEvaluator(
      hangarValidatePolicy({ keyData, exactRepository: req.exactRepository }),
    );
    return forEachImage(req.lines, req, ctx, async (line, i, log) => {
      const report = await validateImages([line], {
        client: o.client,
        registriesD: o.registriesD,
        policy,
        platforms: { arch: req.arch, os: req.os, variant: [] },
        requireIndexSignature: req.requireIndexSignature,
        skipUnmatched: req.skipUnmatched,
        jobs: 1,
        timeoutMs: req.timeoutMs,
        signal: ctx.signal,
        logger: log,
      });
      return lineResult(
        req.images[i],
        line,
        report.lines[0],
        (t) => ({ ...targetJson(t), reason: t.reason ?? null }),
      );
    });
  }

  function verify(req: VerifyRequest, ctx: JobContext): Promise<void> {
    return forEachImage(req.references, req, ctx, async (ref, i, log, signal) => {
      try {
        // Signatures made by this service carry no transparency-log entry (air-gapped): the key is the trust.
        const r = await verifyImage(o.client, ref, {
          publicKey,
          annotations: req.annotations,
          ignoreTlog: true,
          signal,
        });
        log.info(`Verified [${formatReference(r.reference)}] ${r.digest}`);
        return {
          image: req.images[i],
          status: "verified",
          reference: formatReference(r.reference),
          digest: r.digest,
          targets: r.signatures.map((s) => ({
            digest: r.digest,
            identity: s.claims.dockerReference,
            status: "verified",
            layerDigest: s.layerDigest,
          })),
          error: null,
        };
      } catch (e) {
        log.error(`error occurred when verify [${formatReference(ref)}]: ${errorMessage(e)}`);
        return failed(req.images[i], e, formatReference(ref));
      }
    }, req.timeoutMs);
  }

  return {
    publicKey: () => Promise.resolve(pem),
    run(req, ctx) {
      switch (req.kind) {
        case "sign":
          return sign(req, ctx);
        case "validate":
          return validate(req, ctx);
        case "verify":
          return verify(req, ctx);
      }
    },
  };
}

/** The result of an image run as a one-line list (sign, validate), its targets mapped by `target`. */
function lineResult<T>(
  image: string,
  line: ResolvedImageLine,
  l: {
    readonly status: string;
    readonly result?: { readonly reference: string; readonly digest: string; readonly targets: readonly T[] };
    readonly error?: AirlockError;
  },
  target: (t: T) => TargetResult,
): ImageResult {
  return {
    image,
    status: l.status,
    reference: l.result?.reference ?? (line.status === "ok" ? formatReference(line.reference) : null),
    digest: l.result?.digest ?? null,
    targets: (l.result?.targets ?? []).map(target),
    error: errorJson(l.error),
  };
}

function failed(image: string, e: unknown, reference: string | null = null): ImageResult {
  const err = isAirlockError(e) ? e : new AirlockError("REGISTRY_ERROR", errorMessage(e), { cause: e });
  return {
    image,
    status: "failed",
    reference,
    digest: null,
    targets: [],
    error: errorJson(err),
  };
}

/** The job's logger: every line carries `[JOB:<first 8 of the id>]` and the image's position as `IMG`. */
function jobLogger(base: Logger, jobId: string, img: number): Logger {
  const job = jobId.slice(0, 8);
  const f = (fields?: LogFields): LogFields => ({ ...fields, IMG: img, JOB: job });
  return {
    level: base.level,
    enabled: (l) => base.enabled(l),
    debug: (m, fields) => base.debug(m, f(fields)),
    info: (m, fields) => base.info(m, f(fields)),
    warn: (m, fields) => base.warn(m, f(fields)),
    error: (m, fields) => base.error(m, f(fields)),
    fatal: (m, fields) => base.fatal(m, f(fields)),
  };
}
