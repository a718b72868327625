/**
 * airlock: sign and verify container images with sigstore signatures on air-gapped registries.
 *
 * The library under the `airlock` command: parse image lists, talk to registries, open keys from any backend,
 * and sign images in the layout containers/image (skopeo, podman, CRI-O) and cosign read.
 *
 * **What this module is.** A convenience for programs that embed airlock: the names most of them need, in one
 * import, taken from the folders' own entry points (`core/registry/mod.ts`, `core/signature/mod.ts`,
 * `core/config/mod.ts`, `core/transfer/mod.ts`, `core/keyless/mod.ts`, `backends/pkcs11/mod.ts`), as the Deno
 * standard library gives each package a `mod.ts` and lets every module be imported on its own. It is not a
 * boundary the rest of airlock goes through: `cli/`, `server/` and `core/` import the module that defines a name,
 * so that a command loads only what it uses (the sigstore engine, hono, yaml and the key backends stay behind
 * `import()`, `tests/startup_graph_test.ts`) and no module depends on this list.
 *
 * @example
 * ```ts
 * import { loadRegistriesD, openKey, parseReference, RegistryClient, Signer } from "airlock";
 *
 * const client = new RegistryClient();
 * const key = await openKey("cosign.key", { passphraseFile: "pass.txt" });
 * const signer = await Signer.create({ client, key, registriesD: await loadRegistriesD() });
 * const written = await signer.write(parseReference("registry.example/app:1.0"));
 * await signer.confirm(written);
 * ```
 *
 * @module
 */
export { VERSION } from "./core/version.ts";
export { BUILD_COMMIT } from "./core/build_info.ts";
export { AirlockError, type ErrorCode, errorMessage, isAirlockError } from "./core/errors.ts";

// references and image lists
export {
  formatReference,
  parseReference,
  type Reference,
  repositoryName,
  withDefaultTag,
  withDigest,
  withTag,
} from "./core/reference.ts";
export {
  type ImageListLine,
  type ImageListOverrides,
  loadImageList,
  parseImageList,
  type ResolvedImageLine,
  resolveImageList,
} from "./core/image_list.ts";
export { allowsPlatform, formatPlatform, type PlatformFilter } from "./core/platform.ts";

// registry
export { RegistryClient, type RegistryClientOptions } from "./core/registry/mod.ts";
export { isManifestUnknown } from "./core/registry/mod.ts";
export { createCredentialLookup, login, logout } from "./core/registry/mod.ts";
export * from "./core/registry/mod.ts";
export { type AttachmentsDecision, loadRegistriesD, useSigstoreAttachments } from "./core/config/mod.ts";

// keys
export { type KeyBackend, openKey, type OpenKeyOptions } from "./backends/key_backend.ts";
export type { PassphraseOptions } from "./backends/passphrase.ts";
export { generateKeyPair, writeKeyPair } from "./backends/keygen.ts";
export { parsePublicKeyPem, type PublicKey, verifySignature } from "./core/signature/mod.ts";
export { decodeBlobSignature, signBlob, verifyBlob } from "./core/blob.ts";

// signatures
export { buildSimpleSigningPayload, parseSimpleSigningPayload } from "./core/signature/mod.ts";
export { signatureTag } from "./core/signature/mod.ts";
export { readAttachment, type StoredAttachment } from "./core/signature/mod.ts";

// pipelines
export { type SelectOptions, selectTargets, type Target } from "./core/targets.ts";
export {
  type ImageSignResult,
  Signer,
  signImages,
  type SignOptions,
  type SignReport,
  type SignRunOptions,
} from "./core/sign.ts";
export { type ImageInspectInfo, inspectConfig, inspectImage, inspectRaw } from "./core/inspect.ts";
export { HangarLogger, type Logger, silentLogger } from "./core/report.ts";
export { type VerifiedSignature, verifyImage, type VerifyOptions, type VerifyResult } from "./core/verify.ts";
export type { TrustOptions } from "./core/signature/mod.ts";
export {
  type AttestationVerifyOptions,
  type AttestationVerifyResult,
  type DownloadAttestationOptions,
  downloadAttestations,
  PREDICATE_TYPE_SHORTHANDS,
  predicateTypeUri,
  type VerifiedAttestation,
  verifyImageAttestations,
} from "./core/verify_attestation.ts";
export {
  attestImage,
  type AttestOptions,
  type AttestResult,
  buildInTotoStatement,
  type StatementInput,
} from "./core/attest.ts";
export {
  type AppendOptions,
  type AttachmentAppend,
  AttachmentWriter,
  type AttachmentWriterOptions,
  type PendingAppend,
  type TagRead,
  type TagSighting,
} from "./core/signature/mod.ts";
export { APPLY_LATENCY_FACTOR, LatencyGauge, WRITE_WINDOW, type WriteWindow } from "./core/signature/mod.ts";
export { type CensusAnswer, TagCensus } from "./core/signature/mod.ts";
export type { NewAttachmentLayer } from "./core/signature/mod.ts";
export type { AttachmentHistory, AttachmentImageConfig } from "./core/signature/mod.ts";
export type { CosignClaims } from "./core/signature/mod.ts";
export { findReferrerBundles, type ReferrerBundle, type ReferrerBundles } from "./core/signature/mod.ts";
export {
  type CertificateIdentity,
  type IdentityPolicy,
  type InTotoStatement,
  loadTrustedRoot,
  parseTrustedRoot,
  publicGoodTrustedRoot,
  type SignedEntityInput,
  type SigstoreTrustedRoot,
  type VerificationResult,
  verifyKeyless,
  type VerifyKeylessOptions,
  verifyWithKey,
  type VerifyWithKeyOptions,
} from "./core/keyless/mod.ts";
export { evaluatePull, validateImage, validateImages } from "./core/validate.ts";
export {
  hangarValidatePolicy,
  loadPolicyFile,
  parsePolicy,
  type Policy,
  PolicyEvaluator,
} from "./core/config/mod.ts";

