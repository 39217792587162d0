#!/usr/bin/env bash
# Builds the operator and scanner images with buildah (daemonless, from
# Debian's packages; a FROM-scratch image needs no pull), then proves what a
# user relies on: each runs as 65532, has its entrypoint and OCI labels, no
# shell and nothing but its binary and a passwd entry, and the binary runs
# from the image's own root filesystem (chroot) with --help.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need buildah "apt-get install buildah (daemonless image builds)"

version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
revision="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
bin="target/static/$STATIC_TARGET/release"
echo "==> static binaries (glibc, crt-static)"
./scripts/static-binaries.sh

work="$(mktemp -d)"
b() { buildah --root "$work/storage" --runroot "$work/run" --storage-driver vfs "$@"; }
cleanup() { b rm --all >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
export BUILDAH_ISOLATION=chroot

fail() { echo "images: $*" >&2; exit 1; }

for name in keyguard-operator keyguard; do
  file="images/${name#keyguard-}.Containerfile"
  [ "$name" = keyguard ] && file=images/keyguard.Containerfile
  echo "==> image $name ($file)"
  ldd "$bin/$name" 2>&1 | grep -Eq "not a dynamic executable|statically linked" \
    || fail "$bin/$name is not static: $(ldd "$bin/$name" 2>&1 | head -3)"
  if [ "$name" = keyguard-operator ]; then
    grep -aqF "$JEMALLOC_CONF" "$bin/$name" \
      || fail "$bin/$name was built without jemalloc's configuration ($JEMALLOC_CONF)"
  fi
  b bud -q --layers=false -f "$file" \
    --build-arg "BINARY=$bin/$name" --build-arg "VERSION=$version" --build-arg "REVISION=$revision" \
    -t "localhost/$name:$version" . >/dev/null
  config="$(b inspect --format '{{.OCIv1.Config.User}}|{{.OCIv1.Config.Entrypoint}}|{{index .OCIv1.Config.Labels "org.opencontainers.image.version"}}|{{index .OCIv1.Config.Labels "org.opencontainers.image.licenses"}}|{{index .OCIv1.Config.Labels "org.opencontainers.image.source"}}' "localhost/$name:$version")"
  [ "$config" = "65532:65532|[/$name]|$version|Apache-2.0|https://github.com/twitter-keyguard/twitter-keyguard" ] \
    || fail "$name: unexpected image config: $config"
  ctr="$(b from -q "localhost/$name:$version")"
  root="$(b mount "$ctr")"
  files="$(cd "$root" && find . -mindepth 1 \( -type f -o -type l \) | sort | tr '\n' ' ')"
  [ "$files" = "./etc/passwd ./$name " ] || fail "$name: the image holds more than its binary: $files"
  [ ! -e "$root/bin/sh" ] || fail "$name: the image has a shell"
  chroot --userspec=65532:65532 "$root" "/$name" --help | head -1
  chroot --userspec=65532:65532 "$root" "/$name" --version
  b umount "$ctr" >/dev/null
  echo "    ok: user 65532, entrypoint /$name, OCI labels, no shell, runs from its own rootfs"
done

# IMAGES_OUT=DIR keeps both images as archives a runtime can load:
# `docker load -i`, `kind load image-archive`, `k3s ctr images import`.
if [ -n "${IMAGES_OUT:-}" ]; then
  mkdir -p "$IMAGES_OUT"
  for name in keyguard-operator keyguard; do
    archive="$IMAGES_OUT/$name-$version.tar"
    rm -f "$archive"
    b push -q "localhost/$name:$version" "docker-archive:$archive:localhost/$name:$version" >/dev/null
    # grep reads it all: with -q, tar could die of SIGPIPE under pipefail.
    tar -tf "$archive" | grep -x manifest.json >/dev/null || fail "$archive has no manifest.json"
    echo "==> $archive (localhost/$name:$version)"
  done
fi
