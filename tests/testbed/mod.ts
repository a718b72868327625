/**
 * The test bed: real registries (`docker-registry`), TLS certificates, a token server, a misbehaving proxy (a
 * fake, for fault injection), in-memory test images, the shared fixtures, running the real CLI (`cli.ts`), the
 * files it reads (`files.ts`) and the argument arrays of its list commands (`args.ts`). Import from here in tests
 * and benchmarks; `keys.ts` and `signatures.ts` (which use airlock's own key generator, verifier and signer) are
 * imported directly.
 *
 * @example
 * ```ts
 * import { buildMultiArchImage, pushImage, rawSink, startRegistry } from "../testbed/mod.ts";
 * await using reg = await startRegistry();
 * await pushImage(await buildMultiArchImage(), { registry: reg.host, repository: "a/b" }, "v1", rawSink(reg.url));
 * ```
 *
 * @module
 */
export * from "./ports.ts";
export * from "./certs.ts";
export * from "./registry.ts";
export * from "./token_server.ts";
export * from "./proxy.ts";
export * from "./images.ts";
export * from "./fixtures.ts";
export * from "./util.ts";
export * from "./static_registry.ts";
export * from "./softhsm.ts";
export * from "./fake_kms/vault.ts";
export * from "./fake_kms/aws.ts";
export * from "./fake_kms/gcp.ts";
export * from "./fake_kms/azure.ts";
export * from "./fake_kube_apiserver.ts";
export * from "./cli.ts";
export * from "./files.ts";
export * from "./args.ts";
