"""``python -m tandem consume --metrics-port``: task outcomes by method, summed over processes."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from _queue_support import (
    ConsumerProc,
    RedisServer,
    free_port,
    publish,
    redis_server,
    wait_until,
    write_app,
)
from test_consume import APP
from test_serve_metrics import sample, scrape

__all__ = ["redis_server"]


def test_metrics_port_counts_task_outcomes_over_every_process(
    tmp_path: Path, redis_server: RedisServer, monkeypatch: Any
) -> None:
    """Six handled, one failing twice (retried once, then dead), one unknown method (dead)."""
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    write_app(tmp_path, APP)
    stream = "m-" + uuid.uuid4().hex[:8]
    port = free_port()
    r = redis_server.client()
    r.delete("fail_calls", "seen")
    proc = ConsumerProc(
        tmp_path,
        redis_server.url,
        stream,
        "--processes",
        "2",
        "--metrics-port",
        str(port),
        "--max-deliveries",
        "2",
        "--retry-base",
        "0.05",
        "--reclaim-interval",
        "0.05",
    )
    try:
        for n in range(6):
            publish(r, stream, "echo", b'{"n": %d}' % n)
        publish(r, stream, "fail", b'{"n": 1}')
        publish(r, stream, "nope", b"{}")

        def done() -> str | None:
            try:
                text = scrape(port)
            except OSError:
                return None
            tasks = "tandem_queue_tasks_total"
            counted = (
                sample(text, tasks, method="echo", outcome="handled") == 6
                and sample(text, tasks, method="fail", outcome="dead_lettered") == 1
                and sample(text, tasks, method="nope", outcome="dead_lettered") == 1
            )
            return text if counted else None

        text = wait_until(20, done, "outcomes in the metrics")
        tasks = "tandem_queue_tasks_total"
        assert sample(text, tasks, method="fail", outcome="failed") == 2
        assert sample(text, tasks, method="fail", outcome="retried") == 1
        assert sample(text, tasks, method="fail", outcome="dead_lettered") == 1
        calls = "tandem_handler_calls_total"
        assert sample(text, calls, method="echo", status="ok", transport="queue") == 6
        assert sample(text, calls, method="fail", status="remote", transport="queue") == 2
        assert sample(text, calls, method="nope", status="bad_request", transport="queue") == 1
        assert len(r.xrange(f"{stream}:dead")) == 2
    finally:
        proc.kill()
        r.delete("fail_calls", "seen")
