"""tandem.metrics: exact values, the /metrics endpoint over real HTTP, multiprocess mode, and
trace context in the handler's log records."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

import tandem
from tandem import _logging
from tandem.metrics import BUCKETS, Metrics

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def key(name: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return (name, tuple(sorted(labels.items())))


def test_values_are_exact_after_known_calls() -> None:
    m = Metrics()
    m.observe_call("score", "ok", 0.0002, transport="pool")
    m.observe_call("score", "ok", 0.02, transport="pool")
    m.observe_call("score", "remote", 2.0, transport="pool")
    with pytest.raises(tandem.BadRequest), m.time_call("score", transport="grpc"):
        raise tandem.BadRequest("unknown field")
    with pytest.raises(ValueError), m.time_call("score", transport="grpc"):
        raise ValueError("boom")
    with m.time_call("enrich"):
        pass
    body, content_type = m.exposition()
    assert content_type.startswith("text/plain")
    got = samples(body.decode())
    labels = {"method": "score", "transport": "pool"}
    assert got[key("tandem_handler_calls_total", status="ok", **labels)] == 2
    assert got[key("tandem_handler_calls_total", status="remote", **labels)] == 1
    assert (
        got[key("tandem_handler_duration_seconds_bucket", le="0.00025", status="ok", **labels)] == 1
    )
    assert (
        got[key("tandem_handler_duration_seconds_bucket", le="0.025", status="ok", **labels)] == 2
    )
    assert (
        got[key("tandem_handler_duration_seconds_bucket", le="1.0", status="remote", **labels)] == 0
    )
    assert got[key("tandem_handler_duration_seconds_count", status="remote", **labels)] == 1
    grpc = {"method": "score", "transport": "grpc"}
    assert got[key("tandem_handler_calls_total", status="bad_request", **grpc)] == 1
    assert got[key("tandem_handler_calls_total", status="remote", **grpc)] == 1
    assert (
        got[key("tandem_handler_calls_total", method="enrich", status="ok", transport="local")] == 1
    )
    bounds = {
        float(lbl[0][1])
        for (name, lbl) in got
        if name == "tandem_handler_duration_seconds_bucket" and lbl[0][0] == "le"
    }
    assert bounds == {*BUCKETS, float("inf")}


def test_method_label_is_capped() -> None:
    m = Metrics(method_limit=2)
    for method in ["a", "b", "c", "d", "a"]:
        m.observe_call(method, "ok", 0.001)
    got = samples(m.exposition()[0].decode())
    total = "tandem_handler_calls_total"
    assert got[key(total, method="a", status="ok", transport="local")] == 2
    assert got[key(total, method="other", status="ok", transport="local")] == 2
    assert key(total, method="c", status="ok", transport="local") not in got


def test_metrics_are_served_over_http() -> None:
    m = Metrics()
    m.observe_call("score", "ok", 0.003, transport="grpc")
    server = m.serve(0, addr="127.0.0.1")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=10) as r:
            assert r.status == 200
            got = samples(r.read().decode())
        want = key("tandem_handler_calls_total", method="score", status="ok", transport="grpc")
        assert got[want] == 1
    finally:
        server.close()


def test_a_taken_port_is_named_in_the_error() -> None:
    m = Metrics()
    server = m.serve(0, addr="127.0.0.1")
    try:
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{server.port}"):
            m.serve(server.port, addr="127.0.0.1")
    finally:
        server.close()


def test_multiprocess_mode_adds_up_every_process(tmp_path: Path) -> None:
    mp_dir = tmp_path / "prom"
    mp_dir.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(mp_dir)}
    child = textwrap.dedent(
        """
        from tandem import metrics
        for _ in range(3):
            metrics.observe_call("score", "ok", 0.01, transport="grpc")
        """
    )
    for _ in range(2):
        subprocess.run([sys.executable, "-c", child], env=env, check=True, timeout=60)
    parent = textwrap.dedent(
        """
        import os, sys
        from tandem import metrics
        metrics.mark_process_dead(os.getpid())
        sys.stdout.write(metrics.default().exposition()[0].decode())
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", parent],
        env=env,
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    ).stdout
    got = samples(out)
    labels = {"method": "score", "status": "ok", "transport": "grpc"}
    assert got[key("tandem_handler_calls_total", **labels)] == 6
    assert got[key("tandem_handler_duration_seconds_count", **labels)] == 6


def test_import_tandem_does_not_import_prometheus_client() -> None:
    code = "import sys, tandem, tandem.metrics; print('prometheus_client' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("fmt", ["text", "hclog"])
def test_handler_log_records_carry_the_traceparent(fmt: str) -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        _logging.configure(fmt, stream)
        ctx = tandem.Context("score", traceparent=TRACEPARENT, transport="grpc")
        ctx.logger.info("scored")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    line = stream.getvalue().strip()
    if fmt == "hclog":
        record = json.loads(line)
        assert record["traceparent"] == TRACEPARENT
        assert record["@message"] == "scored"
    else:
        assert f"traceparent={TRACEPARENT}" in line
        assert "scored" in line


def test_a_cancelled_call_counts_as_a_timeout() -> None:
    m = Metrics()
    with pytest.raises(asyncio.CancelledError), m.time_call("slow", transport="grpc"):
        raise asyncio.CancelledError()
    got = samples(m.exposition()[0].decode())
    want = key("tandem_handler_calls_total", method="slow", status="timeout", transport="grpc")
    assert got[want] == 1
