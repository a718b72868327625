/**
 * `attest`: create an in-toto attestation for an image and attach it as cosign v2 does (spec/cosign.md §3.1), so
 * that an air-gapped site can attach its own SBOMs and scan results:
 *
 * 1. resolve the image to its manifest digest (fetched and hashed; the manifest must exist);
 * 2. build an in-toto **v0.1** statement whose only subject is the image (`name` = `registry/repository`,
 *    `digest.sha256` = the digest) with the predicate type and predicate cosign's `GenerateStatement` builds;
 * 3. sign its DSSE pre-authentication encoding with any key backend and wrap it in a DSSE envelope
 *    `{"payloadType":"application/vnd.in-toto+json","payload":…,"signatures":[{"keyid":"","sig":…}]}`;
 * 4. append it as one layer (`application/vnd.dsse.envelope.v1+json`, annotations `predicateType` and
 *    `dev.cosignproject.cosign/signature: ""`) to the `sha256-<hex>.att` tag — existing layers kept, and
 *    re-checked after the write so that a concurrent writer cannot make it disappear
 *    ({@linkcode AttachmentWriter}, shared with `sign`).
 *
 * No transparency-log entry is made (airlock works offline, like `cosign attest --tlog-upload=false`), so the
 * attestation verifies with `verify-attestation --key … --insecure-ignore-tlog`. Like cosign, registries.d is not
 * consulted: attestations are always written to the `.att` tag.
 *
 * @module
 */
import type { KeyBackend } from "../backends/key_backend.ts";
import { predicateTypeUri } from "./verify_attestation.ts";
import { AirlockError, errorMessage } from "./errors.ts";
import { parseReference, type Reference, withDefaultTag } from "./reference.ts";
import type { RegistryClient } from "./registry/client.ts";
import type { Logger } from "./report.ts";
import {
  ANNOTATION_PREDICATE_TYPE,
  ANNOTATION_SIGNATURE,
  DSSE_ENVELOPE_MEDIA_TYPE,
  dssePae,
  IN_TOTO_PAYLOAD_TYPE,
} from "./signature/attachments.ts";
import { AttachmentWriter } from "./signature/attachment_writer.ts";
import type { WriteWindow } from "./signature/write_window.ts";
import { goJsonString } from "./encoding/go_json.ts";
import { sha256Digest } from "./encoding/digest.ts";
import { base64Encode } from "./encoding/base64.ts";
import { parsePublicKeyPem, verifySignature } from "./signature/public_key.ts";
import { goMarshalAny } from "./encoding/go_marshal.ts";

/** The in-toto statement type cosign v2 `attest` writes. */
export const IN_TOTO_STATEMENT_V01 = "https://in-toto.io/Statement/v0.1";

/** What {@linkcode buildInTotoStatement} needs. */
export interface StatementInput {
  /** `--type`: a shorthand (`custom`, `slsaprovenance1`, `spdxjson`, …) or a predicate type URI. */
  readonly type: string;
  /** The predicate file's bytes. */
  readonly predicate: Uint8Array;
  /** The image manifest digest (`sha256:<hex>`). */
  readonly digest: string;
  /** The subject name: `registry/repository`. */
  readonly name: string;
  /** The time written into `custom` predicates, unix seconds. */
  readonly timestamp: number;
}

