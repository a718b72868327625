#!/usr/bin/env bash
# `deno task compile [TARGET...]`: builds dist/airlock-<target> with `deno compile` for every release target (or
# the named ones), permissions listed explicitly in scripts/compile.ts (COMPILE_PERMISSIONS, with the reason for
# each), the git commit embedded. deno compile downloads the `denort` runtime of each target; on a build host
# without network set DENORT_BIN=/path/to/denort (same Deno version; builds the host's own target only).
set -euo pipefail
cd "$(dirname "$0")/.."
exec deno run --quiet --allow-read --allow-write=core/build_info.ts,dist --allow-env \
  --allow-run scripts/compile.ts "$@"
