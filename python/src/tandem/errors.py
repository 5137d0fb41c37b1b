"""The error tree, mirroring the Rust ``tandem::Error`` variants.

::

    TandemError                  base of everything tandem raises
     ├── Timeout                 the deadline passed            (kind "timeout")
     ├── Unavailable             worker/plugin/endpoint gone    (kind "unavailable")
     ├── Overloaded              queue or bulkhead full         (kind "overloaded")
     ├── BreakerOpen             circuit breaker open           (kind "breaker_open")
     ├── Remote                  a handler raised               (kind "remote")
     ├── BadRequest              unknown method, bad payload    (kind "bad_request")
     └── ProtocolError           a peer broke the wire format   (kind "protocol")

A handler may raise :class:`BadRequest` itself to reject its input: the caller sees
``bad_request``, which a circuit breaker does not count as a failure. Any other exception a
handler raises reaches the caller as ``remote`` with its type, message and traceback.
"""

from __future__ import annotations

# No ``typing`` or ``traceback`` at import time: one-shot scripts import this module and pay for
# every millisecond of start-up. mypy treats any ``TYPE_CHECKING`` name as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, ClassVar

__all__ = [
    "BadRequest",
    "BreakerOpen",
    "Overloaded",
    "ProtocolError",
    "Remote",
    "TandemError",
    "Timeout",
    "Unavailable",
    "error_from_wire",
    "error_to_wire",
]


class TandemError(Exception):
    """Base class of every tandem error. ``kind`` is the wire and metrics name."""

    kind: ClassVar[str] = "protocol"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Timeout(TandemError):
    """The call's deadline passed."""

    kind = "timeout"


class Unavailable(TandemError):
    """The worker, plugin or endpoint is gone or not ready."""

    kind = "unavailable"


class Overloaded(TandemError):
    """A bounded queue or bulkhead is full; the call was not run."""

    kind = "overloaded"


class BreakerOpen(TandemError):
    """The circuit breaker is open."""

    kind = "breaker_open"


class BadRequest(TandemError):
    """The call cannot be served as sent: unknown method, undecodable or invalid payload."""

    kind = "bad_request"


class ProtocolError(TandemError):
    """A peer broke the wire format."""

    kind = "protocol"


class Remote(TandemError):
    """A handler raised: keeps the exception's type name, message and formatted traceback."""

    kind = "remote"

    def __init__(self, type: str, message: str, traceback: str = "") -> None:
        super().__init__(f"{type}: {message}")
        self.type = type
        self.message = message
        self.traceback = traceback

    @classmethod
    def from_exception(cls, exc: BaseException) -> Remote:
        """Captures a live exception (type, message and its traceback)."""
        import traceback

        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        name = type(exc).__qualname__
        module = type(exc).__module__
        if module not in ("builtins", "__main__"):
            name = f"{module}.{name}"
        return cls(name, str(exc), tb)


for _cls in (
    TandemError,
    Timeout,
    Unavailable,
    Overloaded,
    BreakerOpen,
    BadRequest,
    ProtocolError,
    Remote,
):
    _cls.__module__ = "tandem"  # re-exported as tandem.<Name>; tracebacks and pickles say so
_BY_KIND: dict[str, type[TandemError]] = {
    cls.kind: cls
    for cls in (Timeout, Unavailable, Overloaded, BreakerOpen, BadRequest, ProtocolError)
}


def error_to_wire(exc: BaseException) -> dict[str, str]:
    """The portable form of an error that every transport sends: kind, type, message, traceback.

    A :class:`TandemError` keeps its kind; any other exception becomes ``remote``.
    """
    if isinstance(exc, Remote):
        return {
            "kind": "remote",
            "type": exc.type,
            "message": exc.message,
            "traceback": exc.traceback,
        }
    if isinstance(exc, TandemError):
        return {
            "kind": exc.kind,
            "type": type(exc).__name__,
            "message": exc.message,
            "traceback": "",
        }
    r = Remote.from_exception(exc)
    return {"kind": "remote", "type": r.type, "message": r.message, "traceback": r.traceback}


def error_from_wire(fields: dict[str, Any]) -> TandemError:
    """Rebuilds an error from :func:`error_to_wire`'s form; unknown kinds become ProtocolError."""
    kind = str(fields.get("kind", ""))
    message = str(fields.get("message", ""))
    if kind == "remote":
        return Remote(
            str(fields.get("type", "Exception")), message, str(fields.get("traceback", ""))
        )
    cls = _BY_KIND.get(kind)
    if cls is None:
        return ProtocolError(f"peer sent unknown error kind {kind!r}: {message}")
    return cls(message)
