/**
 * Moving images with their signatures: copying between registries ({@linkcode ImageCopier}, the index merged as
 * hangar's mirror merges it), mirror lists, and image archives for the air gap (`save` writes an OCI image
 * layout in a tar, `load` pushes one) with the tar reader and writer they use.
 *
 * @module
 */
export * from "./archive.ts";
export * from "./archive_reader.ts";
export * from "./copy.ts";
export * from "./index_merge.ts";
export * from "./mirror.ts";
export * from "./tar.ts";
