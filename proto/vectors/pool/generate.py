"""Regenerates the pool wire test vectors: ``python proto/vectors/pool/generate.py``.

Valid vectors are encoded with ``tandem._wire`` (bodies with their canonical key order);
both ``crates/tandem/tests/pool/vectors.rs`` and ``python/tests/test_vectors.py`` check that
their side decodes each one to ``frame`` and re-encodes it to exactly ``hex``. Bytes inside a
body are written as ``{"$bytes": "<hex>"}``. Error vectors name the error ``code`` each side
must report (``max_frame`` applies when given, else 1 MiB).
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2] / "python" / "src"))

from tandem import _wire


def valid(
    name: str, description: str, type_: int, id_: int, body: dict[str, Any]
) -> dict[str, Any]:
    return {
        "name": name,
        "description": description,
        "hex": _wire.encode(type_, id_, body).hex(),
        "frame": {
            "type": _wire.TYPE_NAMES[type_],
            "id": id_,
            "body": _wire.to_json_form(body),
        },
    }


def raw_frame(
    magic: bytes, version: int, type_: int, flags: int, id_: int, body: bytes
) -> bytes:
    header = struct.pack(">2sBBHQ", magic, version, type_, flags, id_)
    return struct.pack(">I", len(header) + len(body)) + header + body


def invalid(
    name: str, description: str, data: bytes, code: str, **extra: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "description": description,
        "hex": data.hex(),
        "error": code,
        **extra,
    }


def main() -> None:
    files: dict[str, list[dict[str, Any]]] = {
        "hello.json": [
            valid(
                "hello",
                "worker's ready handshake after importing the app",
                _wire.HELLO,
                0,
                _wire.hello_body(
                    pid=4242,
                    app="risk",
                    methods=["enrich", "score"],
                    max_frame=67174400,
                ),
            ),
            valid(
                "hello_no_methods",
                "an app with no handlers",
                _wire.HELLO,
                0,
                _wire.hello_body(pid=1, app="empty", methods=[], max_frame=1048576),
            ),
        ],
        "call.json": [
            valid(
                "call_json_full_metadata",
                "a json call with deadline, traceparent, idempotency key and headers",
                _wire.CALL,
                7,
                _wire.call_body(
                    method="score",
                    codec="json",
                    payload=b'{"amount":12}',
                    timeout_ms=250,
                    traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                    idempotency_key="order-42",
                    headers={"tenant": "acme"},
                ),
            ),
            valid(
                "call_raw_empty_no_metadata",
                "a raw call with an empty payload and no metadata",
                _wire.CALL,
                18446744073709551615,
                _wire.call_body(method="ping", codec="raw", payload=b""),
            ),
            valid(
                "call_msgpack",
                "a msgpack call",
                _wire.CALL,
                300,
                _wire.call_body(
                    method="m",
                    codec="msgpack",
                    payload=b"\x81\xa1a\x01",
                    timeout_ms=70000,
                ),
            ),
            valid(
                "call_spin",
                "a call that lets the worker poll 50 µs for the next one after answering",
                _wire.CALL,
                8,
                _wire.call_body(method="echo", codec="raw", payload=b"hi", spin_us=50),
            ),
            valid(
                "call_monotonic_deadline",
                "a call with its deadline on the host's CLOCK_MONOTONIC as well as the time left",
                _wire.CALL,
                9,
                _wire.call_body(
                    method="echo",
                    codec="raw",
                    payload=b"hi",
                    timeout_ms=1500,
                    spin_us=50,
                    deadline_ns=37_402_118_000_000,
                ),
            ),
        ],
        "reply.json": [
            valid(
                "ok_json",
                "a json answer",
                _wire.OK,
                7,
                _wire.ok_body(codec="json", payload=b'{"risk":0.03}'),
            ),
            valid(
                "ok_raw",
                "a raw answer",
                _wire.OK,
                8,
                _wire.ok_body(codec="raw", payload=b"\x00\xff"),
            ),
            valid(
                "error_remote",
                "the handler raised",
                _wire.ERROR,
                9,
                _wire.error_body(
                    kind="remote",
                    type="ValueError",
                    message="boom",
                    traceback='Traceback (most recent call last):\n  File "svc.py", line 3\nValueError: boom\n',
                ),
            ),
            valid(
                "error_bad_request",
                "unknown method",
                _wire.ERROR,
                10,
                _wire.error_body(
                    kind="bad_request",
                    type="BadRequest",
                    message="no handler 'x'",
                    traceback="",
                ),
            ),
        ],
        "control.json": [
            valid("ping", "liveness probe", _wire.PING, 11, {}),
            valid("pong", "answer to ping 11", _wire.PONG, 11, {}),
            valid("shutdown", "parent asks the worker to exit", _wire.SHUTDOWN, 0, {}),
        ],
        "errors.json": [
            invalid(
                "bad_magic",
                "not a tandem frame",
                raw_frame(b"XX", 1, 2, 0, 1, b"\x80"),
                "magic",
            ),
            invalid(
                "bad_version",
                "a future protocol version",
                raw_frame(b"TD", 2, 2, 0, 1, b"\x80"),
                "version",
            ),
            invalid(
                "unknown_type",
                "message type 9",
                raw_frame(b"TD", 1, 9, 0, 1, b"\x80"),
                "type",
            ),
            invalid(
                "unknown_flags",
                "flags are reserved",
                raw_frame(b"TD", 1, 5, 1, 1, b"\x80"),
                "flags",
            ),
            invalid(
                "too_short",
                "length below the header size",
                struct.pack(">I", 3) + b"TD\x01",
                "too_short",
            ),
            invalid(
                "too_large",
                "length above max_frame, rejected before reading the body",
                struct.pack(">I", 2048) + b"TD\x01\x02",
                "too_large",
                max_frame=1024,
            ),
            invalid(
                "truncated_prefix",
                "stream ends inside the length",
                b"\x00\x00",
                "truncated",
            ),
            invalid(
                "truncated_body",
                "stream ends inside the frame",
                raw_frame(b"TD", 1, 3, 0, 1, b"\x82\xa5codec")[:-3],
                "truncated",
            ),
            invalid(
                "body_not_msgpack",
                "0xc1 is never valid msgpack",
                raw_frame(b"TD", 1, 5, 0, 1, b"\xc1"),
                "body",
            ),
            invalid(
                "body_not_map",
                "a body must be a map",
                raw_frame(b"TD", 1, 5, 0, 1, b"\x93\x01\x02\x03"),
                "body",
            ),
            invalid(
                "body_trailing",
                "bytes after the map",
                raw_frame(b"TD", 1, 5, 0, 1, b"\x80\x80"),
                "body",
            ),
            invalid(
                "body_empty",
                "a body is required",
                raw_frame(b"TD", 1, 5, 0, 1, b""),
                "body",
            ),
        ],
    }
    for name, vectors in files.items():
        (HERE / name).write_text(json.dumps({"vectors": vectors}, indent=2) + "\n")


if __name__ == "__main__":
    main()
