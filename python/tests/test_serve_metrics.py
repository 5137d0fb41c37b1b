"""``python -m tandem serve --metrics-port``: handler and batching metrics summed over workers."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

from serve_helpers import Server, free_port, invoke, predict, wait_until


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        return str(reply.read().decode())


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample; 0 when it is absent."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_port_counts_calls_and_batches_over_every_worker(tmp_path: Path) -> None:
    port = free_port()
    server = Server(tmp_path, "--metrics-port", str(port), workers=2)
    try:
        server.open_gate("load")
        server.wait_serving()
        ch = server.channel()
        features = json.dumps({"amount": 950, "merchant_category": "crypto"}).encode()
        for _ in range(7):
            predict(ch, "risk", features)
        for i in range(5):
            invoke(ch, "echo", json.dumps(i).encode())
        invoke(ch, "boom", b"{}")

        def counted() -> str | None:
            text = scrape(port)
            done = sample(text, "tandem_batch_queue_seconds_count", model="risk") == 7
            return text if done else None

        text = wait_until(counted, 10, "7 predictions in the metrics")
        assert sample(text, "tandem_batch_size_sum", model="risk") == 7
        calls = "tandem_handler_calls_total"
        assert sample(text, calls, method="echo", status="ok", transport="grpc") == 5
        assert sample(text, calls, method="boom", status="remote", transport="grpc") == 1
        assert sample(text, "tandem_handler_duration_seconds_count", method="echo") == 5
    finally:
        code = server.stop()
        server.close()
    assert code == 0, server.logs()


def test_no_metrics_port_serves_no_metrics(tmp_path: Path) -> None:
    server = Server(tmp_path, workers=1)
    try:
        server.open_gate("load")
        server.wait_serving()
        assert "metrics on" not in server.logs()
    finally:
        server.stop()
        server.close()
