"""grpc transport benchmark (Python side): Predict on the risk models at concurrency 64.

Runs, in one go and on the same machine, for each bundled model (``risk``, the logistic
regression; ``risk_mlp``, the 16-1024-1024-1 MLP; ``risk_seq``, the GRU over a 64-transaction
history; ``--models`` picks):

* ``naive``: bench/grpc_naive_server.py, one grpcio process with a ThreadPoolExecutor(10),
  the same model called once per request, BLAS threads left to the environment;
* for risk_mlp and risk_seq also ``naive, 1 BLAS thread``: the same server with
  OPENBLAS_NUM_THREADS=1 (and OMP_/MKL_), the setting tandem serve's workers default to;
* ``tandem serve`` with 1 and 2 worker processes, batching off and on.

The goals are judged on one model (``--judge``, default risk_seq: the one whose own cost
dominates a request, which is where batching can pay); every model's rows and ratios are
reported.

Before the servers, bench/model_cost.py measures each model's in-process cost per call (one
payment vs a batch of 64, one BLAS thread).

The load comes from a lean Rust load generator (``crates/tandem/examples/grpc_load.rs``: one
thread, several HTTP/2 connections so SO_REUSEPORT spreads them over the workers), so the run
measures the server rather than a Python client. Writes bench/results/grpc.md.

    cargo build --release -p tandem --all-features --example grpc_load
    .venv/bin/python bench/grpc_bench.py [--duration 5] [--concurrency 64] [--connections 8]
        [--models risk,risk_mlp,risk_seq] [--judge risk_seq]
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

from tandem.models import BUNDLED
from tandem.models.blas import BLAS_THREAD_VARS

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "grpc.md"

SERVICE = """
import tandem
from tandem.models import BUNDLED, Registry
app = tandem.App("bench")
models = Registry(model() for model in BUNDLED.values())
"""

MODELS = tuple(BUNDLED)
MODEL_LABELS = {
    "risk": "risk (logistic regression)",
    "risk_mlp": "risk_mlp (MLP 16-1024-1024-1, float32)",
    "risk_seq": "risk_seq (GRU 2x32 over 64 past transactions, float32)",
}
# Models whose compute is numpy's: the naive server also runs with one BLAS thread.
BLAS_MODELS = ("risk_mlp", "risk_seq")


def inputs_for(model: str, n: int = 256) -> list[bytes]:
    """The model's example inputs as request payloads (the same on every run)."""
    return [json.dumps(p).encode() for p in BUNDLED[model].examples(n)]


# ----- orchestration -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(port: int, model: str, timeout: float = 60.0) -> None:
    import grpc
    from tandem._proto import inference_pb2, inference_pb2_grpc

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        ch = grpc.insecure_channel(f"127.0.0.1:{port}")
        try:
            inference_pb2_grpc.InferenceServiceStub(ch).Predict(
                inference_pb2.PredictRequest(model_name=model, input_data=inputs_for(model, 1)[0]),
                timeout=1,
            )
            return
        except grpc.RpcError:
            time.sleep(0.1)
        finally:
            ch.close()
    raise RuntimeError(f"server on port {port} not ready after {timeout}s")


def start_server(
    kind: str, model: str, workers: int, batching: bool, port: int, workdir: Path
) -> subprocess.Popen[bytes]:
    py = sys.executable
    env = {**os.environ, "TANDEM_LOG": "warn"}
    if kind.startswith("naive"):
        cmd = [
            py,
            str(ROOT / "bench" / "grpc_naive_server.py"),
            "--port",
            str(port),
            "--model",
            model,
        ]
        if kind == "naive-blas1":
            env.update(dict.fromkeys(BLAS_THREAD_VARS, "1"))
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


