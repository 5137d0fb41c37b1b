"""The Python side of the process-pool demo: a small risk-scoring service.

Served by ``python -m tandem worker service:app`` workers that ``tandem::process::Pool`` starts.
"""

from __future__ import annotations

import os
import time
from typing import Any

import tandem

app = tandem.App("risk")


@app.handler("score")
def score(payload: dict[str, Any]) -> dict[str, Any]:
    """A toy rule: large amounts from new accounts are risky."""
    amount = float(payload.get("amount", 0))
    age_days = int(payload.get("account_age_days", 365))
    risk = min(1.0, amount / 10_000) * (2.0 if age_days < 30 else 1.0)
    return {"risk": round(min(risk, 1.0), 3), "worker": os.getpid()}


@app.handler("echo")
def echo(payload: Any) -> Any:
    return payload


@app.handler("fail")
def fail(payload: Any) -> Any:
    raise ValueError(f"cannot score {payload!r}: missing field 'amount'")


@app.handler("crash")
def crash(payload: Any) -> Any:
    """Simulates a native crash: the worker process dies mid-call."""
    os._exit(3)


@app.handler("slow")
def slow(payload: Any) -> Any:
    time.sleep(float(payload))
    return "done"
