"""The pool worker: ``python -m tandem worker MODULE:APP --fd 3``, started by ``tandem::process::Pool``.

Steps (see ``docs/internals/process.md``):

1. Import the app and run its startup hooks (a failure exits non-zero; the parent reports
   the last stderr lines).
2. Send ``hello`` on the wire fd (a socketpair end the parent placed on fd 3).
3. Loop: read a frame, run the call with :meth:`App.call` (sync and async handlers), answer
   ``ok`` or ``error``. ``ping`` gets ``pong``; ``shutdown`` or end of stream (the parent is gone)
   ends the loop. A watchdog thread exits the process if the parent dies mid-call.
4. Run the shutdown hooks and exit 0.

The worker never writes to stdout: the wire is a separate socket, and stdout is a pipe the
parent forwards to its logs line by line, so a handler's ``print()`` is harmless.
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import signal
import socket
import sys
import threading
import time
from types import FrameType
from typing import Any

from . import _wire
from .app import App, Context
from .errors import TandemError, error_to_wire

__all__ = ["main", "readiness", "run", "spin_until_readable"]

log = logging.getLogger("tandem.worker")

_FRAME_START = _wire.FRAME_HEAD.size  # length prefix and header


class _Inbox:
    """The wire's incoming bytes, read with as few ``recv`` calls as the frames allow.

    A small frame arrives whole in one ``recv_into`` of a reused buffer; a frame larger than
    that buffer is read into its own, so the buffer never grows. The wire is a seqpacket socket,
    whose ``recv`` drops what does not fit of a message: every ``recv`` here has room for at
    least half the buffer, which is ``_wire.MESSAGE_MAX``, or exactly the rest of a frame.
    """

    def __init__(self, sock: socket.socket, size: int = 2 * _wire.MESSAGE_MAX) -> None:
        self._recv_into = sock.recv_into
        self._buf = bytearray(size)
        self._view = memoryview(self._buf)
        self._pos = 0
        self._end = 0

    @property
    def empty(self) -> bool:
        """Whether no received byte waits in the buffer."""
        return self._pos == self._end

    def read(self, n: int) -> bytes | bytearray:
        """Exactly ``n`` bytes, or fewer only when the stream ends first."""
        pos, end = self._pos, self._end
        if end - pos < n:
            if n > len(self._buf):
                return self._read_large(n)
            self._fill(n)
            pos, end = self._pos, self._end
            n = min(n, end - pos)  # short only at end of stream
        out = self._view[pos : pos + n].tobytes()
        pos += n
        # Drained: the next recv fills the buffer from its start, room for a whole frame.
        self._pos, self._end = (0, 0) if pos == end else (pos, end)
        return out

    def receive(self) -> int:
        """One ``recv`` into the drained buffer; returns the bytes received (0: end of stream)."""
        got: int = self._recv_into(self._view)
        self._pos, self._end = 0, got
        return got

    def whole_frame(self, max_frame: int) -> tuple[int, int, memoryview] | None:
        """The next frame's type, id and body, if it is buffered whole with a valid header.

        The body is a view of the buffer, valid until the next read. None (nothing buffered,
        part of a frame, or any defect) sends the caller to the checked path, which reports it.
        """
        pos, end = self._pos, self._end
        if end - pos < _FRAME_START:
            return None
        length, magic, version, type_, flags, id_ = _wire.FRAME_HEAD.unpack_from(self._buf, pos)
        stop = pos + 4 + length
        if (
            stop > end
            or magic != _wire.MAGIC
            or version != _wire.VERSION
            or flags
            or not _wire.HEADER_LEN <= length <= max_frame
            or type_ not in _wire.TYPE_NAMES
        ):
            return None
        self._pos, self._end = (0, 0) if stop == end else (stop, end)
        return type_, id_, self._view[pos + _FRAME_START : stop]

    def _fill(self, n: int) -> None:
        """Receives until ``n`` bytes are buffered or the stream ends (``n`` fits the buffer)."""
        while self._end - self._pos < n:
            if len(self._buf) - self._end < len(self._buf) // 2:  # move the partial frame up
                rest = self._view[self._pos : self._end].tobytes()
                self._buf[: len(rest)] = rest
                self._pos, self._end = 0, len(rest)
            got = self._recv_into(self._view[self._end :])
            if not got:
                return
            self._end += got

    def _read_large(self, n: int) -> bytearray:
        out = bytearray(n)
        have = self._end - self._pos
        out[:have] = self._view[self._pos : self._end]
        self._pos = self._end = 0
        view = memoryview(out)
        while have < n:
            got = self._recv_into(view[have:])
            if not got:
                del view
                del out[have:]
                break
            have += got
        return out

    def discard(self, n: int) -> int:
        """Skips ``n`` bytes without keeping them; returns how many there were."""
        left = n
        while left:
            chunk = self.read(min(left, len(self._buf)))
            if not chunk:
                break
            left -= len(chunk)
        return n - left


def readiness(sock: socket.socket) -> select.poll:
    """A poll object for ``sock``'s readability (end of stream included), for the spin."""
    poll = select.poll()
    poll.register(sock, select.POLLIN)
    return poll


