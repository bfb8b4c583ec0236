#!/usr/bin/env bash
# `make image`: the operator image, built with buildah (no container engine needed) from the
# Dockerfile's runtime stage. Base images cannot be pulled here, so the runtime base is made
# from Debian packages (glibc and libgcc, the libraries the binary links, plus the CA bundle
# and a nonroot user 65532 like distroless), and the binary is the one `make release` built.
#
#   IMAGE        the image to tag (default localhost/weir:dev)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
image=${IMAGE:-localhost/weir:dev}
base=localhost/weir-runtime-base:bookworm
buildah=(buildah --storage-driver vfs)

"$root/hack/install-packages.sh" buildah buildah

if ! "${buildah[@]}" inspect --type image "$base" >/dev/null 2>&1; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  echo "[image] making $base from Debian packages" >&2
  (cd "$work" && apt-get download libc6 libgcc-s1 >/dev/null 2>&1) \
    || { apt-get update -qq && (cd "$work" && apt-get download libc6 libgcc-s1 >/dev/null); }
  rootfs=$work/rootfs
  mkdir -p "$rootfs"/{etc/ssl/certs,home/nonroot,tmp}
  for deb in "$work"/*.deb; do
    dpkg-deb -x "$deb" "$rootfs"
  done
  # Documentation and the packages' scripts have no place in a runtime image.
  rm -rf "$rootfs"/usr/share/{doc,lintian,man,locale}
  cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' \
    > "$rootfs/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' > "$rootfs/etc/group"
  chmod 1777 "$rootfs/tmp"
  chown 65532:65532 "$rootfs/home/nonroot"
  container=$("${buildah[@]}" from scratch)
  "${buildah[@]}" copy --quiet "$container" "$rootfs" / >/dev/null
  "${buildah[@]}" config --user 65532:65532 "$container"
  "${buildah[@]}" commit --quiet --rm "$container" "$base" >/dev/null
fi

[ -x "$root/target/release/weir" ] || { echo "[image] run 'make release' first" >&2; exit 1; }
echo "[image] building $image" >&2
"${buildah[@]}" build --quiet --isolation chroot --layers=false \
  --build-arg BINARY=prebuilt --build-arg "RUNTIME_IMAGE=$base" \
  --tag "$image" "$root" >/dev/null
# The build leaves a working container on each untagged stage image, and the previous build's
# image is untagged now: neither is of use.
"${buildah[@]}" containers --format '{{.ContainerID}} {{.ImageName}}' \
  | awk 'NF == 1 {print $1}' | xargs -r "${buildah[@]}" rm >/dev/null 2>&1 || true
"${buildah[@]}" rmi --prune >/dev/null 2>&1 || true
echo "[image] $image" >&2
