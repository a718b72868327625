/**
 * `inspect`: what `hangar inspect` (containers/image `ImageInspectInfo`) shows for an image, plus its raw
 * manifest and config bytes.
 *
 * @module
 */
import { parseImageConfig, parseImageDocument, parseImageManifest } from "./registry/manifest.ts";
import { AirlockError } from "./errors.ts";
import { formatReference, type Reference } from "./reference.ts";
import type { RegistryClient } from "./registry/client.ts";
import {
  type Descriptor,
  type FetchedManifest,
  type ImageManifest,
  isImageManifestMediaType,
  isIndexMediaType,
  MediaType,
  type Platform,
} from "./registry/types.ts";

/** The platform wanted when a reference names a list: the running machine's unless overridden. */
export interface PlatformChoice {
  /** Architecture (`amd64`, `arm64`, …); default: the running machine's. */
  arch?: string;
  /** Operating system; default: the running machine's. */
  os?: string;
  /** Variant (`v8`, `v7`); default: none. */
  variant?: string;
}

/** One layer in {@linkcode ImageInspectInfo.LayersData}. */
export interface InspectLayer {
  /** The layer media type. */
  MIMEType: string;
  /** The layer digest. */
  Digest: string;
  /** The layer size in bytes. */
  Size: number;
  /** The layer annotations, `null` when none. */
  Annotations: Record<string, string> | null;
}

/** containers/image `types.ImageInspectInfo`, keyed as hangar prints it (Go field names, in Go order). */
export interface ImageInspectInfo {
  /** The manifest tag (schema 1 only; always `""` here). */
  Tag: string;
  /** Creation time, RFC 3339 (`null` for OCI images without one). */
  Created: string | null;
  /** The Docker version that built the image, if recorded. */
  DockerVersion: string;
  /** Config labels. */
  Labels: Record<string, string> | null;
  /** Architecture from the config. */
  Architecture: string;
  /** Variant from the config. */
  Variant: string;
  /** Operating system from the config. */
  Os: string;
  /** Layer digests. */
  Layers: string[];
  /** Layer descriptors. */
  LayersData: InspectLayer[];
  /** Config environment. */
  Env: string[] | null;
  /** Config author. */
  Author: string;
}

const GO_ARCH: Record<string, string> = { x86_64: "amd64", aarch64: "arm64" };

/**
 * The platform the running program would pull, in Go's names (`linux/amd64`).
 */
export function runtimePlatform(): { os: string; arch: string } {
  return { os: Deno.build.os, arch: GO_ARCH[Deno.build.arch] ?? Deno.build.arch };
}

/**
 * Fetches the top-level manifest, exactly as the registry serves it (`inspect --raw`).
 */
export async function inspectRaw(
  client: RegistryClient,
  ref: Reference,
  signal?: AbortSignal,
): Promise<Uint8Array> {
  return (await client.getManifest(ref, { signal })).bytes;
}

/**
 * Fetches the config blob of the chosen platform instance, exactly as stored (`inspect --config`).
 */
export async function inspectConfig(
  client: RegistryClient,
  ref: Reference,
  choice: PlatformChoice = {},
  signal?: AbortSignal,
): Promise<Uint8Array> {
  const { manifest } = await resolveInstance(client, ref, choice, signal);
  return await client.getBlob(ref, manifest.config.digest, { signal });
}

/**
 * Builds the default `inspect` view of the chosen platform instance.
 *
 * @example
 * ```ts
 * const info = await inspectImage(client, ref);
 * console.log(renderInspectInfo(info));
 * ```
 */
