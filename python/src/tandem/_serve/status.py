"""The one place where tandem errors become gRPC status codes (and the call's deadline is read)."""

from __future__ import annotations

import time
from typing import Any

from ..errors import BadRequest, Overloaded, Remote, TandemError, Timeout, Unavailable

__all__ = ["abort", "deadline_of", "status_for"]


def status_for(exc: BaseException) -> Any:
    """The gRPC status code an error is answered with.

    BadRequest → INVALID_ARGUMENT, Overloaded → RESOURCE_EXHAUSTED, Timeout →
    DEADLINE_EXCEEDED, Unavailable → UNAVAILABLE, Remote (the model raised) → INTERNAL,
    anything else → UNKNOWN.
    """
    import grpc

    codes = grpc.StatusCode
    if isinstance(exc, BadRequest):
        return codes.INVALID_ARGUMENT
    if isinstance(exc, Overloaded):
        return codes.RESOURCE_EXHAUSTED
    if isinstance(exc, Timeout):
        return codes.DEADLINE_EXCEEDED
    if isinstance(exc, Unavailable):
        return codes.UNAVAILABLE
    if isinstance(exc, Remote):
        return codes.INTERNAL
    return codes.UNKNOWN


def error_text(exc: BaseException) -> str:
    """``kind: message`` of an error, as put in a response's ``error`` field."""
    kind = exc.kind if isinstance(exc, TandemError) else "remote"
    return f"{kind}: {exc}"


async def abort(context: Any, exc: BaseException) -> None:
    """Ends the call with the error's status; trailing metadata ``tandem-error-kind`` names it."""
    kind = exc.kind if isinstance(exc, TandemError) else "remote"
    await context.abort(status_for(exc), str(exc), (("tandem-error-kind", kind),))


def deadline_of(context: Any) -> float | None:
    """The call's gRPC deadline as a ``time.monotonic()`` value, or None without one."""
    remaining = context.time_remaining()
    if remaining is None or remaining > 1e9:
        return None
    return time.monotonic() + float(remaining)
