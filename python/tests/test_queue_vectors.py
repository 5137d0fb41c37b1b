"""The shared queue wire vectors (proto/vectors/queue/), also walked by the Rust tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tandem._queue import fields as wire

VECTORS = Path(__file__).resolve().parents[2] / "proto" / "vectors" / "queue" / "task.json"
CASES = json.loads(VECTORS.read_text())["cases"]


def _bytes(v: Any) -> bytes:
    return bytes.fromhex(v["hex"]) if isinstance(v, dict) else str(v).encode()


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_task_vector(case: dict[str, Any]) -> None:
    fields = {k.encode(): _bytes(v) for k, v in case["fields"].items()}
    if "error" in case:
        with pytest.raises(wire.MalformedTask) as info:
            wire.decode_task(fields)
        assert case["error"] in str(info.value)
        return
    task = wire.decode_task(fields)
    t = case["task"]
    assert (task.id, task.method, task.codec) == (t["id"], t["method"], t["codec"])
    assert task.payload == bytes.fromhex(t["payload_hex"])
    assert (task.attempt, task.enq_ms, task.deadline_ms) == (
        t["attempt"],
        t["enq_ms"],
        t["deadline_ms"],
    )
    assert (task.traceparent, task.idempotency_key, task.reply_to) == (
        t["traceparent"],
        t["idempotency_key"],
        t["reply_to"],
    )
    assert task.headers == t["headers"]
    assert {k.encode(): v for k, v in wire.encode_task(task).items()} == fields
