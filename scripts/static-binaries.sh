#!/usr/bin/env bash
# Builds the two static release binaries the images hold (glibc with
# crt-static, no debug info, stripped) into target/static. The operator's
# allocator is jemalloc, told to give freed memory back to the kernel
# within seconds (background_thread, dirty pages purged after 5 s and not
# kept as MADV_FREE'd "muzzy" pages, which still count as resident; two
# arenas, as the operator's work is mostly waiting): measured in
# docs/benchmarks.md, "Memory, fifth pass". scripts/images.sh
# runs it; scripts/test.sh starts it early in the background at low priority,
# so the build uses the CPU the integration tests leave idle.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need make "apt-get install make (jemalloc, the operator image's allocator, builds with it)"
need cc "apt-get install gcc (jemalloc, the operator image's allocator, is C)"
export JEMALLOC_SYS_WITH_MALLOC_CONF="$JEMALLOC_CONF"
RUSTFLAGS="-C target-feature=+crt-static" CARGO_TARGET_DIR=target/static \
  CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_RELEASE_STRIP=symbols \
  cargo build -q --release --locked --target "$STATIC_TARGET" \
  -p keyguard-operator -p keyguard-scan --bin keyguard-operator --bin keyguard \
  --features keyguard-operator/jemalloc
