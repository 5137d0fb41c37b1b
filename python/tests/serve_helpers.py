"""Starts real ``python -m tandem serve`` process trees for the serve tests, and cleans up."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tandem._proto import call_pb2, call_pb2_grpc, inference_pb2, inference_pb2_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING

#: A served module with test models; GATE_DIR gates slow loads and computes.
SERVICE = '''
import json, os, threading, time
from pathlib import Path
import tandem
from tandem.models import BatchConfig, Model, Registry, RiskMlpModel, RiskModel, RiskSeqModel

app = tandem.App("test")
GATES = Path(os.environ["GATE_DIR"])

def wait_gate(name):
    while not (GATES / name).exists():
        time.sleep(0.01)

@app.handler("echo")
def echo(payload, ctx):
    return {"payload": payload, "remaining": ctx.remaining(), "traceparent": ctx.traceparent,
            "metadata": dict(ctx.metadata), "pid": os.getpid()}

@app.handler("boom")
def boom(payload):
    raise KeyError("no such account")

@app.handler("blas")
def blas(payload):
    import sys
    return {"numpy": "numpy" in sys.modules,
            **{v: os.environ.get(v) for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}}

@app.handler("seen")
def seen(payload):
    return Gated.seen

class SlowLoad(Model):
    name = "slow_load"
    def load(self):
        wait_gate("load")
    def predict_batch(self, inputs):
        return [{"ok": x} for x in inputs]

class Gated(Model):
    """One at a time; each compute waits for the 'compute' gate."""
    name = "gated"
    batching = BatchConfig(max_batch_size=1, max_queue_size=2)
    seen = []
    def predict_batch(self, inputs):
        Gated.seen.extend(inputs)
        wait_gate("compute")
        return [{"echo": x} for x in inputs]

class Tiny(Model):
    """A queue of one; each compute waits for the 'tiny' gate."""
    name = "tiny"
    batching = BatchConfig(max_batch_size=1, max_queue_size=1)
    def predict_batch(self, inputs):
        wait_gate("tiny")
        return inputs

class Broken(Model):
    name = "broken"
    def predict_batch(self, inputs):
        raise RuntimeError("weights corrupted")

models = Registry(
    [RiskModel(), RiskMlpModel(), RiskSeqModel(), SlowLoad(), Gated(), Tiny(), Broken()]
)
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(cond: Callable[[], Any], timeout: float, what: str) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = cond()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except FileNotFoundError:
        return []


class Server:
    """A ``python -m tandem serve`` process tree in its own session."""

    def __init__(self, tmp: Path, *args: str, workers: int = 1) -> None:
        self.tmp = tmp
        self.gates = tmp / "gates"
        self.gates.mkdir(exist_ok=True)
        (tmp / "svc.py").write_text(textwrap.dedent(SERVICE))
        self.port = free_port()
        self.workers = workers
        self.log = open(tmp / "server.log", "wb")
        env = {**os.environ, "GATE_DIR": str(self.gates), "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tandem",
                "serve",
                "svc:app",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
                "--host",
                "127.0.0.1",
                *args,
            ],
            cwd=tmp,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            start_new_session=True,
        )
        self.seen_pids: set[int] = {self.proc.pid}
        self._channels: list[grpc.Channel] = []

    def open_gate(self, name: str) -> None:
        (self.gates / name).touch()

    def channel(self, address: str | None = None, **options: Any) -> grpc.Channel:
        ch = grpc.insecure_channel(
            address or f"127.0.0.1:{self.port}", options=list(options.items())
        )
        self._channels.append(ch)
        return ch

    def workers_pids(self) -> list[int]:
        pids = children(self.proc.pid)
        self.seen_pids.update(pids)
        return pids

    def health(self, ch: grpc.Channel, service: str = "") -> Any:
        try:
            return (
                health_pb2_grpc.HealthStub(ch)
                .Check(health_pb2.HealthCheckRequest(service=service), timeout=1)
                .status
            )
        except grpc.RpcError:
            return None

    def wait_serving(self, timeout: float = 30.0) -> None:
        wait_until(lambda: len(self.workers_pids()) == self.workers, timeout, "workers forked")

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.logs()}")
            ch = grpc.insecure_channel(f"127.0.0.1:{self.port}")
            try:
                return self.health(ch) == SERVING
            finally:
                ch.close()

        wait_until(ready, timeout, "health SERVING")

    def logs(self) -> str:
        self.log.flush()
        return (self.tmp / "server.log").read_text(errors="replace")

    def stop(self, timeout: float = 30.0) -> int:
        self.workers_pids()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def close(self) -> None:
        for ch in self._channels:
            ch.close()
        self.workers_pids()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)
        self.log.close()
        wait_until(lambda: not any(alive(p) for p in self.seen_pids), 10, "no orphan workers")


def predict(ch: grpc.Channel, model: str, data: bytes, timeout: float = 10.0) -> Any:
    stub = inference_pb2_grpc.InferenceServiceStub(ch)
    return stub.Predict.with_call(
        inference_pb2.PredictRequest(model_name=model, input_data=data), timeout=timeout
    )


def invoke(ch: grpc.Channel, method: str, payload: bytes, timeout: float = 10.0, **kw: Any) -> Any:
    metadata = kw.pop("metadata", None)
    return call_pb2_grpc.CallStub(ch).Invoke(
        call_pb2.CallRequest(method=method, payload=payload, codec="json", **kw),
        timeout=timeout,
        metadata=metadata,
    )
