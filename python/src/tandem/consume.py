"""Redis Streams consumer: ``python -m tandem consume module:app --redis URL --stream S``.

Reads tasks published by ``tandem::queue::Producer`` (or anything writing the same fields, see
``docs/internals/queue.md``) through a consumer group and runs them on the App's handlers,
at least once:

- an entry is acknowledged (and deleted: XACK+XDEL, or XACKDEL on Redis 8.2+) only after its
  handler returned and its reply, if asked for, was written in the same MULTI;
- a failed task is retried with exponential backoff and jitter through ``<stream>:delayed``;
  after ``max_deliveries`` attempts it goes to ``<stream>:dead`` with its error;
- entries of a dead consumer are taken over after the visibility timeout (XAUTOCLAIM), and
  entries a live consumer is still working on keep their lease;
- SIGTERM finishes the tasks in flight and exits; a second SIGTERM exits at once (the tasks
  stay pending and are run again).

``run(app, settings=..., **options)`` is the entry point; ``Consumer`` runs one process's loop
inside an existing event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import sys
from typing import Any

from ._queue.consumer import Consumer
from ._queue.settings import ConsumerSettings
from .app import App

__all__ = ["Consumer", "ConsumerSettings", "main", "run"]

log = logging.getLogger("tandem.consume")


def _run_one(app: App, settings: ConsumerSettings, index: int) -> int:
    consumer = Consumer(app, settings, index)
    if settings.metrics_port is not None:
        from ._metrics_endpoint import serve_shared
        from ._queue.telemetry import QueueMetrics

        consumer.metrics = QueueMetrics()
        endpoint = serve_shared(consumer.metrics.calls, "0.0.0.0", settings.metrics_port)
        log.info("consumer %d: metrics on port %d", index, endpoint.server_address[1])
    try:
        asyncio.run(consumer.run())
    except KeyboardInterrupt:
        return 1
    return 0


def run(app: App, *, settings: ConsumerSettings | None = None, **options: Any) -> int:
    """Consumes tasks for ``app`` until SIGTERM/SIGINT; returns an exit code.

    :param app: the App to serve.
    :param settings: all options at once; keyword ``options`` override single fields
        (``stream=``, ``group=``, ``processes=``, ... see :class:`ConsumerSettings`).
    :returns: 0 after a graceful stop.

    With ``processes`` above 1 this process becomes a supervising parent of forked consumer
    processes; with 1 it consumes itself.
    """
    base = settings or ConsumerSettings()
    s = dataclasses.replace(base, **options) if options else base
    try:
        import redis  # noqa: F401
    except ImportError:
        log.error("the queue consumer needs redis-py: pip install 'tandem[redis]'")
        return 2
    if s.processes == 1:
        return _run_one(app, s, 0)
    from ._queue.supervisor import supervise

    if s.metrics_port is None:
        return supervise(lambda i: _run_one(app, s, i), s.processes)
    return _supervise_with_metrics(app, s)


def _supervise_with_metrics(app: App, s: ConsumerSettings) -> int:
    """Several processes, one metrics port: a shared multiprocess directory and a reserved
    SO_REUSEPORT port every child serves the sum on."""
    import shutil
    import tempfile

    from ._queue.supervisor import supervise
    from ._serve.supervisor import reserve_port
    from .metrics import mark_process_dead

    created = None
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        created = tempfile.mkdtemp(prefix="tandem-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = created
    reservation = reserve_port("0.0.0.0", s.metrics_port or 0)
    s = dataclasses.replace(s, metrics_port=reservation.getsockname()[1])
    log.info("tandem consume: metrics on port %d", s.metrics_port)
    try:
        return supervise(lambda i: _run_one(app, s, i), s.processes, on_exit=mark_process_dead)
    finally:
        reservation.close()
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)


def _parser() -> argparse.ArgumentParser:
    d = ConsumerSettings(name="-")
    p = argparse.ArgumentParser(
        prog="python -m tandem consume",
        description="Consume tandem tasks from a Redis stream and run them on an App.",
    )
    p.add_argument("app", help="MODULE:APP, e.g. service:app")
    p.add_argument("--redis", default=d.redis_url, help="redis URL (default %(default)s)")
    p.add_argument("--stream", default=d.stream, help="task stream (default %(default)s)")
    p.add_argument("--group", default=d.group, help="consumer group (default %(default)s)")
    p.add_argument("--name", default="", help="consumer name prefix (default: host name)")
    p.add_argument("--processes", type=int, default=d.processes, help="consumer processes")
    p.add_argument("--concurrency", type=int, default=d.concurrency, help="async tasks per process")
    p.add_argument("--batch", type=int, default=d.batch, help="entries per read (COUNT)")
    p.add_argument("--block", type=float, default=d.block_s, help="read wait, seconds")
    p.add_argument(
        "--visibility-timeout",
        type=float,
        default=d.visibility_timeout_s,
        help="seconds idle before another consumer takes an entry over",
    )
    p.add_argument("--lease-interval", type=float, default=None, help="lease extension period")
    p.add_argument("--reclaim-interval", type=float, default=d.reclaim_interval_s)
    p.add_argument("--max-deliveries", type=int, default=d.max_deliveries)
    p.add_argument("--retry-base", type=float, default=d.retry_base_s, help="first retry delay")
    p.add_argument("--retry-max", type=float, default=d.retry_max_s, help="retry delay cap")
    p.add_argument("--dedup-ttl", type=float, default=None, help="skip completed idempotency keys")
    p.add_argument("--reply-ttl", type=float, default=d.reply_ttl_s)
    p.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve Prometheus metrics of every process on PORT/metrics (0: any)",
    )
    return p


def main(argv: list[str]) -> int:
    """``python -m tandem consume``: parses ``argv``, loads the app, runs; returns the code."""
    args = _parser().parse_args(argv)
    try:
        settings = ConsumerSettings(
            redis_url=args.redis,
            stream=args.stream,
            group=args.group,
            name=args.name,
            processes=args.processes,
            concurrency=args.concurrency,
            batch=args.batch,
            block_s=args.block,
            visibility_timeout_s=args.visibility_timeout,
            lease_interval_s=args.lease_interval,
            reclaim_interval_s=args.reclaim_interval,
            max_deliveries=args.max_deliveries,
            retry_base_s=args.retry_base,
            retry_max_s=args.retry_max,
            dedup_ttl_s=args.dedup_ttl,
            reply_ttl_s=args.reply_ttl,
            metrics_port=args.metrics_port,
        )
    except ValueError as exc:
        sys.stderr.write(f"tandem consume: {exc}\n")
        return 2
    from ._loader import load_app

    return run(load_app(args.app), settings=settings)
