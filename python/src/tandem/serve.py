"""The multi-process gRPC server: ``python -m tandem serve service:app``.

It serves, in N worker processes sharing one port (SO_REUSEPORT):

* ``tandem.v1.Call/Invoke``: any handler of the App (the Rust ``grpc`` transport);
* ``inference.InferenceService``: the models of a :class:`tandem.models.Registry`, with
  dynamic batching (the module's ``models`` attribute, or ``--models module:registry``);
* ``grpc.health.v1.Health`` for ``""``, ``tandem.v1.Call`` and ``inference.InferenceService``
  (NOT_SERVING while models load and while draining), and server reflection.

A supervising parent forks the workers before any gRPC object exists, restarts a worker that
dies (with backoff) and, on SIGTERM, drains them and exits after them. See docs/grpc.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import logging
from collections.abc import Sequence

from ._serve.settings import MIB, ServeSettings, default_workers
from .app import App
from .models import Registry

__all__ = ["ServeSettings", "main", "run"]

log = logging.getLogger("tandem.serve")

_EXTRA_HINT = "tandem serve needs grpcio: pip install 'tandem[grpc]'"


def _check_grpc() -> None:
    try:
        import grpc  # noqa: F401
        import grpc_health.v1.health_pb2  # noqa: F401
        import grpc_reflection.v1alpha.reflection  # noqa: F401
    except ImportError as exc:
        raise RuntimeError(f"{_EXTRA_HINT} ({exc})") from exc


def run(
    app: App,
    *,
    models: Registry | None = None,
    port: int | None = None,
    unix: str | None = None,
    workers: int | None = None,
    settings: ServeSettings | None = None,
) -> int:
    """Serves ``app`` (and ``models``) until SIGTERM/SIGINT; returns the exit status.

    :param app: the App whose handlers ``tandem.v1.Call/Invoke`` runs.
    :param models: the models ``inference.InferenceService`` serves (default: none).
    :param port: TCP port (overrides ``settings.port``; 0 picks a free one, logged).
    :param unix: unix socket path (overrides ``settings.unix``; ``PATH.<i>`` per worker).
    :param workers: worker processes (overrides ``settings.workers``; default: cores).
    :param settings: every other option, see :class:`ServeSettings`.
    :returns: 0 after a clean shutdown, 2 when a worker could not start.
    :raises RuntimeError: grpcio is not installed (names the extra to install).

    Call it from the main thread of a process that has started no threads and no gRPC
    object: the workers are forked from it.
    """
    _check_grpc()
    from ._serve.supervisor import supervise
    from ._serve.worker import serve_worker

    s = settings or ServeSettings()
    changes: dict[str, object] = {}
    if port is not None:
        changes["port"] = port
    if unix is not None:
        changes["unix"] = unix
        if port is None and settings is None:
            changes["port"] = None
    if workers is not None:
        changes["workers"] = workers
    s = dataclasses.replace(s, **changes)  # type: ignore[arg-type]
    if s.port is None and s.unix is None:
        raise ValueError("tandem serve: nothing to listen on: give a port or a unix socket path")
    registry = models if models is not None else Registry()

    def target(worker_settings: ServeSettings, index: int, parent_fd: int) -> int:
        return serve_worker(app, registry, worker_settings, index, parent_fd)

    return supervise(s, target)


def _registry(app_spec: str, models_spec: str | None) -> Registry:
    module_name = (models_spec or app_spec).partition(":")[0]
    module = importlib.import_module(module_name)
    attr = models_spec.partition(":")[2] or "models" if models_spec else "models"
    found = getattr(module, attr, None)
    if found is None and models_spec is None:
        return Registry()
    if not isinstance(found, Registry):
        raise SystemExit(
            f"tandem: {module_name}:{attr} is a {type(found).__name__}, not a "
            f"tandem.models.Registry (create one with models = tandem.models.Registry())"
        )
    return found


def parser() -> argparse.ArgumentParser:
    """The ``python -m tandem serve`` argument parser."""
    d = ServeSettings()
    p = argparse.ArgumentParser(
        prog="python -m tandem serve",
        description="Serve a tandem App (tandem.v1.Call) and its models "
        "(inference.InferenceService) over gRPC in several processes.",
    )
    p.add_argument("app", help="the App to serve, as MODULE:ATTR (e.g. service:app)")
    p.add_argument(
        "--models",
        metavar="MODULE:ATTR",
        help="the tandem.models.Registry to serve (default: MODULE.models if it exists)",
    )
    p.add_argument("--host", default=d.host, help=f"TCP address to listen on (default {d.host})")
    p.add_argument(
        "--port",
        type=int,
        default=None,
        help=f"TCP port shared by every worker (default {d.port}, or none with --unix; 0: any)",
    )
    p.add_argument(
        "--unix", metavar="PATH", help="unix socket; with N>1 workers each listens on PATH.<i>"
    )
    p.add_argument(
        "--workers",
        type=int,
        default=0,
        help=f"worker processes (default: number of cores, here {default_workers()})",
    )
    p.add_argument(
        "--grace",
        type=float,
        default=d.grace_s,
        metavar="S",
        help=f"seconds in-flight calls may finish after SIGTERM (default {d.grace_s:g})",
    )
    p.add_argument(
        "--drain-delay",
        type=float,
        default=d.drain_delay_s,
        metavar="S",
        help=f"seconds a worker answers NOT_SERVING before it stops accepting calls "
        f"(default {d.drain_delay_s:g})",
    )
    p.add_argument(
        "--max-message-bytes",
        type=int,
        default=d.max_message_bytes,
        metavar="N",
        help=f"largest message sent or received (default {d.max_message_bytes // MIB} MiB)",
    )
    p.add_argument(
        "--max-concurrent-rpcs",
        type=int,
        default=None,
        metavar="N",
        help="calls per worker before RESOURCE_EXHAUSTED (default: no limit)",
    )
    p.add_argument(
        "--keepalive-time",
        type=float,
        default=d.keepalive_time_s,
        metavar="S",
        help=f"seconds between server pings on idle connections (default {d.keepalive_time_s:g})",
    )
    p.add_argument(
        "--min-ping-interval",
        type=float,
        default=d.min_ping_interval_s,
        metavar="S",
        help=f"shortest client ping interval accepted (default {d.min_ping_interval_s:g})",
    )
    p.add_argument(
        "--no-batching", action="store_true", help="serve every model one input at a time"
    )
    p.add_argument("--gzip", action="store_true", help="compress responses with gzip")
    p.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        metavar="PORT",
        help="serve Prometheus metrics of every worker on PORT/metrics (0: any; default: none)",
    )
    return p


def settings_from_args(args: argparse.Namespace) -> ServeSettings:
    """Builds ServeSettings from parsed ``python -m tandem serve`` arguments."""
    port = args.port
    if port is None and args.unix is None:
        port = ServeSettings().port
    return ServeSettings(
        host=args.host,
        port=port,
        unix=args.unix,
        workers=args.workers,
        grace_s=args.grace,
        drain_delay_s=args.drain_delay,
        max_message_bytes=args.max_message_bytes,
        max_concurrent_rpcs=args.max_concurrent_rpcs,
        keepalive_time_s=args.keepalive_time,
        min_ping_interval_s=args.min_ping_interval,
        batching=not args.no_batching,
        gzip=args.gzip,
        metrics_port=args.metrics_port,
    )


def main(argv: Sequence[str]) -> int:
    """``python -m tandem serve MODULE:APP [options]``; returns the exit status."""
    from ._loader import load_app
    from .models.blas import limit_blas_threads

    args = parser().parse_args(list(argv))
    limit_blas_threads()  # before the served module can import numpy
    try:
        app = load_app(args.app)
        registry = _registry(args.app, args.models)
    except SystemExit as exc:
        if isinstance(exc.code, str):
            log.error("%s", exc.code)
            return 2
        raise
    try:
        return run(app, models=registry, settings=settings_from_args(args))
    except (RuntimeError, ValueError, OSError) as exc:
        log.error("%s", exc)
        return 2
