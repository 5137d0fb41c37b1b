"""The worker's fast paths give exactly what the checked paths give.

``decode_call`` (msgspec) must accept what ``read_call`` accepts with the same values, and refuse
the rest with ``read_call``'s own errors; ``encode_ok`` must write ``encode``'s bytes; the
inbox's ``whole_frame`` must step aside (None) for anything but a whole, valid frame.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import msgpack
import pytest

from tandem import _wire
from tandem.worker import _Inbox

VECTORS = Path(__file__).resolve().parents[2] / "proto" / "vectors" / "pool"


def _call_bodies() -> list[bytes]:
    bodies = []
    for v in json.loads((VECTORS / "call.json").read_text())["vectors"]:
        if "frame" in v:
            bodies.append(bytes.fromhex(v["hex"])[4 + _wire.HEADER_LEN :])
    return bodies


@pytest.mark.parametrize("body", _call_bodies())
def test_decode_call_equals_the_checked_path_on_every_call_vector(body: bytes) -> None:
    assert _wire.decode_call(memoryview(body)) == _wire.read_call(
        _wire.decode_body(_wire.CALL, body)
    )


GOOD = {"method": "echo", "codec": "json", "payload": b"1"}


@pytest.mark.parametrize(
    "body",
    [
        {**GOOD, "headers": None, "spin_us": None, "extra": [1, 2]},  # nil and unknown keys
        {**GOOD, "headers": {"a": "b"}, "timeout_ms": 0, "traceparent": "00-x"},
        {"payload": b"", "codec": "raw", "method": "m"},  # any key order
        {**GOOD, 7: "non-string key"},
    ],
)
def test_decode_call_takes_what_read_call_takes(body: dict[object, object]) -> None:
    data = msgpack.packb(body, use_bin_type=True)
    assert _wire.decode_call(data) == _wire.read_call(_wire.decode_body(_wire.CALL, data))


@pytest.mark.parametrize(
    "body",
    [
        {"codec": "json", "payload": b""},
        {**GOOD, "method": 1},
        {**GOOD, "payload": "text, not bin"},
        {**GOOD, "timeout_ms": -1},
        {**GOOD, "spin_us": 1.5},
        {**GOOD, "deadline_ns": -5},
        {**GOOD, "deadline_ns": "soon"},
        {**GOOD, "headers": {"a": 1}},
        {**GOOD, "traceparent": 3},
    ],
)
def test_decode_call_refuses_with_the_checked_paths_message(body: dict[str, object]) -> None:
    data = msgpack.packb(body, use_bin_type=True)
    with pytest.raises(_wire.BadCall) as fast:
        _wire.decode_call(data)
    with pytest.raises(_wire.BadCall) as checked:
        _wire.read_call(_wire.decode_body(_wire.CALL, data))
    assert str(fast.value) == str(checked.value)


@pytest.mark.parametrize("data", [b"\x93\x01\x02\x03", b"\xc1", b"\x80\x01", b""])
def test_a_body_that_is_no_map_is_a_wire_error_not_a_bad_call(data: bytes) -> None:
    with pytest.raises(_wire.WireError) as err:
        _wire.decode_call(data)
    assert not isinstance(err.value, _wire.BadCall)
    assert err.value.code == "body"


@pytest.mark.parametrize("size", [0, 100, (1 << 16) - 1, 1 << 16, 1 << 20])
def test_encode_ok_writes_the_checked_encoders_bytes(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    expected = _wire.encode(_wire.OK, 2**64 - 1, _wire.ok_body(codec="raw", payload=payload))
    assert bytes(_wire.encode_ok(2**64 - 1, "raw", payload)) == expected


def test_whole_frame_steps_aside_for_partial_and_defective_frames() -> None:
    frame = _wire.encode(_wire.CALL, 9, _wire.call_body(method="m", codec="raw", payload=b"p"))
    a, b = socket.socketpair()
    with a, b:
        inbox = _Inbox(b)
        assert inbox.whole_frame(1 << 20) is None  # nothing buffered
        a.sendall(frame + frame[:-1])
        assert inbox.receive() == 2 * len(frame) - 1
        type_, id_, body = inbox.whole_frame(1 << 20) or (0, 0, memoryview(b""))
        assert (type_, id_) == (_wire.CALL, 9)
        assert _wire.decode_call(body).payload == b"p"
        assert inbox.whole_frame(1 << 20) is None  # the second lacks its last byte
        assert inbox.whole_frame(len(frame) - 5) is None  # over the limit: the checked path
        a.sendall(frame[-1:])
        assert inbox.read(len(frame)) == frame  # the checked path still reads it whole
        for defect in (b"XX", b"TD\x02", b"TD\x01\x63", b"TD\x01\x02\x00\x01"):
            bad = frame[:4] + defect + frame[4 + len(defect) :]
            a.sendall(bad)
            assert inbox.receive() == len(bad)
            assert inbox.whole_frame(1 << 20) is None, defect
            assert inbox.read(len(bad)) == bad
