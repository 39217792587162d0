#!/usr/bin/env bash
# Measures keyguard scan against ripgrep (same files, same keywords) on a
# large real tree, and history mode against `git cat-file` reading every
# object, with peak memory for each. Prints a Markdown table. Needs
# ripgrep, hyperfine and GNU time (Debian: ripgrep hyperfine time).
#   scripts/bench-scan.sh [TREE]      (default: the cargo registry sources)
set -euo pipefail
cd "$(dirname "$0")/.."
tree="${1:-$(find "$HOME/.cargo/registry/src" -mindepth 1 -maxdepth 1 -type d | sort | head -1)}"
for tool in rg hyperfine /usr/bin/time git; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install ripgrep hyperfine time git)" >&2; exit 2; }
done
cargo build -q --release -p keyguard-scan
kg="$PWD/target/release/keyguard"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
"$kg" rules --keywords > "$work/keywords"

size=$(du -sh "$tree" | cut -f1); files=$(find "$tree" -type f | wc -l)
echo "tree: $tree ($size, $files files), $(nproc) cores"

peak() { /usr/bin/time -f '%M' "$@" 2>&1 >/dev/null | tail -1; }

# gitleaks, when built from its Go module. Never give it /dev/null as the
# report path: it writes a temporary file and renames it over the target,
# which replaces the device with a regular file.
#   GOBIN=~/.cache/twitter-keyguard/bin go install github.com/zricethezav/gitleaks/v8@latest
gitleaks="${GITLEAKS:-$HOME/.cache/twitter-keyguard/bin/gitleaks}"
[ -x "$gitleaks" ] || gitleaks=""

echo "== tree mode vs ripgrep (same keywords, case-insensitive, hidden files, ignore files respected)"
hyperfine -N -w 2 -r 10 --export-markdown "$work/tree.md" \
  -n ripgrep "rg --hidden -i -F -c -f $work/keywords $tree" \
  -n keyguard "$kg scan --no-fail --format json -o /dev/null $tree" >/dev/null
cat "$work/tree.md"
echo "peak RSS: ripgrep $(peak rg --hidden -i -F -c -f "$work/keywords" "$tree") KiB, keyguard $(peak "$kg" scan --no-fail --format json -o /dev/null "$tree") KiB"
if [ -n "$gitleaks" ]; then
  hyperfine -w 1 -r 3 --export-markdown "$work/gl-tree.md" -i \
    -n "gitleaks dir" "$gitleaks dir --no-banner --exit-code 0 --report-format json --report-path $work/gitleaks.json $tree" >/dev/null
  tail -1 "$work/gl-tree.md"
  echo "peak RSS: gitleaks dir $(peak "$gitleaks" dir --no-banner --exit-code 0 --report-format json --report-path "$work/gitleaks.json" "$tree") KiB"
fi

# History: a repository whose history commits the tree crate by crate.
repo="${KEYGUARD_BENCH_REPO:-$HOME/.cache/twitter-keyguard/bench-history}"
if [ ! -d "$repo/.git" ]; then
  echo "building $repo: one commit per crate of $tree"
  mkdir -p "$repo"; git -C "$repo" init -q; git -C "$repo" config gc.auto 0
  for crate in "$tree"/*/; do
    name=$(basename "$crate")
    rm -rf "$repo/src"; mkdir -p "$repo/src"; cp -r "$crate" "$repo/src/$name"
    git -C "$repo" add -A >/dev/null
    git -C "$repo" -c user.name=bench -c user.email=bench@localhost commit -qm "$name" --no-verify >/dev/null
  done
  git -C "$repo" gc -q
fi
# Each history against git reading every object of it, then peak memory.
bench_history() {
  local repo="$1" what="$2" objects commits
  objects=$(git -C "$repo" count-objects -vH | awk '/size-pack/ {print $2 $3}')
  commits=$(git -C "$repo" rev-list --all --count)
  echo "== history mode vs git cat-file --batch-all-objects --batch: $what ($commits commits, pack $objects)"
  hyperfine -N -w 1 -r 5 --export-markdown "$work/history.md" \
    -n "git cat-file" "git -C $repo cat-file --batch-all-objects --batch" \
    -n keyguard "$kg scan --history --no-fail --format json -o /dev/null $repo" >/dev/null
  cat "$work/history.md"
  if [ -n "$gitleaks" ]; then
    hyperfine -w 0 -r 1 --export-markdown "$work/gl-git.md" -i \
      -n "gitleaks git" "$gitleaks git --no-banner --exit-code 0 --report-format json --report-path $work/gitleaks.json $repo" >/dev/null
    tail -1 "$work/gl-git.md"
    echo "peak RSS: gitleaks git $(peak "$gitleaks" git --no-banner --exit-code 0 --report-format json --report-path "$work/gitleaks.json" "$repo") KiB"
  fi
  echo "peak RSS: git cat-file $(peak git -C "$repo" cat-file --batch-all-objects --batch) KiB, keyguard $(peak "$kg" scan --history --no-fail --format json -o /dev/null "$repo") KiB"
}
bench_history "$repo" "one commit per crate, every blob new"

# A long history of small edits (a real project's shape: thousands of
# commits, most blobs a small change of the one before), built
# reproducibly from the same tree by git fast-import.
long="${KEYGUARD_BENCH_LONG_REPO:-$HOME/.cache/twitter-keyguard/bench-long-history}"
if [ ! -d "$long/.git" ]; then
  echo "building $long: 4,500 commits of small edits to 400 files of $tree"
  git init -q "$long"; git -C "$long" config gc.auto 0
  python3 scripts/make-long-history.py "$tree" 4500 | git -C "$long" fast-import --quiet
  git -C "$long" symbolic-ref HEAD refs/heads/main
  git -C "$long" gc -q
fi
bench_history "$long" "4,500 commits of small edits"

# The same history with 200 commits that each add a credential: placing
# every finding at its first commit must not cost more than the scan.
leaky="${KEYGUARD_BENCH_LEAKY_REPO:-$HOME/.cache/twitter-keyguard/bench-long-history-200-leaks}"
if [ ! -d "$leaky/.git" ]; then
  git init -q "$leaky"; git -C "$leaky" config gc.auto 0
  python3 scripts/make-long-history.py "$tree" 4500 200 | git -C "$leaky" fast-import --quiet
  git -C "$leaky" symbolic-ref HEAD refs/heads/main
  git -C "$leaky" gc -q
fi
echo "findings in the 200-leak history: $("$kg" scan --history --no-fail --format json "$leaky" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["findings"]))')"
bench_history "$leaky" "the same with 200 commits that each add a credential"