def spin_until_readable(
    sock: socket.socket, budget_s: float, ready: select.poll | None = None
) -> bool:
    """Polls ``sock`` for up to ``budget_s`` seconds, yielding the CPU between polls.

    Returns True as soon as a byte (or end of stream) is waiting, without consuming it, and
    False when the budget ran out. Yielding (``sched_yield``) lets any other runnable thread on
    this CPU, such as the parent's caller, run first; a worker that stays awake this way is
    not woken from sleep when the next call comes, which on a VM costs a VM exit. ``ready`` is
    :func:`readiness` of ``sock``, made once by a caller that spins often: a zero-timeout poll
    costs a third of a peeking ``recv``, which raises when nothing waits.
    """
    if budget_s <= 0:
        return False
    poll = (ready or readiness(sock)).poll
    end = time.perf_counter() + budget_s
    clock, pause = time.perf_counter, os.sched_yield
    while True:
        if poll(0):
            return True
        if clock() >= end:
            return False
        pause()


class _Loop:
    def __init__(self, app: App, sock: socket.socket, max_frame: int) -> None:
        self.app = app
        self.sock = sock
        self.inbox = _Inbox(sock)
        self.ready = readiness(sock)
        self.max_frame = max_frame
        self.max_payload = max(0, max_frame - _wire.FRAME_OVERHEAD)
        #: Seconds to poll for the next frame after this answer (the call's ``spin_us``).
        self.spin_s = 0.0

    def send(self, type_: int, id_: int, body: dict[str, Any]) -> None:
        self.send_frame(_wire.encode(type_, id_, body))

    def send_frame(self, frame: bytes | bytearray) -> None:
        """Sends a frame as messages of at most ``_wire.MESSAGE_MAX`` bytes (one, usually)."""
        if len(frame) <= _wire.MESSAGE_MAX:
            self.sock.sendall(frame)
            return
        view = memoryview(frame)
        for at in range(0, len(frame), _wire.MESSAGE_MAX):
            self.sock.sendall(view[at : at + _wire.MESSAGE_MAX])

    def next_frame(self) -> tuple[int, int, memoryview] | None:
        """The next frame's type, id and undecoded body; None when a frame was refused and skipped.

        The body is a view that the next read may overwrite: decode it first.
        """
        inbox = self.inbox
        frame = inbox.whole_frame(self.max_frame)
        if frame is None and inbox.empty and inbox.receive():  # usually brings a whole frame
            frame = inbox.whole_frame(self.max_frame)
        return frame if frame is not None else self._checked_frame()

    def _checked_frame(self) -> tuple[int, int, memoryview] | None:
        """``next_frame`` a piece at a time: frames larger than the buffer, and every defect."""
        prefix = self.inbox.read(4)
        if not prefix:
            raise _wire.EndOfStream
        if len(prefix) < 4:
            raise _wire.WireError("truncated", f"truncated frame: {len(prefix)} of 4 bytes")
        length = int.from_bytes(prefix, "big")
        if length > self.max_frame and length >= _wire.HEADER_LEN:
            # Refuse without allocating: read the header for the id, skip the body, answer.
            header = self.inbox.read(_wire.HEADER_LEN)
            if len(header) < _wire.HEADER_LEN:
                raise _wire.WireError("truncated", "truncated frame header")
            _, id_ = _wire.decode_header(header)
            self.inbox.discard(length - _wire.HEADER_LEN)
            self.send(
                _wire.ERROR,
                id_,
                _wire.error_body(
                    kind="bad_request",
                    type="tandem.FrameTooLarge",
                    message=f"frame of {length} bytes exceeds the worker's limit of "
                    f"{self.max_frame} bytes",
                    traceback="",
                ),
            )
            return None
        _wire.check_len(length, self.max_frame)
        rest = memoryview(self.inbox.read(length))
        if len(rest) < length:
            raise _wire.WireError("truncated", f"truncated frame: {len(rest)} of {length} bytes")
        type_, id_ = _wire.decode_header(rest[: _wire.HEADER_LEN])
        return type_, id_, rest[_wire.HEADER_LEN :]

    def handle_call(self, id_: int, body: memoryview) -> None:
        try:
            call = _wire.decode_call(body)
        except _wire.BadCall as exc:  # a body that is no map at all is the parent's bug: raised
            self.send(_wire.ERROR, id_, _error("bad_request", "tandem.BadCall", str(exc)))
            return
        self.spin_s = call.spin_us / 1e6
        if call.deadline_ns is not None:  # the same clock as the parent's: exact
            deadline: float | None = call.deadline_ns / 1e9
        elif call.timeout_ms is not None:
            deadline = time.monotonic() + call.timeout_ms / 1000
        else:
            deadline = None
        # Positional: keywords cost a fifth of a microsecond more per call.
        ctx = Context(
            call.method, deadline, call.headers, call.traceparent, call.idempotency_key, "pool"
        )
        try:
            data, codec = self.app.call(call.method, call.payload, call.codec, ctx)
        except TandemError as exc:
            self.send(_wire.ERROR, id_, error_to_wire(exc))
            return
        except Exception as exc:  # App.call wraps handler errors; this is a last resort
            self.send(_wire.ERROR, id_, error_to_wire(exc))
            return
        if len(data) > self.max_payload:
            self.send(
                _wire.ERROR,
                id_,
                _error(
                    "bad_request",
                    "tandem.ReplyTooLarge",
                    f"reply of {call.method!r} is {len(data)} bytes, over max_payload of "
                    f"{self.max_payload} bytes (raise PoolBuilder::max_payload)",
                ),
            )
            return
        self.send_frame(_wire.encode_ok(id_, codec, data))

    def serve(self) -> None:
        while True:
            if self.spin_s and self.inbox.empty:
                spin_until_readable(self.sock, self.spin_s, self.ready)
                self.spin_s = 0.0
            try:
                frame = self.next_frame()
            except _wire.EndOfStream:
                log.info("wire closed by the parent; exiting")
                return
            if frame is None:
                continue
            type_, id_, body = frame
            if type_ == _wire.CALL:
                self.handle_call(id_, body)
                continue
            _wire.decode_body(type_, body)  # any other frame's body must be a map too
            if type_ == _wire.PING:
                self.send(_wire.PONG, id_, {})
            elif type_ == _wire.SHUTDOWN:
                log.info("shutdown requested by the parent")
                return
            else:
                log.warning("ignoring unexpected %s frame from the parent", _wire.TYPE_NAMES[type_])


