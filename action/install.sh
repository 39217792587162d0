#!/usr/bin/env bash
# Puts the keyguard that matches this action on the runner's PATH.
#
# A tagged ref (`uses: …@v1.2.3` or `@v1`) downloads the release asset for
# the runner's platform, checks its SHA-256 against the release's
# sha256sums.txt and keeps it in the runner's tool cache; a keyguard already
# on PATH is used only when it is that exact version. A ref with no release
# (`@main`, a commit) builds this checkout with `cargo install --locked`.
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

# 1. A keyguard already on PATH, when it is this version.
if existing="$(command -v keyguard 2>/dev/null)"; then
  found="$(version_of "$existing")"
  if [ "$found" = "$version" ]; then
    echo "keyguard $version already on PATH: $existing"
    exit 0
  fi
  echo "ignoring keyguard ${found:-of unknown version} at $existing: this action needs $version"
fi

# 2. The tool cache, filled by an earlier step or job on this runner.
cached="$tool_cache/keyguard/$version/${target:-source}"
if [ -x "$cached/keyguard" ] && [ -f "$cached.complete" ] && [ "$(version_of "$cached/keyguard")" = "$version" ]; then
  use_dir "$cached"
  exit 0
fi

sha256() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | awk '{print $1}'
  else shasum -a 256 "$1" | awk '{print $1}'; fi
}

# 3. The release asset, for a tag.
download() {
  local tag="v$version" asset="keyguard-v$version-$target.tar.gz"
  local base="$server/$repository/releases/download/$tag" work
  work="$(mktemp -d "${RUNNER_TEMP:-/tmp}/keyguard-install.XXXXXX")"
  if ! curl -fsSL --retry 3 --retry-all-errors -o "$work/sha256sums.txt" "$base/sha256sums.txt" 2>"$work/err"; then
    echo "no release $tag of $repository ($(tail -1 "$work/err"))"
    return 1
  fi
  local want
  want="$(awk -v a="$asset" '$2 == a || $2 == "*" a {print $1}' "$work/sha256sums.txt")"
  [ -n "$want" ] || fail "release $tag lists no checksum for $asset in sha256sums.txt"
  curl -fsSL --retry 3 --retry-all-errors -o "$work/$asset" "$base/$asset" \
    || fail "release $tag has sha256sums.txt but $asset could not be downloaded"
  local got
  got="$(sha256 "$work/$asset")"
  [ "$got" = "$want" ] \
    || fail "checksum mismatch for $asset: sha256sums.txt says $want, the download is $got; refusing to install it"
  mkdir -p "$cached"
  tar -xzf "$work/$asset" -C "$cached" keyguard
  [ "$(version_of "$cached/keyguard")" = "$version" ] \
    || fail "$asset does not hold keyguard $version (it says: $("$cached/keyguard" --version 2>&1 | head -1))"
  touch "$cached.complete"
  rm -rf "$work"
}

# A ref that names a version (v1, v1.2, v1.2.3) has a release.
if [[ "$ref" =~ ^v[0-9]+(\.[0-9]+){0,2}$ ]] && [ -n "$target" ]; then
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

# 4. Build this checkout.
command -v cargo >/dev/null 2>&1 \
  || fail "building keyguard from source needs cargo (add dtolnay/rust-toolchain before this step), or use a released version of the action (uses: $repository/action@v$version)"
profile=()
[ "${KEYGUARD_INSTALL_DEBUG:-}" = 1 ] && profile=(--debug)
dest="${RUNNER_TEMP:-/tmp}/keyguard-source-$version"
cargo install --quiet --locked "${profile[@]}" --root "$dest" --path "$root/action" --bin keyguard
use_dir "$dest/bin"
