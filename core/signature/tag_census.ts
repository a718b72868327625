/**
 * Which attachment tags (`sha256-<hex>.sig`/`.att`) a repository has, learnt from one tag listing per repository
 * per run instead of one `GET` per tag: a signer that finds its tag absent in the listing writes without reading
 * it. The listing counts as a read of every tag it names (or does not name) at the moment it was sent, so the
 * bounded-staleness rule of the writer applies to it like to any read: a write built on an old listing checks the
 * tag with a `HEAD` first.
 *
 * The listing is not used when it is unavailable (the registry refuses or does not offer it), too large
 * (more than {@linkcode CENSUS_MAX_TAGS} tags), or when an answer is no longer needed; then tags are read one by
 * one, as without a census. Only the attachment tags are kept, for a bounded number of repositories.
 *
 * @module
 */
import type { Reference } from "../reference.ts";
import type { RegistryClient } from "../registry/client.ts";
import { parseAttachmentTag } from "./attachments.ts";

/** Repositories with more tags than this are not listed (their tags are read one by one). */
export const CENSUS_MAX_TAGS = 50_000;
/** Tags asked for per page (`?n=`); the registry may send fewer and a `Link` to the next page. */
const PAGE_SIZE = 1000;
/** Repositories whose answer is kept (the oldest is forgotten first). */
const KEPT_REPOSITORIES = 256;

/** The attachment tags of one repository as one listing found them. */
export interface CensusAnswer {
  /** The `sha256-<hex>.sig`/`.att` tags the listing named. */
  readonly tags: ReadonlySet<string>;
  /** When the listing was sent (`performance.now()`): the age of what it says. */
  readonly sentAt: number;
  /** When its last page arrived. */
  readonly answeredAt: number;
}

/**
 * One tag listing per repository, shared by every image of the run in that repository.
 *
 * @example
 * ```ts
 * const census = new TagCensus(client);
 * const answer = await census.lookup(ref);
 * if (answer && !answer.tags.has(signatureTag(digest))) { } // absent when the listing was sent
 * ```
 */
export class TagCensus {
  readonly #client: RegistryClient;
  readonly #answers = new Map<string, Promise<CensusAnswer | undefined>>();

  /**
   * Creates a census that has listed nothing yet.
   *
   * @param client the registry client the listings are made with
   */
  constructor(client: RegistryClient) {
    this.#client = client;
  }

  /**
   * The attachment tags of `repo`'s repository, listed once (later calls share the first listing); `undefined`
   * when the listing cannot be used.
   */
  lookup(repo: Reference, signal?: AbortSignal): Promise<CensusAnswer | undefined> {
    const key = `${repo.registry}/${repo.repository}`;
    let answer = this.#answers.get(key);
    if (answer === undefined) {
      answer = this.#list(repo, signal);
      this.#answers.set(key, answer);
      while (this.#answers.size > KEPT_REPOSITORIES) {
        this.#answers.delete(this.#answers.keys().next().value!);
      }
    }
    return answer;
  }

  async #list(repo: Reference, signal?: AbortSignal): Promise<CensusAnswer | undefined> {
    const sentAt = performance.now();
    try {
      const all = await this.#client.listTags(repo, {
        pageSize: PAGE_SIZE,
        maxTags: CENSUS_MAX_TAGS,
        signal,
      });
      return {
        tags: new Set(all.filter((t) => parseAttachmentTag(t) !== undefined)),
        sentAt,
        answeredAt: performance.now(),
      };
    } catch {
      // Unavailable (refused, not offered, cancelled) or too large: the tags are read one by one.
      return undefined;
    }
  }
}
