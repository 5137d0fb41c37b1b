"""grpc transport benchmark (Python side): Predict on the risk model at concurrency 64.

Runs, in one go and on the same machine:

* ``naive``: bench/grpc_naive_server.py, one grpcio process with a ThreadPoolExecutor(10),
  the model called once per request;
* ``tandem serve`` with 1 and 2 worker processes, batching off and on.

The load comes from a lean Rust load generator (``crates/tandem/examples/grpc_load.rs``: one
thread, several HTTP/2 connections so SO_REUSEPORT spreads them over the workers), so the run
measures the server rather than a Python client. Writes bench/results/grpc.md.

    cargo build --release -p tandem --all-features --example grpc_load
    .venv/bin/python bench/grpc_bench.py [--duration 5] [--concurrency 64] [--connections 8]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "grpc.md"

SERVICE = """
import tandem
from tandem.models import Registry, RiskModel
app = tandem.App("bench")
models = Registry([RiskModel()])
"""


def payments(n: int = 256) -> list[bytes]:
    cats = ["grocery", "fuel", "travel", "electronics", "gaming", "crypto"]
    return [
        json.dumps(
            {
                "amount": 3.0 + 17.0 * i,
                "merchant_category": cats[i % len(cats)],
                "country_mismatch": i % 7 == 0,
                "hour": i % 24,
                "velocity_1h": i % 5,
                "card_age_days": 5 + 13 * i,
                "card_present": i % 3 == 0,
            }
        ).encode()
        for i in range(n)
    ]


# ----- orchestration -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(port: int, timeout: float = 60.0) -> None:
    import grpc
    from tandem._proto import inference_pb2, inference_pb2_grpc

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        ch = grpc.insecure_channel(f"127.0.0.1:{port}")
        try:
            inference_pb2_grpc.InferenceServiceStub(ch).Predict(
                inference_pb2.PredictRequest(model_name="risk", input_data=payments(1)[0]),
                timeout=1,
            )
            return
        except grpc.RpcError:
            time.sleep(0.1)
        finally:
            ch.close()
    raise RuntimeError(f"server on port {port} not ready after {timeout}s")


def start_server(
    kind: str, workers: int, batching: bool, port: int, workdir: Path
) -> subprocess.Popen[bytes]:
    py = sys.executable
    if kind == "naive":
        cmd = [py, str(ROOT / "bench" / "grpc_naive_server.py"), "--port", str(port)]
    else:
        cmd = [
            py,
            "-m",
            "tandem",
            "serve",
            "svc:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--drain-delay",
            "0",
            "--grace",
            "2",
        ]
        if not batching:
            cmd.append("--no-batching")
    env = {**os.environ, "TANDEM_LOG": "warn"}
    return subprocess.Popen(cmd, cwd=workdir, env=env, start_new_session=True)


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid`` and its live children."""
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    try:
        pids += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        pass
    total = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / tick


def load_gen_path() -> Path:
    target = os.environ.get("CARGO_TARGET_DIR") or str(ROOT / "target")
    return Path(target) / "release" / "examples" / "grpc_load"


def run_load(port: int, args: argparse.Namespace, workdir: Path, server_pid: int) -> dict[str, Any]:
    inputs = workdir / "payments.jsonl"
    if not inputs.exists():
        inputs.write_bytes(b"\n".join(payments()) + b"\n")
    server_cpu0 = tree_cpu_s(server_pid)
    out = subprocess.run(
        [
            str(args.load_gen),
            "--target",
            f"127.0.0.1:{port}",
            "--inputs",
            str(inputs),
            "--concurrency",
            str(args.concurrency),
            "--connections",
            str(args.connections),
            "--warmup",
            str(args.warmup),
            "--duration",
            str(args.duration),
        ],
        check=True,
        capture_output=True,
        timeout=args.warmup + args.duration + 60,
    )
    server_cpu = tree_cpu_s(server_pid) - server_cpu0
    r = json.loads(out.stdout)
    total = max(1, r["total"])
    return {
        "rps": r["n"] / args.duration,
        "p50": r["p50"],
        "p99": r["p99"],
        "errors": r["errors"],
        "first_error": r["first_error"],
        "n": r["n"],
        "mean_batch": r["mean_batch"],
        "server_ms": 1000 * server_cpu / total,
        "client_ms": 1000 * r["cpu_s"] / total,
    }


