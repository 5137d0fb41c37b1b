"""The pool's wire format, shared with ``tandem::process::frame`` (Rust).

A frame is a u32 big-endian length, a 14-byte header and a msgpack map::

    offset size field
    0      4    length   bytes after this field (header + body), 14 .. max_frame
    4      2    magic    b"TD"
    6      1    version  1
    7      1    type     1 hello, 2 call, 3 ok, 4 error, 5 ping, 6 pong, 7 shutdown
    8      2    flags    0 (version 1 defines none)
    10     8    id       request id (0 for hello and shutdown)
    18     ...  body     one msgpack map, keys in the documented order

``docs/internals/process.md`` documents every field; ``proto/vectors/pool/*.json`` holds the test
vectors both sides check. Only the pool worker imports this module (``import tandem`` stays
stdlib-only); the worker's hot path decodes calls and encodes answers with msgspec, every other
frame and every error goes through msgpack and the checks below.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Annotated, Any, NamedTuple

import msgspec

from ._codec import _msgpack

MAGIC = b"TD"
VERSION = 1
HEADER_LEN = 14
FRAME_OVERHEAD = 64 * 1024
#: The largest message on the pool's wire (a ``SOCK_SEQPACKET`` socket): a longer frame is sent
#: as several messages, in order, and every read asks for at least this many bytes.
MESSAGE_MAX = 64 * 1024
DEFAULT_MAX_FRAME = 64 * 1024 * 1024 + FRAME_OVERHEAD

HELLO, CALL, OK, ERROR, PING, PONG, SHUTDOWN = range(1, 8)
TYPE_NAMES = {
    HELLO: "hello",
    CALL: "call",
    OK: "ok",
    ERROR: "error",
    PING: "ping",
    PONG: "pong",
    SHUTDOWN: "shutdown",
}
TYPES_BY_NAME = {v: k for k, v in TYPE_NAMES.items()}

_PREFIX = struct.Struct(">I")
_HEADER = struct.Struct(">2sBBHQ")


class WireError(Exception):
    """Bytes that are not a valid frame. ``code`` is the name used by the test vectors."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class EndOfStream(Exception):
    """The stream ended cleanly between two frames."""


class Frame(NamedTuple):
    """One decoded frame."""

    type: int
    id: int
    body: dict[str, Any]

    @property
    def type_name(self) -> str:
        """The lowercase name of the message type."""
        return TYPE_NAMES[self.type]


#: The length prefix and the header, unpacked together.
FRAME_HEAD = struct.Struct(">I2sBBHQ")
_packer: Any = None


def encode(type_: int, id_: int, body: dict[str, Any]) -> bytes:
    """Encodes one frame, length prefix included."""
    global _packer
    if _packer is None:
        _packer = _msgpack().Packer(use_bin_type=True)  # reused: packb builds one per call
    try:
        packed: bytes = _packer.pack(body)
    except BaseException:
        _packer.reset()  # a failed pack may leave partial bytes in the buffer
        raise
    return FRAME_HEAD.pack(HEADER_LEN + len(packed), MAGIC, VERSION, type_, 0, id_) + packed


def check_len(length: int, max_frame: int) -> int:
    """Validates a length prefix before anything is allocated for the frame."""
    if length < HEADER_LEN:
        raise WireError(
            "too_short", f"frame length {length} is shorter than the {HEADER_LEN}-byte header"
        )
    if length > max_frame:
        raise WireError(
            "too_large", f"frame of {length} bytes exceeds the limit of {max_frame} bytes"
        )
    return length


def decode_header(header: bytes | bytearray | memoryview) -> tuple[int, int]:
    """Checks a 14-byte header and returns ``(type, id)``."""
    magic, version, type_, flags, id_ = _HEADER.unpack(header)
    if magic != MAGIC:
        raise WireError(
            "magic",
            f"bad magic {magic.hex(' ')} (expected 54 44, 'TD'): "
            "the peer is not speaking the tandem pool protocol",
        )
    if version != VERSION:
        raise WireError("version", f"unsupported protocol version {version} (this side speaks 1)")
    if type_ not in TYPE_NAMES:
        raise WireError("type", f"unknown message type {type_} (known: 1 hello .. 7 shutdown)")
    if flags != 0:
        raise WireError("flags", f"unknown flags {flags:#06x} (version 1 defines none)")
    return type_, id_


