#!/usr/bin/env bash
# make demo: the reference payment gateway with all its Python services.
#
# Starts a private Redis (unless REDIS_URL is set), the inference service (tandem serve), the
# report consumer (tandem consume), a webhook receiver that checks HMAC signatures, and the
# gateway (which starts its webhook adapter plugin itself); drives one paced load of payments
# with gateway-load, stops the inference service a third of the way in and starts it again two
# thirds in (payments never wait on Python: the Rust rules score them meanwhile), asks for a
# report and a reconciliation, and prints a summary. Ctrl-C stops everything.
#
# DEMO_PAYMENTS (4500), DEMO_RATE (payments/s, 250) and DEMO_CONCURRENCY (32) size the load.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
py=${TANDEM_PYTHON:-$root/.venv/bin/python}
n=${DEMO_PAYMENTS:-4500}
rate=${DEMO_RATE:-250}
conc=${DEMO_CONCURRENCY:-32}
work=$(mktemp -d "${TMPDIR:-/tmp}/tandem-demo.XXXXXX")
services=$root/examples/gateway/services
secret=demo-secret
pids=()

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

cleanup() {
  # A second Ctrl-C must not cut the clean-up short and leave processes behind.
  trap '' INT TERM
  trap - EXIT
  say "stopping everything"
  # Newest first (the load, the gateway, ..., Redis last), each group given 10 s to stop.
  local i pid
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    pid=${pids[i]}
    kill -TERM -- "-$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  say "logs and reports are in $work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME DIR CMD...: runs CMD in its own process group, output to $work/NAME.log.
start() {
  local name=$1 dir=$2; shift 2
  (cd "$dir" && exec setsid "$@" >"$work/$name.log" 2>&1) &
  pids+=($!)
  echo $! >"$work/$name.pid"
}

free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_http() { # URL SECONDS
  for _ in $(seq $(($2 * 10))); do curl -fs "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "demo: $1 did not answer in $2 s; see $work" >&2; return 1
}

say "building the gateway (release)"
cargo build -q --release -p gateway --all-features
bin=$CARGO_TARGET_DIR/release

if [[ -z "${REDIS_URL:-}" ]]; then
  # A private redis-server in the foreground (not --daemonize), so that this script owns, stops
  # and reaps it like every other process it starts.
  command -v redis-server >/dev/null || bash scripts/setup-system.sh
  redis_port=$(free_port)
  mkdir -p "$work/redis"
  start redis "$work/redis" redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$work/redis" \
    --save '' --appendonly no
  for _ in $(seq 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.05; done
  redis-cli -p "$redis_port" ping >/dev/null || { echo "demo: redis-server did not start; see $work/redis.log" >&2; exit 1; }
  REDIS_URL="redis://127.0.0.1:$redis_port"
fi
say "redis at $REDIS_URL"

iport=$(free_port); rport=$(free_port); gport=$(free_port)
start_inference() { start inference "$services" "$py" -m tandem serve inference:app --port "$iport" --workers 2; }
start_inference
start consumer "$services" "$py" -m tandem consume reports:app --redis "$REDIS_URL" --stream reports --group reports --processes 1
start receiver "$services" "$py" receiver.py --port "$rport" --secret "$secret" --out "$work/webhooks.jsonl"
start gateway "$work" "$bin/gateway" --listen "127.0.0.1:$gport" --db "$work/gateway.sqlite3" \
  --inference "grpc://127.0.0.1:$iport" --redis "$REDIS_URL" --reports-dir "$work/reports" \
  --webhook-url "http://127.0.0.1:$rport/hook" --webhook-secret "$secret" --python "$py"
url=http://127.0.0.1:$gport
wait_http "$url/healthz" 30
inference_ready() { # SECONDS: until the gateway sees a healthy connection to inference
  for _ in $(seq $(($1 * 10))); do
    curl -fs "$url/readyz" | grep -q '[1-9]/[0-9]* connections healthy' && return 0; sleep 0.1
  done
  echo "demo: the inference service did not become healthy in $1 s; see $work/inference.log" >&2
  return 1
}
sent() { local s; s=$(cat "$work/sent" 2>/dev/null || true); echo "${s:-0}"; }
wait_sent() { # N: until the load has sent N payments (or ended)
  local s
  while s=$(sent) && (( ${s:-0} < $1 )) && kill -0 "$load_pid" 2>/dev/null; do sleep 0.05; done
}

say "waiting for the inference service"
inference_ready 60
curl -s "$url/readyz"; echo

say "one load: $n payments at $rate/s (at most $conc in flight); Python healthy"
start load "$work" "$bin/gateway-load" --url "$url" --n "$n" --rate "$rate" \
  --concurrency "$conc" --progress "$work/sent" --out "$work/load.json"
load_pid=$(cat "$work/load.pid")

wait_sent $((n / 3))
say "$(sent) sent: stopping the inference service (payments must not wait on Python)"
kill -USR1 "$load_pid" 2>/dev/null || true # from now on payments are tagged "down"
kill -TERM -- "-$(cat "$work/inference.pid")"; wait "$(cat "$work/inference.pid")" 2>/dev/null || true
down_at=$(date +%s.%N)

wait_sent $((2 * n / 3))
say "$(sent) sent: starting the inference service again"
start_inference
inference_ready 60
kill -USR2 "$load_pid" 2>/dev/null || true # from now on payments are tagged "recovered"
say "$(sent) sent: inference healthy again, $("$py" -c "import sys,time; print(round(time.time()-float(sys.argv[1]),1))" "$down_at") s after it was stopped"
wait "$load_pid" || { echo "demo: gateway-load failed; see $work/load.log" >&2; exit 1; }

say "a report over the queue"
rid=$(curl -fs -XPOST "$url/v1/reports" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["id"])')
report=""
for _ in $(seq 600); do
  report=$(curl -fs "$url/v1/reports/$rid")
  grep -q '"state":"queued"' <<<"$report" || break; sleep 0.1
done
echo "$report"

say "a reconciliation (one-shot script)"
"$py" - "$work/gateway.sqlite3" >"$work/settlement.csv" <<'PY'
import sqlite3, sys
rows = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True).execute(
    "SELECT id, amount_cents FROM payments LIMIT 50").fetchall()
print("payment_id,amount_cents")
for i, (pid, amount) in enumerate(rows):
    print(f"{pid},{amount + (1 if i % 10 == 0 else 0)}")
print("pay_from_the_bank_only,100")
PY
recon=$(curl -fs -XPOST --data-binary "@$work/settlement.csv" "$url/v1/reconcile")
"$py" -c 'import json,sys; r=json.loads(sys.argv[1]); print({k: len(v) for k, v in r.items()})' "$recon"

say "waiting for webhooks to drain"
for _ in $(seq 300); do
  curl -fs "$url/readyz" | grep -q '"pending"' || break; sleep 0.2
done

say "summary"
"$py" - "$work" "$report" "$(curl -fs "$url/readyz")" "$recon" <<'PY'
import json, sys, pathlib
work = pathlib.Path(sys.argv[1])
load = json.loads((work / "load.json").read_text())
report = json.loads(sys.argv[2])
ready = json.loads(sys.argv[3])
recon = json.loads(sys.argv[4])
hooks_file = work / "webhooks.jsonl"
hooks = [json.loads(l) for l in hooks_file.read_text().splitlines()] if hooks_file.exists() else []
phases = load["phases"]
labels = {
    "healthy": "Python healthy",
    "down": "Python down",
    "recovered": "Python back",
}
print(f"payments accepted:   {load['accepted']} of {load['accepted'] + load['errors']} "
      f"({load['model']} scored by the model, {load['fallback']} by the Rust fallback rules)")
print("core-path latency, by the inference service's state when the payment was sent:")
for name, label in labels.items():
    p = phases.get(name)
    if p:
        print(f"  {label:<15} p50 {p['p50_ms']:7.2f} ms  p99 {p['p99_ms']:7.2f} ms  "
              f"{p['accepted']:5d} payments: {p['model']:5d} model, {p['fallback']:5d} fallback"
              f"  (risk step max {p['risk_max_ms']:.1f} ms)")
print(f"webhooks delivered:  {sum(1 for h in hooks if h['valid'])} with valid signatures "
      f"(outbox: {ready['webhooks']})")
res = report.get("result") or {}
print(f"report:              {report.get('state')}: {res.get('csv')} and {res.get('png')}")
print(f"reconciliation:      " + ", ".join(f"{len(v)} {k}" for k, v in recon.items() if isinstance(v, list)))
print(f"logs, database, load results: {work}")
PY
