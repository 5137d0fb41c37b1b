"""The consumer's settings, with the defaults documented in ``docs/queue.md``."""

from __future__ import annotations

import socket
from dataclasses import dataclass


@dataclass
class ConsumerSettings:
    """Options of :func:`tandem.consume.run` (durations in seconds).

    :param redis_url: the Redis to read from, ``redis://HOST:PORT/DB``.
    :param stream: the task stream; derived keys are ``<stream>:dead``, ``<stream>:delayed``,
        ``<stream>:done:<key>`` (name it ``{orders}`` on Redis Cluster so they share a slot).
    :param group: the consumer group, created on start (with the stream) when missing.
    :param name: consumer name prefix; each process is ``<name>-<index>``. Defaults to the
        host name: stable across restarts, so a restarted process drains its own pending.
    :param processes: consumer processes (a supervising parent restarts dead ones).
    :param concurrency: async handlers in flight per process (sync ones run one at a time).
    :param batch: entries per XREADGROUP (COUNT).
    :param block_s: how long one XREADGROUP waits for new entries (BLOCK).
    :param visibility_timeout_s: an entry idle this long is taken over from its consumer.
    :param lease_interval_s: how often in-flight entries are re-claimed by their owner
        (default: a third of the visibility timeout).
    :param reclaim_interval_s: how often idle entries of dead consumers are looked for.
    :param max_deliveries: attempts (retries plus crash redeliveries) before dead letters.
    :param retry_base_s: first retry delay; doubles per attempt, with full jitter.
    :param retry_max_s: the retry delay's cap.
    :param dedup_ttl_s: when set, a task whose idempotency key completed within this many
        seconds is acknowledged without running again.
    :param reply_ttl_s: expiry set on reply streams written to.
    :param handle_signals: install SIGTERM/SIGINT handlers (turn off when embedding).
    :param metrics_port: serve Prometheus metrics (task outcomes and handler calls, summed
        over every process) on ``0.0.0.0:metrics_port/metrics``; 0 picks a free port
        (logged); None serves none.
    """

    redis_url: str = "redis://127.0.0.1:6379/0"
    stream: str = "tandem"
    group: str = "tandem"
    name: str = ""
    processes: int = 1
    concurrency: int = 16
    batch: int = 100
    block_s: float = 0.5
    visibility_timeout_s: float = 30.0
    lease_interval_s: float | None = None
    reclaim_interval_s: float = 5.0
    max_deliveries: int = 5
    retry_base_s: float = 1.0
    retry_max_s: float = 300.0
    dedup_ttl_s: float | None = None
    reply_ttl_s: float = 300.0
    handle_signals: bool = True
    metrics_port: int | None = None

    def __post_init__(self) -> None:
        if not self.name:
            self.name = socket.gethostname() or "tandem"
        if self.processes < 1:
            raise ValueError(f"processes must be at least 1, got {self.processes}")
        if self.concurrency < 1 or self.batch < 1:
            raise ValueError("concurrency and batch must be at least 1")
        if self.max_deliveries < 1:
            raise ValueError(f"max_deliveries must be at least 1, got {self.max_deliveries}")
        if self.visibility_timeout_s <= 0:
            raise ValueError("visibility_timeout_s must be positive")

    @property
    def lease_every_s(self) -> float:
        """The lease extension period."""
        if self.lease_interval_s is not None:
            return self.lease_interval_s
        return self.visibility_timeout_s / 3

    def consumer_name(self, index: int) -> str:
        """The stable name of process ``index``."""
        return f"{self.name}-{index}"
