"""Prometheus metrics of the Python side: how long each handler ran, by method and status.

The Rust core counts every call as it sees it (``python_call_duration_seconds``); this module
counts the same calls from inside Python::

    tandem_handler_duration_seconds{method,status,transport}   histogram
    tandem_handler_calls_total{method,status,transport}        counter

so the difference between the two is the transport's share (queueing, serialization, wire).
``status`` is ``ok`` or the error's kind (``bad_request``, ``remote``, ``timeout``, ...), as on
the Rust side. The ``method`` label keeps the first 100 distinct methods; later ones are counted
as ``other``.

``prometheus_client`` is imported on first use (``pip install 'tandem[metrics]'``), so
``import tandem`` stays light. When ``PROMETHEUS_MULTIPROC_DIR`` is set in the environment the
process starts with (set it in the shell or the supervisor, never from Python, and empty the
directory between runs), every process writes its samples there and the exposition adds them
up across processes: the right mode for ``python -m tandem serve --processes N``. Call
:func:`mark_process_dead` from the parent when a worker process exits.

::

    from tandem import metrics

    metrics.serve_metrics(9464)               # GET http://host:9464/metrics
    with metrics.time_call("score", transport="grpc"):
        ...                                   # observed as ok, or as the raised error's kind
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BUCKETS",
    "Metrics",
    "MetricsServer",
    "default",
    "mark_process_dead",
    "observe_call",
    "serve_metrics",
    "time_call",
]

log = logging.getLogger("tandem.metrics")

#: Buckets of ``tandem_handler_duration_seconds``, the same as the Rust side's.
BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)

_MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _prometheus() -> Any:
    try:
        import prometheus_client
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "tandem.metrics needs prometheus_client: pip install 'tandem[metrics]'"
        ) from exc
    return prometheus_client


def multiprocess_dir() -> str | None:
    """The multiprocess directory from ``PROMETHEUS_MULTIPROC_DIR``, or None."""
    return os.environ.get(_MULTIPROC_ENV) or None


@dataclass
class MetricsServer:
    """A running ``/metrics`` HTTP endpoint (a daemon thread); :meth:`close` stops it."""

    port: int
    _server: Any
    _thread: threading.Thread

    def close(self) -> None:
        """Stops serving and waits for the thread."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class Metrics:
    """The Python side's handler metrics, in a registry of their own.

    :param registry: the ``prometheus_client.CollectorRegistry`` to register in; a new one by
        default (tandem never touches the global default registry).
    :param method_limit: how many distinct ``method`` values to keep before using ``other``.
    """

    def __init__(self, *, registry: Any = None, method_limit: int = 100) -> None:
        prom = _prometheus()
        self._prom = prom
        self.registry = registry if registry is not None else prom.CollectorRegistry()
        self._method_limit = method_limit
        self._methods: set[str] = set()
        self._lock = threading.Lock()
        labels = ("method", "status", "transport")
        self._duration = prom.Histogram(
            "tandem_handler_duration_seconds",
            "Time a tandem handler ran, by method, status and transport",
            labels,
            buckets=BUCKETS,
            registry=self.registry,
        )
        self._calls = prom.Counter(
            "tandem_handler_calls",
            "tandem handler calls, by method, status (ok or the error kind) and transport",
            labels,
            registry=self.registry,
        )

    def _method_label(self, method: str) -> str:
        if method in self._methods:
            return method
        with self._lock:
            if len(self._methods) < self._method_limit:
                self._methods.add(method)
                return method
        return "other"

    def observe_call(
        self, method: str, status: str, seconds: float, *, transport: str = "local"
    ) -> None:
        """Records one finished call.

        :param method: the handler's name.
        :param status: ``ok`` or the error kind.
        :param seconds: how long it ran.
        :param transport: which transport delivered it (``pool``, ``grpc``, ...).
        """
        labels = (self._method_label(method), status, transport)
        self._duration.labels(*labels).observe(seconds)
        self._calls.labels(*labels).inc()

    @contextlib.contextmanager
    def time_call(self, method: str, *, transport: str = "local") -> Iterator[None]:
        """Times the block as one call: ``ok``, or the raised exception's ``kind``
        (``remote`` for an exception that is not a :class:`~tandem.errors.TandemError`;
        ``timeout`` for a cancelled task, which is how transports enforce deadlines).
        """
        start = time.perf_counter()
        status = "ok"
        try:
            yield
        except asyncio.CancelledError:
            status = "timeout"
            raise
        except Exception as exc:
            status = str(getattr(exc, "kind", "remote"))
            raise
        finally:
            self.observe_call(method, status, time.perf_counter() - start, transport=transport)

    def collecting_registry(self) -> Any:
        """The registry to expose: this one, or in multiprocess mode a fresh registry that
        adds up every process's samples."""
        if multiprocess_dir() is None:
            return self.registry
        from prometheus_client import multiprocess

        registry = self._prom.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry

    def exposition(self) -> tuple[bytes, str]:
        """The text exposition and its content type."""
        return (
            self._prom.generate_latest(self.collecting_registry()),
            self._prom.CONTENT_TYPE_LATEST,
        )

    def serve(self, port: int, *, addr: str = "0.0.0.0") -> MetricsServer:
        """Serves ``GET /metrics`` on ``addr:port`` (0 picks a free port) from a daemon thread.

        :raises OSError: when the port cannot be bound; the message names it.
        """
        try:
            server, thread = self._prom.start_http_server(
                port, addr=addr, registry=self.collecting_registry()
            )
        except OSError as exc:
            raise OSError(
                exc.errno, f"metrics endpoint cannot listen on {addr}:{port}: {exc.strerror}"
            ) from exc
        bound = int(server.server_address[1])
        log.info("serving metrics on http://%s:%d/metrics", addr, bound)
        return MetricsServer(port=bound, _server=server, _thread=thread)


_default: Metrics | None = None
_default_lock = threading.Lock()


def default() -> Metrics:
    """The process's shared :class:`Metrics`, created on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Metrics()
        return _default


def observe_call(method: str, status: str, seconds: float, *, transport: str = "local") -> None:
    """Records one finished call in :func:`default` (see :meth:`Metrics.observe_call`)."""
    default().observe_call(method, status, seconds, transport=transport)


def time_call(method: str, *, transport: str = "local") -> contextlib.AbstractContextManager[None]:
    """Times a block as one call in :func:`default` (see :meth:`Metrics.time_call`)."""
    return default().time_call(method, transport=transport)


def serve_metrics(port: int, *, addr: str = "0.0.0.0") -> MetricsServer:
    """Serves :func:`default`'s metrics on ``addr:port`` (see :meth:`Metrics.serve`)."""
    return default().serve(port, addr=addr)


def mark_process_dead(pid: int) -> None:
    """In multiprocess mode, drops the live gauges of the exited process ``pid``; call it from
    the parent when a worker exits. Does nothing outside multiprocess mode."""
    if multiprocess_dir() is None:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
