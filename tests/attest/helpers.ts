/**
 * Helpers of the attestation tests: running the real CLI, and the cosign v3 attestation fixture
 * (`vectors/cosign/oci-attestation.sigstore.json`) re-shaped as a referrer and as a legacy `.att` layer.
 *
 * @module
 */
import {
  airlock,
  type CliResult,
  fixturePath,
  putStaticBlob,
  putStaticManifest,
  type StaticContent,
} from "../testbed/mod.ts";
import { putStaticSignatureTag } from "../testbed/signatures.ts";

/** Runs `airlock ARGS…` (no `--tls-verify=false` added) in `home` (clean environment); Deno's lock notice removed. */
export async function run(home: string, args: string[], env?: Record<string, string>): Promise<CliResult> {
  return await airlock(args, { home, timeoutMs: 60_000, env, stripLockNotice: true });
}

const enc = new TextEncoder();

/** The cosign v3 referrer bundle fixture and what it says (from the file itself). */
export interface AttestationFixture {
  /** The bundle file bytes. */
  readonly bundle: Uint8Array;
  /** Its parsed JSON. */
  readonly json: {
    dsseEnvelope: { payload: string; payloadType: string; signatures: { sig: string; keyid?: string }[] };
    verificationMaterial: {
      certificate: { rawBytes: string };
      tlogEntries: {
        logIndex: string;
        logId: { keyId: string };
        integratedTime: string;
        inclusionPromise: { signedEntryTimestamp: string };
        canonicalizedBody: string;
      }[];
    };
  };
  /** The image digest its statement's subject names. */
  readonly digest: string;
  /** The statement's predicate type. */
  readonly predicateType: string;
  /** `trusted_root_pgi.json`. */
  readonly trustedRoot: string;
}

/** Reads the fixture. */
export async function attestationFixture(): Promise<AttestationFixture> {
  const bundle = await Deno.readFile(fixturePath("vectors", "cosign", "oci-attestation.sigstore.json"));
  const json = JSON.parse(new TextDecoder().decode(bundle));
  const statement = JSON.parse(atob(json.dsseEnvelope.payload));
  return {
    bundle,
    json,
    digest: `sha256:${statement.subject[0].digest.sha256}`,
    predicateType: statement.predicateType,
    trustedRoot: fixturePath("vectors", "cosign", "trusted_root_pgi.json"),
  };
}

/** The cosign v3 referrer manifest (spec/cosign.md §2.8) for the fixture, stored in `repo`. */
export async function putReferrer(
  content: StaticContent,
  repo: string,
  fx: AttestationFixture,
  bundle: Uint8Array = fx.bundle,
): Promise<{ digest: string; size: number }> {
  const layer = await putStaticBlob(content, repo, bundle);
  const empty = await putStaticBlob(content, repo, enc.encode("{}"));
  const bytes = enc.encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    artifactType: "application/vnd.dev.sigstore.bundle.v0.3+json",
    config: {
      mediaType: "application/vnd.oci.empty.v1+json",
      artifactType: "application/vnd.dev.sigstore.bundle.v0.3+json",
      digest: empty,
      size: 2,
    },
    layers: [{
      mediaType: "application/vnd.dev.sigstore.bundle.v0.3+json",
      digest: layer,
      size: bundle.length,
    }],
    subject: { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: fx.digest, size: 1234 },
    annotations: {
      "dev.sigstore.bundle.content": "dsse-envelope",
      "dev.sigstore.bundle.predicateType": fx.predicateType,
    },
  }));
  return { digest: await putStaticManifest(content, repo, bytes), size: bytes.length };
}

/** The referrers tag scheme: an OCI index at `sha256-<hex>` listing the referrer. */
export async function putReferrersTag(
  content: StaticContent,
  repo: string,
  fx: AttestationFixture,
  referrer: { digest: string; size: number },
): Promise<void> {
  await putStaticManifest(content, repo, {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.index.v1+json",
    manifests: [{
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      digest: referrer.digest,
      size: referrer.size,
      artifactType: "application/vnd.dev.sigstore.bundle.v0.3+json",
    }],
  }, { tag: fx.digest.replace(":", "-") });
}

/**
 * The envelope as cosign v2 wrote `.att` layers (`payloadType`, `payload`, `signatures[{keyid:"",sig}]`): these
 * are the bytes the fixture's Rekor `dsse` entry hashed (its `envelopeHash`).
 */
export function legacyEnvelope(fx: AttestationFixture, payload = fx.json.dsseEnvelope.payload): string {
  const e = fx.json.dsseEnvelope;
  return `{"payloadType":"${e.payloadType}","payload":"${payload}","signatures":[{"keyid":"","sig":"${
    e.signatures[0].sig
  }"}]}`;
}

/**
 * The fixture as a legacy `sha256-<hex>.att` layer: the envelope, and the annotations cosign writes (predicate
 * type, empty signature, the certificate PEM, the Rekor bundle built from the bundle's tlog entry).
 */
export async function putLegacyAtt(
  content: StaticContent,
  repo: string,
  fx: AttestationFixture,
  envelope: string = legacyEnvelope(fx),
): Promise<void> {
  const vm = fx.json.verificationMaterial;
  const t = vm.tlogEntries[0];
  const logID = Array.from(atob(t.logId.keyId), (c) => c.charCodeAt(0).toString(16).padStart(2, "0")).join(
    "",
  );
  const rekorBundle = JSON.stringify({
    SignedEntryTimestamp: t.inclusionPromise.signedEntryTimestamp,
    Payload: {
      body: t.canonicalizedBody,
      integratedTime: Number(t.integratedTime),
      logIndex: Number(t.logIndex),
      logID,
    },
  });
  const cert = `-----BEGIN CERTIFICATE-----\n${vm.certificate.rawBytes.match(/.{1,64}/g)!.join("\n")}\n` +
    "-----END CERTIFICATE-----\n";
  await putStaticSignatureTag(content, repo, fx.digest.replace(":", "-") + ".att", {
    mediaType: "application/vnd.dsse.envelope.v1+json",
    payload: enc.encode(envelope),
    annotations: {
      "dev.cosignproject.cosign/signature": "",
      "dev.sigstore.cosign/bundle": rekorBundle,
      "dev.sigstore.cosign/certificate": cert,
      "dev.sigstore.cosign/chain": "",
      predicateType: fx.predicateType,
    },
  });
}
