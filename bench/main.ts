/**
 * `deno task bench`: every benchmark of airlock, one after the other. Each prints its figures; none fails on timing.
 *
 * @module
 */
await import("./sign_bench.ts");
await import("./keys_bench.ts");
await import("./validate_bench.ts");
await import("./startup_bench.ts");
await import("./serve_bench.ts");
await import("./mirror_bench.ts");
await import("./admission_bench.ts");
await import("./list_bench.ts");
await import("./hostile_bench.ts");
