#!/usr/bin/env bash
# Renders deploy/ from the chart, for a kubectl-only install (as cert-manager
# and External Secrets publish): deploy/crds.yaml (the CRD alone) and
# deploy/install.yaml (namespace keyguard-system, the CRD, least-privilege
# RBAC, the admission policy and the operator). A test fails when these
# drift from the chart; releases attach them.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -p keyguard-tests --bin keyguard-control-plane
helm="$(target/debug/keyguard-control-plane tools | sed -n 1p)"
header="# Generated from charts/twitter-keyguard by scripts/render-manifests.sh: do not edit."
mkdir -p deploy
{
  echo "$header"
  "$helm" template twitter-keyguard charts/twitter-keyguard -n keyguard-system --show-only templates/crds.yaml
} > deploy/crds.yaml
{
  echo "$header"
  printf -- '---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: keyguard-system\n'
  "$helm" template twitter-keyguard charts/twitter-keyguard -n keyguard-system
} > deploy/install.yaml
echo "wrote deploy/crds.yaml and deploy/install.yaml"
