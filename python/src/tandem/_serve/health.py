"""``grpc.health.v1.Health`` with a drain mode: Check, and Watch streams that end on drain.

Unlike grpcio-health-checking's servicer, Watch returns after sending NOT_SERVING once the
worker drains, so open Watch streams do not hold a shutdown for its whole grace period.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Any

from grpc_health.v1 import health_pb2, health_pb2_grpc

__all__ = ["Health"]

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN


class Health(health_pb2_grpc.HealthServicer):  # type: ignore[misc]
    """Per-service serving status; every service starts NOT_SERVING."""

    def __init__(self, services: Iterable[str]) -> None:
        self._status: dict[str, Any] = {name: NOT_SERVING for name in services}
        self._changed = asyncio.Event()
        self.draining = False

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def set_all(self, status: Any) -> None:
        """Sets every service's status (ignored once draining)."""
        if self.draining:
            return
        for name in self._status:
            self._status[name] = status
        self._notify()

    def drain(self) -> None:
        """NOT_SERVING for good; Watch streams send it and end."""
        for name in self._status:
            self._status[name] = NOT_SERVING
        self.draining = True
        self._notify()

    async def Check(self, request: Any, context: Any) -> Any:
        import grpc

        status = self._status.get(request.service)
        if status is None:
            known = ", ".join(repr(s) for s in sorted(self._status))
            await context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"health: unknown service {request.service!r} (known: {known})",
            )
        return health_pb2.HealthCheckResponse(status=status)

    async def Watch(self, request: Any, context: Any) -> AsyncIterator[Any]:
        last = None
        while True:
            changed = self._changed
            status = self._status.get(request.service, SERVICE_UNKNOWN)
            if status != last:
                yield health_pb2.HealthCheckResponse(status=status)
                last = status
            if self.draining:
                return
            await changed.wait()
