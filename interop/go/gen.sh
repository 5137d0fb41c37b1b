#!/usr/bin/env bash
# Regenerates interop/go/gen from proto/ (needs protoc, protoc-gen-go v1.36.6 and
# protoc-gen-go-grpc v1.5.1 on PATH). The generated code is committed, so tests need none of them.
set -euo pipefail
cd "$(dirname "$0")"
m=github.com/tandem-rs/tandem/interop/go/gen
gen() { # proto-file out-dir
  protoc -I ../../proto --go_out="$2" --go_opt=paths=source_relative --go_opt="M$1=$m/$(basename "$2")" \
    --go-grpc_out="$2" --go-grpc_opt=paths=source_relative --go-grpc_opt="M$1=$m/$(basename "$2")" "$1"
}
gen tandem/call.proto gen/callpb && mv gen/callpb/tandem/* gen/callpb/ && rmdir gen/callpb/tandem
gen adapter.proto gen/adapterpb
