"""Queue benchmark: end-to-end tasks/s (XADD -> handled -> acked) and enqueue-to-handled
latency at low load, for tandem's consumer (1 and 2 processes), the naive consumer of the
reference architecture and Celery (Redis broker, solo pool), all in one run on one private
redis-server.

    cargo build --release -p tandem --all-features --example queue_load
    .venv/bin/python bench/queue_bench.py [--tasks 20000] [--latency-tasks 300] [--no-celery]

The throughput rounds publish with the product's Rust producer (``crates/tandem/examples/
queue_load.rs``, ``Producer::publish_batch`` of 1000): a redis-py producer spends about 18 µs
CPU per task on the two cores the consumers need (``--python-producer`` measures that way).
Latency probes are published one at a time from here. Writes bench/results/queue.md. Needs
redis-server and `pip install -e 'python[dev,bench]'`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "python" / "src"))
from tandem._queue import fields as wire  # noqa: E402 (after the sys.path line)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait(timeout: float, cond: Callable[[], bool], what: str) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise SystemExit(f"bench: timed out waiting for {what}")
        time.sleep(0.002)


def task_fields(method: str, payload: bytes) -> dict[str, bytes]:
    t = wire.Task(uuid.uuid4().hex, method, "json", payload, 1, wire.now_ms())
    return wire.encode_task(t)


def stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


class Stream:
    """A consumer of the tandem stream format (tandem itself or the naive baseline)."""

    def __init__(self, r: Any, url: str, cmd: list[str], producer: Path | None) -> None:
        self.r, self.stream, self.sent = r, "bench", 0
        self.url, self.producer = url, producer
        env = {**os.environ, "BENCH_REDIS": url, "PYTHONPATH": str(HERE)}
        self.proc = subprocess.Popen(
            cmd,
            cwd=HERE,
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def publish(
        self, n: int, method: str = "noop", payload: Callable[[], Any] | None = None
    ) -> None:
        if self.producer is not None and payload is None:
            cmd = [str(self.producer), "--url", self.url, "--stream", self.stream]
            cmd += ["--group", "g", "--count", str(n), "--method", method]
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            self.sent += n
            return
        pipe = self.r.pipeline(transaction=False)
        for i in range(n):
            body = b'{"t": %r}' % payload() if payload else b"{}"
            pipe.xadd(self.stream, task_fields(method, body))
            if i % 1000 == 999:
                pipe.execute()
        pipe.execute()
        self.sent += n

    def done(self) -> bool:
        try:
            g = self.r.xinfo_groups(self.stream)[0]
        except (redis.ResponseError, IndexError):
            return False
        return int(g["entries-read"] or 0) >= self.sent and int(g["pending"]) == 0

    def stop(self) -> None:
        stop(self.proc)


class CeleryRun:
    """Celery 5 worker (solo pool) on the same Redis."""

    def __init__(self, r: Any, url: str) -> None:
        self.r = r
        os.environ["CELERY_BROKER"] = url
        celery = str(Path(sys.executable).with_name("celery"))
        self.proc = subprocess.Popen(
            [
                celery,
                "-A",
                "queue_celery_app",
                "worker",
                "--pool",
                "solo",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel",
                "WARNING",
            ],
            cwd=HERE,
            env={**os.environ, "PYTHONPATH": str(HERE)},
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        sys.path.insert(0, str(HERE))
        import queue_celery_app

        self.app = queue_celery_app

    def publish(
        self, n: int, method: str = "noop", payload: Callable[[], Any] | None = None
    ) -> None:
        task = self.app.noop if method == "noop" else self.app.lat
        for _ in range(n):
            task.apply_async(args=(payload() if payload else 0,))

    def done(self) -> bool:
        return bool(self.r.llen("celery") == 0 and self.r.hlen("unacked") == 0)

    def stop(self) -> None:
        stop(self.proc)


def measure(run: Any, tasks: int, latency_tasks: int, rounds: int) -> dict[str, float]:
    r = run.r
    run.publish(50)  # warm up: imports, connections, group creation
    wait(60, run.done, "warm-up tasks")
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        run.publish(tasks)
        wait(600, run.done, f"{tasks} tasks")
        rates.append(tasks / (time.perf_counter() - start))
    tps = max(rates)  # best of the rounds: the machine is shared, noise only slows runs down
    r.delete("lat")
    for _ in range(latency_tasks):
        run.publish(1, "lat", time.time)
        time.sleep(0.005)
    wait(60, lambda: r.llen("lat") >= latency_tasks, "latency probes")
    lat = sorted(float(x) * 1000 for x in r.lrange("lat", 0, -1))
    return {
        "tps": tps,
        "p50": statistics.median(lat),
        "p99": lat[max(0, int(len(lat) * 0.99) - 1)],
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=20000)
    ap.add_argument("--celery-tasks", type=int, default=3000)
    ap.add_argument("--latency-tasks", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3, help="throughput rounds; the best counts")
    ap.add_argument("--no-celery", action="store_true")
    ap.add_argument("--out", default=str(HERE / "results" / "queue.md"))
    ap.add_argument(
        "--producer",
        type=Path,
        default=Path(os.environ.get("CARGO_TARGET_DIR") or HERE.parent / "target")
        / "release"
        / "examples"
        / "queue_load",
        help="the Rust producer (cargo build --release -p tandem --all-features "
        "--example queue_load)",
    )
    ap.add_argument(
        "--python-producer",
        action="store_true",
        help="publish the throughput rounds with redis-py from this process instead",
    )
    args = ap.parse_args()
    producer = None if args.python_producer else args.producer
    if producer is not None and not producer.exists():
        sys.stderr.write(
            f"{producer} is missing: build it with cargo build --release -p tandem "
            "--all-features --example queue_load (or pass --producer PATH, or "
            "--python-producer)\n"
        )
        return 2
    data = Path(tempfile.mkdtemp(prefix="tandem-bench-redis-"))
    port = free_port()
    server = subprocess.Popen(
        [
            REDIS_SERVER,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(data),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    r = redis.Redis.from_url(url)
    wait(10, lambda: _ping(r), "redis-server")
    py = sys.executable
    consume = [
        py,
        "-m",
        "tandem",
        "consume",
        "queue_service:app",
        "--redis",
        url,
        "--stream",
        "bench",
        "--group",
        "g",
    ]
    naive = [py, str(HERE / "queue_naive_consumer.py"), url, "bench", "g"]
    runs: list[tuple[str, Callable[[], Any], int]] = [
        (
            "tandem consume, 1 process",
            lambda: Stream(r, url, [*consume, "--processes", "1"], producer),
            args.tasks,
        ),
        (
            "tandem consume, 2 processes",
            lambda: Stream(r, url, [*consume, "--processes", "2"], producer),
            args.tasks,
        ),
        (
            "naive consumer (COUNT 10, XACK each)",
            lambda: Stream(r, url, naive, producer),
            args.tasks,
        ),
    ]
    if not args.no_celery:
        runs.append(
            (
                "Celery 5 (redis broker, --pool solo)",
                lambda: CeleryRun(r, url),
                args.celery_tasks,
            )
        )
    results: list[tuple[str, int, dict[str, float]]] = []
    try:
        for name, make, n in runs:
            r.flushall()
            run = make()
            try:
                res = measure(run, n, args.latency_tasks, args.rounds)
            finally:
                run.stop()
            sys.stderr.write(
                f"{name}: {res['tps']:.0f} tasks/s, p50 {res['p50']:.2f} ms, p99 {res['p99']:.2f} ms\n"
            )
            results.append((name, n, res))
    finally:
        server.kill()
        server.wait()
        shutil.rmtree(data, ignore_errors=True)
    write(args, results)
    return 0


def _ping(r: Any) -> bool:
    try:
        return bool(r.ping())
    except redis.RedisError:
        return False


def write(args: Any, results: list[tuple[str, int, dict[str, float]]]) -> None:
    by = {name: res for name, _, res in results}
    naive = next((v for k, v in by.items() if k.startswith("naive")), None)
    cel = next((v for k, v in by.items() if k.startswith("Celery")), None)
    lines = [
        "# Queue benchmark",
        "",
        (
            "Command: `cargo build --release -p tandem --all-features --example queue_load && "
            f".venv/bin/python bench/queue_bench.py --tasks {args.tasks} "
            f"--celery-tasks {args.celery_tasks} --latency-tasks {args.latency_tasks} --rounds {args.rounds}"
            + (" --python-producer" if args.python_producer else "")
            + "`"
        ),
        "",
        (
            f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} cores "
            f"(shared with other work; load average {os.getloadavg()[0]:.1f}), redis-server {_version()} (private, no persistence), "
            f"Python {sys.version.split()[0]}."
        ),
        "",
        (
            "Throughput: N tasks XADDed ("
            + (
                "by redis-py from the bench process"
                if args.python_producer
                else "by the Rust producer, `Producer::publish_batch` of 1000"
            )
            + ", pipelined, 1000 per round trip) while the consumer runs, "
            "timed until every task was handled and acknowledged; best of the rounds. Latency: one task every 5 ms, "
            "from enqueue (producer clock) to handler start (handler clock, same host)."
        ),
        "",
        "| consumer | tasks | tasks/s | × naive | × Celery | p50 ms | p99 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, n, res in results:
        xn = f"{res['tps'] / naive['tps']:.1f}" if naive else "-"
        xc = f"{res['tps'] / cel['tps']:.1f}" if cel else "-"
        lines.append(
            f"| {name} | {n} | {res['tps']:.0f} | {xn} | {xc} | {res['p50']:.2f} | {res['p99']:.2f} |"
        )
    lines += [
        "",
        (
            "Celery's completion is read from its queue list and `unacked` hash (solo pool, default "
            "early ack); its producer is `apply_async` per task, as Celery users publish."
        ),
    ]
    Path(args.out).write_text("\n".join(lines) + "\n")
    sys.stdout.write("\n".join(lines) + "\n")


# $TANDEM_REDIS_SERVER picks another binary (e.g. the Redis 8.6 of scripts/setup-redis8.sh).
REDIS_SERVER = os.environ.get("TANDEM_REDIS_SERVER") or "redis-server"


def _version() -> str:
    out = subprocess.run(
        [REDIS_SERVER, "--version"], check=False, capture_output=True, text=True
    ).stdout
    return next((p.split("=")[1] for p in out.split() if p.startswith("v=")), "?")


if __name__ == "__main__":
    sys.exit(main())