def run_load(
    port: int, model: str, args: argparse.Namespace, workdir: Path, server_pid: int
) -> dict[str, Any]:
    inputs = workdir / f"inputs-{model}.jsonl"
    if not inputs.exists():
        inputs.write_bytes(b"\n".join(inputs_for(model)) + b"\n")
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
            "--model",
            model,
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
        # None when no call completed inside the measured window
        "p50": float("nan") if r["p50"] is None else r["p50"],
        "p99": float("nan") if r["p99"] is None else r["p99"],
        "errors": r["errors"],
        "first_error": r["first_error"],
        "n": r["n"],
        "mean_batch": r["mean_batch"],
        "server_ms": 1000 * server_cpu / total,
        "client_ms": 1000 * r["cpu_s"] / total,
    }


SCENARIOS = [
    ("naive", "naive (grpcio ThreadPool(10), 1 process)", 1, False),
    ("naive-blas1", "naive, 1 BLAS thread", 1, False),
    ("tandem-1-off", "tandem serve, 1 worker, batching off", 1, False),
    ("tandem-1-on", "tandem serve, 1 worker, batching on", 1, True),
    ("tandem-2-off", "tandem serve, 2 workers, batching off", 2, False),
    ("tandem-2-on", "tandem serve, 2 workers, batching on", 2, True),
]


def scenarios_for(model: str) -> list[tuple[str, str, int, bool]]:
    """The scenarios of one model: naive-blas1 only where BLAS does the work."""
    return [s for s in SCENARIOS if s[0] != "naive-blas1" or model in BLAS_MODELS]


