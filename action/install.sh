#!/usr/bin/env bash
# Puts the keyguard that matches this action on the runner's PATH.
#
# The commit a release's Action tags point to holds action/sha256sums.txt
# (written by scripts/pin-action-checksums.sh): then, whatever the ref
# (`@v1`, `@<40-hex sha>`), the step downloads that release's asset and
# accepts only the bytes this tree pins, and a keyguard on PATH or in the
# tool cache only when its SHA-256 is the pinned one. Without pins, a
# version ref (`@v1.2.3`) checks the asset against the release's
# sha256sums.txt and a keyguard on PATH must be that exact version. A ref
# with neither (`@main`, a commit of main) builds this checkout with
# `cargo install --locked`: the source itself is what the ref pins.
#
# Environment (the action sets these from its context):
#   KEYGUARD_ACTION_REPOSITORY  owner/name of the action (github.action_repository)
#   KEYGUARD_ACTION_REF         the ref it was used at (github.action_ref)
#   GITHUB_SERVER_URL, RUNNER_OS, RUNNER_ARCH, RUNNER_TOOL_CACHE, RUNNER_TEMP, GITHUB_PATH
#   KEYGUARD_INSTALL_DEBUG=1    fallback builds the dev profile (tests reuse the workspace's build)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -1)"
[ -n "$version" ] || { echo "::error title=keyguard install::no version in $root/Cargo.toml"; exit 1; }
repository="${KEYGUARD_ACTION_REPOSITORY:-twitter-keyguard/twitter-keyguard}"
ref="${KEYGUARD_ACTION_REF:-}"
server="${GITHUB_SERVER_URL:-https://github.com}"
tool_cache="${RUNNER_TOOL_CACHE:-${RUNNER_TEMP:-/tmp}/tool-cache}"

fail() { echo "::error title=keyguard install::$*"; exit 1; }
use_dir() {
  if [ -n "${GITHUB_PATH:-}" ]; then echo "$1" >> "$GITHUB_PATH"; fi
  echo "keyguard $version: $1/keyguard"
}
version_of() { "$1" --version 2>/dev/null | awk '{print $2}'; }

# Which release asset fits this runner.
case "${RUNNER_OS:-$(uname -s)}/${RUNNER_ARCH:-$(uname -m)}" in
  Linux/X64 | Linux/x86_64) target=x86_64-unknown-linux-musl ;;
  Linux/ARM64 | Linux/aarch64) target=aarch64-unknown-linux-musl ;;
  macOS/X64 | Darwin/x86_64) target=x86_64-apple-darwin ;;
  macOS/ARM64 | Darwin/arm64) target=aarch64-apple-darwin ;;
  *) target="" ;;
esac

asset="keyguard-v$version-$target.tar.gz"
sha256() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | awk '{print $1}'
  else shasum -a 256 "$1" | awk '{print $1}'; fi
}

# 4. Build this checkout (the source is what the ref pins).
build_from_source() {
  command -v cargo >/dev/null 2>&1 \
    || fail "building keyguard from source needs cargo (add dtolnay/rust-toolchain before this step), or use a released version of the action (uses: $repository/action@v$version)"
  local profile=() dest="${RUNNER_TEMP:-/tmp}/keyguard-source-$version"
  [ "${KEYGUARD_INSTALL_DEBUG:-}" = 1 ] && profile=(--debug)
  cargo install --quiet --locked "${profile[@]}" --root "$dest" --path "$root/action" --bin keyguard
  use_dir "$dest/bin"
  exit 0
}

# What this tree pins, if anything: the asset's and its binary's SHA-256
# (carriage returns stripped: a file that went through Windows still pins).
pins="$here/sha256sums.txt"
pinned_asset="" pinned_binary=""
pinned() { tr -d '\r' < "$pins" | awk -v a="$1" '$2 == a {print $1}'; }
if [ -f "$pins" ] && [ -n "$target" ]; then
  pinned_asset="$(pinned "$asset")"
  pinned_binary="$(pinned "keyguard-v$version-$target/keyguard")"
fi
# A tree with pins trusts nothing weaker: no version check of a keyguard
# on PATH, no release's own sha256sums.txt. Without a pin for this runner
# it builds the tree itself.
if [ -f "$pins" ] && { [ -z "$pinned_asset" ] || [ -z "$pinned_binary" ]; }; then
  echo "::warning title=keyguard install::action/sha256sums.txt pins no keyguard $version for ${target:-this runner}: building this checkout from source"
  build_from_source
