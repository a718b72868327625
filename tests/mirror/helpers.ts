/**
 * Helpers of the `mirror` / `save` / `load` tests: a registry reached with basic credentials, and raw reads
 * through plain `fetch`.
 *
 * @module
 */
import type { TestRegistry } from "../testbed/mod.ts";

/** A registry reached with fixed request headers (basic credentials) and its HTTP client (TLS CA). */
export interface Endpoint {
  /** `host:port`. */
  readonly host: string;
  /** `fetch(path)` against the registry, with the headers. */
  fetch(path: string, init?: RequestInit): Promise<Response>;
}

/** An {@linkcode Endpoint} for a test registry, with basic credentials when given. */
export function endpoint(reg: TestRegistry, basic?: [string, string]): Endpoint {
  return {
    host: reg.host,
    fetch(path, init = {}) {
      const headers = new Headers(init.headers);
      if (basic) headers.set("authorization", `Basic ${btoa(`${basic[0]}:${basic[1]}`)}`);
      return reg.fetch(path, { ...init, headers });
    },
  };
}

/** `GET` a manifest's exact bytes and digest header; `undefined` on 404. */
export async function rawManifest(
  ep: Endpoint,
  repo: string,
  ref: string,
): Promise<{ bytes: Uint8Array; digest: string | null; type: string | null } | undefined> {
  const res = await ep.fetch(`/v2/${repo}/manifests/${ref}`, {
    headers: {
      accept: [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
      ].join(", "),
    },
  });
  if (res.status === 404) {
    await res.body?.cancel();
    return undefined;
  }
  if (res.status !== 200) throw new Error(`GET manifest ${repo}:${ref}: ${res.status} ${await res.text()}`);
  return {
    bytes: new Uint8Array(await res.arrayBuffer()),
    digest: res.headers.get("docker-content-digest"),
    type: res.headers.get("content-type"),
  };
}

/** `HEAD` of a blob: whether the repository has it. */
export async function hasBlob(ep: Endpoint, repo: string, digest: string): Promise<boolean> {
  const res = await ep.fetch(`/v2/${repo}/blobs/${digest}`, { method: "HEAD" });
  await res.body?.cancel();
  return res.status === 200;
}
