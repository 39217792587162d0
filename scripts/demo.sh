#!/usr/bin/env bash
# The demo: a local control plane, the TwitterCredential CRD, the examples,
# and what kubectl shows of them. Pass --keep to leave it running.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
check_prerequisites

keep=false
[ "${1:-}" = "--keep" ] && keep=true

work="$(mktemp -d -t keyguard-demo-XXXXXX)"
export KUBECONFIG="$work/kubeconfig"
cleanup() {
  [ -n "${cp_pid:-}" ] && kill "$cp_pid" 2>/dev/null && wait "$cp_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

step "Building (first run builds etcd and kube-apiserver from Go modules: ~10 minutes)"
cargo build -q -p keyguard-tests --bin keyguard-control-plane -p keyguard-operator
target/debug/keyguard-control-plane build >/dev/null

step "Starting a local control plane"
target/debug/keyguard-control-plane up --kubeconfig "$KUBECONFIG" &
cp_pid=$!
for _ in $(seq 1 300); do [ -s "$KUBECONFIG" ] && break; kill -0 "$cp_pid" || exit 1; sleep 0.2; done
show kubectl version

step "Installing the TwitterCredential CRD (generated from the Rust types)"
show kubectl apply -f crds/twittercredentials.keyguard.dev.yaml
show kubectl wait --for condition=established --timeout=30s crd/twittercredentials.keyguard.dev
until kubectl explain twcred >/dev/null 2>&1; do sleep 0.2; done

step "Applying the examples"
show kubectl create namespace team-news
show kubectl apply -f examples/

step "What users see"
show kubectl get twcred -A
show kubectl explain twcred.spec.environments.rotation

step "A bad resource is refused by the apiserver itself"
cat <<'YAML' | sed 's/^/    /'
spec.environments[0].rotation.bearerToken: {every: 720h, schedule: "0 3 * * 1"}
YAML
kubectl apply -f - <<'YAML' || true
apiVersion: keyguard.dev/v1alpha1
kind: TwitterCredential
metadata: {name: broken, namespace: team-news}
spec:
  environments:
    - name: production
      source: {secretRef: {name: keys}}
      target: {secretName: out, keys: [bearerToken]}
      rotation:
        bearerToken: {every: 720h, schedule: "0 3 * * 1"}
YAML

if $keep; then
  step "Running; KUBECONFIG=$KUBECONFIG. Ctrl-C stops it."
  wait "$cp_pid"
fi
