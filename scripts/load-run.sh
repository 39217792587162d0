#!/usr/bin/env bash
# The operator's integration tests once more on a loaded machine: two
# CPU-bound processes run beside them for the whole run. A test that fails
# only here passes or fails by timing, not by what the operator does.
#
# usage: scripts/load-run.sh [TEST FILTER...]   (after scripts/test.sh, whose
# builds and caches it reuses, never another feature resolution;
# default: every operator_ and x_api_ test)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_kubectl
# Before the burners: a build, if one is needed, is not the load.
exe="$(control_plane_tests)"
[ -n "$exe" ] || { echo "cargo listed no control-plane tests (tests/tests/integration)" >&2; exit 1; }

burners=()
stop_burners() { kill "${burners[@]}" 2>/dev/null || true; }
trap stop_burners EXIT
for _ in 1 2; do
  (while :; do :; done) &
  burners+=("$!")
done
echo "==> operator integration tests beside ${#burners[@]} CPU-bound processes"
filters=("$@")
[ "${#filters[@]}" -gt 0 ] || filters=(operator_ x_api_)
run_tests tests "$exe" -q "${filters[@]}"
