"""Serve a tandem App as a HashiCorp go-plugin plugin that real Go hosts (and tandem's Rust host) load.

::

    python -m tandem plugin service:app                  # what the host runs
    python -m tandem plugin service:app --versions 1,2   # negotiable app protocol versions

The plugin follows go-plugin's ``Serve`` step by step (see ``docs/plugins.md``):

1. check the magic cookie (``TANDEM_PLUGIN=5f0b7c2e-tandem-go-plugin`` by default); without it,
   print go-plugin's "This binary is a plugin" message on stderr and exit 1;
2. pick the highest protocol version in both ``PLUGIN_PROTOCOL_VERSIONS`` and ``versions``;
3. listen on a unix socket (``PLUGIN_UNIX_SOCKET_DIR``/``PLUGIN_UNIX_SOCKET_GROUP``) or on
   ``127.0.0.1`` within ``PLUGIN_MIN_PORT``..``PLUGIN_MAX_PORT``;
4. with ``PLUGIN_CLIENT_CERT`` (AutoMTLS), present a fresh self-signed certificate and require
   the host's (see :mod:`tandem._plugin.tls` for why TLS is terminated by OpenSSL);
5. serve health (``plugin`` SERVING), GRPCController, GRPCStdio, GRPCBroker, ``tandem.v1.Call``
   and any extra servicers;
6. print ``1|VERSION|NETWORK|ADDRESS|grpc|CERT`` on stdout, the only stdout bytes ever written;
7. stream later prints to the host (GRPCStdio) and log hclog JSON on the original stderr;
8. exit 0 on Shutdown, SIGTERM or the host's death; ignore SIGINT (the host owns Ctrl-C).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._plugin import handshake as _hs
from ._plugin.handshake import (
    DEFAULT_COOKIE_KEY,
    DEFAULT_COOKIE_VALUE,
    NOT_A_PLUGIN_MESSAGE,
    HandshakeError,
)
from ._plugin.stdio import StdGuard
from .app import App

__all__ = [
    "DEFAULT_COOKIE_KEY",
    "DEFAULT_COOKIE_VALUE",
    "NOT_A_PLUGIN_MESSAGE",
    "HandshakeError",
    "PluginSettings",
    "Servicer",
    "main",
    "run",
]

log = logging.getLogger("tandem.plugin")

#: An extra gRPC service: ``(add_XServicer_to_server, servicer)`` from generated ``*_pb2_grpc``.
Servicer = tuple[Callable[[Any, Any], None], Any]

_MAX_MESSAGE = 2**31 - 1


@dataclass(frozen=True)
class PluginSettings:
    """How the plugin meets its host. The defaults match tandem's Go and Rust hosts.

    :param cookie_key: the magic cookie's environment variable.
    :param cookie_value: the value the host must set it to.
    :param versions: the app protocol versions this plugin can serve (highest common wins).
    :param network: ``unix`` (go-plugin's choice off Windows), ``tcp``, or ``auto``.
    :param grace_s: how long in-flight calls may finish after Shutdown or SIGTERM.
    :param parent_poll_s: how often to check that the host is alive (0 disables).
    :param handle_signals: ignore SIGINT and stop on SIGTERM (off when embedding).
    :param max_workers: threads that run synchronous handlers and servicers.
    :param inline_budget_s: sync App handlers registered without ``blocking=`` run on the event
        loop (no thread hop: the fastest path) until one holds the loop longer than this; that
        handler is then logged (a warning naming it) and runs in the thread pool from its next
        call on. None runs every such handler in the thread pool. Handlers that do I/O or may
        hang should say ``@app.handler(..., blocking=True)``: a handler stuck on the loop also
        stalls health checks, and the host restarts a plugin that stops answering them.
    :param env: the environment to read the host's variables from (default ``os.environ``).
    """

    cookie_key: str = DEFAULT_COOKIE_KEY
    cookie_value: str = DEFAULT_COOKIE_VALUE
    versions: tuple[int, ...] = (1,)
    network: str = "auto"
    grace_s: float = 0.5
    parent_poll_s: float = 0.5
    handle_signals: bool = True
    max_workers: int = 16
    inline_budget_s: float | None = 0.05
    env: dict[str, str] | None = field(default=None, repr=False)


_guard: StdGuard | None = None


def _std_guard() -> StdGuard:
    """The process's fd guard, created on first use (``main`` creates it before any import)."""
    global _guard
    if _guard is None:
        _guard = StdGuard()
        _point_logs_at(_guard)
    return _guard


def _point_logs_at(guard: StdGuard) -> None:
    # Log handlers writing to stderr must keep writing to the *original* stderr (the host's log
    # channel) once fd 2 becomes the GRPCStdio pipe.
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream in (
            sys.stderr,
            sys.__stderr__,
        ):
            handler.setStream(guard.log_stream)


def run(
    app: App | None,
    *,
    servicers: Sequence[Servicer] = (),
    settings: PluginSettings | None = None,
) -> int:
    """Serves ``app`` (and ``servicers``) to the go-plugin host that started this process.

    Blocks until the host calls Shutdown, sends SIGTERM or dies, then returns 0. Returns 1 (with
    a message on stderr) when the cookie is missing, no protocol version is in common, or the
    listener cannot be set up.

    :param app: the App served through ``tandem.v1.Call``; None serves only ``servicers``.
    :param servicers: extra typed services, e.g.
        ``[(adapter_pb2_grpc.add_ExternalAdapterServicer_to_server, MyAdapter())]``. Their
        methods may be ``async def`` or plain functions (run in a thread pool).
    :param settings: see :class:`PluginSettings`.
    """
    settings = settings or PluginSettings()
    env = settings.env if settings.env is not None else dict(os.environ)
    if not _hs.cookie_matches(env, settings.cookie_key, settings.cookie_value):
        sys.stderr.write(NOT_A_PLUGIN_MESSAGE)
        sys.stderr.flush()
        return 1
    host_pid = os.getppid()  # read first: the host may die while we start up
    guard = _std_guard()
    try:
        version = _hs.negotiate(env.get("PLUGIN_PROTOCOL_VERSIONS"), settings.versions)
    except HandshakeError as exc:
        log.error("%s", exc)
        return 1
    try:
        import grpc  # noqa: F401
    except ImportError:
        log.error("the plugin transport needs grpcio: pip install 'tandem[plugin]'")
        return 1
    if settings.handle_signals:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return asyncio.run(_serve(app, servicers, settings, env, version, guard, host_pid))
    except HandshakeError as exc:
        log.error("%s", exc)
        return 1
    except Exception as exc:
        # e.g. a failing startup hook or an unusable socket directory: one hclog error line
        # (the host logs it at Error) instead of a raw traceback it would log at Debug
        log.error("plugin failed: %s: %s", type(exc).__name__, exc, exc_info=True)
        return 1


async def _serve(
    app: App | None,
    servicers: Sequence[Servicer],
    settings: PluginSettings,
    env: dict[str, str],
    version: int,
    guard: StdGuard,
    host_pid: int,
) -> int:
    from concurrent.futures import ThreadPoolExecutor

    import grpc

    from ._plugin import services, tls

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    executor = ThreadPoolExecutor(settings.max_workers, thread_name_prefix="tandem-plugin")
    server = grpc.aio.server(
        migration_thread_pool=executor,
        options=[
            ("grpc.so_reuseport", 0),
            ("grpc.max_receive_message_length", _MAX_MESSAGE),
            ("grpc.max_send_message_length", _MAX_MESSAGE),
        ],
    )
    health = await services.add_core_services(
        server, app, guard.buffer, stop, settings.inline_budget_s
    )
    for add, servicer in servicers:
        add(servicer, server)

    network = settings.network
    if network == "auto":
        network = "tcp" if sys.platform == "win32" else "unix"
    if network not in ("unix", "tcp"):
        raise HandshakeError(f"unknown network {network!r} (accepted: unix, tcp, auto)")

    client_pem = env.get("PLUGIN_CLIENT_CERT", "")
    front: tls.TlsFront | None = None
    private_dir: str | None = None
    socket_path: str | None = None
    cert_der: bytes | None = None
    if client_pem:
        cert = tls.generate_certificate()
        try:
            ctx = tls.server_context(cert, client_pem)
        except ValueError as exc:
            raise HandshakeError(str(exc)) from exc
        cert_der = cert.der
        private_dir = tempfile.mkdtemp(prefix="tandem-plugin-")
        private_path = os.path.join(private_dir, "grpc.sock")
        server.add_insecure_port(f"unix:{private_path}")
        front = tls.TlsFront(ctx, private_path)
    if network == "unix":
        socket_path = _hs.unix_socket_path(env)
        address = socket_path
        if front is None:
            server.add_insecure_port(f"unix:{socket_path}")
    else:
        address = ""
        if front is None:
            address = _bind_tcp(server, _hs.port_range(env))
    await server.start()
    if front is not None:
        if socket_path is not None:
            await front.start_unix(socket_path)
        else:
            port = await front.start_tcp(list(_hs.port_range(env)))
            address = f"127.0.0.1:{port}"
    if socket_path is not None:
        _hs.apply_socket_group(socket_path, env)

    try:
        if app is not None:
            await app.astartup()
        line = _hs.handshake_line(
            version,
            network,
            address,
            cert_der,
            multiplex_asked=bool(env.get("PLUGIN_MULTIPLEX_GRPC")),
        )
        guard.write_handshake(line)
        guard.capture()
        log.debug(
            "plugin serving on %s %s (protocol version %d, %s)",
            network,
            address,
            version,
            "mutual TLS" if front else "no TLS",
        )
        if settings.handle_signals:
            loop.add_signal_handler(signal.SIGTERM, stop.set)
        watcher = _watch_parent(stop, host_pid, settings.parent_poll_s)
        await stop.wait()
        watcher.cancel()
    finally:
        await health.enter_graceful_shutdown()
        # stop gRPC first so in-flight answers still flow out through the TLS relay
        await server.stop(settings.grace_s)
        if front is not None:
            await front.close()
        for path in (socket_path,):
            if path:
                with contextlib.suppress(OSError):
                    os.unlink(path)
        if private_dir:
            shutil.rmtree(private_dir, ignore_errors=True)
        if app is not None:
            try:
                await app.ashutdown()
            except Exception:
                log.exception("shutdown hook of app %r failed", app.name)
        executor.shutdown(wait=False, cancel_futures=True)
    log.debug("plugin stopped")
    return 0


def _bind_tcp(server: Any, ports: Sequence[int]) -> str:
    """Binds the first free ``127.0.0.1`` port in ``ports``, as go-plugin's TCP listener."""
    for port in ports:
        try:
            bound = server.add_insecure_port(f"127.0.0.1:{port}")
        except RuntimeError:
            continue
        if bound:
            return f"127.0.0.1:{bound}"
    raise HandshakeError(
        f"no free TCP port in {ports[0]}..{ports[-1]} (PLUGIN_MIN_PORT..PLUGIN_MAX_PORT); "
        "widen the host's port range"
    )


def _watch_parent(stop: asyncio.Event, parent: int, every_s: float) -> asyncio.Task[None]:
    """Sets ``stop`` when the host ``parent`` dies and we are re-parented (go-plugin #210)."""

    async def watch() -> None:
        if every_s <= 0 or parent == 1:
            return
        while not stop.is_set():
            if os.getppid() != parent:
                log.warning("host process %d is gone; stopping the plugin", parent)
                stop.set()
                return
            await asyncio.sleep(every_s)

    return asyncio.ensure_future(watch())


def _log_uncaught_exceptions() -> None:
    """Sends uncaught exceptions (main and threads) to the log as hclog errors."""
    import threading

    def hook(exc_type: Any, exc: Any, tb: Any) -> None:
        log.error(
            "uncaught exception: %s: %s", exc_type.__name__, exc, exc_info=(exc_type, exc, tb)
        )

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is not SystemExit:
            hook(args.exc_type, args.exc_value, args.exc_traceback)

    sys.excepthook = hook
    threading.excepthook = thread_hook


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tandem plugin",
        description="Serve a tandem App as a go-plugin plugin (started by its host).",
    )
    parser.add_argument("app", help="the App to serve, MODULE:ATTR (e.g. service:app)")
    parser.add_argument(
        "--versions",
        default="1",
        help="app protocol versions this plugin serves, comma-separated (default: 1)",
    )
    parser.add_argument("--cookie-key", default=DEFAULT_COOKIE_KEY, help="magic cookie variable")
    parser.add_argument("--cookie-value", default=DEFAULT_COOKIE_VALUE, help="magic cookie value")
    parser.add_argument(
        "--network", choices=("auto", "unix", "tcp"), default="auto", help="listener kind"
    )
    parser.add_argument(
        "--servicers",
        metavar="MODULE:ATTR",
        help="extra gRPC services: a list of (add_X_to_server, servicer) pairs, or a "
        "function returning one",
    )
    return parser.parse_args(list(argv))


