#!/usr/bin/env bash
# Runs every test: formatting, lints, unit tests and the integration tests
# against a real local control plane (built once into the cache).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
check_prerequisites

# The images' static release build is the longest single build (~7 minutes
# on 2 cores) and needs nothing the tests make: it runs from the start in the
# background at the lowest priority, so it takes the CPU the integration
# tests leave idle (they wait on the apiserver most of the time) and the
# images step at the end finds it done. Job control gives it its own process
# group to stop on exit; not setsid: a new session is a new scheduler
# autogroup, which gets an equal share of the CPU whatever its nice value.
mkdir -p target
set -m
nice -n 19 ./scripts/static-binaries.sh > target/static-binaries.log 2>&1 &
static_build=$!
set +m
trap 'kill -- -"$static_build" 2>/dev/null || true' EXIT

echo "==> control plane (etcd + kube-apiserver from Go modules; cached after the first build)"
# The demo's own build (fresh after it): the control plane needs no more.
cargo build -q -p keyguard-tests --bin keyguard-control-plane
target/debug/keyguard-control-plane build
echo "==> helm, actionlint and promtool from their Go modules (cached after the first build)"
target/debug/keyguard-control-plane tools

echo "==> tweepy, pre-commit and jsonschema from PyPI, for the emulator's fidelity, hook and SARIF tests (cached virtualenv)"
venv="$(cache_dir)/python"
if ! "$venv/bin/python" -c 'import tweepy, jsonschema' 2>/dev/null || [ ! -x "$venv/bin/pre-commit" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check tweepy==4.17.0 pre-commit==4.0.1 jsonschema==4.23.0
fi

echo "==> the SARIF 2.1.0 JSON schema, from Microsoft's jest-sarif package on npm (cached)"
sarif="$(cache_dir)/sarif"
if [ ! -s "$sarif/sarif-2.1.0.json" ]; then
  need npm "install Node.js with npm (apt-get install npm); the SARIF schema comes from the npm registry"
  mkdir -p "$sarif"
  (cd "$sarif" && npm pack --silent @microsoft/jest-sarif@1.0.0-beta.0 >/dev/null \
    && tar xzf microsoft-jest-sarif-1.0.0-beta.0.tgz package/lib/schemas/sarif-2.1.0-rtm.5.json \
    && mv package/lib/schemas/sarif-2.1.0-rtm.5.json sarif-2.1.0.json && rm -rf package ./*.tgz)
fi

echo "==> shellcheck"
need shellcheck "apt-get install shellcheck (checks the scripts here and, through actionlint, the workflows' run: steps)"
shellcheck -x scripts/*.sh action/install.sh hooks/keyguard-pre-commit .ci/run

echo "==> layers: no import circle among the operator's or the scanner's modules"
python3 scripts/check-layers.py operator/src action/src
echo "==> function length: no non-test function over 60 lines in the libraries"
python3 scripts/check-function-length.py operator/src action/src xapi/src credentials/src

echo "==> rustfmt and clippy"
cargo fmt --all --check
cargo clippy -q --workspace --all-targets -- -D warnings
echo "==> doc comments: every intra-doc link resolves (a removed item cannot stay named)"
RUSTDOCFLAGS="-D rustdoc::broken_intra_doc_links -D rustdoc::private_intra_doc_links" \
  cargo doc -q --no-deps --workspace --document-private-items

echo "==> tests against the newest supported Kubernetes (v1.37.2)"
# One build of every test and binary (`cargo test --no-run` builds the
# binaries the tests run, the operator's too), then the executables
# themselves: the scanner's integration tests, which need no control plane,
# run beside the rest at a lower priority, in the time the control-plane
# tests spend waiting on the apiserver. (CI is CPU-bound all the same:
# docs/benchmarks.md, "Where CI's time goes, sixth session".)
#
# Cargo runs only here, before any test: the pre-commit hook test builds
# the scanner from a clone of this checkout into this target directory,
# and cargo hashes path packages by their path within the workspace, so
# that build rewrites the scanner's build-script output in place; a cargo
# run after it rebuilds the scanner (~100 s of CI). The steps below run
# the executables listed now.
cargo test -q --workspace --no-run
mapfile -t executables < <(test_executables)
echo "--> doc tests"
cargo test -q --workspace --doc
mkdir -p target/test-logs
scanner_log=target/test-logs/scanner-integration.log
scanner_exe="" KEYGUARD_CONTROL_PLANE_TESTS=""
for line in "${executables[@]}"; do
  IFS=$'\t' read -r dir name exe <<<"$line"
  [ "$name" = integration ] || continue
  [ "$dir" = "$PWD/action" ] && scanner_exe="$exe"
  [ "$dir" = "$PWD/tests" ] && KEYGUARD_CONTROL_PLANE_TESTS="$exe"
done
if [ -z "$scanner_exe" ] || [ -z "$KEYGUARD_CONTROL_PLANE_TESTS" ]; then
  echo "cargo listed no integration tests of action/ or tests/" >&2
  exit 1
fi
export KEYGUARD_CONTROL_PLANE_TESTS # for load-run.sh and the v1.34.4 step
set -m
run_tests action nice -n 10 "$scanner_exe" > "$scanner_log" 2>&1 &
scanner_tests=$!
set +m
trap 'kill -- -"$static_build" -"$scanner_tests" 2>/dev/null || true' EXIT
failed=()
for line in "${executables[@]}"; do
  IFS=$'\t' read -r dir name exe <<<"$line"
  [ "$exe" = "$scanner_exe" ] && continue
  echo "--> ${dir#"$PWD"/} $name"
  run_tests "$dir" "$exe" || failed+=("${dir#"$PWD"/} $name")
done
echo "--> action integration (run beside the above)"
wait "$scanner_tests" || failed+=("action integration")
cat "$scanner_log"
if [ "${#failed[@]}" -gt 0 ]; then
  printf 'failed: %s\n' "${failed[@]}" >&2
  exit 1
fi

echo "==> the tests that once depended on timing, again beside two CPU-bound processes (all operator tests: scripts/load-run.sh)"
# Not chart_rbac's every-rule test: it checks the chart's RBAC (nine operator
# runs, each without one rule), not timing, runs on both Kubernetes versions,
# and under load it alone took ~130 s of CI's 25-minute budget.
./scripts/load-run.sh operator_faults operator_caches operator_leader operator_lost_answers x_api_emulator chart_rbac \
  --skip every_rule_of_the_charts_rbac_is_needed

echo "==> the CRD, sync, chart, chart RBAC and chart values tests against the oldest supported Kubernetes (v1.34.4; built once)"
(
  ensure_kubectl v1.34.4 kubernetes-1.34.mod # within the skew of the older apiserver
  KEYGUARD_KUBERNETES=oldest target/debug/keyguard-control-plane build >/dev/null
  KEYGUARD_KUBERNETES=oldest run_tests tests "$KEYGUARD_CONTROL_PLANE_TESTS" -q \
    crd:: operator_sync:: chart:: chart_upgrade:: chart_rbac:: chart_values::
)

echo "==> keyguard scans its own repository (working tree and history)"
target/debug/keyguard scan .
target/debug/keyguard scan --history .

echo "==> container images (buildah, static binaries on scratch; waiting for their background build)"
wait "$static_build" || { cat target/static-binaries.log; echo "the static release build failed" >&2; exit 1; }
IMAGES_OUT=target/images ./scripts/images.sh
