"""Lease extension: a thread that keeps in-flight entries owned while handlers run.

It runs on its own thread and connection so that a sync handler holding the event loop (or the
GIL in short slices) cannot starve it: a live task is never taken over by the reclaimer of
another consumer.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from .scripts import EXTEND_LEASE

log = logging.getLogger("tandem.consume")


class Lease:
    """The set of in-flight entry ids of one consumer and the thread that extends them."""

    def __init__(self, redis_url: str, stream: str, group: str, consumer: str, every_s: float):
        self._url = redis_url
        self._stream = stream
        self._group = group
        self._consumer = consumer
        self._every_s = every_s
        self._ids: set[bytes] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tandem-lease", daemon=True)

    def add(self, ids: list[bytes]) -> None:
        """Marks entries as in flight."""
        with self._lock:
            self._ids.update(ids)

    def discard(self, ids: list[bytes]) -> None:
        """Marks entries as finished."""
        with self._lock:
            self._ids.difference_update(ids)

    def start(self) -> None:
        """Starts the extension thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stops the thread (returns within one period)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self._every_s + 1)

    def _run(self) -> None:
        import redis

        client: Any = redis.Redis.from_url(self._url)
        script = client.register_script(EXTEND_LEASE)
        try:
            while not self._stop.wait(self._every_s):
                with self._lock:
                    ids = list(self._ids)
                if not ids:
                    continue
                try:
                    script(keys=[self._stream], args=[self._group, self._consumer, *ids])
                except redis.RedisError as exc:
                    log.warning("lease extension of %d entries failed: %s", len(ids), exc)
        finally:
            client.close()
