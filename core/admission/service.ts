/**
 * The admission webhook's engine, bound to the operator's settings and registry client: reviews in, decisions
 * out. {@linkcode createAdmissionEngine} wires the verdict cache to the registry (tag resolution) and to
 * {@linkcode evaluateImage} (the trust rules); {@linkcode AdmissionEngine.review} parses a review and decides it.
 *
 * @example
 * ```ts
 * const engine = createAdmissionEngine({ settings, client, registriesD });
 * const { response, decision } = await engine.review(JSON.parse(body), { mutate: true });
 * ```
 *
 * @module
 */
import type { RegistriesDConfig } from "../config/registries_d.ts";
import type { RegistryClient } from "../registry/client.ts";
import type { AdmissionSettings } from "./config.ts";
import { decideReview, type ReviewDecision } from "./decide.ts";
import { evaluateContext, evaluateImage, verdictWithoutRegistry } from "./evaluate.ts";
import { type AdmissionRequest, admissionResponse, type JsonObject, parseAdmissionReview } from "./review.ts";
import { type CacheStats, VerdictCache } from "./verdicts.ts";

/** What the engine is built from. */
export interface AdmissionEngineOptions {
  /** The configuration file, loaded. */
  readonly settings: AdmissionSettings;
  /** The registry client. */
  readonly client: RegistryClient;
  /** registries.d (policy mode). */
  readonly registriesD: RegistriesDConfig;
  /** The clock in ms (default `Date.now`). */
  readonly now?: () => number;
}

/** One review answered. */
export interface ReviewResult {
  /** The request as read. */
  readonly request: AdmissionRequest;
  /** The decision. */
  readonly decision: ReviewDecision;
  /** The `AdmissionReview` to send back. */
  readonly response: JsonObject;
}

/** The engine. */
export interface AdmissionEngine {
  /** The settings it runs with. */
  readonly settings: AdmissionSettings;
  /** Cache counters. */
  readonly cacheStats: CacheStats;
  /**
   * Parses `body` (a JSON value) as an `AdmissionReview` and decides it.
   *
   * @throws {AirlockError} `INVALID_ARGUMENT` when it is not a v1 `AdmissionReview`.
   */
  review(body: unknown, options: { mutate: boolean }): Promise<ReviewResult>;
  /** Cancels evaluations in flight. */
  close(): void;
}

/**
 * Builds the engine.
 */
export function createAdmissionEngine(o: AdmissionEngineOptions): AdmissionEngine {
  const ctx = evaluateContext(o.client, o.registriesD, o.settings.mode);
  const cache = new VerdictCache({
    ttlMs: o.settings.cacheTtlMs,
    now: o.now,
    resolve: async (ref, signal) => (await o.client.getManifest(ref, { signal })).digest,
    early: (ref) => verdictWithoutRegistry(ctx, ref),
    evaluate: (ref, digest, signal) => evaluateImage(ctx, ref, digest, signal),
  });
  return {
    settings: o.settings,
    get cacheStats() {
      return cache.stats;
    },
    async review(body, options) {
      const request = parseAdmissionReview(body);
      const decision = await decideReview(request, o.settings, (ref) => cache.check(ref), options);
      return { request, decision, response: admissionResponse(request.uid, decision.answer) };
    },
    close: () => cache.close(),
  };
}