fi

# Is the keyguard at $1 the one this action may run? The pinned bytes, or
# without pins, this version.
trusted() {
  if [ -n "$pinned_binary" ]; then [ "$(sha256 "$1")" = "$pinned_binary" ]
  else [ "$(version_of "$1")" = "$version" ]; fi
}

# 1. A keyguard already on PATH.
if existing="$(command -v keyguard 2>/dev/null)"; then
  if trusted "$existing"; then
    echo "keyguard $version already on PATH: $existing"
    exit 0
  elif [ -n "$pinned_binary" ]; then
    echo "ignoring keyguard at $existing: its SHA-256 is not the $pinned_binary this action pins"
  else
    found="$(version_of "$existing")"
    echo "ignoring keyguard ${found:-of unknown version} at $existing: this action needs $version"
  fi
fi

# 2. The tool cache, filled by an earlier step or job on this runner.
cached="$tool_cache/keyguard/$version/${target:-source}"
if [ -x "$cached/keyguard" ] && [ -f "$cached.complete" ]; then
  if trusted "$cached/keyguard"; then
    use_dir "$cached"
    exit 0
  fi
  echo "ignoring the tool cache's keyguard at $cached: not the one this action pins; downloading again"
  rm -rf "$cached" "$cached.complete"
fi

# 3. The release asset: checked against this tree's pins, else against
# the release's sha256sums.txt.
download() {
  local tag="v$version"
  local base="$server/$repository/releases/download/$tag" work want got says
  work="$(mktemp -d "${RUNNER_TEMP:-/tmp}/keyguard-install.XXXXXX")"
  if [ -n "$pinned_asset" ]; then
    want="$pinned_asset" says="this action pins"
  else
    says="sha256sums.txt says"
    if ! curl -fsSL --retry 3 --retry-all-errors -o "$work/sha256sums.txt" "$base/sha256sums.txt" 2>"$work/err"; then
      echo "no release $tag of $repository ($(tail -1 "$work/err"))"
      return 1
    fi
    want="$(awk -v a="$asset" '$2 == a || $2 == "*" a {print $1}' "$work/sha256sums.txt")"
    [ -n "$want" ] || fail "release $tag lists no checksum for $asset in sha256sums.txt"
  fi
  if ! curl -fsSL --retry 3 --retry-all-errors -o "$work/$asset" "$base/$asset" 2>"$work/err"; then
    [ -n "$pinned_asset" ] || fail "release $tag has sha256sums.txt but $asset could not be downloaded"
    echo "release $tag's $asset could not be downloaded ($(tail -1 "$work/err"))"
    return 1
  fi
  got="$(sha256 "$work/$asset")"
  [ "$got" = "$want" ] \
    || fail "checksum mismatch for $asset: $says $want, the download is $got; refusing to install it"
  mkdir -p "$cached"
  tar -xzf "$work/$asset" -C "$cached" keyguard
  if [ -n "$pinned_binary" ] && [ "$(sha256 "$cached/keyguard")" != "$pinned_binary" ]; then
    rm -rf "$cached"
    fail "$asset holds a keyguard whose SHA-256 is not the $pinned_binary this action pins; refusing to install it"
  fi
  [ "$(version_of "$cached/keyguard")" = "$version" ] \
    || fail "$asset does not hold keyguard $version (it says: $("$cached/keyguard" --version 2>&1 | head -1))"
  touch "$cached.complete"
  rm -rf "$work"
}

if [ -n "$pinned_asset" ]; then
  # Pinned: the ref may be anything (a commit SHA is the secure way).
  if download; then
    use_dir "$cached"
    exit 0
  fi
  echo "::warning title=keyguard install::release v$version of $repository could not be downloaded; building this pinned checkout from source"
elif [[ "$ref" =~ ^v[0-9]+(\.[0-9]+){0,2}$ ]] && [ -n "$target" ]; then
  # A ref that names a version (v1, v1.2, v1.2.3) has a release.
  if download; then
    use_dir "$cached"
    exit 0
  fi
  echo "::warning title=keyguard install::$ref has no release $version for $target; building from source"
elif [ -z "$target" ]; then
  echo "no prebuilt keyguard for ${RUNNER_OS:-?}/${RUNNER_ARCH:-?}; building from source"
else
  echo "ref ${ref:-(none)} is not a release; building keyguard from source"
fi

build_from_source
