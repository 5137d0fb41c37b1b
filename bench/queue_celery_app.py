"""A trivial Celery app on the same Redis, for bench/queue_bench.py (broker URL from
$CELERY_BROKER)."""

from __future__ import annotations

import os
import time

import redis
from celery import Celery

app = Celery("bench", broker=os.environ.get("CELERY_BROKER", "redis://127.0.0.1:6379/0"))
app.conf.update(task_ignore_result=True, worker_hijack_root_logger=False)
_r: redis.Redis | None = None


@app.task(name="noop")
def noop(n: int) -> int:
    return n


@app.task(name="lat")
def lat(t: float) -> None:
    global _r
    if _r is None:
        _r = redis.Redis.from_url(os.environ["CELERY_BROKER"])
    _r.rpush("lat", time.time() - t)
