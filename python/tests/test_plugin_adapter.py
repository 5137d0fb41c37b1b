"""The ExternalAdapter example plugin (examples/plugin-adapter) against a loopback HTTP receiver.

The plugin runs as ``python -m tandem plugin service:app --servicers service:servicers`` with the
environment a go-plugin host sets; the receiver is a real ``http.server`` that verifies the
webhook signature and counts TCP connections (to see keep-alive reuse).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import pytest
from plugin_support import host_env, read_line, wait_exit

from tandem._proto import (
    adapter_pb2,
    adapter_pb2_grpc,
    grpc_controller_pb2,
    grpc_controller_pb2_grpc,
)

pytestmark = pytest.mark.timeout(60)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "plugin-adapter"
SECRET = "whsec-test-0123456789"
API_KEY = "sk-live-very-secret-key"


class Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests: list[dict[str, object]] = []
        self.connections: set[int] = set()

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the /slow client hung up first: expected

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Receiver

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.connections.add(self.client_address[1])
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.server.requests.append({"path": self.path, "headers": headers, "body": body})
        if self.path.startswith("/slow"):
            time.sleep(2)
        status, out = 200, {"ok": True, "got": json.loads(body or b"null")}
        if self.path.startswith("/hook"):
            status, out = self._verify(headers.get("x-signature", ""), body)
        data = json.dumps(out).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST

    @staticmethod
    def _verify(header: str, body: bytes) -> tuple[int, dict[str, object]]:
        fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
        ts, sig = fields.get("t", ""), fields.get("v1", "")
        want = hmac.new(SECRET.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        if not ts or abs(time.time() - int(ts)) > 300:
            return 401, {"error": "stale or missing timestamp"}
        if not hmac.compare_digest(want, sig):
            return 401, {"error": "bad signature"}
        return 200, {"verified": True}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def adapter_plugin() -> Iterator[tuple[subprocess.Popen[bytes], grpc.Channel]]:
    env = host_env(ADAPTER_WEBHOOK_SECRET=SECRET, ADAPTER_TIMEOUT_S="0.5", TANDEM_LOG="debug")
    env["PYTHONPATH"] = str(EXAMPLE)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tandem",
            "plugin",
            "service:app",
            "--servicers",
            "service:servicers",
        ],
        env=env,
        cwd=EXAMPLE,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        fields = read_line(proc).strip().split("|")
        with grpc.insecure_channel(f"unix:{fields[3]}") as ch:
            yield proc, ch
            if proc.poll() is None:
                grpc_controller_pb2_grpc.GRPCControllerStub(ch).Shutdown(
                    grpc_controller_pb2.Empty(), timeout=5
                )
        assert wait_exit(proc) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


def _logs(proc: subprocess.Popen[bytes]) -> str:
    assert proc.stderr is not None
    out = proc.stderr.read().decode()
    proc.stderr.close()
    return out


def test_json_provider_reuses_one_connection_and_redacts_secrets(
    receiver: Receiver, adapter_plugin: tuple[subprocess.Popen[bytes], grpc.Channel]
) -> None:
    proc, ch = adapter_plugin
    stub = adapter_pb2_grpc.ExternalAdapterStub(ch)
    assert stub.HealthCheck(adapter_pb2.Empty(), timeout=5).healthy
    for i in range(3):
        resp = stub.Call(
            adapter_pb2.CallRequest(
                method="POST",
                endpoint=f"{receiver.base}/orders?api_key={API_KEY}&n={i}",
                payload=json.dumps({"n": i}).encode(),
                headers={"Authorization": f"Bearer {API_KEY}", "X-Api-Key": API_KEY},
            ),
            timeout=10,
        )
        assert resp.status_code == 200, resp.error
        assert json.loads(resp.data) == {"ok": True, "got": {"n": i}}
    assert len(receiver.requests) == 3
    assert receiver.requests[0]["headers"]["authorization"] == f"Bearer {API_KEY}"  # type: ignore[index]
    assert len(receiver.connections) == 1, "keep-alive connection not reused"
    grpc_controller_pb2_grpc.GRPCControllerStub(ch).Shutdown(grpc_controller_pb2.Empty(), timeout=5)
    wait_exit(proc)
    logs = _logs(proc)
    assert "/orders" in logs and "[redacted]" in logs
    assert API_KEY not in logs and SECRET not in logs


def test_webhook_provider_signs_with_a_timestamped_hmac(
    receiver: Receiver, adapter_plugin: tuple[subprocess.Popen[bytes], grpc.Channel]
) -> None:
    proc, ch = adapter_plugin
    stub = adapter_pb2_grpc.ExternalAdapterStub(ch)
    resp = stub.Call(
        adapter_pb2.CallRequest(
            method="POST",
            endpoint=f"{receiver.base}/hook",
            payload=b'{"event": "paid"}',
            headers={"x-adapter-provider": "webhook"},
        ),
        timeout=10,
    )
    assert resp.status_code == 200 and json.loads(resp.data) == {"verified": True}, resp
    sent = receiver.requests[-1]["headers"]
    assert "x-adapter-provider" not in sent  # type: ignore[operator]
    assert sent["x-signature"].startswith("t=")  # type: ignore[index]
    grpc_controller_pb2_grpc.GRPCControllerStub(ch).Shutdown(grpc_controller_pb2.Empty(), timeout=5)
    wait_exit(proc)
    logs = _logs(proc)
    assert SECRET not in logs
    assert sent["x-signature"].split("v1=")[1] not in logs  # type: ignore[index]


def test_bad_inputs_and_timeouts_answer_errors(
    receiver: Receiver, adapter_plugin: tuple[subprocess.Popen[bytes], grpc.Channel]
) -> None:
    _, ch = adapter_plugin
    stub = adapter_pb2_grpc.ExternalAdapterStub(ch)

    def call(endpoint: str, payload: bytes = b"{}", **headers: str) -> adapter_pb2.CallResponse:
        req = adapter_pb2.CallRequest(
            method="POST", endpoint=endpoint, payload=payload, headers=headers
        )
        return stub.Call(req, timeout=10)

    resp = call(f"{receiver.base}/slow")
    assert resp.status_code == 0 and "timed out after 0.500s" in resp.error
    resp = call(f"{receiver.base}/x", payload=b"{not json")
    assert resp.status_code == 0 and "not JSON" in resp.error
    resp = call(f"{receiver.base}/x", **{"x-adapter-provider": "fax"})
    assert (
        resp.status_code == 0 and "unknown provider 'fax'" in resp.error and "webhook" in resp.error
    )
    resp = call("ftp://example.invalid/x")
    assert resp.status_code == 0 and "http(s)" in resp.error
    resp = call("http://127.0.0.1:1/refused")
    assert resp.status_code == 0 and "ConnectionRefusedError" in resp.error


def test_generic_call_reaches_the_same_adapter(
    receiver: Receiver, adapter_plugin: tuple[subprocess.Popen[bytes], grpc.Channel]
) -> None:
    from tandem._proto import call_pb2, call_pb2_grpc

    _, ch = adapter_plugin
    request = {"method": "POST", "endpoint": f"{receiver.base}/generic", "payload": {"a": 1}}
    reply = call_pb2_grpc.CallStub(ch).Invoke(
        call_pb2.CallRequest(method="call", payload=json.dumps(request).encode(), codec="json"),
        timeout=10,
    )
    got = json.loads(reply.ok.data)
    assert got["status_code"] == 200 and json.loads(got["data"])["got"] == {"a": 1}, reply
