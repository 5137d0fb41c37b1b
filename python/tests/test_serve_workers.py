"""Several worker processes: port sharing, per-worker unix sockets, restarts, parent death."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path

import grpc
import pytest
from serve_helpers import SERVING, Server, alive, invoke, predict, wait_until

pytestmark = pytest.mark.timeout(120)

PAYMENT = json.dumps({"amount": 40, "merchant_category": "fuel"}).encode()


def test_workers_share_the_port_and_each_has_a_unix_socket(tmp_path: Path) -> None:
    sock = tmp_path / "s.sock"
    srv = Server(tmp_path, "--unix", str(sock), "--drain-delay", "0", workers=2)
    srv.open_gate("load")
    try:
        srv.wait_serving()
        pids = set()
        for i in range(2):
            ch = srv.channel(f"unix:{sock}.{i}")
            wait_until(lambda ch=ch: srv.health(ch) == SERVING, 30, f"worker {i} SERVING")
            pids.add(json.loads(invoke(ch, "echo", b"1").ok.data)["pid"])
        assert pids == set(srv.workers_pids())
        # Fresh TCP connections are spread over both workers by SO_REUSEPORT.
        seen = set()
        for _ in range(40):
            ch = grpc.insecure_channel(f"127.0.0.1:{srv.port}")
            seen.add(json.loads(invoke(ch, "echo", b"1").ok.data)["pid"])
            ch.close()
            if seen == pids:
                break
        assert seen == pids
        assert srv.stop() == 0
        assert not (tmp_path / "s.sock.0").exists() and not (tmp_path / "s.sock.1").exists()
    finally:
        srv.close()


def test_killed_worker_is_restarted_under_load(tmp_path: Path) -> None:
    srv = Server(tmp_path, "--drain-delay", "0", workers=2)
    srv.open_gate("load")
    try:
        srv.wait_serving()
        before = srv.workers_pids()
        stop = threading.Event()
        results = {"ok": 0, "failed": 0}

        def load() -> None:
            ch = grpc.insecure_channel(f"127.0.0.1:{srv.port}")
            while not stop.is_set():
                try:
                    predict(ch, "risk", PAYMENT, timeout=5)
                    results["ok"] += 1
                except grpc.RpcError:
                    results["failed"] += 1  # calls on the killed worker's connection
            ch.close()

        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        wait_until(lambda: results["ok"] > 20, 30, "load running")
        os.kill(before[0], signal.SIGKILL)
        after = wait_until(
            lambda: (p := srv.workers_pids()) and len(p) == 2 and before[0] not in p and p,
            30,
            "a replacement worker",
        )
        assert before[1] in after
        wait_until(lambda: "worker 0 (pid" in srv.logs() and "died" in srv.logs(), 10, "log")
        srv.wait_serving()
        ok_then = results["ok"]
        wait_until(lambda: results["ok"] > ok_then + 20, 30, "load served after the restart")
        stop.set()
        for t in threads:
            t.join(10)
        assert srv.stop() == 0
    finally:
        srv.close()


def test_workers_exit_when_the_parent_dies(tmp_path: Path) -> None:
    srv = Server(tmp_path, "--drain-delay", "0", workers=2)
    srv.open_gate("load")
    try:
        srv.wait_serving()
        workers = srv.workers_pids()
        os.kill(srv.proc.pid, signal.SIGKILL)
        srv.proc.wait(10)
        wait_until(lambda: not any(alive(p) for p in workers), 30, "workers gone after parent")
    finally:
        srv.close()


def test_bad_app_spec_exits_2(tmp_path: Path) -> None:
    srv = Server(tmp_path, "--models", "svc:nothing_here")
    try:
        assert srv.proc.wait(30) == 2
        assert "svc:nothing_here" in srv.logs()
    finally:
        srv.close()


def test_model_that_cannot_load_stops_the_server(tmp_path: Path) -> None:
    (tmp_path / "badmodel.py").write_text(
        "import tandem\nfrom tandem.models import Model, Registry\n"
        "app = tandem.App('bad')\n"
        "class Bad(Model):\n    name = 'bad'\n"
        "    def load(self):\n        raise FileNotFoundError('weights.bin')\n"
        "models = Registry([Bad()])\n"
    )
    srv = Server(tmp_path, "--models", "badmodel:models", workers=2)
    try:
        assert srv.proc.wait(60) == 2
        assert "FileNotFoundError: weights.bin" in srv.logs()
    finally:
        srv.close()
