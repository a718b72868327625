/**
 * The data shapes of the OCI distribution and image specifications that airlock reads and writes.
 *
 * @module
 */

/** Media types airlock knows by name. */
export const MediaType = {
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  ociEmpty: "application/vnd.oci.empty.v1+json",
  ociLayerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  dockerLayerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
  dockerSchema1: "application/vnd.docker.distribution.manifest.v1+json",
  dockerSchema1Signed: "application/vnd.docker.distribution.manifest.v1+prettyjws",
  cosignSimpleSigning: "application/vnd.dev.cosign.simplesigning.v1+json",
  inToto: "application/vnd.in-toto+json",
  sigstoreBundle: "application/vnd.dev.sigstore.bundle.v0.3+json",
} as const;

/** A platform as written in an index entry or derived from an image config. */
export interface Platform {
  /** CPU architecture, in Go names (`amd64`, `arm64`, …). */
  architecture: string;
  /** Operating system (`linux`, `windows`, …). */
  os: string;
  /** CPU variant (`v8`, `v7`). */
  variant?: string;
  /** Operating system version (Windows images). */
  "os.version"?: string;
  /** Required operating system features. */
  "os.features"?: string[];
}

/** An OCI content descriptor. */
export interface Descriptor {
  /** Media type of the referenced content. */
  mediaType: string;
  /** `algorithm:hex` digest of the referenced bytes. */
  digest: string;
  /** Size of the referenced bytes. */
  size: number;
  /** Where else the content may be downloaded from. */
  urls?: string[];
  /** Arbitrary metadata. */
  annotations?: Record<string, string>;
  /** The content itself, base64 (embedded descriptors). */
  data?: string;
  /** Platform of an index entry. */
  platform?: Platform;
  /** The artifact type of the referenced manifest. */
  artifactType?: string;
}

/** An image manifest (OCI or Docker schema 2). */
export interface ImageManifest {
  /** Always 2. */
  schemaVersion: 2;
  /** The manifest media type (optional in OCI, present in Docker schema 2). */
  mediaType?: string;
  /** The artifact type (OCI 1.1). */
  artifactType?: string;
  /** The config blob. */
  config: Descriptor;
  /** The layers, base first. */
  layers: Descriptor[];
  /** The manifest this one refers to (OCI 1.1 referrers). */
  subject?: Descriptor;
  /** Arbitrary metadata. */
  annotations?: Record<string, string>;
}

/** An image index (OCI) or manifest list (Docker). */
export interface ImageIndex {
  /** Always 2. */
  schemaVersion: 2;
  /** The index media type. */
  mediaType?: string;
  /** The artifact type (OCI 1.1). */
  artifactType?: string;
  /** The entries, usually one per platform. */
  manifests: Descriptor[];
  /** The manifest this one refers to (OCI 1.1 referrers). */
  subject?: Descriptor;
  /** Arbitrary metadata. */
  annotations?: Record<string, string>;
}

/** A manifest as fetched: the exact bytes, their digest (verified) and the media type the registry named. */
export interface FetchedManifest {
  /** The media type (from the body's `mediaType`, else the Content-Type header). */
  mediaType: string;
  /** `sha256:<hex>` of `bytes`, checked against what was asked for and against `Docker-Content-Digest`. */
  digest: string;
  /** The manifest bytes exactly as served. */
  bytes: Uint8Array;
}

/** Tells whether a media type names an index or manifest list. */
export function isIndexMediaType(mediaType: string): boolean {
  return mediaType === MediaType.ociIndex || mediaType === MediaType.dockerManifestList;
}

/** Tells whether a media type names a single image manifest (OCI or Docker schema 2). */
export function isImageManifestMediaType(mediaType: string): boolean {
  return mediaType === MediaType.ociManifest || mediaType === MediaType.dockerManifest;
}

/** Tells whether a media type names a Docker schema 1 manifest (recognised, never supported). */
export function isSchema1MediaType(mediaType: string): boolean {
  return mediaType === MediaType.dockerSchema1 || mediaType === MediaType.dockerSchema1Signed;
}

/** Credentials for one registry, as stored in auth.json / docker config.json or returned by a helper. */
export type Credential =
  | { readonly username: string; readonly password: string }
  /** An OAuth2 refresh token (`identitytoken` in auth files) exchanged at the token endpoint. */
  | { readonly identityToken: string };

/** Finds the credentials for a registry host (`host[:port]`, `docker.io` for Docker Hub); `undefined` = anonymous. */
export type CredentialLookup = (registry: string) => Promise<Credential | undefined>;
