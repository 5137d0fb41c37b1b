"""OpenTelemetry server spans around handler calls (tandem[otel], TANDEM_OTEL)."""

from __future__ import annotations

import asyncio
import json

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)

import tandem
from tandem.app import Context

CALLER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

_exporter = InMemorySpanExporter()
_provider = TracerProvider()
_provider.add_span_processor(SimpleSpanProcessor(_exporter))
trace.set_tracer_provider(_provider)


@pytest.fixture
def spans() -> InMemorySpanExporter:
    _exporter.clear()
    return _exporter


def _app(otel: bool | None) -> tandem.App:
    app = tandem.App("otel", otel=otel)

    @app.handler("echo")
    def echo(data: object) -> object:
        return data

    @app.handler("aecho")
    async def aecho(data: object) -> object:
        return data

    @app.handler("boom")
    def boom(data: object) -> object:
        raise ValueError("no")

    return app


def _ctx(method: str) -> Context:
    return Context(method, None, traceparent=CALLER, transport="pool")


def test_a_call_is_a_server_span_child_of_the_traceparent(spans: InMemorySpanExporter) -> None:
    app = _app(otel=True)
    assert app.call("echo", b"1", "json", _ctx("echo")) == (b"1", "json")
    assert asyncio.run(app.acall("aecho", b"2", "json", _ctx("aecho"))) == (b"2", "json")
    done = spans.get_finished_spans()
    assert [s.name for s in done] == ["pool echo", "pool aecho"]
    for s in done:
        assert s.kind is trace.SpanKind.SERVER
        assert format(s.context.trace_id, "032x") == CALLER[3:35]
        assert s.parent is not None and format(s.parent.span_id, "016x") == CALLER[36:52]
        assert s.attributes is not None and s.attributes["rpc.method"] == s.name.split()[1]


def test_a_failed_call_has_error_status(spans: InMemorySpanExporter) -> None:
    app = _app(otel=True)
    with pytest.raises(tandem.Remote):
        app.call("boom", json.dumps(None).encode(), "json", _ctx("boom"))
    (s,) = spans.get_finished_spans()
    assert s.status.status_code is trace.StatusCode.ERROR
    assert "no" in (s.status.description or "")


def test_off_by_default_and_on_by_env(
    spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TANDEM_OTEL", raising=False)
    _app(otel=None).call("echo", b"1", "json", _ctx("echo"))
    assert spans.get_finished_spans() == ()
    monkeypatch.setenv("TANDEM_OTEL", "1")
    _app(otel=None).call("echo", b"1", "json", _ctx("echo"))
    assert len(spans.get_finished_spans()) == 1
