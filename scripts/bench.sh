#!/usr/bin/env bash
# make bench: runs every benchmark and records its table in bench/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/results
