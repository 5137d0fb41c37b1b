"""File descriptors: keep stdout clean until the handshake, then stream fds 1/2 to the host.

A go-plugin host reads only the **first** stdout line and fails on anything else printed before
the handshake, so :class:`StdGuard` points fd 1 at stderr as early as possible (before the user's
module is imported) and keeps a private duplicate of the real stdout for the handshake line only.
After the handshake, :meth:`StdGuard.capture` dups pipes onto fds 1 and 2 (as Go plugins do with
``os.Pipe``) so whatever the plugin, its libraries or its children print reaches the host through
``plugin.GRPCStdio`` (the host's ``SyncStdout``/``SyncStderr``), while tandem's hclog log lines
keep going to the **original** stderr, the host's log channel.
"""

from __future__ import annotations

import collections
import os
import sys
import threading
from collections.abc import Callable
from typing import TextIO

STDOUT, STDERR = 1, 2
#: Chunk size of the pipe readers; Go plugins send at most 1 KiB per StdioData as well.
CHUNK = 1024
#: Chunks kept while nobody reads the stream; older ones are dropped (counted).
MAX_BUFFERED = 4096


class StdioBuffer:
    """A bounded, thread-safe queue of ``(channel, bytes)`` chunks for ``GRPCStdio``."""

    def __init__(self, limit: int = MAX_BUFFERED) -> None:
        self._items: collections.deque[tuple[int, bytes]] = collections.deque()
        self._limit = limit
        self._cond = threading.Condition()
        self.dropped = 0
        self._listeners: list[Callable[[], None]] = []

    def put(self, channel: int, data: bytes) -> None:
        """Adds a chunk, dropping the oldest when full."""
        with self._cond:
            if len(self._items) >= self._limit:
                self._items.popleft()
                self.dropped += 1
            self._items.append((channel, data))
            self._cond.notify_all()
            listeners = list(self._listeners)
        for notify in listeners:
            notify()

    def drain(self) -> list[tuple[int, bytes]]:
        """Takes every buffered chunk."""
        with self._cond:
            items = list(self._items)
            self._items.clear()
            return items

    def subscribe(self, notify: Callable[[], None]) -> Callable[[], None]:
        """Calls ``notify`` (from any thread) after each put; returns the unsubscribe function."""
        with self._cond:
            self._listeners.append(notify)

        def unsubscribe() -> None:
            with self._cond:
                if notify in self._listeners:
                    self._listeners.remove(notify)

        return unsubscribe


class StdGuard:
    """Owns the process's fds 1 and 2 for the plugin's lifetime.

    ``StdGuard()`` duplicates the real stdout (for the handshake) and stderr (for logs), then
    points fd 1 at stderr so stray prints before the handshake become stderr lines.
    """

    def __init__(self) -> None:
        _flush_std()
        self.handshake_fd = os.dup(STDOUT)
        self.log_fd = os.dup(STDERR)
        os.set_inheritable(self.handshake_fd, False)
        os.set_inheritable(self.log_fd, False)
        os.dup2(STDERR, STDOUT)
        self.log_stream: TextIO = os.fdopen(
            self.log_fd, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False
        )
        self.buffer = StdioBuffer()
        self._captured = False

    def write_handshake(self, line: str) -> None:
        """Writes the handshake line (one write) to the real stdout."""
        _flush_std()
        data = (line + "\n").encode("ascii")
        view = memoryview(data)
        while view:
            written = os.write(self.handshake_fd, view)
            view = view[written:]

    def capture(self) -> None:
        """Dups pipes onto fds 1 and 2 and streams what arrives into :attr:`buffer`."""
        if self._captured:
            return
        self._captured = True
        _flush_std()
        for fd, channel in ((STDOUT, STDOUT), (STDERR, STDERR)):
            read_end, write_end = os.pipe()
            os.dup2(write_end, fd)
            os.close(write_end)
            threading.Thread(
                target=self._pump, args=(read_end, channel), name=f"tandem-stdio-{fd}", daemon=True
            ).start()
        for stream in (sys.stdout, sys.stderr):
            reconfigure = getattr(stream, "reconfigure", None)
            if reconfigure is not None:
                reconfigure(line_buffering=True)

    def _pump(self, fd: int, channel: int) -> None:
        while True:
            try:
                data = os.read(fd, CHUNK)
            except OSError:
                return
            if not data:
                return
            self.buffer.put(channel, data)


def _flush_std() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