function rfc3339(unixSeconds: number): string {
  return new Date(Math.floor(unixSeconds) * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/**
 * The in-toto v0.1 statement cosign's `attestation.GenerateStatement` builds, compact, in Go struct order
 * (`_type`, `predicateType`, `subject`, `predicate`):
 *
 * - `custom` (the cosign custom type): predicate `{"Data": <the file as text>, "Timestamp": <RFC 3339>}`;
 * - `spdx`: the file as a JSON string;
 * - every other type: the file must be a JSON object; it is written back as Go writes a `map[string]any`
 *   (keys sorted). (cosign decodes the SLSA, in-toto link, vuln and OpenVEX shorthands into typed structs
 *   instead, which orders their fields by struct; the content is the same.)
 *
 * @throws {AirlockError} `INVALID_ARGUMENT` for an invalid type or a predicate that is not a JSON object
 */
export function buildInTotoStatement(input: StatementInput): Uint8Array {
  const uri = predicateTypeUri(input.type);
  const hex = input.digest.slice(input.digest.indexOf(":") + 1);
  if (!input.digest.startsWith("sha256:")) {
    throw new AirlockError("INVALID_ARGUMENT", `attestations name sha256 digests, not ${input.digest}`);
  }
  const text = new TextDecoder().decode(input.predicate);
  let predicate: string;
  if (uri === predicateTypeUri("custom")) {
    predicate = `{"Data":${goJsonString(text)},"Timestamp":${goJsonString(rfc3339(input.timestamp))}}`;
  } else if (input.type === "spdx") {
    predicate = goJsonString(text);
  } else {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      throw new AirlockError(
        "INVALID_ARGUMENT",
        `invalid JSON payload for predicate type ${uri}: ${errorMessage(e)}`,
        { cause: e },
      );
    }
    if (!value || typeof value !== "object" || Array.isArray(value)) {
      throw new AirlockError(
        "INVALID_ARGUMENT",
        `invalid JSON payload for predicate type ${uri}: not an object`,
      );
    }
    predicate = goMarshalAny(value);
  }
  return new TextEncoder().encode(
    `{"_type":${goJsonString(IN_TOTO_STATEMENT_V01)},"predicateType":${goJsonString(uri)},` +
      `"subject":[{"name":${goJsonString(input.name)},"digest":{"sha256":${goJsonString(hex)}}}],` +
      `"predicate":${predicate}}`,
  );
}

/**
 * The DSSE envelope cosign v2 writes into `.att` layers (key order `payloadType`, `payload`, `signatures`; an
 * empty `keyid`).
 */
export function dsseEnvelopeJson(
  payloadType: string,
  payload: Uint8Array,
  signature: Uint8Array,
): Uint8Array {
  return new TextEncoder().encode(
    `{"payloadType":${goJsonString(payloadType)},"payload":${goJsonString(base64Encode(payload))},` +
      `"signatures":[{"keyid":"","sig":${goJsonString(base64Encode(signature))}}]}`,
  );
}

/** Options of {@linkcode attestImage}. */
export interface AttestOptions {
  /** The registry client. */
  readonly client: RegistryClient;
  /** The signing key (any backend). */
  readonly key: KeyBackend;
  /** The predicate file's bytes (`--predicate`). */
  readonly predicate: Uint8Array;
  /** `--type`: a shorthand or a predicate type URI; default `custom`. */
  readonly type?: string;
  /** The clock, unix seconds (the `custom` predicate's timestamp). */
  readonly now?: () => number;
  /** The writing rule (`window` of {@linkcode AttachmentWriter}); smaller than the default only in tests. */
  readonly window?: WriteWindow;
  /** Debug lines. */
  readonly logger?: Logger;
  /** Cancels the registry requests. */
  readonly signal?: AbortSignal;
}

/** What {@linkcode attestImage} wrote. */
export interface AttestResult {
  /** The image manifest digest the statement names. */
  readonly digest: string;
  /** The predicate type URI. */
  readonly predicateType: string;
  /** The `.att` tag reference written. */
  readonly tag: string;
  /** The digest of the envelope layer. */
  readonly layerDigest: string;
  /** The in-toto statement signed. */
  readonly statement: Uint8Array;
  /** The DSSE envelope stored. */
  readonly envelope: Uint8Array;
}

/**
 * Attests an image (see the module doc).
 *
 * @throws {AirlockError} `INVALID_ARGUMENT` (type, predicate), `SIGNATURE_INVALID` when the key backend's
 * signature does not verify with its own public key, registry errors.
 *
 * @example
 * ```ts
 * const key = await openKey("cosign.key", { passphraseFile: "pass.txt" });
 * const r = await attestImage("registry.example/app:v1", {
 *   client, key, predicate: await Deno.readFile("sbom.json"), type: "spdxjson",
 * });
 * ```
 */
export async function attestImage(reference: Reference | string, opts: AttestOptions): Promise<AttestResult> {
  const ref = withDefaultTag(typeof reference === "string" ? parseReference(reference) : reference);
  const type = opts.type ?? "custom";
  const predicateType = predicateTypeUri(type);
  const publicKey = parsePublicKeyPem(await opts.key.publicKey());
  // 1. The digest, from the manifest bytes.
  const m = await opts.client.getManifest(ref.digest !== undefined ? { ...ref, tag: undefined } : ref, {
    signal: opts.signal,
  });
  // 2. The statement.
  const registry = ref.registry === "docker.io" ? "index.docker.io" : ref.registry;
  const statement = buildInTotoStatement({
    type,
    predicate: opts.predicate,
    digest: m.digest,
    name: `${registry}/${ref.repository}`,
    timestamp: opts.now?.() ?? Date.now() / 1000,
  });
  // 3. The DSSE envelope, its signature checked with the key's own public half before anything is written.
  const pae = dssePae(IN_TOTO_PAYLOAD_TYPE, statement);
  const signature = await opts.key.sign(pae);
  if (!(await verifySignature(publicKey, pae, signature))) {
    throw new AirlockError(
      "SIGNATURE_INVALID",
      "the key backend's signature does not verify with its public key",
    );
  }
  const envelope = dsseEnvelopeJson(IN_TOTO_PAYLOAD_TYPE, statement, signature);
  // 4. Appended to sha256-<hex>.att, then confirmed against concurrent writers.
  const writer = new AttachmentWriter(opts.client, { window: opts.window, logger: opts.logger });
  const layerDigest = sha256Digest(envelope);
  const pending = await writer.append({
    repo: ref,
    digest: m.digest,
    suffix: "att",
    layer: {
      payload: envelope,
      mediaType: DSSE_ENVELOPE_MEDIA_TYPE,
      annotations: { [ANNOTATION_SIGNATURE]: "", [ANNOTATION_PREDICATE_TYPE]: predicateType },
    },
    layerDigest,
    label: `attestation of ${registry}/${ref.repository}@${m.digest}`,
  }, { signal: opts.signal });
  // Not cancelled by `opts.signal`: once written, the attestation is confirmed (or the failure reported).
  await writer.confirm([pending]);
  return {
    digest: m.digest,
    predicateType,
    tag: `${ref.registry}/${ref.repository}:${m.digest.replace(":", "-")}.att`,
    layerDigest,
    statement,
    envelope,
  };
}
