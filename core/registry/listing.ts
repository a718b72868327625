/**
 * The distribution API's paginated lists: a repository's tags and a manifest's OCI referrers, both following
 * `Link: <…>; rel="next"` pages.
 *
 * @module
 */

import type { Reference } from "../reference.ts";
import { AirlockError } from "../errors.ts";
import type { Answer } from "./answer.ts";
import { refName, validateDigest } from "./names.ts";
import type { ApiCall, Requester } from "./requester.ts";
import { type Descriptor, MediaType } from "./types.ts";

/** Largest tag list page accepted. */
const tagListLimit = 32 * 1024 * 1024;
/** Pages followed at most before the pagination counts as a loop. */
const maxPages = 100_000;

/** Options of {@linkcode listTags}. */
export interface ListTagsOptions {
  /** Asks for `?n=` tags per page (the registry may cap it). */
  pageSize?: number;
  /** Fails with `TOO_LARGE` as soon as the repository is known to have more tags than this (pages stop). */
  maxTags?: number;
  /** Cancels the listing. */
  signal?: AbortSignal;
}

/** Options of {@linkcode listReferrers}. */
export interface ReferrersOptions {
  /** Only referrers of this artifact type. */
  artifactType?: string;
  /** Cancels the listing. */
  signal?: AbortSignal;
}

/**
 * Lists a repository's tags, following pagination (`RegistryClient.listTags`). `pageSize` asks for `?n=` per page (the registry may cap it).
 */
export async function listTags(
  http: Requester,
  ref: Reference,
  opts: ListTagsOptions = {},
): Promise<string[]> {
  const what = `listing tags of ${refName(ref)}`;
  const query = opts.pageSize !== undefined ? `?n=${Math.max(1, Math.floor(opts.pageSize))}` : "";
  const call = { method: "GET", target: `tags/list${query}`, headers: { accept: "application/json" } };
  const tags: string[] = [];
  for await (const page of pages(http, ref, { ...call, signal: opts.signal }, [200], what)) {
    const doc = parseJson(await page.bytes(tagListLimit, what), what);
    if (doc.tags === null || doc.tags === undefined) continue;
    if (!Array.isArray(doc.tags) || doc.tags.some((t) => typeof t !== "string")) {
      throw new AirlockError("REGISTRY_ERROR", `${what}: the answer's "tags" is not a list of strings`);
    }
    tags.push(...doc.tags);
    if (opts.maxTags !== undefined && tags.length > opts.maxTags) {
      throw new AirlockError("TOO_LARGE", `${what}: more than ${opts.maxTags} tags`);
    }
  }
  return tags;
}

/**
 * The OCI referrers of `digest` (`RegistryClient.referrers`), following pagination; filtered by `artifactType`
 * (by the registry when it says so in `OCI-Filters-Applied`, else here). `undefined` when the registry answers
 * 404 (no referrers API). Index pages are limited to `maxBytes`.
 *
 * @example
 * ```ts
 * const list = await listReferrers(http, ref, digest, { maxBytes: 4 * 1024 * 1024 });
 * if (list === undefined) {} // use the tag scheme (sha256-<hex>.sig)
 * ```
 */
export async function listReferrers(
  http: Requester,
  ref: Reference,
  digest: string,
  opts: ReferrersOptions & { maxBytes: number },
): Promise<Descriptor[] | undefined> {
  validateDigest(digest);
  const what = `listing referrers of ${digest} in ${refName(ref)}`;
  const query = opts.artifactType ? `?artifactType=${encodeURIComponent(opts.artifactType)}` : "";
  const call = {
    method: "GET",
    target: `referrers/${digest}${query}`,
    headers: { accept: MediaType.ociIndex },
  };
  const out: Descriptor[] = [];
  for await (const page of pages(http, ref, { ...call, signal: opts.signal }, [200, 404], what)) {
    if (page.status === 404) {
      await page.discard();
      return undefined;
    }
    const doc = parseJson(await page.bytes(opts.maxBytes, what), what);
    if (!Array.isArray(doc.manifests)) {
      throw new AirlockError("REGISTRY_ERROR", `${what}: the answer is not an image index`);
    }
    const filtered = (page.headers.get("oci-filters-applied") ?? "").split(",").map((s) => s.trim())
      .includes("artifactType");
    for (const d of doc.manifests as Descriptor[]) {
      if (typeof d !== "object" || d === null || typeof d.digest !== "string") continue;
      if (opts.artifactType && !filtered && d.artifactType !== opts.artifactType) continue;
      out.push(d);
    }
  }
  return out;
}

/**
 * The answers to `call` (a `pull` GET) and to the pages its `Link` headers lead to, each with a status in `ok`;
 * the consumer reads each body before asking for the next page.
 */
async function* pages(
  http: Requester,
  ref: Reference,
  call: ApiCall,
  ok: readonly number[],
  what: string,
): AsyncGenerator<Answer> {
  const seen = new Set<string>();
  let target = call.target;
  for (let page = 0;; page++) {
    const answer = await http.expect(ref, { ...call, actions: "pull", target }, ok, what);
    yield answer;
    const next = nextLink(answer.headers.get("link"), answer.url);
    if (!next) return;
    if (seen.has(next.href) || page > maxPages) {
      throw new AirlockError("REGISTRY_ERROR", `${what}: the registry's pagination loops (${next.pathname})`);
    }
    seen.add(next.href);
    target = next;
  }
}

/** The answer as a JSON object (REGISTRY_ERROR otherwise). */
function parseJson(bytes: Uint8Array, what: string): Record<string, unknown> {
  try {
    const doc = JSON.parse(new TextDecoder().decode(bytes));
    if (typeof doc === "object" && doc !== null && !Array.isArray(doc)) return doc;
  } catch {
    // fall through
  }
  throw new AirlockError("REGISTRY_ERROR", `${what}: the answer is not a JSON object`);
}

/** The `rel="next"` target of a `Link` header, resolved against the current URL. */
function nextLink(link: string | null, base: URL): URL | undefined {
  if (!link) return undefined;
  for (const part of link.split(/,(?=\s*<)/)) {
    const m = /^\s*<([^>]*)>(.*)$/.exec(part);
    if (!m) continue;
    if (/;\s*rel\s*=\s*"?(?:[^";]*\s)?next(?:\s[^";]*)?"?/i.test(m[2])) {
      try {
        return new URL(m[1], base);
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}