SCENARIOS = [
    ("naive", "naive (grpcio ThreadPool(10), 1 process)", 1, False),
    ("tandem-1-off", "tandem serve, 1 worker, batching off", 1, False),
    ("tandem-1-on", "tandem serve, 1 worker, batching on", 1, True),
    ("tandem-2-off", "tandem serve, 2 workers, batching off", 2, False),
    ("tandem-2-on", "tandem serve, 2 workers, batching on", 2, True),
]


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--concurrency", type=int, default=64, help="calls in flight in total")
    p.add_argument(
        "--connections", type=int, default=8, help="HTTP/2 connections of the load generator"
    )
    p.add_argument(
        "--load-gen",
        type=Path,
        default=load_gen_path(),
        help="the Rust load generator (cargo build --release -p tandem --all-features "
        "--example grpc_load)",
    )
    p.add_argument("--only", default="", help="comma-separated scenario keys to run (default: all)")
    p.add_argument("--warmup", type=float, default=1.5, help="seconds before measuring")
    p.add_argument("--duration", type=float, default=5.0, help="seconds measured per scenario")
    p.add_argument("--results", type=Path, default=RESULTS, help="markdown file to write")
    p.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="rounds; each scenario reports its median round",
    )
    args = p.parse_args()
    if not args.load_gen.exists():
        sys.stderr.write(
            f"{args.load_gen} is missing: build it with cargo build --release -p tandem "
            "--all-features --example grpc_load (or pass --load-gen PATH)\n"
        )
        return 2
    scenarios = [s for s in SCENARIOS if not args.only or s[0] in args.only.split(",")]
    args.load_before = os.getloadavg()[0]
    import tempfile

    runs: dict[str, list[dict[str, Any]]] = {key: [] for key, *_ in scenarios}
    with tempfile.TemporaryDirectory(prefix="tandem-grpc-bench-") as tmp:
        workdir = Path(tmp)
        (workdir / "svc.py").write_text(SERVICE)
        # Rounds interleave the scenarios so a burst of other work on the machine hits
        # every scenario alike; each scenario reports its median round (by req/s).
        for round_ in range(args.repeat):
            for key, label, workers, batching in scenarios:
                port = free_port()
                kind = "naive" if key == "naive" else "tandem"
                proc = start_server(kind, workers, batching, port, workdir)
                try:
                    wait_ready(port)
                    r = {"label": label, **run_load(port, args, workdir, proc.pid)}
                finally:
                    stop_server(proc)
                runs[key].append(r)
                sys.stderr.write(
                    f"round {round_ + 1}: {label:<45} {r['rps']:8.0f} req/s  p50 {r['p50']:6.2f} ms  "
                    f"p99 {r['p99']:6.2f} ms  errors {r['errors']}  batch {r['mean_batch']:5.1f}  "
                    f"server {r['server_ms']:.3f} ms/req  client {r['client_ms']:.3f} ms/req\n"
                )
    rows = {key: sorted(rs, key=lambda r: r["rps"])[len(rs) // 2] for key, rs in runs.items()}
    if len(rows) == len(SCENARIOS):
        write_results(rows, args)
    return 0


def write_results(rows: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    naive = rows["naive"]["rps"]
    lines = [
        "# grpc transport (Python side): Predict on the risk model",
        "",
        (
            f"Command: `cargo build --release -p tandem --all-features --example grpc_load && "
            f".venv/bin/python bench/grpc_bench.py --concurrency {args.concurrency} "
            f"--connections {args.connections} --duration {args.duration:g} --repeat {args.repeat}` "
            "(run by `make bench`)."
        ),
        "",
        (
            f"Machine: {os.cpu_count()} cores ({platform.machine()}), Python {platform.python_version()}, "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. The load generator is the Rust "
            "`grpc_load` example (one thread, tonic), on the same cores as the server; its CPU per "
            "request is in the table."
        ),
        "",
        (
            f"Concurrency {args.concurrency} calls in flight over {args.connections} HTTP/2 connections, "
            f"{args.duration:g} s measured after {args.warmup:g} s warm-up, all scenarios in the same run, "
            f"{args.repeat} interleaved rounds, each row the scenario's median round. `batch` is the mean "
            "size of the batch a call was served in (the server's `tandem-batch-size` trailer; 0 when the "
            "server does not send it)."
        ),
        "",
        (
            f"Load average (1 min) before / after the run: {args.load_before:.2f} / {os.getloadavg()[0]:.2f}."
        ),
        "",
        "| scenario | req/s | p50 ms | p99 ms | errors | × naive | batch | server CPU ms/req | client CPU ms/req | CPU ceiling req/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    cores = os.cpu_count() or 1
    for r in rows.values():
        ceiling = cores * 1000 / max(1e-9, r["server_ms"] + r["client_ms"])
        lines.append(
            f"| {r['label']} | {r['rps']:.0f} | {r['p50']:.2f} | {r['p99']:.2f} | {r['errors']} | {r['rps'] / naive:.2f} "
            f"| {r['mean_batch']:.1f} | {r['server_ms']:.3f} | {r['client_ms']:.3f} | {ceiling:.0f} |"
        )
    r = rows
    lines += [
        "",
        "Ratios (goals in brackets):",
        "",
        f"- 2 workers / 1 worker, batching on: **{r['tandem-2-on']['rps'] / r['tandem-1-on']['rps']:.2f}×** (≥ 1.7×)",
        f"- 2 workers / 1 worker, batching off: **{r['tandem-2-off']['rps'] / r['tandem-1-off']['rps']:.2f}×** (≥ 1.7×)",
        (
            f"- batching on (best) / naive: **{max(r['tandem-1-on']['rps'], r['tandem-2-on']['rps']) / naive:.2f}×** (≥ 4×, p99 < 50 ms: "
            f"p99 {min(r['tandem-1-on']['p99'], r['tandem-2-on']['p99']):.1f} ms)"
        ),
        f"- batching on / off, 1 worker: **{r['tandem-1-on']['rps'] / r['tandem-1-off']['rps']:.2f}×**",
        "",
        (
            "CPU ms/req is CPU time (user + system) over all requests of the run, for the server's process "
            "tree and for the load generators. `CPU ceiling` = cores × 1000 / (server + client CPU ms per "
            "request): the most this machine could serve if the benchmark had it alone. When the measured "
            "req/s sits at that ceiling, the run is CPU-bound on the machine and a second worker cannot add "
            "throughput; compare the server CPU per request instead."
        ),
        "",
    ]
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
