"""tandem: serve Python handlers to a Rust core over a worker pool, go-plugin, gRPC or Redis.

Importing this package pulls in only the standard library; each transport imports its own
dependencies (msgpack, grpcio, redis) when it starts.

The package is lazy (PEP 562): ``import tandem`` loads only :func:`script` (a one-shot script
pays for the json codec and nothing else); ``tandem.App``, ``tandem.Context`` and the errors are
imported on first use.
"""

from .script import script

# ``typing`` costs a few ms of start-up: mypy treats any ``TYPE_CHECKING`` name as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._codec import CodecError
    from .app import App, AppState, Context
    from .errors import (
        BadRequest,
        BreakerOpen,
        Overloaded,
        ProtocolError,
        Remote,
        TandemError,
        Timeout,
        Unavailable,
    )
del TYPE_CHECKING

__all__ = [
    "App",
    "AppState",
    "BadRequest",
    "BreakerOpen",
    "CodecError",
    "Context",
    "Overloaded",
    "ProtocolError",
    "Remote",
    "TandemError",
    "Timeout",
    "Unavailable",
    "script",
]

__version__ = "0.1.0"

# Where each lazily imported public name lives; the rest of ``__all__`` is in ``errors``.
_LAZY = {"App": "app", "AppState": "app", "Context": "app", "CodecError": "_codec"}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name, "errors" if name in __all__ else None)
    if module is None:
        raise AttributeError(f"module 'tandem' has no attribute {name!r}")
    import importlib

    value: object = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
