#!/usr/bin/env bash
# make demo: until the reference gateway lands, demonstrates the process transport.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run -q --release -p tandem --features process --example process-demo
