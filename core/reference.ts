/**
 * Docker references: parsing and normalisation as containers/image and the docker CLI do it.
 * (Placeholder: the implementation lands with the reference module.)
 *
 * @module
 */

/** A parsed, fully normalised image reference. */
export interface Reference {
  /** Registry host with optional port, normalised: `docker.io` for Docker Hub (`index.docker.io` too). */
  readonly registry: string;
  /** Repository path inside the registry, e.g. `library/nginx` for the official Docker Hub image. */
  readonly repository: string;
  /** Tag, when the reference names one. */
  readonly tag?: string;
  /** Digest `algorithm:hex`, when the reference names one. */
  readonly digest?: string;
}
