"""How many calls per second the Python workers themselves can serve, when they never wait.

Feeds N echo calls, all written up front (pipelined), to W ``python -m tandem worker`` processes
over their wire, and the same to W naive newline-JSON workers (``naive_worker.py``) over
stdin/stdout, and prints calls/s and each worker's CPU per call. Each worker's calls are written
by one helper process and its answers read by another, so the driver never competes with itself
for a GIL. No dispatch design that waits for an answer before sending a worker its next call
(the pool, the naive design) can go faster than this on the same machine: it bounds the
concurrency-64 rows of the process bench.

    .venv/bin/python bench/worker_ceiling.py [--calls N] [--workers W]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tandem import _wire

HERE = Path(__file__).resolve().parent
PAYLOAD = json.dumps({"x": "a" * 88}).encode()  # 100 B, as the bench's small case

# Helper processes: write a file to an fd; read answers from an fd until `calls` have come.
WRITER = """
import os, sys
fd, src, size, sent = int(sys.argv[1]), os.open(sys.argv[2], os.O_RDONLY), int(sys.argv[3]), 0
while sent < size:
    sent += os.sendfile(fd, src, sent, size - sent)
"""
READER = """
import os, sys

def read(n):
    chunk = os.read(fd, n)
    if not chunk:
        sys.exit("the worker closed its output with answers still due")
    return chunk

fd, calls, framed = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "frames"
if framed:  # every answer has the same size: learn it from the first length prefix
    prefix = b""
    while len(prefix) < 4:
        prefix += read(4 - len(prefix))
    left = (4 + int.from_bytes(prefix, "big")) * calls - 4
    while left:
        left -= len(read(min(left, 1 << 20)))
else:
    got = 0
    while got < calls:
        got += read(1 << 20).count(b"\\n")
"""


def cpu_s(pid: int) -> tuple[float, float]:
    """User and system CPU seconds ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    user, system = (int(f) / os.sysconf("SC_CLK_TCK") for f in fields[11:13])
    return user, system


def measured(pids: list[int], calls: int, run: Callable[[], float]) -> tuple[float, list[str]]:
    """Calls/s of ``run`` (which returns its seconds) over all ``pids``, and each one's user and
    system CPU per call in µs, start-up left out."""
    before = [cpu_s(p) for p in pids]
    elapsed = run()
    per_call = []
    for pid, (user0, system0) in zip(pids, before, strict=True):
        user, system = cpu_s(pid)
        per_call.append(
            f"{(user - user0) / calls * 1e6:.1f} + {(system - system0) / calls * 1e6:.1f}"
        )
    return len(pids) * calls / elapsed, per_call


def feed(pairs: list[tuple[int, int]], blob: bytes, calls: int, framed: bool) -> float:
    """Writes ``blob`` to each pair's input fd and reads ``calls`` answers from its output fd,
    each in a helper process; returns the seconds until every reader is done."""
    with tempfile.NamedTemporaryFile() as f:
        f.write(blob)
        f.flush()
        mode = "frames" if framed else "lines"
        start = time.perf_counter()
        readers, writers = [], []
        for fd_in, fd_out in pairs:
            readers.append(
                subprocess.Popen([sys.executable, "-c", READER, str(fd_out), str(calls), mode],
                                 pass_fds=[fd_out])
            )  # fmt: skip
            writers.append(
                subprocess.Popen([sys.executable, "-c", WRITER, str(fd_in), f.name,
                                  str(len(blob))], pass_fds=[fd_in])
            )  # fmt: skip
        failed = [h.wait() for h in readers]
        elapsed = time.perf_counter() - start
        failed += [h.wait() for h in writers]
        if any(failed):
            raise SystemExit("a helper failed; see its message above")
        return elapsed


def tandem_workers(n: int, calls: int) -> tuple[float, list[str]]:
    blob = b"".join(
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
    pairs = [(s.fileno(), s.fileno()) for _, s in procs]
    result = measured([p.pid for p, _ in procs], calls, lambda: feed(pairs, blob, calls, True))
    for p, s in procs:
        s.close()
        p.wait()
    return result


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
    pairs = []
    for p in procs:
        assert p.stdin is not None and p.stdout is not None
        pairs.append((p.stdin.fileno(), p.stdout.fileno()))
    result = measured(
        [p.pid for p in procs], calls, lambda: feed(pairs, line * calls, calls, False)
    )
    for p in procs:
        assert p.stdin is not None
        p.stdin.close()
        p.wait()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000, help="calls per worker")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    for name, run in [("tandem worker", tandem_workers), ("naive worker", naive_workers)]:
        rate, cpu = run(args.workers, args.calls)
        per = ", ".join(cpu)
        print(f"{name:<14} x{args.workers}, pipelined: {rate:>9,.0f} calls/s; "
              f"CPU per call, user + system µs: {per}")  # fmt: skip


if __name__ == "__main__":
    main()
