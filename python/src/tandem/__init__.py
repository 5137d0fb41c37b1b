"""tandem: serve Python handlers to a Rust core over a worker pool, go-plugin, gRPC or Redis.

Importing this package pulls in only the standard library; each transport imports its own
dependencies (msgpack, grpcio, redis) when it starts.
"""

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
from .script import script

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

for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("tandem."):
        _obj.__module__ = "tandem"
del _name, _obj
