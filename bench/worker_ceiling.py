"""How many calls per second the Python workers themselves can serve, when they never wait.

Feeds N echo calls, all written up front (pipelined), to W ``python -m tandem worker`` processes
over their wire, and the same to W naive newline-JSON workers (``naive_worker.py``) over
stdin/stdout, and prints calls/s and each worker's CPU per call. No dispatch design that waits for
an answer before sending a worker its next call (the pool, the naive design) can go faster than
this on the same machine: it bounds the concurrency-64 rows of the process bench.

    .venv/bin/python bench/worker_ceiling.py [--calls N] [--workers W]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from tandem import _wire

HERE = Path(__file__).resolve().parent
PAYLOAD = json.dumps({"x": "a" * 88}).encode()  # 100 B, as the bench's small case


def cpu_per_call_us(pid: int, calls: int) -> str:
    """User and system CPU of ``pid`` so far, per call, in µs."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    user, system = (int(f) / os.sysconf("SC_CLK_TCK") / calls * 1e6 for f in fields[11:13])
    return f"{user:.1f} + {system:.1f}"


def drive(feeds: list[tuple[Callable[[], None], Callable[[], None]]]) -> float:
    """Runs every (writer, reader) pair in threads; returns the seconds until all readers end."""
    threads = [threading.Thread(target=f) for pair in feeds for f in pair]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def tandem_workers(n: int, calls: int) -> tuple[float, list[str]]:
    frames = b"".join(
        _wire.encode(_wire.CALL, i + 1, _wire.call_body(method="echo", codec="json",
                                                         payload=PAYLOAD, timeout_ms=30_000))
        for i in range(calls)
    )  # fmt: skip
    procs = []
    for _ in range(n):
        parent, child = socket.socketpair()
        argv = [sys.executable, "-m", "tandem", "worker", "echo_app:app", "--fd"]
        proc = subprocess.Popen(
            [*argv, str(child.fileno())], pass_fds=[child.fileno()], cwd=HERE,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        child.close()
        _recv_exact(parent, int.from_bytes(_recv_exact(parent, 4), "big"))  # hello
        procs.append((proc, parent))

    def reader(sock: socket.socket) -> Callable[[], None]:
        def run() -> None:
            length = int.from_bytes(_recv_exact(sock, 4), "big")  # every answer: same size
            left = (4 + length) * calls - 4
            while left:
                chunk = sock.recv(min(left, 1 << 20))
                if not chunk:
                    raise EOFError(f"worker closed its wire with {left} bytes of answers due")
                left -= len(chunk)

        return run

    elapsed = drive([(lambda s=s: s.sendall(frames), reader(s)) for _, s in procs])
    cpu = [cpu_per_call_us(p.pid, calls) for p, _ in procs]
    for p, s in procs:
        s.close()
        p.wait()
    return n * calls / elapsed, cpu


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = sock.recv(n, socket.MSG_WAITALL)
    if len(data) < n:
        raise EOFError(f"worker closed its wire after {len(data)} of {n} bytes")
    return data


def naive_workers(n: int, calls: int) -> tuple[float, list[str]]:
    line = json.dumps({"method": "echo", "payload": json.loads(PAYLOAD)}).encode() + b"\n"
    procs = [
        subprocess.Popen([sys.executable, str(HERE / "naive_worker.py")],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        for _ in range(n)
    ]  # fmt: skip

    def writer(p: subprocess.Popen[bytes]) -> Callable[[], None]:
        def run() -> None:
            assert p.stdin is not None
            p.stdin.write(line * calls)
            p.stdin.flush()

        return run

    def reader(p: subprocess.Popen[bytes]) -> Callable[[], None]:
        def run() -> None:
            assert p.stdout is not None
            got = 0
            while got < calls:
                chunk = p.stdout.read1(1 << 20)
                if not chunk:
                    raise EOFError(f"naive worker closed stdout after {got} of {calls} answers")
                got += chunk.count(b"\n")

        return run

    elapsed = drive([(writer(p), reader(p)) for p in procs])
    cpu = [cpu_per_call_us(p.pid, calls) for p in procs]
    for p in procs:
        assert p.stdin is not None
        p.stdin.close()
        p.wait()
    return n * calls / elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000, help="calls per worker")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    for name, run in [("tandem worker", tandem_workers), ("naive worker", naive_workers)]:
        rate, cpu = run(args.workers, args.calls)
        per = ", ".join(cpu)
        print(f"{name:<14} x{args.workers}, pipelined: {rate:>9,.0f} calls/s; "
              f"CPU per call, user + system µs (start-up included): {per}")  # fmt: skip


if __name__ == "__main__":
    main()
