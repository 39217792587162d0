#!/usr/bin/env bash
# The demo: a local control plane, the X API emulator, the operator, the
# examples, and Secrets appearing in each environment's namespace (and
# coming back after a `kubectl delete`). Pass --keep to leave it running.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
check_prerequisites
need curl "install curl (apt-get install curl); the demo asks the X API emulator about old and new tokens"

keep=false
[ "${1:-}" = "--keep" ] && keep=true

work="$(mktemp -d -t keyguard-demo-XXXXXX)"
export KUBECONFIG="$work/kubeconfig"
cleanup() {
  for pid in ${op_pid:-} ${x_pid:-} ${cp_pid:-}; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

step "Building (first run builds etcd and kube-apiserver from Go modules: ~10 minutes)"
# Exactly the three binaries the demo runs: with --bin filters cargo builds
# only the named binaries, so the operator is named too. Not the
# workspace's feature set (`--workspace --bins`): that builds the scanner
# too, 80 s more of a first demo, and CI measured no gain from it (the
# tests then rebuild ~30 crates, which costs as much as the scanner).
cargo build -q -p keyguard-tests -p keyguard-operator \
  --bin keyguard-control-plane --bin keyguard-x-emulator --bin keyguard-operator
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

step "Starting the X API emulator (fresh app credentials for each source Secret) and the operator"
target/debug/keyguard-x-emulator --namespace team-news \
  --source-secret news-bot-prod-keys --source-secret news-bot-staging-keys \
  --write-secrets "$work/sources.yaml" > "$work/x-api-url" 2>/dev/null &
x_pid=$!
until [ -s "$work/x-api-url" ]; do kill -0 "$x_pid" || exit 1; sleep 0.1; done
x_api="$(head -1 "$work/x-api-url")"
echo "X API emulator at $x_api"
target/debug/keyguard-operator run --lease-namespace default --x-api-base "$x_api" --http-addr 127.0.0.1:0 --metrics-addr 127.0.0.1:0 --log-filter info > "$work/operator.log" 2>&1 &
op_pid=$!

step "Namespaces: the team's own, and two that opt in to receive its credentials"
show kubectl create namespace team-news
show kubectl create namespace news-prod
show kubectl create namespace news-staging
show kubectl label namespace news-prod news-staging keyguard.dev/allow-from-team-news=true

step "The source Secrets (what the developer portal issued) and the examples"
kubectl apply -f "$work/sources.yaml"
show kubectl apply -f examples/
show kubectl wait --for=condition=Ready --timeout=60s -n team-news twcred/news-bot

step "What users see"
show kubectl get twcred -A
show kubectl get secrets,roles,rolebindings -n news-prod -l app.kubernetes.io/managed-by=keyguard-operator
show kubectl describe secret -n news-prod twitter-credentials
show kubectl get secret -n news-staging twitter-credentials -o jsonpath='{.data}' | sed 's/"[^"]*"}/"…"}/; s/:"[^"]*"/:"…"/g'; echo
echo "(values are never printed; status holds fingerprints only:)"
show kubectl get twcred news-bot -n team-news -o jsonpath='{range .status.environments[*]}{.name}{"\t"}{.targetSecret}{"\t"}{.fingerprint}{"\trevision "}{.revision}{"\n"}{end}'

step "kubectl delete secret: the operator puts it back"
show kubectl delete secret -n news-prod twitter-credentials
for _ in $(seq 1 100); do kubectl get secret -n news-prod twitter-credentials >/dev/null 2>&1 && break; sleep 0.1; done
show kubectl get secret -n news-prod twitter-credentials

step "Rotation on request (the schedule says every 720h): the bearer token changes, X refuses the old one"
bearer() { kubectl get secret -n news-prod twitter-credentials -o jsonpath='{.data.bearerToken}' | base64 -d; }
x_status() { # HTTP status X gives a bearer token (sent decoded, never printed)
  local t="$1"; t="$(printf '%b' "${t//%/\\x}")"
  curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $t" "$x_api/1.1/application/rate_limit_status.json"
}
old="$(bearer)"
show kubectl annotate twcred news-bot -n team-news keyguard.dev/rotate-now="demo-$(date +%s)" --overwrite
for _ in $(seq 1 100); do [ "$(bearer)" != "$old" ] && break; sleep 0.1; done
new="$(bearer)"
echo "old bearer token: X answers HTTP $(x_status "$old"); new one: HTTP $(x_status "$new")"
show kubectl get twcred news-bot -n team-news -o jsonpath='{range .status.environments[*]}{.name}{"\tfingerprint "}{.fingerprint}{"\trevision "}{.revision}{"\tlast rotation "}{.lastRotation}{"\tnext "}{.nextRotation}{"\n"}{end}'
show kubectl get events -n team-news --field-selector reason=BearerTokenRotated

step "Verification with read-only calls, and usage against the cap"
show kubectl get twcred news-bot -n team-news -o jsonpath='{range .status.environments[*]}{.name}{": "}{range .conditions[?(@.type=="Verified")]}{.type}={.status} ({.message}){end}{"  accessLevel="}{.accessLevel}{"\n"}{end}'
show kubectl get twcred news-bot -n team-news -o jsonpath='{.status.usage}{"\n"}'

step "A reminder for what only a person can rotate (as if the API key were 91 days old)"
keys="$(kubectl get twcred news-bot -n team-news -o jsonpath='{.status.environments[0].sourceCredentials[*].key}')"
i=0; for k in $keys; do [ "$k" = apiKey ] && break; i=$((i+1)); done
past="$(date -u -d '91 days ago' +%Y-%m-%dT%H:%M:%SZ)"
# The operator may be writing status at the same moment and win: retry.
for _ in 1 2 3 4 5; do
  kubectl patch twcred news-bot -n team-news --subresource=status --type=json \
    -p "[{\"op\":\"replace\",\"path\":\"/status/environments/0/sourceCredentials/$i/since\",\"value\":\"$past\"}]" >/dev/null
  kubectl wait --for=condition=RotationDue --timeout=5s -n team-news twcred/news-bot >/dev/null 2>&1 && break
done
show kubectl wait --for=condition=RotationDue --timeout=5s -n team-news twcred/news-bot
show kubectl get twcred news-bot -n team-news -o jsonpath='{.status.environments[0].conditions[?(@.type=="RotationDue")].message}{"\n"}'

step "Resources that cannot sync say why"
show kubectl get twcred -n team-news minimal reply-bot -o custom-columns='NAME:.metadata.name,READY:.status.conditions[?(@.type=="Ready")].status,WHY:.status.conditions[?(@.type=="Ready")].message'
show kubectl get events -n team-news --sort-by=.lastTimestamp

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
