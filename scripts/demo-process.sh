#!/usr/bin/env bash
# make demo-process: demonstrates the process transport (pool and one-shot scripts).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run -q --release -p tandem --features process --example process-demo