def decode_body(type_: int, data: bytes | memoryview) -> dict[str, Any]:
    """Decodes a frame body, which must be exactly one msgpack map."""
    name = TYPE_NAMES[type_]
    msgpack = _msgpack()
    try:
        value = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except msgpack.ExtraData as exc:
        raise WireError(
            "body", f"bad {name} body: {len(exc.extra)} bytes after the msgpack map"
        ) from None
    except Exception as exc:
        raise WireError("body", f"bad {name} body: not msgpack: {exc}") from exc
    if type(value) is not dict:
        raise WireError("body", f"bad {name} body: not a msgpack map")
    return value


def decode(data: bytes, max_frame: int = DEFAULT_MAX_FRAME) -> Frame:
    """Decodes one complete frame (length prefix included)."""
    if len(data) < 4:
        raise WireError("truncated", f"truncated frame: {len(data)} of 4 length bytes")
    (length,) = _PREFIX.unpack(data[:4])
    check_len(length, max_frame)
    rest = data[4:]
    if len(rest) < length:
        raise WireError("truncated", f"truncated frame: {len(rest)} of {length} bytes")
    if len(rest) > length:
        raise WireError("body", f"{len(rest) - length} trailing bytes after the frame")
    type_, id_ = decode_header(rest[:HEADER_LEN])
    return Frame(type_, id_, decode_body(type_, rest[HEADER_LEN:]))


def read(read_exact: Callable[[int], bytes], max_frame: int) -> Frame:
    """Reads one frame with ``read_exact(n)`` (which returns fewer bytes only at end of stream).

    :raises EndOfStream: the stream ended between frames.
    :raises WireError: the bytes are not a frame (oversized lengths before allocating).
    """
    prefix = read_exact(4)
    if not prefix:
        raise EndOfStream
    if len(prefix) < 4:
        raise WireError("truncated", f"truncated frame: {len(prefix)} of 4 length bytes")
    (length,) = _PREFIX.unpack(prefix)
    check_len(length, max_frame)
    rest = read_exact(length)
    if len(rest) < length:
        raise WireError("truncated", f"truncated frame: {len(rest)} of {length} bytes")
    type_, id_ = decode_header(rest[:HEADER_LEN])
    return Frame(type_, id_, decode_body(type_, rest[HEADER_LEN:]))


def to_json_form(value: Any) -> Any:
    """A body as the JSON test vectors write it: bytes become ``{"$bytes": "<hex>"}``."""
    if isinstance(value, bytes):
        return {"$bytes": value.hex()}
    if isinstance(value, dict):
        return {k: to_json_form(x) for k, x in value.items()}
    if isinstance(value, list):
        return [to_json_form(x) for x in value]
    return value


# ----- bodies, keys in canonical order ----------------------------------------------------


def hello_body(*, pid: int, app: str, methods: list[str], max_frame: int) -> dict[str, Any]:
    """The worker's ready handshake (``message_max``: the largest message it receives whole)."""
    return {
        "protocol": VERSION,
        "pid": pid,
        "app": app,
        "methods": list(methods),
        "max_frame": max_frame,
        "message_max": MESSAGE_MAX,
    }


def call_body(
    *,
    method: str,
    codec: str,
    payload: bytes,
    timeout_ms: int | None = None,
    traceparent: str | None = None,
    idempotency_key: str | None = None,
    headers: dict[str, str] | None = None,
    spin_us: int = 0,
    deadline_ns: int | None = None,
) -> dict[str, Any]:
    """A call, as the parent sends it (``spin_us`` is written only when non-zero,
    ``deadline_ns`` only when given)."""
    body: dict[str, Any] = {
        "method": method,
        "codec": codec,
        "payload": payload,
        "timeout_ms": timeout_ms,
        "traceparent": traceparent,
        "idempotency_key": idempotency_key,
        "headers": dict(headers or {}),
    }
    if spin_us:
        body["spin_us"] = spin_us
    if deadline_ns is not None:
        body["deadline_ns"] = deadline_ns
    return body


