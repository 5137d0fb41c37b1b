"""The gRPC server's metrics: handler calls (``tandem.metrics``) plus dynamic batching.

Added to :class:`tandem.metrics.Metrics`' registry::

    tandem_batch_size{model}            histogram: inputs per batch run
    tandem_batch_queue_seconds{model}   histogram: time an input waited for its batch

Every worker writes its samples to ``PROMETHEUS_MULTIPROC_DIR`` (the supervisor sets it to a
temporary directory when ``--metrics-port`` is given) and listens on the metrics port with
SO_REUSEPORT, so whichever worker answers a scrape reports the sum over all of them, and the
endpoint survives a worker restart.
"""

from __future__ import annotations

import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..metrics import Metrics

__all__ = ["BATCH_BUCKETS", "QUEUE_BUCKETS", "ServeMetrics", "serve_shared"]

log = logging.getLogger("tandem.serve")

#: Buckets of ``tandem_batch_size`` (inputs), the Rust side's ``tandem_grpc_batch_size``.
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
#: Buckets of ``tandem_batch_queue_seconds``.
QUEUE_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class ServeMetrics:
    """One worker's metrics: :attr:`calls` (handler calls) and the batching histograms."""

    def __init__(self) -> None:
        self.calls = Metrics()
        prom = self.calls._prom
        self._batch_size = prom.Histogram(
            "tandem_batch_size",
            "Inputs per batch run by a model",
            ("model",),
            buckets=BATCH_BUCKETS,
            registry=self.calls.registry,
        )
        self._queue = prom.Histogram(
            "tandem_batch_queue_seconds",
            "Time an input waited in a model's queue before its batch ran",
            ("model",),
            buckets=QUEUE_BUCKETS,
            registry=self.calls.registry,
        )

    def observe_batch(self, model: str, size: int, queue_s: list[float]) -> None:
        """Records one batch of ``size`` inputs and each input's time in the queue."""
        self._batch_size.labels(model).observe(size)
        queue = self._queue.labels(model)
        for waited in queue_s:
            queue.observe(waited)


class _ReusePortServer(ThreadingHTTPServer):
    daemon_threads = True
    metrics: Metrics

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()


class _Handler(BaseHTTPRequestHandler):
    server: _ReusePortServer

    def do_GET(self) -> None:
        if self.path.split("?")[0] != "/metrics":
            self.send_error(404, "only /metrics is served here")
            return
        body, content_type = self.server.metrics.exposition()
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("metrics: " + format, *args)


def serve_shared(metrics: Metrics, host: str, port: int) -> ThreadingHTTPServer:
    """Serves ``GET /metrics`` on ``host:port`` with SO_REUSEPORT from a daemon thread, so
    every worker can listen on the same port.

    :raises OSError: the port is taken by a socket without SO_REUSEPORT.
    """
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    _ReusePortServer.address_family = family
    server = _ReusePortServer((host.strip("[]"), port), _Handler)
    server.metrics = metrics
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
