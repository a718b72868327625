/**
 * Registries whose `.sig` tags are built to exhaust a signer's or a verifier's memory (issue 15 §3): many images,
 * each with a signature manifest of thousands of layers or of very large payloads. They are served by the static
 * registry of the test bed — a FAKE, read-only, that speaks the distribution protocol; a real registry would
 * store the same bytes, but pushing gigabytes of blobs into one for every run would take minutes.
 *
 * Shared by `memory_test.ts` and `bench/hostile_bench.ts`.
 *
 * @module
 */
import {
  putSignatures,
  putStaticBlob,
  putStaticManifest,
  startStaticRegistry,
  type StaticContent,
  type StaticRegistry,
} from "../testbed/mod.ts";

const enc = new TextEncoder();
const SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json";
const OCI_CONFIG = "application/vnd.oci.image.config.v1+json";

/** The shape of the hostile `.sig` of every image. */
export interface HeavySigShape {
  /** Images (repositories `heavy/img<i>`, tag `v1`). */
  readonly images: number;
  /** Layers of each `.sig` manifest. */
  readonly layers: number;
  /** Bytes of each payload blob (every layer of one image names the same blob). */
  readonly payloadBytes: number;
}

/**
 * Fills `content` with `shape.images` single-arch linux/amd64 images, each with a `.sig` of `shape.layers`
 * simple-signing layers whose payload is junk of `payloadBytes` bytes carrying a (wrong) signature annotation:
 * everything must be read to find that none is valid. Returns the image references for `host`.
 *
 * @example
 * ```ts
 * await using reg = await startStaticRegistry(content);
 * const refs = await fillHeavy(content, reg.host, { images: 20, layers: 1000, payloadBytes: 1 << 20 });
 * ```
 */
export async function fillHeavy(
  content: StaticContent,
  host: string,
  shape: HeavySigShape,
): Promise<string[]> {
  const names: string[] = [];
  for (let i = 0; i < shape.images; i++) {
    const repo = `heavy/img${i}`;
    const config = enc.encode(
      `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`,
    );
    const configDigest = await putStaticBlob(content, repo, config);
    const digest = await putStaticManifest(content, repo, {
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: OCI_CONFIG, digest: configDigest, size: config.length },
      layers: [],
    }, { tag: "v1" });
    const payload = new Uint8Array(shape.payloadBytes).fill(0x61 + (i % 26));
    const sig = {
      mimeType: SIMPLE_SIGNING,
      payload,
      annotations: { "dev.cosignproject.cosign/signature": "AAAA" },
    };
    await putSignatures(content, repo, digest, Array.from({ length: shape.layers }, () => sig));
    names.push(`${host}/${repo}:v1`);
  }
  return names;
}

/** A static (FAKE) registry filled by {@linkcode fillHeavy}, with the references of its images. */
export interface HeavyRegistry extends StaticRegistry {
  /** The image references, `<host>/heavy/img<i>:v1`. */
  readonly images: string[];
}

/**
 * Starts the test bed's static registry and fills it with {@linkcode fillHeavy} (stopped again when filling fails).
 *
 * @example
 * ```ts
 * await using reg = await startHeavyRegistry({ images: 1, layers: 10_000, payloadBytes: 300 });
 * const [image] = reg.images;
 * ```
 */
export async function startHeavyRegistry(shape: HeavySigShape): Promise<HeavyRegistry> {
  const content: StaticContent = new Map();
  const registry = await startStaticRegistry(content);
  try {
    return Object.assign(registry, { images: await fillHeavy(content, registry.host, shape) });
  } catch (e) {
    await registry.stop();
    throw e;
  }
}

/** How many blob reads a fake registry served (`GET …/blobs/…`). */
export function blobReads(requests: readonly string[]): number {
  return requests.filter((r) => r.startsWith("GET ") && r.includes("/blobs/")).length;
}