def ok_body(*, codec: str, payload: bytes) -> dict[str, Any]:
    """A successful answer."""
    return {"codec": codec, "payload": payload}


def error_body(*, kind: str, type: str, message: str, traceback: str) -> dict[str, Any]:
    """A failed call, in the portable error form."""
    return {"kind": kind, "type": type, "message": message, "traceback": traceback}


_NonNegative = Annotated[int, msgspec.Meta(ge=0)]


class Call(msgspec.Struct, frozen=True, gc=False):
    """A call body, checked."""

    method: str
    codec: str
    payload: bytes
    timeout_ms: _NonNegative | None = None
    traceparent: str | None = None
    idempotency_key: str | None = None
    headers: dict[str, str] = {}
    spin_us: _NonNegative = 0
    deadline_ns: _NonNegative | None = None  # on CLOCK_MONOTONIC, which time.monotonic() reads


class BadCall(WireError):
    """A call body that is a map, but not a valid call: the worker answers it with an error."""


_CALL_DECODER = msgspec.msgpack.Decoder(Call)


def decode_call(data: bytes | memoryview) -> Call:
    """Decodes and checks a call body in one step.

    The fast decoder takes every valid body; a body it refuses goes through
    :func:`decode_body` and :func:`read_call`, so every error reads the same either way.

    :raises WireError: the body is not one msgpack map.
    :raises BadCall: the map is not a valid call.
    """
    try:
        return _CALL_DECODER.decode(data)
    except msgspec.MsgspecError:
        return read_call(decode_body(CALL, data))


class _Ok(msgspec.Struct, gc=False):
    codec: str
    payload: bytes


_ENCODER = msgspec.msgpack.Encoder()
_COPY_ONCE = 1 << 16


def encode_ok(id_: int, codec: str, payload: bytes) -> bytes | bytearray:
    """The ``ok`` frame for ``payload``, length prefix included."""
    if len(payload) < _COPY_ONCE:  # small: concatenating is cheaper than encoding in place
        body = _ENCODER.encode(_Ok(codec, payload))
        return FRAME_HEAD.pack(HEADER_LEN + len(body), MAGIC, VERSION, OK, 0, id_) + body
    out = bytearray(FRAME_HEAD.size)
    _ENCODER.encode_into(_Ok(codec, payload), out, -1)  # the payload copied once
    FRAME_HEAD.pack_into(out, 0, len(out) - 4, MAGIC, VERSION, OK, 0, id_)
    return out


def _bad(detail: str) -> BadCall:
    return BadCall("body", f"bad call body: {detail}")


def read_call(body: dict[str, Any]) -> Call:
    """Checks a call body's keys and types (``decode_call`` is the worker's fast path)."""
    get = body.get
    method, codec, payload = get("method"), get("codec"), get("payload")
    timeout_ms, traceparent, key = get("timeout_ms"), get("traceparent"), get("idempotency_key")
    headers = get("headers") or {}
    spin_us = get("spin_us") or 0
    deadline_ns = get("deadline_ns")
    if type(method) is not str:
        raise _bad("missing string 'method'")
    if type(codec) is not str:
        raise _bad("missing string 'codec'")
    if type(payload) is not bytes:
        raise _bad("missing binary 'payload'")
    if timeout_ms is not None and (type(timeout_ms) is not int or timeout_ms < 0):
        raise _bad("'timeout_ms' must be a non-negative integer")
    if traceparent is not None and type(traceparent) is not str:
        raise _bad("'traceparent' must be a string")
    if key is not None and type(key) is not str:
        raise _bad("'idempotency_key' must be a string")
    if type(spin_us) is not int or spin_us < 0:
        raise _bad("'spin_us' must be a non-negative integer")
    if deadline_ns is not None and (type(deadline_ns) is not int or deadline_ns < 0):
        raise _bad("'deadline_ns' must be a non-negative integer")
    if type(headers) is not dict:
        raise _bad("headers must map strings to strings")
    for k, v in headers.items():
        if type(k) is not str or type(v) is not str:
            raise _bad("headers must map strings to strings")
    return Call(method, codec, payload, timeout_ms, traceparent, key, headers, spin_us, deadline_ns)
