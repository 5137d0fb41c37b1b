"""The gRPC services a go-plugin plugin exposes, on a ``grpc.aio`` server.

* ``grpc.health.v1.Health``: ``plugin`` and ``""`` SERVING (the host's ``Ping``);
* ``plugin.GRPCController/Shutdown``: asks the plugin to stop;
* ``plugin.GRPCStdio/StreamStdio``: what the plugin printed after the handshake;
* ``plugin.GRPCBroker/StartStream``: held open; multiplexing knocks are refused;
* ``tandem.v1.Call/Invoke``: the generic call into a tandem App.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from ..app import App, Context
from ..errors import TandemError, error_to_wire
from .stdio import StdioBuffer

log = logging.getLogger("tandem.plugin")


class Controller:
    """``plugin.GRPCController``: Shutdown sets the stop event; the main loop does the rest."""

    def __init__(self, stop: asyncio.Event) -> None:
        self._stop = stop

    async def Shutdown(self, request: Any, context: Any) -> Any:
        from .._proto import grpc_controller_pb2

        log.debug("shutdown requested by the host")
        self._stop.set()
        return grpc_controller_pb2.Empty()


class Stdio:
    """``plugin.GRPCStdio``: streams the captured fds 1/2 until the host hangs up."""

    def __init__(self, buffer: StdioBuffer, stop: asyncio.Event) -> None:
        self._buffer = buffer
        self._stop = stop

    async def StreamStdio(self, request: Any, context: Any) -> AsyncIterator[Any]:
        from .._proto import grpc_stdio_pb2

        loop = asyncio.get_running_loop()
        wake = asyncio.Event()

        def notify() -> None:
            try:
                loop.call_soon_threadsafe(wake.set)
            except RuntimeError:  # the loop closed while a pipe reader was still busy
                pass

        unsubscribe = self._buffer.subscribe(notify)
        try:
            while not self._stop.is_set():
                # clear before draining: a put after this point sets ``wake`` again
                wake.clear()
                items = self._buffer.drain()
                for channel, data in items:
                    yield grpc_stdio_pb2.StdioData(channel=channel, data=data)  # type: ignore[arg-type]
                if items:
                    continue
                waiter = asyncio.ensure_future(wake.wait())
                stopper = asyncio.ensure_future(self._stop.wait())
                await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                stopper.cancel()
        finally:
            unsubscribe()


class Broker:
    """``plugin.GRPCBroker``: holds the stream; refuses multiplexing knocks with an error."""

    async def StartStream(
        self, request_iterator: AsyncIterator[Any], context: Any
    ) -> AsyncIterator[Any]:
        from .._proto import grpc_broker_pb2

        async for info in request_iterator:
            if info.HasField("knock") and info.knock.knock:
                yield grpc_broker_pb2.ConnInfo(
                    service_id=info.service_id,
                    knock=grpc_broker_pb2.ConnInfo.Knock(
                        knock=True,
                        ack=False,
                        error="tandem Python plugins do not serve brokered connections",
                    ),
                )
            else:
                log.debug(
                    "ignoring broker connection info for service %d at %s",
                    info.service_id,
                    info.address,
                )


class CallService:
    """``tandem.v1.Call``: runs one App method per Invoke, mapping errors to ``CallError``.

    :param inline_budget_s: sync handlers without a ``blocking`` flag run on the event loop
        until one holds it longer than this (see :meth:`tandem.App.acall`); None runs every
        sync handler in the thread pool.
    """

    def __init__(self, app: App, inline_budget_s: float | None = None) -> None:
        from .._proto import call_pb2

        self._app = app
        self._budget = inline_budget_s
        self._pb: Any = call_pb2

    async def Invoke(self, request: Any, context: Any) -> Any:
        pb = self._pb
        method = request.method
        remaining = context.time_remaining()
        ctx = Context(
            method,
            deadline=None if remaining is None else time.monotonic() + remaining,
            metadata=dict(request.metadata) if request.metadata else {},
            traceparent=request.traceparent or _metadata_traceparent(context),
            idempotency_key=request.idempotency_key or None,
            transport="plugin",
        )
        try:
            data, out_codec = await self._app.acall(
                method,
                request.payload,
                request.codec or "json",
                ctx,
                inline_budget_s=self._budget,
                # answer a typed timeout just before the caller gives up
                timeout_s=None if remaining is None else max(remaining - 0.01, 0.0),
            )
        except TandemError as exc:
            return pb.CallReply(error=pb.CallError(**error_to_wire(exc)))
        except Exception as exc:  # a bug in tandem itself: still answer with a typed error
            log.exception("invoke of %r failed inside tandem", method)
            return pb.CallReply(error=pb.CallError(**error_to_wire(exc)))
        return pb.CallReply(ok=pb.Payload(data=data, codec=out_codec))


def _metadata_traceparent(context: Any) -> str | None:
    """The ``traceparent`` gRPC metadata entry, when the request message carries none."""
    for key, value in context.invocation_metadata() or ():
        if key == "traceparent" and isinstance(value, str):
            return value or None
    return None


async def add_core_services(
    server: Any,
    app: App | None,
    buffer: StdioBuffer,
    stop: asyncio.Event,
    inline_budget_s: float | None = None,
) -> Any:
    """Registers health, controller, stdio, broker and (with an app) the call service.

    :returns: the health servicer, so the caller can flip it to NOT_SERVING on shutdown.
    """
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    from .._proto import call_pb2_grpc as call_grpc
    from .._proto import grpc_broker_pb2_grpc as broker_grpc
    from .._proto import grpc_controller_pb2_grpc as controller_grpc
    from .._proto import grpc_stdio_pb2_grpc as stdio_grpc

    # the generated *_pb2_grpc modules are untyped: go through Any
    generated: list[Any] = [call_grpc, broker_grpc, controller_grpc, stdio_grpc]
    call_mod, broker_mod, controller_mod, stdio_mod = generated

    health_servicer = health.aio.HealthServicer()
    for name in ("plugin", ""):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    controller_mod.add_GRPCControllerServicer_to_server(Controller(stop), server)
    stdio_mod.add_GRPCStdioServicer_to_server(Stdio(buffer, stop), server)
    broker_mod.add_GRPCBrokerServicer_to_server(Broker(), server)
    if app is not None:
        call_mod.add_CallServicer_to_server(CallService(app, inline_budget_s), server)
    return health_servicer
