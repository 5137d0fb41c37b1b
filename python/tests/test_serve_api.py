"""tandem.serve's Python API and flags: run() with port 0, and every flag's parsing."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from serve_helpers import SERVING, alive, children, wait_until

from tandem import serve
from tandem._serve.settings import MIB, ServeSettings

pytestmark = pytest.mark.timeout(60)


def test_every_flag_reaches_the_settings() -> None:
    args = serve.parser().parse_args(
        [
            "svc:app",
            "--models",
            "svc:reg",
            "--host",
            "127.0.0.1",
            "--port",
            "7000",
            "--unix",
            "/tmp/x.sock",
            "--workers",
            "3",
            "--grace",
            "2.5",
            "--drain-delay",
            "0.25",
            "--max-message-bytes",
            "1024",
            "--max-concurrent-rpcs",
            "8",
            "--keepalive-time",
            "30",
            "--min-ping-interval",
            "5",
            "--no-batching",
            "--gzip",
        ]
    )
    assert args.models == "svc:reg"
    assert serve.settings_from_args(args) == ServeSettings(
        host="127.0.0.1",
        port=7000,
        unix="/tmp/x.sock",
        workers=3,
        grace_s=2.5,
        drain_delay_s=0.25,
        max_message_bytes=1024,
        max_concurrent_rpcs=8,
        keepalive_time_s=30.0,
        min_ping_interval_s=5.0,
        batching=False,
        gzip=True,
    )


def test_defaults_and_unix_only() -> None:
    d = serve.settings_from_args(serve.parser().parse_args(["svc:app"]))
    assert (d.port, d.unix, d.max_message_bytes, d.batching) == (50051, None, 64 * MIB, True)
    assert d.worker_count() >= 1
    u = serve.settings_from_args(serve.parser().parse_args(["svc:app", "--unix", "s"]))
    assert (u.port, u.unix) == (None, "s")
    assert ServeSettings(unix="s", workers=1).unix_path(0) == "s"
    assert ServeSettings(unix="s", workers=2).unix_path(1) == "s.1"
    options = dict(ServeSettings().grpc_options())
    assert options["grpc.keepalive_permit_without_calls"] == 1
    assert options["grpc.http2.max_ping_strikes"] == 0
    assert options["grpc.max_receive_message_length"] == 64 * MIB


def test_run_api_with_port_zero(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text(
        textwrap.dedent("""
        import tandem, tandem.serve
        from tandem.models import Registry, RiskModel
        app = tandem.App("api")
        if __name__ == "__main__":
            import logging; logging.basicConfig(level=logging.INFO)
            raise SystemExit(tandem.serve.run(
                app, models=Registry([RiskModel()]), port=0, workers=1,
                settings=tandem.serve.ServeSettings(host="127.0.0.1", drain_delay_s=0),
            ))
    """)
    )
    log = tmp_path / "log"
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "main.py"], cwd=tmp_path, stderr=err, start_new_session=True
        )
    try:
        found = wait_until(
            lambda: re.search(r"on 127\.0\.0\.1:(\d+)", log.read_text()),
            30,
            "the chosen port in the log",
        )
        port = int(found.group(1))
        assert port != 0
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            stub = health_pb2_grpc.HealthStub(ch)

            def serving() -> bool:
                try:
                    return stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == SERVING
                except grpc.RpcError:
                    return False

            wait_until(serving, 30, "SERVING")
        workers = children(proc.pid)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        wait_until(lambda: not any(alive(p) for p in workers), 10, "workers gone")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def test_run_needs_somewhere_to_listen() -> None:
    import tandem

    with pytest.raises(ValueError, match="nothing to listen on"):
        serve.run(tandem.App("x"), settings=ServeSettings(port=None, unix=None))


def test_blas_threads_default_to_one_and_an_exported_value_wins(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import types

    from tandem.models.blas import BLAS_THREAD_VARS, limit_blas_threads

    for var in BLAS_THREAD_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setitem(sys.modules, "numpy", sys.modules.get("numpy", types.ModuleType("numpy")))
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # its import raises ImportError
    limit_blas_threads()
    assert os.environ["OPENBLAS_NUM_THREADS"] == "1" and os.environ["MKL_NUM_THREADS"] == "1"
    assert os.environ["OMP_NUM_THREADS"] == "3"
    assert "numpy was imported before" in caplog.text
