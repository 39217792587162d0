# shellcheck shell=bash
# Shared by scripts/demo.sh and scripts/test.sh: checks what a fresh machine
# needs and installs what the project can build itself.

need() {
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "error: '$1' is required but not installed: $2" >&2
  exit 2
}

cache_dir() {
  echo "${KEYGUARD_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/twitter-keyguard}"
}

# kubectl is used the way a user uses it. Machines without one get
# Kubernetes' own kubectl built from the pinned Go module (same version as
# the control plane).
ensure_kubectl() {
  if command -v kubectl >/dev/null 2>&1; then return 0; fi
  local version=v1.37.2 bin
  bin="$(cache_dir)/kubectl-$version"
  if [ ! -x "$bin/kubectl" ]; then
    echo "kubectl not found: building $version from k8s.io/kubernetes (tests/control-plane/go.mod)" >&2
    (cd tests/control-plane && GOFLAGS=-mod=readonly GOTOOLCHAIN=local go build -trimpath -ldflags "-X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37" -o "$bin/kubectl" ./tools/kubectl)
  fi
  export PATH="$bin:$PATH"
}

check_prerequisites() {
  need cargo "install Rust from https://rustup.rs (stable 1.89 or newer)"
  need go "install Go 1.24 or newer (https://go.dev/dl); it builds etcd and kube-apiserver for the local control plane"
  need git "install git (apt-get install git)"
  need python3 "install Python 3 with venv (apt-get install python3 python3-venv); the tests run tweepy against the X API emulator"
  ensure_kubectl
}
