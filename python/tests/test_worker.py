"""The pool worker (``python -m tandem worker``) driven over a real socketpair, as Rust drives it."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tandem import _wire

APP = textwrap.dedent(
    """
    import asyncio, time
    import tandem

    app = tandem.App("t")

    @app.handler("echo")
    def echo(p, ctx):
        return p

    @app.handler("aecho")
    async def aecho(p, ctx):
        await asyncio.sleep(0)
        return {"p": p, "tp": ctx.traceparent}

    @app.handler("ctx")
    def ctx_(p, ctx):
        return {"tp": ctx.traceparent, "key": ctx.idempotency_key,
                "meta": dict(ctx.metadata), "remaining": ctx.remaining(),
                "transport": ctx.transport}

    @app.handler("print")
    def pr(p):
        print("PRINTED-LINE")
        return "ok"

    @app.handler("boom")
    def boom(p):
        raise KeyError(p)
    """
)


class Peer:
    """The parent's side of the wire, with the worker process."""

    def __init__(self, sock: socket.socket, proc: subprocess.Popen[bytes]) -> None:
        self.sock = sock
        self.proc = proc
        self.stream = sock.makefile("rb")

    def read(self) -> _wire.Frame:
        return _wire.read(lambda n: self.stream.read(n) or b"", 1 << 26)

    def call(
        self, id_: int, method: str, payload: bytes, codec: str = "json", **kw: Any
    ) -> _wire.Frame:
        body = _wire.call_body(method=method, codec=codec, payload=payload, **kw)
        self.sock.sendall(_wire.encode(_wire.CALL, id_, body))
        return self.read()

    def close(self) -> int:
        self.stream.close()
        self.sock.close()
        return self.proc.wait(timeout=10)


@pytest.fixture
def peer(tmp_path: Path) -> Iterator[Peer]:
    (tmp_path / "tapp.py").write_text(APP)
    parent, child = socket.socketpair()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tandem",
            "worker",
            "tapp:app",
            "--fd",
            str(child.fileno()),
            "--max-frame",
            "70000",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        pass_fds=(child.fileno(),),
    )
    child.close()
    p = Peer(parent, proc)
    try:
        yield p
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        proc.stderr.close()


@pytest.mark.timeout(30)
def test_worker_says_hello_then_answers_and_exits_on_eof(peer: Peer) -> None:
    hello = peer.read()
    assert hello.type == _wire.HELLO and hello.id == 0
    assert hello.body["protocol"] == 1
    assert hello.body["pid"] == peer.proc.pid
    assert hello.body["methods"] == ["aecho", "boom", "ctx", "echo", "print"]
    assert hello.body["max_frame"] == 70000
    ok = peer.call(1, "echo", b'{"a":1}')
    assert (ok.type, ok.id, ok.body) == (_wire.OK, 1, {"codec": "json", "payload": b'{"a":1}'})
    ok = peer.call(2, "aecho", b"\x01", codec="msgpack", traceparent="00-x")
    assert ok.type == _wire.OK and ok.body["codec"] == "msgpack"
    ok = peer.call(3, "echo", b"\x00\xff", codec="raw")
    assert ok.body == {"codec": "raw", "payload": b"\x00\xff"}
    assert peer.close() == 0  # EOF on the wire: the parent is gone


@pytest.mark.timeout(30)
def test_worker_sets_ctx_from_the_call(peer: Peer) -> None:
    peer.read()
    ok = peer.call(
        4,
        "ctx",
        b"null",
        timeout_ms=5000,
        traceparent="00-abc-def-01",
        idempotency_key="k1",
        headers={"tenant": "acme"},
    )
    import json

    ctx = json.loads(ok.body["payload"])
    assert ctx["tp"] == "00-abc-def-01" and ctx["key"] == "k1"
    assert ctx["meta"] == {"tenant": "acme"} and ctx["transport"] == "pool"
    assert 0 < ctx["remaining"] <= 5.0


@pytest.mark.timeout(30)
def test_worker_reports_errors_and_keeps_serving(peer: Peer) -> None:
    peer.read()
    err = peer.call(5, "boom", b'"k"')
    assert err.type == _wire.ERROR and err.id == 5
    assert err.body["kind"] == "remote" and err.body["type"] == "KeyError"
    assert "Traceback" in err.body["traceback"]
    err = peer.call(6, "nope", b"null")
    assert err.body["kind"] == "bad_request" and "nope" in err.body["message"]
    err = peer.call(7, "echo", b"{not json")
    assert err.body["kind"] == "bad_request"
    assert peer.call(8, "echo", b"1").type == _wire.OK


@pytest.mark.timeout(30)
def test_worker_prints_go_to_stdout_not_the_wire(peer: Peer) -> None:
    peer.read()
    ok = peer.call(9, "print", b"null")
    assert ok.type == _wire.OK and ok.body["payload"] == b'"ok"'
    assert peer.close() == 0
    assert peer.proc.stdout is not None
    assert b"PRINTED-LINE" in peer.proc.stdout.read()


@pytest.mark.timeout(30)
def test_worker_refuses_an_oversized_frame_without_reading_it_whole(peer: Peer) -> None:
    peer.read()
    big = _wire.encode(
        _wire.CALL, 10, _wire.call_body(method="echo", codec="raw", payload=b"x" * 100_000)
    )
    peer.sock.sendall(big)
    err = peer.read()
    assert err.type == _wire.ERROR and err.id == 10
    assert err.body["kind"] == "bad_request" and "exceeds" in err.body["message"]
    assert peer.call(11, "echo", b"2").type == _wire.OK


