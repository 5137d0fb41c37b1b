#!/usr/bin/env bash
# The gateway's core-path latency with Python healthy, slow (200 ms) and down, at concurrency 64,
# in interleaved rounds; the table goes to bench/results/gateway.md (text under its "## Notes"
# heading is kept). GATEWAY_BENCH_N (3000) payments per phase, GATEWAY_BENCH_ROUNDS (3) rounds.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
cargo build -q --release -p gateway --all-features
"$CARGO_TARGET_DIR/release/gateway-load" --bench --n "${GATEWAY_BENCH_N:-3000}" --concurrency 64 \
  --rounds "${GATEWAY_BENCH_ROUNDS:-3}" --out bench/results/gateway.md
