"""deploy/docker/healthcheck.py against real peers: a tandem gRPC server and an HTTP server."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("grpc_health", reason="needs pip install 'tandem[grpc]'")

from serve_helpers import Server, free_port

HEALTHCHECK = Path(__file__).resolve().parents[2] / "deploy" / "docker" / "healthcheck.py"


def run_healthcheck(spec: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK)],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "TANDEM_HEALTHCHECK": spec},
    )


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 503)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_port() -> Iterator[int]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv.server_address[1]
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(10)


def test_grpc_healthcheck_passes_against_serving_tandem_server(tmp_path: Path) -> None:
    srv = Server(tmp_path, "--drain-delay", "0")
    srv.open_gate("load")
    try:
        srv.wait_serving()
        done = run_healthcheck(f"grpc:{srv.port}")
        assert done.returncode == 0, done.stderr
    finally:
        srv.close()


def test_grpc_healthcheck_fails_when_nothing_listens() -> None:
    done = run_healthcheck(f"grpc:{free_port()}")
    assert done.returncode == 1
    assert "grpc health check failed" in done.stderr


def test_http_healthcheck_follows_the_status(http_port: int) -> None:
    assert run_healthcheck(f"http:{http_port}/healthz").returncode == 0
    failed = run_healthcheck(f"http:{http_port}/broken")
    assert failed.returncode == 1
    assert "503" in failed.stderr


def test_none_healthcheck_always_passes() -> None:
    assert run_healthcheck("none").returncode == 0


def test_bad_healthcheck_spec_says_what_is_accepted() -> None:
    done = run_healthcheck("tcp:80")
    assert done.returncode == 1
    assert "TANDEM_HEALTHCHECK='tcp:80'" in done.stderr
    assert "expected http:PORT/PATH, grpc:PORT or none" in done.stderr
