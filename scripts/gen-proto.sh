#!/usr/bin/env bash
# Regenerates the Python gRPC stubs in python/src/tandem/_proto from proto/ (run after editing a
# .proto). Rust generates its own at build time (crates/tandem/build.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
out=python/src/tandem/_proto
stage=$(mktemp -d); trap 'rm -rf "$stage"' EXIT
cp proto/tandem/call.proto proto/adapter.proto proto/inference.proto proto/goplugin/*.proto "$stage"/
rm -rf "$out"; mkdir -p "$out"
.venv/bin/python -m grpc_tools.protoc -I "$stage" --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" "$stage"/*.proto
# Make the generated imports package-relative.
sed -i -E 's/^import ([a-z_]+_pb2) as /from . import \1 as /' "$out"/*.py
printf '"""Generated gRPC stubs (scripts/gen-proto.sh); do not edit."""\n' > "$out/__init__.py"
