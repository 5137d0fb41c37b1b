#!/usr/bin/env bash
# Installs the system packages tandem's tests and demo need, only when missing. Idempotent.
set -euo pipefail

need=()
# (Transports add what they need here: redis-server for the queue, Go for the plugin interop.)
command -v redis-server >/dev/null || need+=(redis-server)
# scripts/setup-redis8.sh downloads and builds Redis 8.6 for the second queue test run.
command -v curl >/dev/null || need+=(curl)
command -v make >/dev/null || need+=(make)
command -v cc >/dev/null || need+=(gcc)

if ((${#need[@]})); then
  echo "tandem setup: installing ${need[*]}" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
