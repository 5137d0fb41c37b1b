"""The tandem App of bench/queue_bench.py: a no-op handler and a latency probe."""

from __future__ import annotations

import os
import time
from typing import Any

import tandem

app = tandem.App("bench")
_r: Any = None


@app.handler("noop")
def noop(p: Any) -> Any:
    return p


@app.handler("lat")
def lat(p: Any) -> None:
    global _r
    if _r is None:
        import redis

        _r = redis.Redis.from_url(os.environ["BENCH_REDIS"])
    _r.rpush("lat", time.time() - p["t"])
