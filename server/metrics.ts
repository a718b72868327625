/**
 * The metrics of `airlock serve` in the Prometheus text exposition format (version 0.0.4): signatures made,
 * image results and failures per operation, finished jobs, HTTP requests, and a request latency histogram per
 * route. Labels hold route patterns (`/v1/jobs/:id`), never raw paths, so their number stays bounded.
 *
 * Runtime-agnostic: no Deno API here.
 *
 * @example
 * ```ts
 * const m = new Metrics();
 * m.observeRequest("POST", "/v1/sign", 202, 0.004);
 * m.signatures(3);
 * console.log(m.render({ jobsRunning: 0, jobsQueued: 0 }));
 * ```
 *
 * @module
 */

/** The latency histogram's upper bounds, in seconds. */
export const LATENCY_BUCKETS: readonly number[] = [
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

/** Values that are read when rendering rather than counted. */
export interface MetricGauges {
  /** Jobs running now. */
  readonly jobsRunning: number;
  /** Jobs waiting for a slot. */
  readonly jobsQueued: number;
  /** Valid tokens in the token file, when known. */
  readonly tokens?: number;
  /** The admission verdict cache, when the admission webhook is on. */
  readonly admissionCache?: {
    readonly hits: number;
    readonly misses: number;
    readonly resolutionHits: number;
    readonly running: number;
    readonly waiting: number;
  };
}

interface Histogram {
  readonly counts: number[];
  sum: number;
  count: number;
}

/**
 * Counters and histograms of one service instance.
 */
export class Metrics {
  #signatures = 0;
  readonly #images = new Map<string, number>();
  readonly #failures = new Map<string, number>();
  readonly #jobs = new Map<string, number>();
  readonly #requests = new Map<string, number>();
  readonly #latency = new Map<string, Histogram>();
  readonly #rejected = new Map<string, number>();
  readonly #reviews = new Map<string, number>();
  readonly #admissionImages = new Map<string, number>();

  /** Counts signatures written (layers added to `.sig` tags). */
  signatures(n = 1): void {
    this.#signatures += n;
  }

  /** Counts one image's outcome; `failed` outcomes also count as failures of the operation. */
  imageResult(operation: string, status: string): void {
    inc(this.#images, labels({ operation, status }));
    if (status === "failed") inc(this.#failures, labels({ operation }));
  }

  /** Counts a finished job. */
  jobFinished(operation: string, state: string): void {
    inc(this.#jobs, labels({ operation, state }));
  }

  /** Counts a request refused before any work (`unauthenticated`, `rate_limited`, `invalid`, `too_large`). */
  rejected(reason: string): void {
    inc(this.#rejected, labels({ reason }));
  }

  /** Counts one admission review answered (`endpoint`: validate or mutate). */
  admissionReview(endpoint: string, allowed: boolean, dryRun: boolean): void {
    inc(
      this.#reviews,
      labels({ endpoint, decision: allowed ? "allowed" : "denied", dry_run: String(dryRun) }),
    );
  }

  /**
   * Counts one image decided in an admission review, by category (`verified`, `allowlisted`, `rejected`,
   * `error`, `timeout`, `invalid`; `unchecked` for a review with nothing to check).
   */
  admissionImage(endpoint: string, category: string): void {
    inc(this.#admissionImages, labels({ endpoint, category }));
  }

  /** Records one answered request. */
  observeRequest(method: string, route: string, status: number, seconds: number): void {
    inc(this.#requests, labels({ method, route, status: String(status) }));
    const key = labels({ route });
    let h = this.#latency.get(key);
    if (!h) {
      h = { counts: LATENCY_BUCKETS.map(() => 0), sum: 0, count: 0 };
      this.#latency.set(key, h);
    }
    for (let i = 0; i < LATENCY_BUCKETS.length; i++) if (seconds <= LATENCY_BUCKETS[i]) h.counts[i]++;
    h.sum += seconds;
    h.count++;
  }

  /** The exposition text. */
  render(g: MetricGauges): string {
    const out: string[] = [];
    const family = (name: string, type: string, help: string, lines: string[]) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...lines);
    };
    /** A counter family with one series per label set of `map`. */
    const counters = (name: string, help: string, map: Map<string, number>) =>
      family(name, "counter", help, series(name, map));
    /** A family of one unlabelled series. */
    const single = (name: string, type: string, help: string, value: number) =>
      family(name, type, help, [`${name} ${value}`]);
    single("airlock_signatures_total", "counter", "Signatures written to registries.", this.#signatures);
    counters("airlock_images_total", "Images processed, by operation and result status.", this.#images);
    counters(
      "airlock_failures_total",
      "Images that failed, by operation (sign, validate, verify).",
      this.#failures,
    );
    counters("airlock_jobs_total", "Finished jobs, by operation and final state.", this.#jobs);
    counters(
      "airlock_requests_rejected_total",
      "Requests refused before any work, by reason.",
      this.#rejected,
    );
    single("airlock_jobs_running", "gauge", "Jobs running now.", g.jobsRunning);
    single("airlock_jobs_queued", "gauge", "Jobs waiting for a slot.", g.jobsQueued);
    if (g.tokens !== undefined) {
      single("airlock_tokens", "gauge", "Valid tokens in the token file.", g.tokens);
    }
    counters(
      "airlock_admission_reviews_total",
      "Admission reviews answered, by endpoint, decision and dry run.",
      this.#reviews,
    );
    counters(
      "airlock_admission_images_total",
      "Images decided in admission reviews, by endpoint and category.",
      this.#admissionImages,
    );
    if (g.admissionCache !== undefined) {
      const a = g.admissionCache;
      single(
        "airlock_admission_cache_hits_total",
        "counter",
        "Admission verdicts answered from the cache.",
        a.hits,
      );
      single(
        "airlock_admission_cache_misses_total",
        "counter",
        "Admission verdicts that needed a registry check.",
        a.misses,
      );
      single(
        "airlock_admission_tag_cache_hits_total",
        "counter",
        "Tag to digest resolutions answered from the cache.",
        a.resolutionHits,
      );
      single("airlock_admission_checks_running", "gauge", "Image checks running now.", a.running);
      single("airlock_admission_checks_waiting", "gauge", "Image checks waiting for a slot.", a.waiting);
    }
    counters(
      "airlock_http_requests_total",
      "HTTP requests answered, by method, route and status.",
      this.#requests,
    );
    const hist: string[] = [];
    for (const [key, h] of [...this.#latency.entries()].sort(([a], [b]) => a < b ? -1 : 1)) {
      const inner = key.slice(1, -1);
      LATENCY_BUCKETS.forEach((le, i) => {
        hist.push(`airlock_http_request_duration_seconds_bucket{${inner},le="${le}"} ${h.counts[i]}`);
      });
      hist.push(`airlock_http_request_duration_seconds_bucket{${inner},le="+Inf"} ${h.count}`);
      hist.push(`airlock_http_request_duration_seconds_sum${key} ${h.sum}`);
      hist.push(`airlock_http_request_duration_seconds_count${key} ${h.count}`);
    }
    family(
      "airlock_http_request_duration_seconds",
      "histogram",
      "HTTP request latency (until the answer's headers), by route.",
      hist,
    );
    return out.join("\n") + "\n";
  }
}

function inc(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

function escapeLabel(v: string): string {
  return v.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

function labels(l: Record<string, string>): string {
  return `{${Object.entries(l).map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(",")}}`;
}

function series(name: string, map: Map<string, number>): string[] {
  return [...map.entries()].sort(([a], [b]) => a < b ? -1 : 1).map(([k, v]) => `${name}${k} ${v}`);
}
