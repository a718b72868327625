#!/usr/bin/env bash
# `deno task compile`: builds dist/airlock-<target> with `deno compile`, permissions listed explicitly.
# deno compile needs the `denort` runtime of each target. Where the network allows, deno downloads it; on
# air-gapped build hosts set DENORT_BIN=/path/to/denort (for the host's own target only).
# Usage: deno task compile [TARGET...]   (default: the host target)
set -euo pipefail
cd "$(dirname "$0")/.."
perms=(
  --allow-net        # registries, token servers, KMS endpoints
  --allow-read       # image lists, keys, auth files, certs.d, registries.d
  --allow-write      # failed lists, auth.json, generated keys
  --allow-env        # COSIGN_PASSWORD, REGISTRY_AUTH_FILE, XDG_*, HOME, proxies
  --allow-run        # docker-credential-* helpers, sigstore-kms-* plugins
  --allow-ffi        # PKCS#11 modules through Deno.dlopen
  --allow-sys=uid,gid,hostname
)
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  case "$(uname -m)" in
    x86_64) targets=(x86_64-unknown-linux-gnu) ;;
    aarch64) targets=(aarch64-unknown-linux-gnu) ;;
    *) echo "compile: unknown host architecture $(uname -m); name a target" >&2; exit 2 ;;
  esac
fi
mkdir -p dist
for t in "${targets[@]}"; do
  out="dist/airlock-$t"
  echo "compile: $t -> $out" >&2
  if ! deno compile --quiet "${perms[@]}" --target "$t" --output "$out" cli.ts; then
    if [ -z "${DENORT_BIN:-}" ]; then
      echo "compile: deno compile could not get the denort runtime for $t (no network to its download host?)." >&2
      echo "compile: set DENORT_BIN=/path/to/denort (a denort binary of the same Deno version for this target)." >&2
    fi
    exit 1
  fi
done
