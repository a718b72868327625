/**
 * Moved to `core/transfer/mirror.ts`; kept for the importers that still name this path.
 *
 * @module
 */
export type { CopyReport, LineCopyResult } from "./transfer/mirror.ts";
