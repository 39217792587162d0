#!/usr/bin/env bash
# Builds the two static release binaries the images hold (glibc with
# crt-static, no debug info, stripped) into target/static. scripts/images.sh
# runs it; scripts/test.sh starts it early in the background at low priority,
# so the build uses the CPU the integration tests leave idle.
set -euo pipefail
cd "$(dirname "$0")/.."
RUSTFLAGS="-C target-feature=+crt-static" CARGO_TARGET_DIR=target/static \
  CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_RELEASE_STRIP=symbols \
  cargo build -q --release --locked --target x86_64-unknown-linux-gnu \
  -p keyguard-operator -p keyguard-scan --bin keyguard-operator --bin keyguard
