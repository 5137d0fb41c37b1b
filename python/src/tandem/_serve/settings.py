"""ServeSettings: every option of the gRPC server, with its documented default."""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["MIB", "ServeSettings", "default_workers"]

MIB = 1024 * 1024


def default_workers() -> int:
    """The number of CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class ServeSettings:
    """Options of :func:`tandem.serve.run`; durations are in seconds.

    :param host: TCP address to listen on (``0.0.0.0``: all IPv4 interfaces).
    :param port: TCP port shared by every worker (SO_REUSEPORT); 0 picks a free one; None
        listens on no TCP port (``unix`` must then be set).
    :param unix: unix socket path; with several workers each gets ``PATH.<index>``.
    :param workers: worker processes (default: the number of cores).
    :param grace_s: how long in-flight calls may run after SIGTERM before they are cancelled.
    :param drain_delay_s: how long a worker keeps answering (health NOT_SERVING) after
        SIGTERM before it stops accepting calls, so health-aware clients move away first.
    :param max_message_bytes: largest request or response message (send and receive).
    :param max_concurrent_rpcs: calls a worker runs at once before answering
        RESOURCE_EXHAUSTED (None: no limit).
    :param keepalive_time_s: how often the server pings an idle client connection.
    :param min_ping_interval_s: the shortest interval between client pings the server accepts
        (tonic's ``http2_keep_alive_interval`` must not be shorter).
    :param batching: False serves every model one input at a time (benchmarks, debugging).
    :param gzip: compress responses with gzip (requests in gzip are always accepted).
    :param restart_backoff_s: first delay before restarting a dead worker (doubles, max 5 s).
    :param metrics_port: serve Prometheus metrics (handler calls, batch sizes, queue time,
        summed over every worker) on ``host:metrics_port/metrics``; 0 picks a free port
        (logged); None serves none.
    """

    host: str = "0.0.0.0"
    port: int | None = 50051
    unix: str | None = None
    workers: int = 0
    grace_s: float = 10.0
    drain_delay_s: float = 1.0
    max_message_bytes: int = 64 * MIB
    max_concurrent_rpcs: int | None = None
    keepalive_time_s: float = 60.0
    min_ping_interval_s: float = 1.0
    batching: bool = True
    gzip: bool = False
    restart_backoff_s: float = 0.2
    metrics_port: int | None = None

    def worker_count(self) -> int:
        """``workers``, or the number of cores when it is 0."""
        return self.workers if self.workers > 0 else default_workers()

    def unix_path(self, index: int) -> str | None:
        """Worker ``index``'s unix socket: ``unix`` itself for one worker, else ``unix.index``."""
        if self.unix is None:
            return None
        return self.unix if self.worker_count() == 1 else f"{self.unix}.{index}"

    def grpc_options(self) -> list[tuple[str, int]]:
        """Channel arguments of every worker's server."""
        return [
            ("grpc.so_reuseport", 1),
            ("grpc.max_send_message_length", self.max_message_bytes),
            ("grpc.max_receive_message_length", self.max_message_bytes),
            ("grpc.keepalive_time_ms", int(self.keepalive_time_s * 1000)),
            ("grpc.keepalive_timeout_ms", 20_000),
            # Accept client pings (tonic http2_keep_alive_interval, keep_alive_while_idle,
            # hyper's BDP pings with http2_adaptive_window) without GOAWAY too_many_pings.
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", int(self.min_ping_interval_s * 1000)),
            ("grpc.http2.max_ping_strikes", 0),
            ("grpc.http2.max_pings_without_data", 0),
        ]