def _load_servicers(spec: str) -> list[Servicer]:
    import importlib

    module_name, _, attr = spec.partition(":")
    module = importlib.import_module(module_name)
    obj = getattr(module, attr or "servicers")
    if callable(obj):
        obj = obj()
    return list(obj)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tandem plugin MODULE:APP [--versions 1,2] ...``; returns the exit code.

    The cookie is checked first and fd 1 is pointed at stderr before the app's module is
    imported, so nothing it prints at import time can corrupt the handshake.
    """
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    try:
        versions = tuple(int(v) for v in args.versions.split(",") if v.strip())
    except ValueError:
        sys.stderr.write(f"tandem: --versions must be numbers like 1,2 (got {args.versions!r})\n")
        return 2
    settings = dataclasses.replace(
        PluginSettings(),
        cookie_key=args.cookie_key,
        cookie_value=args.cookie_value,
        versions=versions,
        network=args.network,
    )
    if not _hs.cookie_matches(os.environ, settings.cookie_key, settings.cookie_value):
        sys.stderr.write(NOT_A_PLUGIN_MESSAGE)
        sys.stderr.flush()
        return 1
    _std_guard()
    _log_uncaught_exceptions()
    from ._loader import load_app

    try:
        app = load_app(args.app)
        extra = _load_servicers(args.servicers) if args.servicers else []
    except SystemExit as exc:
        log.error("%s", exc.code)
        return 1
    except Exception as exc:
        log.exception("cannot load the plugin's services: %s", exc)
        return 1
    code = run(app, servicers=extra, settings=settings)
    logging.shutdown()
    # Exit now: a handler thread stuck in user code must not keep the plugin alive after Shutdown.
    os._exit(code)