export async function inspectImage(
  client: RegistryClient,
  ref: Reference,
  choice: PlatformChoice = {},
  signal?: AbortSignal,
): Promise<ImageInspectInfo> {
  const { manifest, fetched } = await resolveInstance(client, ref, choice, signal);
  if (
    manifest.config.mediaType !== MediaType.ociConfig && manifest.config.mediaType !== MediaType.dockerConfig
  ) {
    throw new AirlockError(
      "UNSUPPORTED_MEDIA_TYPE",
      `unsupported image-specific operation on artifact with type "${manifest.config.mediaType}"`,
    );
  }
  const configBytes = await client.getBlob(ref, manifest.config.digest, { signal });
  const config = parseImageConfig(configBytes, `config ${manifest.config.digest}`);
  const isOci = fetched.mediaType === MediaType.ociManifest;
  return {
    Tag: "",
    Created: config.created ? goTime(config.created) : (isOci ? null : "0001-01-01T00:00:00Z"),
    DockerVersion: config.docker_version ?? "",
    Labels: config.config?.Labels ?? null,
    Architecture: config.architecture ?? "",
    Variant: config.variant ?? "",
    Os: config.os ?? "",
    Layers: manifest.layers.map((l) => l.digest),
    LayersData: manifest.layers.map((l) => ({
      MIMEType: l.mediaType,
      Digest: l.digest,
      Size: l.size,
      Annotations: l.annotations ?? null,
    })),
    Env: config.config?.Env ?? null,
    Author: config.author ?? "",
  };
}

/**
 * Renders an inspect view as hangar does: Go's `json.MarshalIndent(info, "", "  ")` plus a newline.
 */
export function renderInspectInfo(info: ImageInspectInfo): string {
  return goEscape(JSON.stringify(info, null, 2)) + "\n";
}

/** Picks the single image a reference stands for: itself, or the list entry matching the platform. */
async function resolveInstance(
  client: RegistryClient,
  ref: Reference,
  choice: PlatformChoice,
  signal?: AbortSignal,
): Promise<{ manifest: ImageManifest; fetched: FetchedManifest }> {
  const top = await client.getManifest(ref, { signal });
  if (!isImageManifestMediaType(top.mediaType) && !isIndexMediaType(top.mediaType)) {
    throw new AirlockError("UNSUPPORTED_MEDIA_TYPE", `unsupported manifest MIME type "${top.mediaType}"`);
  }
  const doc = parseImageDocument(top, formatReference(ref));
  if (doc.kind === "image") return { manifest: doc.manifest, fetched: top };
  const entry = chooseEntry(doc.index.manifests, choice);
  if (!entry) {
    const rt = runtimePlatform();
    const kind = top.mediaType === MediaType.ociIndex ? "image index" : "manifest list";
    throw new AirlockError(
      "NOT_FOUND",
      `no image found in ${kind} for architecture "${choice.arch ?? rt.arch}", variant "${
        choice.variant ?? ""
      }", OS "${choice.os ?? rt.os}"`,
    );
  }
  const child = await client.getManifest({ ...ref, tag: undefined, digest: entry.digest }, { signal });
  if (!isImageManifestMediaType(child.mediaType)) {
    throw new AirlockError("UNSUPPORTED_MEDIA_TYPE", `unsupported manifest MIME type "${child.mediaType}"`);
  }
  return {
    manifest: parseImageManifest(child.bytes, `manifest ${child.digest}`, child.mediaType),
    fetched: child,
  };
}

/** containers/image's choice: exact os and arch; the variant must match when one is wanted. */
function chooseEntry(entries: Descriptor[], choice: PlatformChoice): Descriptor | undefined {
  const rt = runtimePlatform();
  const arch = choice.arch ?? rt.arch;
  const os = choice.os ?? rt.os;
  const matches = (p: Platform | undefined) =>
    p !== undefined && p.architecture === arch && p.os === os &&
    (choice.variant === undefined || choice.variant === "" || (p.variant ?? "") === choice.variant);
  const candidates = entries.filter((e) => matches(e.platform));
  // Without a wanted variant, prefer an entry without one, then the first (as containers/image's ranking does).
  return candidates.find((e) => !e.platform?.variant) ?? candidates[0];
}

/** Go's RFC 3339 with nanoseconds: trailing zeros of the fraction dropped, `Z` for UTC. */
function goTime(s: string): string {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$/.exec(s);
  if (!m) return s;
  const frac = (m[2] ?? "").replace(/0+$/, "");
  const zone = m[3] === "+00:00" ? "Z" : m[3];
  return `${m[1]}${frac ? "." + frac : ""}${zone}`;
}

/** Go's encoding/json escapes these even inside strings. */
function goEscape(json: string): string {
  return json.replace(/[<>&\u2028\u2029]/g, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
}
