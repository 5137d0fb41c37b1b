#!/usr/bin/env bash
# Starts or stops a private redis-server (never the system one) on a free port, with its own data
# directory. Used by the tests, the demo and the benchmarks.
#
#   scripts/redis.sh start DIR [--aof]   prints the port; the pid is in DIR/redis.pid
#   scripts/redis.sh stop DIR            stops it (SHUTDOWN NOSAVE, then SIGKILL)
set -euo pipefail

cmd=${1:-}; dir=${2:-}
if [[ -z "$cmd" || -z "$dir" ]]; then
  echo "usage: scripts/redis.sh start|stop DIR [--aof]" >&2; exit 2
fi
server=${TANDEM_REDIS_SERVER:-redis-server}  # e.g. the Redis 8.6 of scripts/setup-redis8.sh
command -v "$server" >/dev/null || { echo "redis.sh: $server missing: run scripts/setup-system.sh" >&2; exit 2; }

case "$cmd" in
  start)
    mkdir -p "$dir"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    persist=(--save '' --appendonly no)
    [[ "${3:-}" == "--aof" ]] && persist=(--save '' --appendonly yes --appendfsync always)
    "$server" --port "$port" --bind 127.0.0.1 --dir "$dir" --daemonize yes \
      --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" "${persist[@]}" >/dev/null
    for _ in $(seq 100); do
      redis-cli -p "$port" ping >/dev/null 2>&1 && { echo "$port" > "$dir/redis.port"; echo "$port"; exit 0; }
      sleep 0.05
    done
    echo "redis.sh: redis-server did not answer on port $port; see $dir/redis.log" >&2; exit 1 ;;
  stop)
    [[ -f "$dir/redis.port" ]] && redis-cli -p "$(cat "$dir/redis.port")" shutdown nosave >/dev/null 2>&1 || true
    if [[ -f "$dir/redis.pid" ]]; then
      pid=$(cat "$dir/redis.pid")
      for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.05; done
      kill -9 "$pid" 2>/dev/null || true
    fi ;;
  *) echo "redis.sh: unknown command $cmd (start|stop)" >&2; exit 2 ;;
esac