def model_costs() -> dict[str, Any]:
    """bench/model_cost.py's in-process costs, run in a child with one BLAS thread."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "model_cost.py"), "--json", "--sweep"],
        check=True,
        capture_output=True,
        timeout=300,
        env={**os.environ, **dict.fromkeys(BLAS_THREAD_VARS, "1")},
    )
    costs: dict[str, Any] = json.loads(out.stdout)
    return costs


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
    p.add_argument(
        "--models",
        default=",".join(MODELS),
        help=f"comma-separated models to measure (default: {','.join(MODELS)})",
    )
    p.add_argument(
        "--judge",
        default="risk_seq",
        help="the model the goals are judged on (default: risk_seq, whose own cost dominates a "
        "request; the first measured model when it is not measured)",
    )
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
    models = [m for m in args.models.split(",") if m]
    unknown = set(models) - set(MODELS)
    if unknown:
        sys.stderr.write(f"unknown --models {sorted(unknown)}; known: {', '.join(MODELS)}\n")
        return 2
    if args.judge not in MODELS:
        sys.stderr.write(f"unknown --judge {args.judge!r}; known: {', '.join(MODELS)}\n")
        return 2
    if args.judge not in models:
        args.judge = models[0]
    scenarios = [
        (model, *s)
        for model in models
        for s in scenarios_for(model)
        if not args.only or s[0] in args.only.split(",")
    ]
    args.load_before = os.getloadavg()[0]
    import tempfile

    costs = model_costs()
    for name, c in costs["models"].items():
        sys.stderr.write(
            f"in-process {name}: batch 1 {c['1']:.3f} ms, batch 64 {c['64']:.3f} ms per call\n"
        )
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {
        (model, key): [] for model, key, *_ in scenarios
    }
    with tempfile.TemporaryDirectory(prefix="tandem-grpc-bench-") as tmp:
        workdir = Path(tmp)
        (workdir / "svc.py").write_text(SERVICE)
        # Rounds interleave the scenarios so a burst of other work on the machine hits
        # every scenario alike; each scenario reports its median round (by req/s).
        for round_ in range(args.repeat):
            for model, key, label, workers, batching in scenarios:
                port = free_port()
                kind = key if key.startswith("naive") else "tandem"
                proc = start_server(kind, model, workers, batching, port, workdir)
                try:
                    wait_ready(port, model)
                    r = {"label": label, **run_load(port, model, args, workdir, proc.pid)}
                finally:
                    stop_server(proc)
                runs[(model, key)].append(r)
                sys.stderr.write(
                    f"round {round_ + 1}: {model:<8} {label:<38} {r['rps']:8.0f} req/s  p50 {r['p50']:6.2f} ms  "
                    f"p99 {r['p99']:6.2f} ms  errors {r['errors']}  batch {r['mean_batch']:5.1f}  "
                    f"server {r['server_ms']:.3f} ms/req  client {r['client_ms']:.3f} ms/req\n"
                )
    rows = {key: sorted(rs, key=lambda r: r["rps"])[len(rs) // 2] for key, rs in runs.items()}
    if not args.only:
        write_results(rows, costs, models, args)
    return 0


def _verdict(met: bool) -> str:
    return "met" if met else "**not met**"


def _model_section(
    model: str, rows: dict[tuple[str, str], dict[str, Any]], judged: bool
) -> list[str]:
    r = {key: row for (m, key), row in rows.items() if m == model}
    if "naive" not in r:
        return []
    # The goals are judged against the fastest naive row (for the numpy models the naive
    # server with the environment's BLAS threads can be far slower than with one: see the notes).
    naive_key = max((k for k in ("naive", "naive-blas1") if k in r), key=lambda k: r[k]["rps"])
    naive = r[naive_key]["rps"]
    title = f"## {MODEL_LABELS[model]}"
    if judged:
        title += ": the goals are judged on these rows"
    lines = [
        title,
        "",
        f"`× naive` is relative to the fastest naive row ({r[naive_key]['label']}).",
        "",
        "| scenario | req/s | p50 ms | p99 ms | errors | × naive | batch | server CPU ms/req | client CPU ms/req | CPU ceiling req/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    cores = os.cpu_count() or 1
    for row in r.values():
        ceiling = cores * 1000 / max(1e-9, row["server_ms"] + row["client_ms"])
        lines.append(
            f"| {row['label']} | {row['rps']:.0f} | {row['p50']:.2f} | {row['p99']:.2f} | {row['errors']} "
            f"| {row['rps'] / naive:.2f} | {row['mean_batch']:.1f} | {row['server_ms']:.3f} "
            f"| {row['client_ms']:.3f} | {ceiling:.0f} |"
        )
    needed = {"tandem-1-off", "tandem-1-on", "tandem-2-off", "tandem-2-on"}
    if not needed <= set(r):
        return [*lines, ""]
    best_key = max(("tandem-1-on", "tandem-2-on"), key=lambda k: r[k]["rps"])
    best = r[best_key]
    on_ratio = r["tandem-2-on"]["rps"] / r["tandem-1-on"]["rps"]
    off_ratio = r["tandem-2-off"]["rps"] / r["tandem-1-off"]["rps"]
    vs_naive = best["rps"] / naive
    lines += [
        "",
        f"Ratios for {model} (goals in brackets):",
        "",
        f"- 2 workers / 1 worker, batching on: **{on_ratio:.2f}×** (≥ 1.7×: {_verdict(on_ratio >= 1.7)})",
        f"- 2 workers / 1 worker, batching off: **{off_ratio:.2f}×** (≥ 1.7×: {_verdict(off_ratio >= 1.7)})",
        (
            f"- batching on (best: {best['label'].removeprefix('tandem serve, ')}) / fastest naive: "
            f"**{vs_naive:.2f}×** at p99 {best['p99']:.1f} ms (≥ 4× with p99 < 50 ms: "
            f"{_verdict(vs_naive >= 4 and best['p99'] < 50)})"
        ),
    ]
    for key in ("naive", "naive-blas1"):
        if key in r and key != naive_key:
            lines.append(
                f"- batching on (best) / {r[key]['label']}: **{best['rps'] / r[key]['rps']:.2f}×** "
                "(not the judged baseline: the slower naive row)"
            )
    lines += [
        f"- batching on / off, 1 worker: **{r['tandem-1-on']['rps'] / r['tandem-1-off']['rps']:.2f}×**; "
        f"2 workers: **{r['tandem-2-on']['rps'] / r['tandem-2-off']['rps']:.2f}×**",
        "",
    ]
    return lines


def _cost_section(costs: dict[str, Any]) -> list[str]:
    lines = [
        "## In-process model cost (bench/model_cost.py, one BLAS thread)",
        "",
        "`predict_batch` on prepared inputs, median of about 1 s of calls per cell.",
        "",
        "| model | batch 1 ms/call | batch 8 ms/call | batch 64 ms/call | µs/payment at 1 | µs/payment at 64 | batch-64 gain per payment |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, c in costs["models"].items():
        lines.append(
            f"| {name} | {c['1']:.3f} | {c['8']:.3f} | {c['64']:.3f} | {1000 * c['1']:.1f} "
            f"| {1000 * c['64'] / 64:.1f} | {c['1'] * 64 / c['64']:.1f}× |"
        )
    if costs.get("sweep"):
        lines += [
            "",
            "The MLP's forward pass alone at other widths (16-H-H-1, random float32 weights; the "
            "bundled model is H = 1024):",
            "",
            "| H | batch 1 ms | batch 64 ms | µs/payment at 64 | batch-64 gain per payment |",
            "|---:|---:|---:|---:|---:|",
        ]
        for h, c in costs["sweep"].items():
            lines.append(
                f"| {h} | {c['1']:.3f} | {c['64']:.3f} | {1000 * c['64'] / 64:.1f} "
                f"| {c['1'] * 64 / c['64']:.1f}× |"
            )
    return [*lines, ""]


def write_results(
    rows: dict[tuple[str, str], dict[str, Any]],
    costs: dict[str, Any],
    models: list[str],
    args: argparse.Namespace,
) -> None:
    models_arg = "" if models == list(MODELS) else f" --models {','.join(models)}"
    if args.judge != "risk_seq":
        models_arg += f" --judge {args.judge}"
    lines = [
        "# grpc transport (Python side): Predict on the risk models",
        "",
        (
            f"Command: `cargo build --release -p tandem --all-features --example grpc_load && "
            f".venv/bin/python bench/grpc_bench.py --concurrency {args.concurrency} "
            f"--connections {args.connections} --duration {args.duration:g} --repeat {args.repeat}"
            f"{models_arg}` (run by `make bench`)."
        ),
        "",
        (
            f"Machine: {os.cpu_count()} cores ({platform.machine()}), Python {platform.python_version()}, "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. The load generator is the Rust "
            "`grpc_load` example (one thread, tonic), on the same cores as the server; its CPU per "
            "request is in the tables."
        ),
        "",
        (
            f"Concurrency {args.concurrency} calls in flight over {args.connections} HTTP/2 connections, "
            f"{args.duration:g} s measured after {args.warmup:g} s warm-up, all scenarios of all models in "
            f"the same run, {args.repeat} interleaved rounds, each row the scenario's median round. The naive "
            "server serves the same model as the tandem rows below it, once per request. `batch` is the mean "
            "size of the batch a call was served in (the server's `tandem-batch-size` trailer; 0 when the "
            "server does not send it). tandem serve's workers run one BLAS thread each (its default); the "
            "naive server keeps the environment's BLAS threads, and for the numpy models (MLP, GRU) a "
            "second naive row runs with one."
        ),
        "",
        (
            f"Load average (1 min) before / after the run: {args.load_before:.2f} / {os.getloadavg()[0]:.2f}."
        ),
        "",
    ]
    lines += _cost_section(costs)
    for model in sorted(models, key=lambda m: m != args.judge):
        lines += _model_section(model, rows, judged=model == args.judge)
    lines += [
        (
            "CPU ms/req is CPU time (user + system) over all requests of the run, for the server's process "
            "tree and for the load generators. `CPU ceiling` = cores × 1000 / (server + client CPU ms per "
            "request): the most this machine could serve if the benchmark had it alone. When the measured "
            "req/s sits at that ceiling, the run is CPU-bound on the machine and a second worker cannot add "
            "throughput; compare the server CPU per request instead."
        ),
        "",
    ]
    # Notes written by hand below the generated part survive a re-run.
    if args.results.exists():
        old = args.results.read_text()
        at = old.find("\n## Notes")
        if at >= 0:
            lines.append(old[at + 1 :].rstrip("\n") + "\n")
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