@pytest.mark.timeout(30)
def test_worker_answers_ping_and_obeys_shutdown(peer: Peer) -> None:
    peer.read()
    peer.sock.sendall(_wire.encode(_wire.PING, 12, {}))
    pong = peer.read()
    assert (pong.type, pong.id) == (_wire.PONG, 12)
    peer.sock.sendall(_wire.encode(_wire.SHUTDOWN, 0, {}))
    assert peer.proc.wait(timeout=10) == 0


@pytest.mark.timeout(30)
def test_worker_exits_on_garbage_from_the_parent(peer: Peer) -> None:
    peer.read()
    peer.sock.sendall(b"\x00\x00\x00\x10" + b"XX" + b"\x00" * 14)
    assert peer.proc.wait(timeout=10) == 3
    assert peer.proc.stderr is not None
    assert b"bad magic" in peer.proc.stderr.read()


@pytest.mark.timeout(30)
def test_worker_started_by_hand_explains_itself(tmp_path: Path) -> None:
    (tmp_path / "tapp.py").write_text(APP)
    out = subprocess.run(
        [sys.executable, "-m", "tandem", "worker", "tapp:app", "--fd", "97"],
        cwd=tmp_path,
        capture_output=True,
        timeout=20,
    )
    assert out.returncode == 2
    assert b"started by tandem::process::Pool" in out.stderr


@pytest.mark.timeout(30)
def test_worker_exits_cleanly_on_sigterm(peer: Peer) -> None:
    peer.read()
    peer.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    while peer.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert peer.proc.returncode == 0


def _reader(data: bytes) -> Any:
    import io

    buf = io.BytesIO(data)
    return lambda n: buf.read(n)


def test_wire_read_tells_eof_truncation_and_oversize_apart() -> None:
    frame = _wire.encode(_wire.PING, 1, {})
    assert _wire.read(_reader(frame), 1024).type == _wire.PING
    with pytest.raises(_wire.EndOfStream):
        _wire.read(_reader(b""), 1024)
    with pytest.raises(_wire.WireError) as info:
        _wire.read(_reader(frame[:-1]), 1024)
    assert info.value.code == "truncated"
    with pytest.raises(_wire.WireError) as info:
        _wire.read(_reader(b"\xff\xff\xff\xff"), 1024)
    assert info.value.code == "too_large" and "exceeds" in str(info.value)


def test_worker_refuses_stdio_as_the_wire() -> None:
    from tandem import App
    from tandem.worker import run

    with pytest.raises(ValueError, match="stdin, stdout or stderr"):
        run(App("x"), fd=1)


@pytest.mark.timeout(30)
def test_worker_spins_between_calls_when_asked_and_still_serves(peer: Peer) -> None:
    peer.read()
    for i in range(1, 50):
        ok = peer.call(i, "echo", b"[1]", spin_us=200 if i % 2 else 0)
        assert ok.type == _wire.OK and ok.id == i and ok.body["payload"] == b"[1]"
    err = peer.call(60, "echo", b"1", spin_us=-1)
    assert err.type == _wire.ERROR and "spin_us" in err.body["message"]
    # A spinning worker still sees the parent leave.
    peer.call(61, "echo", b"1", spin_us=10_000_000)
    assert peer.close() == 0


def test_spin_returns_when_a_byte_or_eof_waits_without_consuming_it() -> None:
    from tandem.worker import spin_until_readable

    a, b = socket.socketpair()
    with a, b:
        assert spin_until_readable(b, 0.0) is False
        started = time.monotonic()
        assert spin_until_readable(b, 0.02) is False
        assert time.monotonic() - started >= 0.02
        a.sendall(b"xy")
        assert spin_until_readable(b, 10.0) is True
        assert b.recv(2) == b"xy"  # the peek left both bytes
        a.close()
        assert spin_until_readable(b, 10.0) is True  # end of stream counts
        assert b.recv(1) == b""


def test_inbox_reassembles_frames_across_reads_and_past_its_buffer() -> None:
    from tandem.worker import _Inbox

    a, b = socket.socketpair()
    with a, b:
        inbox = _Inbox(b, size=16)
        big = bytes(range(256)) * 4  # larger than the 16-byte buffer: read into its own
        a.sendall(b"abcdefghij")
        assert inbox.read(4) == b"abcd"
        assert not inbox.empty
        a.sendall(b"klmnopqrstuvwxyz0123")  # the 6 buffered bytes must move to the front
        assert inbox.read(14) == b"efghijklmnopqr"
        assert inbox.read(10) == b"stuvwxyz01"
        a.sendall(big)
        assert inbox.read(2 + len(big)) == b"23" + big
        assert inbox.empty
        a.sendall(b"tail")
        assert inbox.discard(2) == 2
        a.close()
        assert inbox.read(8) == b"il"  # fewer only because the stream ended
        assert inbox.read(4) == b""
        assert inbox.read(64) == b""


def test_worker_serves_frames_that_arrive_a_few_bytes_at_a_time(peer: Peer) -> None:
    peer.read()
    payload = b'"' + b"x" * 3000 + b'"'
    frames = b"".join(
        _wire.encode(_wire.CALL, i, _wire.call_body(method="echo", codec="json", payload=payload))
        for i in (1, 2)
    )
    for at in range(0, len(frames), 7):
        peer.sock.sendall(frames[at : at + 7])
        time.sleep(0.0002 if at % 700 == 0 else 0)
    for i in (1, 2):
        ok = peer.read()
        assert ok.type == _wire.OK and ok.id == i and ok.body["payload"] == payload
    assert peer.close() == 0
