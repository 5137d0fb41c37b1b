#!/usr/bin/env bash
# make bench: runs every benchmark; each runs its baseline in the same run, reports ratios, and
# records its table in bench/results/<name>.md. Set BENCH_ONLY to a space-separated subset
# (process guard plugin grpc-client grpc queue gateway) to run fewer.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/results
only=" ${BENCH_ONLY:-process guard plugin grpc-client grpc queue gateway} "
want() { [[ "$only" == *" $1 "* ]]; }
py=.venv/bin/python

# The pool vs the floor and the naive design; one-shot scripts vs a bare spawn.
want process && cargo bench -q -p tandem --all-features --bench process
# The guard stack plus metrics, per call, beside the bare call.
want guard && cargo bench -q -p tandem --all-features --bench guard
# Rust host -> Python plugin (TLS off/on) beside a bare grpcio server on the same kind of socket.
want plugin && cargo bench -q -p tandem --all-features --bench plugin
# The balanced gRPC client's echo beside a bare tonic channel.
want grpc-client && cargo bench -q -p tandem --all-features --bench grpc
# Predict at concurrency 64: 1 and 2 server processes, batching off/on, beside the naive server.
want grpc && cargo build -q --release -p tandem --all-features --example grpc_load && $py bench/grpc_bench.py --concurrency 64 --connections 8 --duration 5 --repeat 3
# End-to-end tasks/s and latency beside the naive consumer and Celery on the same Redis.
want queue && cargo build -q --release -p tandem --all-features --example queue_load && $py bench/queue_bench.py --tasks 100000 --celery-tasks 3000 --latency-tasks 300 --rounds 3
# The gateway's core path with Python healthy, slow and down.
want gateway && bash scripts/bench-gateway.sh
echo "bench: tables in bench/results/"
