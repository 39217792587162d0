#!/usr/bin/env bash
# Writes the checksums the Action trusts into its own tree.
#
# usage: scripts/pin-action-checksums.sh DIST TAG OUT
#
# For each keyguard-TAG-<target>.tar.gz in DIST: the SHA-256 of the asset
# and of the keyguard binary inside it (as `keyguard-TAG-<target>/keyguard`).
# The release commits OUT (action/sha256sums.txt) on top of the tagged
# commit and points the Action's tags there, so a workflow that pins the
# Action by commit SHA also pins the bytes action/install.sh accepts: a
# replaced release asset, or a keyguard on PATH or in the tool cache that
# is not those bytes, is refused.
set -euo pipefail

[ $# -eq 3 ] || { echo "usage: $0 DIST TAG OUT" >&2; exit 2; }
dist="$1" tag="$2" out="$3"

sha256() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | awk '{print $1}'
  else shasum -a 256 "$1" | awk '{print $1}'; fi
}

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
{
  echo "# keyguard $tag: the release assets and the binary in each, pinned by this"
  echo "# commit (written by scripts/pin-action-checksums.sh; see action/install.sh)."
} > "$work/sums"
found=0
for asset in "$dist"/keyguard-"$tag"-*.tar.gz; do
  [ -f "$asset" ] || continue
  name="$(basename "$asset")"
  target="${name#"keyguard-$tag-"}"
  target="${target%.tar.gz}"
  mkdir "$work/$target"
  tar -xzf "$asset" -C "$work/$target" keyguard
  echo "$(sha256 "$asset")  $name" >> "$work/sums"
  echo "$(sha256 "$work/$target/keyguard")  keyguard-$tag-$target/keyguard" >> "$work/sums"
  found=$((found + 1))
done
[ "$found" -gt 0 ] || { echo "no keyguard-$tag-*.tar.gz in $dist" >&2; exit 1; }
cp "$work/sums" "$out"
echo "pinned $found keyguard assets of $tag in $out"
