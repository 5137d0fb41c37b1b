"""One worker process: a grpc.aio server with the generic call, inference, health and reflection.

Lifecycle: bind and start with every health service NOT_SERVING → run the App's startup hooks
and load + warm each model → SERVING → on SIGTERM (or when the parent dies: its pipe reaches
EOF) NOT_SERVING, keep answering for ``drain_delay_s``, stop accepting, let in-flight calls
finish within ``grace_s`` → shutdown hooks → exit.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
from typing import Any

from ..app import App
from ..models import Registry
from ..models.blas import limit_blas_threads
from .settings import ServeSettings

__all__ = ["EXIT_CONFIG", "SERVICES", "serve_worker"]

log = logging.getLogger("tandem.serve")

#: Exit status of a worker that cannot start (bad address, model load failed): not restarted.
EXIT_CONFIG = 78

#: Health service names: the server as a whole and each gRPC service.
SERVICES = ("", "tandem.v1.Call", "inference.InferenceService")


def serve_worker(
    app: App, registry: Registry, settings: ServeSettings, index: int, parent_fd: int | None
) -> int:
    """Runs worker ``index`` until it is told to stop; returns its exit status.

    Unlike ``asyncio.run``, it does not wait for executor threads at exit: a model load or a
    sync handler stuck in a thread must not keep a stopped worker alive.
    """
    limit_blas_threads()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(_Worker(app, registry, settings, index).run(parent_fd))
    finally:
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


class _Worker:
    def __init__(self, app: App, registry: Registry, settings: ServeSettings, index: int) -> None:
        self.app = app
        self.registry = registry
        self.settings = settings
        self.index = index
        self.metrics: Any = None  # a telemetry.ServeMetrics with --metrics-port

    def _build(self) -> tuple[Any, Any, Any, Any]:
        import grpc
        from grpc_reflection.v1alpha import reflection

        from .._proto import call_pb2_grpc, inference_pb2_grpc
        from .call import CallService
        from .health import Health
        from .inference import InferenceService

        s = self.settings
        server = grpc.aio.server(
            options=s.grpc_options(),
            maximum_concurrent_rpcs=s.max_concurrent_rpcs,
            compression=grpc.Compression.Gzip if s.gzip else None,
        )
        health = Health(SERVICES)
        calls = CallService(self.app)
        inference = InferenceService(self.registry)
        call_pb2_grpc.add_CallServicer_to_server(calls, server)  # type: ignore[no-untyped-call]
        inference_pb2_grpc.add_InferenceServiceServicer_to_server(  # type: ignore[no-untyped-call]
            inference, server
        )
        from grpc_health.v1 import health_pb2_grpc

        health_pb2_grpc.add_HealthServicer_to_server(health, server)
        reflection.enable_server_reflection(
            (*SERVICES[1:], "grpc.health.v1.Health", reflection.SERVICE_NAME), server
        )
        return server, health, calls, inference

    def _bind(self, server: Any) -> list[str]:
        s = self.settings
        addresses = []
        if s.port is not None:
            host = s.host
            if ":" in host and not host.startswith("["):
                host = f"[{host}]"  # an IPv6 literal such as :: needs brackets before :port
            addresses.append(f"{host}:{s.port}")
        path = s.unix_path(self.index)
        if path is not None:
            if os.path.exists(path):
                os.unlink(path)
            addresses.append(f"unix:{path}")
        for address in addresses:
            server.add_insecure_port(address)
        return addresses

    async def _load(self, calls: Any, inference: Any) -> None:
        await self.app.astartup()
        calls.ready = True
        for model in self.registry:
            log.info("worker %d: loading model %s", self.index, model.name)
            await asyncio.to_thread(model.load)
            await asyncio.to_thread(model.warm)
            config = model.batching
            if not self.settings.batching:
                config = dataclasses.replace(
                    config, max_batch_size=1, max_queue_delay_ms=0, supports_batching=False
                )
            from .batching import Batcher

            inference.batchers[model.name] = batcher = Batcher(model, config)
            batcher.metrics = self.metrics

    async def run(self, parent_fd: int | None) -> int:
        from grpc_health.v1 import health_pb2

        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if parent_fd is not None:
            loop.add_reader(parent_fd, stop.set)  # EOF: the supervisor is gone
        try:
            server, health, calls, inference = self._build()
            addresses = self._bind(server)
            self._serve_metrics(calls)
        except Exception as exc:
            log.error("worker %d: cannot start the gRPC server: %s", self.index, exc)
            return EXIT_CONFIG
        await server.start()
        log.info("worker %d (pid %d) listening on %s", self.index, os.getpid(), addresses)
        loading = asyncio.create_task(self._load(calls, inference))
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({loading, stopping}, return_when=asyncio.FIRST_COMPLETED)
        code = 0
        if loading.done() and loading.exception() is not None:
            failure = loading.exception()
            log.error(
                "worker %d: startup failed: %s: %s (fix the model or startup hook)",
                self.index,
                type(failure).__name__,
                failure,
            )
            code = EXIT_CONFIG
        elif loading.done():
            health.set_all(health_pb2.HealthCheckResponse.SERVING)
            log.info("worker %d: serving models %s", self.index, self.registry.names())
            await stopping
        loading.cancel()
        stopping.cancel()
        await self._drain(server, health, inference, code == 0)
        return code

    def _serve_metrics(self, calls: Any) -> None:
        s = self.settings
        if s.metrics_port is None:
            return
        from .._metrics_endpoint import serve_shared
        from .telemetry import ServeMetrics

        self.metrics = calls.metrics = ServeMetrics()
        serve_shared(self.metrics.calls, s.host, s.metrics_port)

    async def _drain(self, server: Any, health: Any, inference: Any, delay: bool) -> None:
        s = self.settings
        health.drain()
        log.info("worker %d: draining (grace %.1fs)", self.index, s.grace_s)
        if delay and s.drain_delay_s > 0:
            await asyncio.sleep(s.drain_delay_s)
        await server.stop(s.grace_s)
        for batcher in inference.batchers.values():
            await batcher.close()
        try:
            await self.app.ashutdown()
        except Exception:
            log.exception("worker %d: shutdown hook failed", self.index)
        path = s.unix_path(self.index)
        if path is not None and os.path.exists(path):
            os.unlink(path)
        log.info("worker %d: stopped", self.index)
