"""The pool wire vectors in proto/vectors/pool/*.json, also checked by the Rust tests.

Each valid vector must decode to its ``frame`` and re-encode (through the typed body builders,
which fix the key order) to exactly its ``hex``; each invalid one must raise its error ``code``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tandem import _wire

VECTORS = Path(__file__).resolve().parents[2] / "proto" / "vectors" / "pool"


def _load() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in sorted(VECTORS.glob("*.json")):
        out.extend(json.loads(path.read_text())["vectors"])
    return out


def _canonical(frame: _wire.Frame) -> dict[str, Any]:
    b = frame.body
    if frame.type == _wire.HELLO:
        return _wire.hello_body(
            pid=b["pid"], app=b["app"], methods=b["methods"], max_frame=b["max_frame"]
        )
    if frame.type == _wire.CALL:
        c = _wire.read_call(b)
        return _wire.call_body(
            method=c.method,
            codec=c.codec,
            payload=c.payload,
            timeout_ms=c.timeout_ms,
            traceparent=c.traceparent,
            idempotency_key=c.idempotency_key,
            headers=c.headers,
            spin_us=c.spin_us,
            deadline_ns=c.deadline_ns,
        )
    if frame.type == _wire.OK:
        return _wire.ok_body(codec=b["codec"], payload=b["payload"])
    if frame.type == _wire.ERROR:
        return _wire.error_body(
            kind=b["kind"], type=b["type"], message=b["message"], traceback=b["traceback"]
        )
    return {}


ALL = _load()


def test_vectors_exist() -> None:
    assert len(ALL) >= 20


@pytest.mark.parametrize("vector", [v for v in ALL if "error" not in v], ids=lambda v: v["name"])
def test_valid_vector_round_trips(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["hex"])
    frame = _wire.decode(data, vector.get("max_frame", 1 << 20))
    want = vector["frame"]
    assert frame.type_name == want["type"]
    assert frame.id == want["id"]
    assert _wire.to_json_form(frame.body) == want["body"]
    assert _wire.encode(frame.type, frame.id, _canonical(frame)).hex() == vector["hex"]


@pytest.mark.parametrize("vector", [v for v in ALL if "error" in v], ids=lambda v: v["name"])
def test_invalid_vector_is_refused(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["hex"])
    with pytest.raises(_wire.WireError) as info:
        _wire.decode(data, vector.get("max_frame", 1 << 20))
    assert info.value.code == vector["error"], str(info.value)
