# shellcheck shell=bash
# Shared by scripts/demo.sh and scripts/test.sh: checks what a fresh machine
# needs and installs what the project can build itself.

need() {
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "error: '$1' is required but not installed: $2" >&2
  exit 2
}

# The operator image's jemalloc configuration (scripts/static-binaries.sh
# builds it in; scripts/images.sh checks it is there): freed memory goes
# back to the kernel within seconds (docs/benchmarks.md, "Memory, fifth pass").
# shellcheck disable=SC2034 # read by the scripts that source this file
JEMALLOC_CONF="background_thread:true,dirty_decay_ms:5000,muzzy_decay_ms:0,narenas:2"

cache_dir() {
  echo "${KEYGUARD_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/twitter-keyguard}"
}

# kubectl is used the way a user uses it, but only within Kubernetes'
# version skew policy (kubectl within one minor version of the apiserver).
# Without one, or with one outside the skew (a distribution's 1.32 against
# the control plane's 1.37), Kubernetes' own kubectl is built from the
# pinned Go module and put first on PATH.
#   ensure_kubectl [VERSION MODFILE]   default: v1.37.2 from go.mod
ensure_kubectl() {
  local version="${1:-v1.37.2}" modfile="${2:-go.mod}" want have bin
  want="$(echo "$version" | cut -d. -f2)"
  have="$(kubectl version --client -o json 2>/dev/null | sed -n 's/.*"minor": *"\([0-9]*\).*/\1/p' | head -1 || true)"
  if [ -n "$have" ] && [ "$have" -ge $((want - 1)) ] && [ "$have" -le $((want + 1)) ]; then
    return 0
  fi
  bin="$(cache_dir)/kubectl-$version"
  if [ ! -x "$bin/kubectl" ]; then
    echo "kubectl ${have:+1.$have }is missing or outside the supported skew of $version: building $version from k8s.io/kubernetes (tests/control-plane/$modfile)" >&2
    (cd tests/control-plane && GOFLAGS=-mod=readonly GOTOOLCHAIN=local go build -trimpath -modfile "$modfile" \
      -ldflags "-X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$want" \
      -o "$bin/kubectl" ./tools/kubectl)
  fi
  export PATH="$bin:$PATH"
}

check_prerequisites() {
  need cargo "install Rust from https://rustup.rs (stable 1.89 or newer)"
  need go "install Go 1.24 or newer (https://go.dev/dl); it builds etcd and kube-apiserver for the local control plane"
  need git "install git (apt-get install git)"
  need python3 "install Python 3 with venv (apt-get install python3 python3-venv); the tests run tweepy against the X API emulator"
  ensure_kubectl v1.37.2 go.mod
}

# Where the images' static binaries are built (scripts/static-binaries.sh)
# and read from (scripts/images.sh).
# shellcheck disable=SC2034 # read by the scripts that source this file
STATIC_TARGET=x86_64-unknown-linux-gnu

# The test executables of `cargo test --workspace`, built first if needed:
# one "package directory<TAB>target name<TAB>executable" line each, in
# cargo's order. Always the whole workspace: `cargo test -p X` resolves
# features for X alone and rebuilds some 30 crates of the graph (~100 s on
# 2 cores); these are the very binaries the full run built.
test_executables() {
  cargo test -q --workspace --no-run --message-format=json-render-diagnostics | python3 -c '
import json, os, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(os.path.dirname(m["manifest_path"]), m["target"]["name"], m["executable"], sep="\t")
'
}

# The control-plane tests' executable (keyguard-tests' tests/integration):
# $KEYGUARD_CONTROL_PLANE_TESTS when scripts/test.sh has set it (no cargo
# run after its tests began; see there), else from cargo.
control_plane_tests() {
  [ -n "${KEYGUARD_CONTROL_PLANE_TESTS:-}" ] && { echo "$KEYGUARD_CONTROL_PLANE_TESTS"; return; }
  test_executables | awk -F'\t' -v dir="$PWD/tests" '$1 == dir && $2 == "integration" { print $3 }'
}

# Runs a test executable as `cargo test` does: in its package's directory.
run_tests() {
  local dir="$1" exe="$2"
  shift 2
  (cd "$dir" && "$exe" "$@")
}
