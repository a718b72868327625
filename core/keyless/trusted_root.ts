/**
 * Sigstore trusted roots (`trusted_root.json`: Fulcio CAs, Rekor and CT log keys, timestamp authorities), read
 * from a file or parsed JSON, never fetched: airlock makes no TUF call. The embedded public-good snapshot is the
 * default.
 *
 * sigstore-js treats a log key without `validFor.start` as valid since the beginning of time; sigstore-go (and so
 * cosign) rejects such a root (`tlog missing public key validity period start time`, conformance case
 * `trust-root-tlog-missing-validity-start_fail`). airlock follows sigstore-go: {@linkcode checkTrustedRoot}
 * rejects the whole root, for transparency logs and CT logs alike (sigstore-go parses both with the same code).
 *
 * @module
 */
import type { TrustedRoot } from "@sigstore/protobuf-specs";
import type { TrustMaterial } from "@sigstore/verify";
import { AirlockError, errorMessage } from "../errors.ts";
import { loadSigstore } from "./sigstore.ts";

/** A parsed, checked trusted root, and where it came from (for messages). */
export interface SigstoreTrustedRoot {
  /**
   * The root as `@sigstore/protobuf-specs` parses it (that package's type, not part of airlock's documented API).
   *
   * @ignore
   */
  readonly root: TrustedRoot;
  /** A file path, `embedded public-good root (…)`, or `inline JSON`. */
  readonly source: string;
}

/** The trusted-root media types airlock reads (protobuf-specs: v0.2 is current, v0.1 in both spellings). */
export const TRUSTED_ROOT_MEDIA_TYPES: readonly string[] = [
  "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
  "application/vnd.dev.sigstore.trustedroot.v0.1+json",
  "application/vnd.dev.sigstore.trustedroot.v0.2+json",
];

function rootError(source: string, detail: string, cause?: unknown): AirlockError {
  return new AirlockError("TRUSTED_ROOT_INVALID", `trusted root ${source}: ${detail}`, { cause });
}

/**
 * Checks what sigstore-js does not: the media type, that every transparency-log and CT-log key has key bytes, a
 * log ID and a validity period with a start (sigstore-go `ParseTransparencyLogs`), and that every certificate and
 * timestamp authority has a certificate chain.
 *
 * @throws {AirlockError} `TRUSTED_ROOT_INVALID` naming the first problem
 */
export function checkTrustedRoot(root: TrustedRoot, source = "inline JSON"): void {
  if (!TRUSTED_ROOT_MEDIA_TYPES.includes(root.mediaType)) {
    throw rootError(source, `unsupported media type "${root.mediaType}"`);
  }
  for (const [kind, logs] of [["tlog", root.tlogs], ["ctlog", root.ctlogs]] as const) {
    logs.forEach((log, i) => {
      const name = `${kind} ${i} (${log.baseUrl || "no baseUrl"})`;
      if (!log.publicKey?.rawBytes?.length) throw rootError(source, `${name} has no public key`);
      if (!log.logId?.keyId?.length) throw rootError(source, `${name} has no log ID`);
      if (!log.publicKey.validFor) {
        throw rootError(source, `${name} is missing its public key validity period`);
      }
      if (!log.publicKey.validFor.start) {
        throw rootError(source, `${name} is missing its public key validity period start time`);
      }
    });
  }
  for (
    const [kind, cas] of [["certificate authority", root.certificateAuthorities], [
      "timestamp authority",
      root.timestampAuthorities,
    ]] as const
  ) {
    cas.forEach((ca, i) => {
      if (!ca.certChain?.certificates.length) {
        throw rootError(source, `${kind} ${i} (${ca.uri || "no uri"}) has no certificates`);
      }
    });
  }
}

/**
 * Parses and checks a trusted root given as `trusted_root.json` text, bytes or an already parsed JSON value.
 *
 * @throws {AirlockError} `TRUSTED_ROOT_INVALID`
 */
export async function parseTrustedRoot(
  input: string | Uint8Array | Readonly<Record<string, unknown>>,
  source = "inline JSON",
): Promise<SigstoreTrustedRoot> {
  let json: unknown = input;
  if (typeof input === "string" || input instanceof Uint8Array) {
    try {
      json = JSON.parse(typeof input === "string" ? input : new TextDecoder().decode(input));
    } catch (e) {
      throw rootError(source, `not JSON: ${errorMessage(e)}`, e);
    }
  }
  if (!json || typeof json !== "object" || Array.isArray(json)) throw rootError(source, "not a JSON object");
  const { specs } = await loadSigstore();
  let root: TrustedRoot;
  try {
    root = specs.TrustedRoot.fromJSON(json);
  } catch (e) {
    throw rootError(source, errorMessage(e), e);
  }
  checkTrustedRoot(root, source);
  const handle: SigstoreTrustedRoot = { root, source };
  await trustMaterialFor(handle); // parses every key and certificate now, so that a bad root fails here
  return handle;
}

/**
 * Reads and checks a `trusted_root.json` file (cosign's `--trusted-root`).
 *
 * @throws {AirlockError} `IO_ERROR` when the file cannot be read, `TRUSTED_ROOT_INVALID` when it is malformed
 */
export async function loadTrustedRoot(path: string | URL): Promise<SigstoreTrustedRoot> {
  const name = path instanceof URL ? path.pathname : path;
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new AirlockError("IO_ERROR", `reading trusted root ${name}: ${errorMessage(e)}`, { cause: e });
  }
  return await parseTrustedRoot(bytes, name);
}

let publicGood: Promise<SigstoreTrustedRoot> | undefined;

/**
 * The embedded public-good trusted root (`PUBLIC_GOOD_ROOT_INFO` in `public_good_root.ts` gives its
 * date). Loaded on first use and shared.
 */
export function publicGoodTrustedRoot(): Promise<SigstoreTrustedRoot> {
  publicGood ??= (async () => {
    const { PUBLIC_GOOD_ROOT_INFO, PUBLIC_GOOD_TRUSTED_ROOT_JSON } = await import("./public_good_root.ts");
    return await parseTrustedRoot(
      PUBLIC_GOOD_TRUSTED_ROOT_JSON,
      `embedded public-good root (${PUBLIC_GOOD_ROOT_INFO.date})`,
    );
  })();
  return publicGood;
}

const materials = new WeakMap<SigstoreTrustedRoot, Promise<TrustMaterial>>();

/**
 * The sigstore-js trust material of a root, built once per root (keyless verification; no managed keys).
 *
 * @throws {AirlockError} `TRUSTED_ROOT_INVALID` when a key or certificate of the root cannot be parsed
 */
export function trustMaterialFor(root: SigstoreTrustedRoot): Promise<TrustMaterial> {
  let m = materials.get(root);
  if (!m) {
    m = (async () => {
      const { verify } = await loadSigstore();
      try {
        return verify.toTrustMaterial(root.root);
      } catch (e) {
        throw rootError(root.source, `cannot use a key or certificate: ${errorMessage(e)}`, e);
      }
    })();
    materials.set(root, m);
  }
  return m;
}
