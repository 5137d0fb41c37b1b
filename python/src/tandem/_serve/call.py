"""``tandem.v1.Call/Invoke``: the generic call of any App method over gRPC.

Errors travel inside the reply (``CallReply.error`` with kind, type, message, traceback),
never as a gRPC status, so the Rust client rebuilds the exact ``tandem::Error`` variant.
"""

from __future__ import annotations

from typing import Any

from .._proto import call_pb2, call_pb2_grpc
from ..app import App, Context
from ..errors import Timeout, Unavailable, error_to_wire
from .status import deadline_of

__all__ = ["CallService"]


class CallService(call_pb2_grpc.CallServicer):
    """Runs App handlers for ``tandem.v1.Call/Invoke``."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.ready = False
        self.metrics: Any = None  # a telemetry.ServeMetrics with --metrics-port

    async def Invoke(self, request: Any, context: Any) -> Any:
        metadata = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
        ctx = Context(
            request.method,
            deadline=deadline_of(context),
            metadata=dict(request.metadata),
            traceparent=request.traceparent or metadata.get("traceparent") or None,
            idempotency_key=request.idempotency_key or None,
            transport="grpc",
        )
        try:
            if not self.ready:
                raise Unavailable(
                    f"app {self.app.name!r} is still starting (health NOT_SERVING); retry shortly"
                )
            if ctx.expired:
                raise Timeout(f"call {request.method!r} arrived after its deadline")
            if self.metrics is None:
                data, codec = await self.app.acall(
                    request.method, request.payload, request.codec or "json", ctx
                )
            else:
                with self.metrics.calls.time_call(request.method, transport="grpc"):
                    data, codec = await self.app.acall(
                        request.method, request.payload, request.codec or "json", ctx
                    )
        except Exception as exc:
            return call_pb2.CallReply(error=call_pb2.CallError(**error_to_wire(exc)))
        return call_pb2.CallReply(ok=call_pb2.Payload(data=data, codec=codec))
