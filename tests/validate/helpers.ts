/**
 * Helpers of the `sign validate` tests: a throw-away ECDSA key (WebCrypto, not airlock's code), simple-signing
 * payloads written by hand, and crafted `.sig` tags pushed with plain `fetch`.
 *
 * @module
 */
import { join } from "node:path";
import { rawSink, sha256Digest, type TestRegistry } from "../testbed/mod.ts";

const enc = new TextEncoder();

/** The signature layer media type and annotation (containers/image, cosign). */
export const SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json";
export const SIG_ANNOTATION = "dev.cosignproject.cosign/signature";

/** A P-256 key made with WebCrypto; `sign` returns ASN.1 DER as cosign stores it. */
export interface RawKey {
  /** PKIX `PUBLIC KEY` PEM. */
  readonly pem: string;
  sign(payload: Uint8Array): Promise<Uint8Array>;
}

function b64(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

function derInt(b: Uint8Array): Uint8Array {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  let v = b.subarray(i);
  if (v[0] & 0x80) v = Uint8Array.of(0, ...v);
  return Uint8Array.of(2, v.length, ...v);
}

/** Makes a key pair; writes `<name>.pub` into `dir` when given. */
export async function rawKey(dir?: string, name = "raw"): Promise<RawKey & { pubPath?: string }> {
  const pair = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
    "sign",
    "verify",
  ]);
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", pair.publicKey));
  const body = b64(spki).replace(/.{64}/g, "$&\n").replace(/\n$/, "");
  const pem = `-----BEGIN PUBLIC KEY-----\n${body}\n-----END PUBLIC KEY-----\n`;
  let pubPath: string | undefined;
  if (dir) {
    pubPath = join(dir, `${name}.pub`);
    await Deno.writeTextFile(pubPath, pem);
  }
  return {
    pem,
    pubPath,
    async sign(payload) {
      const raw = new Uint8Array(
        await crypto.subtle.sign(
          { name: "ECDSA", hash: "SHA-256" },
          pair.privateKey,
          payload as Uint8Array<ArrayBuffer>,
        ),
      );
      const seq = [...derInt(raw.subarray(0, 32)), ...derInt(raw.subarray(32))];
      return Uint8Array.of(0x30, seq.length, ...seq);
    },
  };
}

/** A containers/image-style payload (compact JSON, `optional: null` as cosign writes it). */
export function payload(identity: string, digest: string): Uint8Array {
  return enc.encode(
    `{"critical":{"identity":{"docker-reference":"${identity}"},"image":{"docker-manifest-digest":"${digest}"},` +
      `"type":"cosign container image signature"},"optional":null}`,
  );
}

/** One layer of a crafted `.sig` manifest. */
export interface CraftedLayer {
  payload: Uint8Array;
  annotations?: Record<string, string>;
  mediaType?: string;
  /** Declare this size instead of the real one. */
  size?: number;
}

/** A signature layer: the payload signed with `key`. */
export async function signedLayer(key: RawKey, p: Uint8Array): Promise<CraftedLayer> {
  return { payload: p, annotations: { [SIG_ANNOTATION]: b64(await key.sign(p)) } };
}

/** `sha256-<hex>.sig`. */
export function sigTag(digest: string): string {
  return digest.replace(":", "-") + ".sig";
}

/**
 * Pushes a `.sig` manifest for `digest` in `repo` with the given layers (blobs uploaded once each; `repeat`
 * repeats the whole layer list). Returns the manifest bytes.
 */
export async function pushSig(
  reg: TestRegistry,
  repo: string,
  digest: string,
  layers: CraftedLayer[],
  repeat = 1,
): Promise<Uint8Array> {
  const sink = rawSink(reg.url, undefined, reg.client);
  const ref = { registry: reg.host, repository: repo };
  const descs: Record<string, unknown>[] = [];
  const uploaded = new Set<string>();
  for (const l of layers) {
    const d = await sha256Digest(l.payload);
    if (!uploaded.has(d)) {
      await sink.uploadBlob(ref, l.payload, { digest: d });
      uploaded.add(d);
    }
    descs.push({
      mediaType: l.mediaType ?? SIMPLE_SIGNING,
      digest: d,
      size: l.size ?? l.payload.length,
      ...(l.annotations ? { annotations: l.annotations } : {}),
    });
  }
  const config = enc.encode(
    `{"architecture":"","os":"","config":{},"rootfs":{"type":"layers","diff_ids":[]}}`,
  );
  const configDigest = await sha256Digest(config);
  await sink.uploadBlob(ref, config, { digest: configDigest });
  const all = Array.from({ length: repeat }, () => descs).flat();
  const manifest = enc.encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: {
      mediaType: "application/vnd.oci.image.config.v1+json",
      digest: configDigest,
      size: config.length,
    },
    layers: all,
  }));
  await sink.putManifest(
    { ...ref, tag: sigTag(digest) },
    manifest,
    "application/vnd.oci.image.manifest.v1+json",
  );
  return manifest;
}
