#!/usr/bin/env bash
# Builds hack/kstatus (what Flux's and cli-utils' kstatus computes for a live object) and
# caches the binary by a hash of its sources, like hack/build-tools.sh caches the
# control-plane tools: "$WEIR_TOOLS_CACHE/kstatus-<hash>/kstatus" (default
# ~/.cache/weir/tools). Prints the binary's path; copies it to target/kstatus too.
# The module cache is Go's own: after the first build, nothing is downloaded again.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
src=$root/hack/kstatus
cache=${WEIR_TOOLS_CACHE:-$HOME/.cache/weir/tools}
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local

hash=$(cat "$src/go.mod" "$src/go.sum" "$src/main.go" | sha256sum | cut -c1-16)
dest=$cache/kstatus-$hash
if [ ! -x "$dest/kstatus" ]; then
  printf '[build-kstatus] building %s\n' "$dest" >&2
  mkdir -p "$dest"
  # Build beside the target and rename: a concurrent run never sees half a binary.
  tmp=$(mktemp "$dest/.kstatus.XXXXXX")
  (cd "$src" && go build -trimpath -ldflags "-s -w" -o "$tmp" .)
  mv -f "$tmp" "$dest/kstatus"
fi
mkdir -p "$root/target"
cp -f "$dest/kstatus" "$root/target/kstatus.tmp.$$"
mv -f "$root/target/kstatus.tmp.$$" "$root/target/kstatus"
printf '%s\n' "$dest/kstatus"
