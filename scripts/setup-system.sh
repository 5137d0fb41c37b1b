#!/usr/bin/env bash
# Installs the system packages tandem's tests and demo need, only when missing. Idempotent.
set -euo pipefail

need=()
# (Transports add what they need here: redis-server for the queue, Go for the plugin interop.)
command -v redis-server >/dev/null || need+=(redis-server)

if ((${#need[@]})); then
  echo "tandem setup: installing ${need[*]}" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