def _error(kind: str, type_: str, message: str) -> dict[str, Any]:
    return _wire.error_body(kind=kind, type=type_, message=message, traceback="")


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def _watch_parent(parent: int, interval_s: float) -> None:
    """Exits the process when the parent is gone, even while a handler is busy.

    End of stream on the wire covers an idle worker; this thread covers a handler that never
    returns (it runs whenever the handler releases the GIL, which pure Python code does).
    """
    while True:
        time.sleep(interval_s)
        if os.getppid() != parent:
            log.error("parent %d is gone while a call was running; exiting", parent)
            os._exit(70)


def run(
    app: App,
    *,
    fd: int = 3,
    max_frame: int = _wire.DEFAULT_MAX_FRAME,
    handle_signals: bool = True,
    watch_parent_s: float | None = 1.0,
) -> int:
    """Serves ``app`` over the wire on ``fd`` until the parent closes it; returns an exit code.

    :param app: the App to serve (its startup hooks run before the ready handshake).
    :param fd: the wire: a connected seqpacket socket (never 0, 1 or 2).
    :param max_frame: largest frame accepted or sent, in bytes.
    :param handle_signals: exit cleanly on SIGTERM and ignore SIGINT (the parent owns Ctrl-C).
    :param watch_parent_s: check every so many seconds that the parent is alive, and exit if not
        (covers a handler that never returns); None turns the check off.
    """
    if fd in (0, 1, 2):
        raise ValueError(f"the wire fd must not be stdin, stdout or stderr (got {fd})")
    os.set_inheritable(fd, False)  # a handler's own subprocesses must not hold the wire open
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)  # stray prints reach the parent's logs promptly
    if handle_signals:
        signal.signal(signal.SIGTERM, _on_sigterm)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if watch_parent_s is not None:
        threading.Thread(
            target=_watch_parent,
            args=(os.getppid(), watch_parent_s),
            name="tandem-parent-watch",
            daemon=True,
        ).start()
    sock = socket.socket(fileno=fd)
    loop = _Loop(app, sock, max_frame)
    try:
        app.startup()
        loop.send(
            _wire.HELLO,
            0,
            _wire.hello_body(
                pid=os.getpid(), app=app.name, methods=app.methods(), max_frame=max_frame
            ),
        )
        log.info("worker %d ready: app %r, methods %s", os.getpid(), app.name, app.methods())
        loop.serve()
    except _wire.WireError as exc:
        log.error("parent broke the wire format (%s); exiting", exc)
        return 3
    except (BrokenPipeError, ConnectionResetError):
        log.info("wire closed by the parent; exiting")
    finally:
        try:
            app.shutdown()
        finally:
            sock.close()
    return 0


