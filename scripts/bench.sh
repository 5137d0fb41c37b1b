#!/usr/bin/env bash
# make bench: runs every benchmark and records its table in bench/results/.
#
# process: the pool against the floor (bare length-prefixed loop) and the naive design (NDJSON,
# round robin, a lock per worker), and one-shot scripts against a bare spawn, all in one run;
# the table goes to bench/results/process.md.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/results
cargo bench -q -p tandem --features process --bench process
bash scripts/bench-gateway.sh
