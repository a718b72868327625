/**
 * Moved to `core/transfer/archive.ts`; kept for the importers that still name this path.
 *
 * @module
 */
export type { SaveReport } from "./transfer/archive.ts";
