"""Optional OpenTelemetry spans around handler calls (``pip install 'tandem[otel]'``).

Turned on by ``TANDEM_OTEL=1`` (or ``App(..., otel=True)``). Every call then runs in a span
of kind ``SERVER`` named ``"<transport> <method>"`` whose parent is the call's
``ctx.traceparent`` (the client span of the Rust side, with its ``otel`` feature), using the
globally configured tracer provider; an exception sets the span's status to error and records
it. Configure the provider and its exporter as usual for OpenTelemetry (for example
``opentelemetry-instrument`` or ``trace.set_tracer_provider(...)`` in an ``on_startup`` hook).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .app import Context

__all__ = ["enabled_by_env", "span"]


def enabled_by_env() -> bool:
    """Whether ``TANDEM_OTEL`` asks for spans (``1``, ``true``, ``yes``)."""
    return os.environ.get("TANDEM_OTEL", "").strip().lower() in ("1", "true", "yes")


@contextmanager
def span(ctx: Context) -> Iterator[None]:
    """Runs the body in a server span, child of ``ctx.traceparent``."""
    try:
        from opentelemetry import trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
    except ImportError as exc:
        raise RuntimeError(
            "TANDEM_OTEL is set but OpenTelemetry is not installed: pip install 'tandem[otel]'"
        ) from exc
    carrier = {"traceparent": ctx.traceparent} if ctx.traceparent else {}
    parent = TraceContextTextMapPropagator().extract(carrier)
    tracer = trace.get_tracer("tandem")
    with tracer.start_as_current_span(
        f"{ctx.transport} {ctx.method}",
        context=parent,
        kind=trace.SpanKind.SERVER,
        attributes={
            "rpc.system": "tandem",
            "rpc.method": ctx.method,
            "tandem.transport": ctx.transport,
        },
    ):
        yield
