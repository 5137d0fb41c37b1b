"""Helpers for the queue tests: a private redis-server, a consumer subprocess, a producer."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tandem._queue import fields as wire

REPO = Path(__file__).resolve().parents[2]


def wait_until(timeout_s: float, cond: Callable[[], Any], what: str = "condition") -> Any:
    """Polls ``cond`` until truthy; fails the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.02)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def redis_binary() -> str:
    """The redis-server the tests use: ``$TANDEM_REDIS_SERVER`` (e.g. the Redis 8.6 that
    ``scripts/setup-redis8.sh`` builds), else ``redis-server`` on ``PATH``."""
    return os.environ.get("TANDEM_REDIS_SERVER") or "redis-server"


class RedisServer:
    """A private redis-server on a free port, with its own data dir."""

    def __init__(self, aof: bool = False) -> None:
        if shutil.which(redis_binary()) is None:
            pytest.skip(f"{redis_binary()} is not installed (scripts/setup-system.sh installs it)")
        self.dir = Path(tempfile.mkdtemp(prefix="tandem-redis-"))
        self.port = free_port()
        self.aof = aof
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        persist = ["--appendonly", "yes", "--appendfsync", "always"] if self.aof else []
        self.proc = subprocess.Popen(
            [
                redis_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.dir),
                "--save",
                "",
                *persist,
            ],
            stdout=subprocess.DEVNULL,
        )
        import redis

        def up() -> bool:
            try:
                return bool(redis.Redis(port=self.port).ping())
            except redis.RedisError:
                return False

        wait_until(10, up, "redis-server to answer")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def client(self) -> Any:
        import redis

        return redis.Redis(port=self.port)

    def version(self) -> tuple[int, ...]:
        """The server's ``redis_version`` as a tuple, e.g. ``(8, 6, 3)``."""
        text = str(self.client().info("server")["redis_version"])
        return tuple(int(p) if p.isdigit() else 0 for p in text.split(".")[:3])

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def publish(
    r: Any,
    stream: str,
    method: str,
    payload: bytes = b"{}",
    *,
    codec: str = "json",
    task_id: str | None = None,
    reply_to: str | None = None,
    idem: str | None = None,
) -> str:
    """Publishes a task with the same fields the Rust producer writes."""
    task = wire.Task(
        id=task_id or uuid.uuid4().hex,
        method=method,
        codec=codec,
        payload=payload,  # type: ignore[arg-type]
        enq_ms=wire.now_ms(),
        reply_to=reply_to,
        idempotency_key=idem,
    )
    r.xadd(stream, wire.encode_task(task))
    return task.id


class ConsumerProc:
    """``python -m tandem consume`` as a real subprocess (its own process group)."""

    def __init__(self, app_dir: Path, redis_url: str, stream: str, *args: str) -> None:
        self.log = app_dir / f"consumer-{uuid.uuid4().hex[:6]}.log"
        self._out = open(self.log, "wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tandem",
                "consume",
                "service:app",
                "--redis",
                redis_url,
                "--stream",
                stream,
                "--group",
                "g",
                *args,
            ],
            cwd=app_dir,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONPATH": str(app_dir)},
        )

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout_s: float) -> int:
        return self.proc.wait(timeout=timeout_s)

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        self._out.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def write_app(tmp: Path, body: str) -> Path:
    """Writes ``service.py`` with ``app = tandem.App(...)`` plus ``body``."""
    src = "import os, time, asyncio\nimport tandem\napp = tandem.App('q')\n" + textwrap.dedent(body)
    (tmp / "service.py").write_text(src)
    return tmp


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    yield server
    server.close()