def main(argv: list[str]) -> int:
    """``python -m tandem worker MODULE:APP [--fd N] [--max-frame BYTES]``."""
    parser = argparse.ArgumentParser(
        prog="python -m tandem worker",
        description="A persistent pool worker. It is started by tandem::process::Pool, which "
        "passes the wire as an open fd; running it by hand is only useful for debugging.",
    )
    parser.add_argument("app", help="the app to serve, as MODULE:APP (e.g. service:app)")
    parser.add_argument(
        "--fd",
        type=int,
        default=int(os.environ.get("TANDEM_WORKER_FD", "3")),
        help="fd of the wire socket (default 3, or $TANDEM_WORKER_FD)",
    )
    parser.add_argument(
        "--max-frame",
        type=int,
        default=_wire.DEFAULT_MAX_FRAME,
        help="largest frame in bytes (default 64 MiB + 64 KiB)",
    )
    args = parser.parse_args(argv)
    try:
        os.fstat(args.fd)
    except OSError:
        sys.stderr.write(
            f"tandem worker: fd {args.fd} is not open. This is a pool worker: it is started by "
            "tandem::process::Pool, which passes the wire socket as fd 3.\n"
        )
        return 2
    from ._loader import load_app

    app = load_app(args.app)
    return run(app, fd=args.fd, max_frame=args.max_frame)
