"""Starts ``python -m tandem plugin`` the way a go-plugin host does, for the plugin tests."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

APPS = Path(__file__).parent / "plugin_apps"
COOKIE = {"TANDEM_PLUGIN": "5f0b7c2e-tandem-go-plugin"}


@dataclass
class Started:
    proc: subprocess.Popen[bytes]
    line: str
    fields: list[str]

    @property
    def target(self) -> str:
        network, address = self.fields[2], self.fields[3]
        return f"unix:{address}" if network == "unix" else address


def host_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLUGIN_")}
    env.update(COOKIE)
    env["PLUGIN_PROTOCOL_VERSIONS"] = "1"
    env["PYTHONPATH"] = str(APPS)
    env.update(extra)
    return env


def spawn(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tandem", "plugin", *args],
        env=env if env is not None else host_env(),
        cwd=APPS,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def read_line(proc: subprocess.Popen[bytes], timeout_s: float = 30.0) -> str:
    """The first stdout line, or AssertionError with the stderr seen so far."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout_s
    buf = b""
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no handshake within {timeout_s}s; stdout so far {buf!r}")
        ready, _, _ = select.select([proc.stdout], [], [], left)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise AssertionError(f"stdout closed before the handshake; stderr:\n{err}")
            buf += chunk
    return buf.decode()


def wait_exit(proc: subprocess.Popen[bytes], timeout_s: float = 10.0) -> int:
    try:
        return proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"plugin pid {proc.pid} did not exit within {timeout_s}s") from None


def pid_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1].startswith("Z")
    except FileNotFoundError:
        return True


def wait_until(cond, timeout_s: float = 10.0, what: str = "condition") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.02)


@contextmanager
def plugin(*args: str, env: dict[str, str] | None = None) -> Iterator[Started]:
    proc = spawn(*args, env=env)
    fields: list[str] = []
    try:
        line = read_line(proc)
        fields = line.rstrip("\n").split("|")
        yield Started(proc, line, fields)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        if len(fields) > 3 and fields[2] == "unix" and os.path.exists(fields[3]):
            os.unlink(fields[3])  # a SIGKILLed plugin cannot remove its socket: the host does
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
