"""One-shot scripts run by ``tandem::process::Script``: payload on stdin, result on stdout.

A script is a file with one decorated function::

    import tandem

    @tandem.script
    def main(data, ctx):          # ctx is optional: def main(data) works too
        return {"total": sum(data["values"])}

Run directly (``python report.py``), the decorator runs ``main`` at once and exits:

1. reads all of stdin and decodes it with the codec named by ``TANDEM_CODEC`` (default json);
2. calls ``main(data)`` or ``main(data, ctx)``; while it runs, ``sys.stdout`` points at stderr,
   so a stray ``print`` cannot corrupt the result;
3. on success writes the encoded return value to stdout and exits 0;
4. on an exception writes ``{"error": {"kind", "type", "message", "traceback"}}`` (always JSON)
   to stdout and exits 1; the traceback also goes to stderr for people reading logs.

``ctx`` is a :class:`tandem.Context` built from ``TANDEM_METHOD``, ``TANDEM_TIMEOUT_S`` and
``TRACEPARENT``. Imported as a module (``import report`` in a test), the decorator only returns
``main`` unchanged.
"""

from __future__ import annotations

import os
import sys

from ._codec import decode, encode

# Start-up is this module's whole cost: only os, sys and json (which a bare script imports too)
# load on the success path. ``typing``, ``inspect``, ``logging``, ``traceback``, ``asyncio`` and
# the App/Context module are imported when needed (a ``ctx`` parameter, a coroutine, an error).
# mypy treats any ``TYPE_CHECKING`` name as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, BinaryIO, TypeVar

    from .app import Context

    F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["context", "run", "run_once", "script"]

EXIT_ERROR = 1
"""Exit status of a script whose ``main`` raised (the error is on stdout)."""

_CO_VARARGS = 0x04  # inspect.CO_VARARGS, without importing inspect


def context(method: str | None = None) -> Context:
    """The Context of a one-shot call: method (default ``$TANDEM_METHOD``, else ``main``),
    deadline from ``$TANDEM_TIMEOUT_S``, trace context from ``$TRACEPARENT``."""
    from .app import Context

    raw_timeout = os.environ.get("TANDEM_TIMEOUT_S", "")
    try:
        timeout_s: float | None = float(raw_timeout) if raw_timeout else None
    except ValueError:
        timeout_s = None
    return Context.with_timeout(
        method or os.environ.get("TANDEM_METHOD", "main"),
        timeout_s,
        traceparent=os.environ.get("TRACEPARENT") or None,
        transport="script",
    )


def _takes_ctx(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` accepts a second positional argument (the Context)."""
    code = getattr(fn, "__code__", None)
    if code is not None and not hasattr(fn, "__self__"):
        # A plain function: its code object answers without importing inspect (~7 ms).
        return bool(code.co_argcount >= 2 or code.co_flags & _CO_VARARGS)
    import inspect

    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [
        p
        for p in params
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    return len(positional) >= 2 or any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params)


def _call(fn: Callable[..., Any], data: Any) -> Any:
    """Runs ``fn``, awaiting a coroutine result."""
    result = fn(data, context()) if _takes_ctx(fn) else fn(data)
    if hasattr(result, "__await__"):
        import asyncio

        async def _await() -> Any:
            return await result

        result = asyncio.run(_await())
    return result


def _fail(exc: BaseException, dst: BinaryIO, method: str | None) -> int:
    """Reports ``exc`` as ``{"error": ...}`` JSON on ``dst`` and in the log; returns 1."""
    import json
    import logging

    from .errors import error_to_wire

    wire = error_to_wire(exc)
    method = method or os.environ.get("TANDEM_METHOD", "main")
    logging.getLogger("tandem.script").error(
        "script %s failed: %s: %s", method, wire["type"], wire["message"]
    )
    if wire["traceback"]:
        sys.stderr.write(wire["traceback"])
    dst.write(json.dumps({"error": wire}).encode())
    dst.flush()
    return EXIT_ERROR


def run(
    fn: Callable[..., Any],
    *,
    stdin: BinaryIO | None = None,
    stdout: BinaryIO | None = None,
    codec: str | None = None,
) -> int:
    """Runs ``fn`` once over the script contract and returns the exit status (0 or 1).

    :param fn: ``main(data)`` or ``main(data, ctx)``.
    :param stdin: where the payload is read from (default: the process's stdin).
    :param stdout: where the result or the error is written (default: the process's stdout).
    :param codec: the payload codec (default: ``$TANDEM_CODEC``, else json).
    """

    def produce(raw: bytes, codec: str) -> bytes:
        try:
            data = decode(codec, raw)
        except Exception as exc:
            from .errors import BadRequest

            raise BadRequest(f"cannot decode the {codec} payload on stdin: {exc}") from exc
        return encode(codec, _call(fn, data))

    return run_once(produce, stdin=stdin, stdout=stdout, codec=codec)


def run_once(
    produce: Callable[[bytes, str], bytes],
    *,
    method: str | None = None,
    stdin: BinaryIO | None = None,
    stdout: BinaryIO | None = None,
    codec: str | None = None,
) -> int:
    """Runs one call over the script contract: the payload on stdin, the answer on stdout.

    The shared core of :func:`run` and ``python -m tandem run``.

    :param produce: ``produce(payload, codec)`` returns the encoded answer.
    :param method: the method named in errors (default: ``$TANDEM_METHOD``, else ``main``).
    :param stdin: where the payload is read from (default: the process's stdin).
    :param stdout: where the result or the error is written (default: the process's stdout).
    :param codec: the payload codec (default: ``$TANDEM_CODEC``, else json).
    :returns: 0, or :data:`EXIT_ERROR` when ``produce`` raised (the error is on stdout).
    """
    src = stdin if stdin is not None else sys.stdin.buffer
    dst = stdout if stdout is not None else sys.stdout.buffer
    codec = codec or os.environ.get("TANDEM_CODEC") or "json"
    try:
        raw = src.read()
        saved = sys.stdout
        # Anything printed by the handler goes to stderr: stdout carries only the answer.
        sys.stdout = sys.stderr
        try:
            out = produce(raw, codec)
        finally:
            sys.stdout = saved
    except Exception as exc:
        return _fail(exc, dst, method)
    dst.write(out)
    dst.flush()
    return 0


def script(fn: F) -> F:
    """Marks ``fn`` as the script's entry point; runs it and exits when the file is run directly."""
    if getattr(fn, "__module__", None) == "__main__":
        sys.exit(run(fn))
    return fn


script.__module__ = "tandem"  # re-exported as tandem.script