// the Kubernetes admission webhook (airlock serve --admission-config)
export {
  type AdmissionConfigFile,
  type AdmissionMode,
  type AdmissionSettings,
  loadAdmissionConfig,
  parseAdmissionConfig,
} from "./core/admission/config.ts";
export {
  type DecideOptions,
  decideReview,
  type DecisionRules,
  type ReviewDecision,
  type VerdictSource,
} from "./core/admission/decide.ts";
export {
  type AdmissionAnswer,
  type AdmissionRequest,
  admissionResponse,
  type JsonObject,
  parseAdmissionReview,
} from "./core/admission/review.ts";
export {
  type AdmissionEngine,
  type AdmissionEngineOptions,
  createAdmissionEngine,
  type ReviewResult,
} from "./core/admission/service.ts";
export type { CacheStats, CheckedVerdict } from "./core/admission/verdicts.ts";
export type { CosignModeSpec, PolicyModeSpec } from "./core/admission/config.ts";
export type { DecisionCategory, ImageDecision } from "./core/admission/decide.ts";
export type { Verdict } from "./core/admission/evaluate.ts";
export type { ImageGlob } from "./core/admission/glob.ts";
export type { ImageSlot } from "./core/admission/pod_images.ts";
export type { AdmissionOperation, GroupVersionKind, JsonPatchOperation } from "./core/admission/review.ts";
export { type WebhookConfigOptions, webhookConfigYaml } from "./core/admission/webhook_config.ts";

// copying images: mirror, save, load
export {
  type CopiedImage,
  type CopyOptions,
  type CopyStats,
  ImageCopier,
  type ImageSource,
} from "./core/transfer/mod.ts";
export {
  type CopyReport,
  loadMirrorList,
  mirrorImages,
  type ResolvedMirrorLine,
  resolveMirrorList,
} from "./core/transfer/mod.ts";
export { ArchiveReader } from "./core/transfer/mod.ts";
export { loadArchive, type LoadOptions, saveImages, type SaveOptions } from "./core/transfer/mod.ts";

// types that the API above refers to
export { COSIGN_KEY_PEM_TYPE, type EncryptedKeyPemType, SIGSTORE_KEY_PEM_TYPE } from "./backends/file.ts";
export type { GeneratedKeyPair, GenerateKeyPairOptions, KeyPairPaths } from "./backends/keygen.ts";
export type { SaveReport } from "./core/transfer/mod.ts";
export type { ArchiveImage } from "./core/transfer/mod.ts";
export type {
  HangarPolicyOptions,
  PolicyDecision,
  PolicyFulcio,
  PolicyImage,
  PolicyPki,
  PolicyReferenceMatch,
  PolicyRequirement,
  SignedByKeyType,
  SignedByRequirement,
  SigstoreSignedRequirement,
  UntrustedSignature,
} from "./core/config/mod.ts";
export type {
  ConfigSource,
  LoadRegistriesDOptions,
  NamespaceConfig,
  RegistriesDConfig,
  ScopedNamespace,
} from "./core/config/mod.ts";
export type { CopiedAttachment } from "./core/transfer/mod.ts";
export { HostLock } from "./core/host_lock.ts";
export type { ImageLineKind } from "./core/image_list.ts";
export type { InspectLayer, PlatformChoice } from "./core/inspect.ts";
export type { CosignLayer, DsseEnvelopeJson } from "./core/keyless/bundle.ts";
export type { SubjectAlternativeName } from "./core/keyless/certificate.ts";
export type { RekorEntryInfo } from "./core/keyless/rekor.ts";
export type { BundleEntity, VerifiedContent } from "./core/keyless/verify.ts";
export type { CopyRunOptions, LineCopyResult, MirrorListOverrides } from "./core/transfer/mod.ts";
export type { PlatformLike } from "./core/platform.ts";
export type { BlobStream, OpenBlobOptions } from "./core/registry/blob_stream.ts";
export type {
  BlobStreamUploadOptions,
  BlobUploadOptions,
  UploadedBlob,
} from "./core/registry/blob_upload.ts";
export type { ManifestReadOptions, ManifestWriteOptions, RequestOptions } from "./core/registry/mod.ts";
export type {
  CredentialMatch,
  CredentialOptions,
  CredentialSource,
  Env,
  LoginOptions,
  RepositoryCredentialLookup,
} from "./core/registry/mod.ts";
export type { ListTagsOptions, ReferrersOptions } from "./core/registry/listing.ts";
export type { Transport, TransportRequest, TransportResponse } from "./core/registry/transport.ts";
export type { LogFields, LogLevel } from "./core/report.ts";
export type { LineSignResult, PendingLayer, SignedTarget, WrittenImage, WrittenTarget } from "./core/sign.ts";
export type { LineOutput, LineResult, ListLineResult, ListReport } from "./core/list_run.ts";
export type { AttachmentLayer } from "./core/signature/mod.ts";
export type { AttachmentConfig, AttachmentManifest, AttachmentState } from "./core/signature/mod.ts";
export type { SimpleSigningPayload, SimpleSigningPayloadInput } from "./core/signature/mod.ts";
export type { EcCurve, KeyAlgorithm } from "./core/signature/mod.ts";
export type { TargetSelection } from "./core/targets.ts";
export type {
  ImageValidateResult,
  LineValidateResult,
  PullOptions,
  ValidatedTarget,
  ValidateOptions,
  ValidateReport,
  ValidateRunOptions,
} from "./core/validate.ts";
