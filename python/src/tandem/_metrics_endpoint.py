"""A ``/metrics`` endpoint every process of a multi-process server can listen on at once.

Each process serves the multiprocess sum (:meth:`tandem.metrics.Metrics.exposition`) from a
daemon thread on a SO_REUSEPORT socket, so whichever one answers a scrape reports every
process, and the endpoint outlives any single process.
"""

from __future__ import annotations

import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .metrics import Metrics

__all__ = ["serve_shared"]

log = logging.getLogger("tandem.metrics")


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
