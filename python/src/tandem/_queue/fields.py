"""The queue wire: the fields of task, reply and dead-letter stream entries.

Every value is a Redis bulk string. A task entry (``XADD S * ...``) carries:

=============  =========  ========================================================
field          required   meaning
=============  =========  ========================================================
``v``          yes        format version, ``1``
``id``         yes        task id chosen by the producer (unique per task)
``method``     yes        the App handler's name
``codec``      yes        ``json`` | ``msgpack`` | ``raw``
``payload``    yes        the encoded payload (any bytes, may be empty)
``attempt``    yes        1 for the first publish, +1 per scheduled retry
``enq_ms``     yes        unix time of the first publish, milliseconds
``deadline_ms`` no        unix time after which the caller stops waiting
``tp``         no         W3C traceparent
``idem``       no         idempotency key (dedup with ``S:done:<key>``)
``reply``      no         stream to write the result to
``h:<name>``   no         a free header
=============  =========  ========================================================

The shared vectors in ``proto/vectors/queue/`` pin this format for Rust and Python.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from .._codec import CODECS, CodecName

VERSION = b"1"
HEADER_PREFIX = "h:"
_REQUIRED = ("v", "id", "method", "codec", "payload", "attempt", "enq_ms")
_REQUIRED_KEYS = tuple(n.encode() for n in _REQUIRED)


class MalformedTask(ValueError):
    """An entry that is not a valid task: the message says which field and why."""


@dataclass
class Task:
    """One decoded task entry."""

    id: str
    method: str
    codec: CodecName
    payload: bytes
    attempt: int = 1
    enq_ms: int = 0
    deadline_ms: int | None = None
    traceparent: str | None = None
    idempotency_key: str | None = None
    reply_to: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def _text(fields: Mapping[bytes, bytes], name: str) -> str:
    raw = fields.get(name.encode())
    if raw is None:
        raise MalformedTask(f"missing field {name!r}")
    try:
        return raw.decode()
    except UnicodeDecodeError as exc:
        raise MalformedTask(f"field {name!r} is not UTF-8") from exc


def _int(fields: Mapping[bytes, bytes], name: str, minimum: int = 0) -> int:
    text = _text(fields, name)
    try:
        value = int(text, 10)
    except ValueError as exc:
        raise MalformedTask(f"field {name!r} is not an integer: {text[:40]!r}") from exc
    if value < minimum:
        raise MalformedTask(f"field {name!r} is {value}, below {minimum}")
    return value


def decode_task(fields: Mapping[bytes, bytes]) -> Task:
    """Reads a task entry's fields.

    :raises MalformedTask: a required field is missing or a value is invalid.
    """
    if not all(k in fields for k in _REQUIRED_KEYS):
        missing = [n for n in _REQUIRED if n.encode() not in fields]
        plural = "s" if len(missing) > 1 else ""
        raise MalformedTask(f"missing field{plural} {', '.join(missing)}")
    version = fields[b"v"]
    if version != VERSION:
        raise MalformedTask(f"unsupported format version {version[:16]!r} (this consumer reads 1)")
    codec = _text(fields, "codec")
    if codec not in CODECS:
        raise MalformedTask(f"unknown codec {codec[:40]!r} (accepted: json, msgpack, raw)")
    method = _text(fields, "method")
    if not method:
        raise MalformedTask("field 'method' is empty")
    task_id = _text(fields, "id")
    if not task_id:
        raise MalformedTask("field 'id' is empty")
    task = Task(
        id=task_id,
        method=method,
        codec=codec,
        payload=fields[b"payload"],
        attempt=_int(fields, "attempt", 1),
        enq_ms=_int(fields, "enq_ms"),
    )
    if b"deadline_ms" in fields:
        task.deadline_ms = _int(fields, "deadline_ms")
    if b"tp" in fields:
        task.traceparent = _text(fields, "tp")
    if b"idem" in fields:
        task.idempotency_key = _text(fields, "idem")
    if b"reply" in fields:
        task.reply_to = _text(fields, "reply")
    for key in fields:
        if key.startswith(b"h:"):
            name = key[2:].decode(errors="replace")
            task.headers[name] = fields[key].decode(errors="replace")
    return task


def encode_task(task: Task) -> dict[str, bytes]:
    """The fields of a task entry, in wire order (the inverse of :func:`decode_task`)."""
    out: dict[str, bytes] = {
        "v": VERSION,
        "id": task.id.encode(),
        "method": task.method.encode(),
        "codec": task.codec.encode(),
        "payload": task.payload,
        "attempt": str(task.attempt).encode(),
        "enq_ms": str(task.enq_ms).encode(),
    }
    if task.deadline_ms is not None:
        out["deadline_ms"] = str(task.deadline_ms).encode()
    if task.traceparent is not None:
        out["tp"] = task.traceparent.encode()
    if task.idempotency_key is not None:
        out["idem"] = task.idempotency_key.encode()
    if task.reply_to is not None:
        out["reply"] = task.reply_to.encode()
    for name, value in sorted(task.headers.items()):
        out[HEADER_PREFIX + name] = value.encode()
    return out


def reply_ok(task_id: str, data: bytes, codec: str) -> dict[str, bytes]:
    """A reply entry for a handler that returned."""
    return {"id": task_id.encode(), "status": b"ok", "codec": codec.encode(), "payload": data}


def reply_error(task_id: str, wire: Mapping[str, str]) -> dict[str, bytes]:
    """A reply entry for a task that failed for good (``wire`` is ``error_to_wire``'s form)."""
    return {
        "id": task_id.encode(),
        "status": b"error",
        "kind": wire.get("kind", "remote").encode(),
        "type": wire.get("type", "").encode(),
        "message": wire.get("message", "").encode(),
        "traceback": wire.get("traceback", "").encode(),
    }


def dead_letter(
    fields: Mapping[bytes, bytes],
    *,
    entry_id: bytes,
    reason: str,
    wire: Mapping[str, str],
    attempts: int,
) -> dict[bytes, bytes]:
    """A dead-letter entry: the original fields verbatim plus why it died.

    Added fields: ``dead_reason`` (``failed`` | ``bad_request`` | ``max_deliveries`` |
    ``malformed``), ``err_kind``, ``err_type``, ``err_message``, ``err_traceback``,
    ``attempts``, ``dead_ms`` and ``src_id`` (the entry id it had in the stream).
    """
    out = {k: v for k, v in fields.items() if not k.startswith(b"err_")}
    out[b"dead_reason"] = reason.encode()
    out[b"err_kind"] = wire.get("kind", "remote").encode()
    out[b"err_type"] = wire.get("type", "").encode()
    out[b"err_message"] = wire.get("message", "").encode()
    out[b"err_traceback"] = wire.get("traceback", "").encode()
    out[b"attempts"] = str(attempts).encode()
    out[b"dead_ms"] = str(now_ms()).encode()
    out[b"src_id"] = entry_id
    return out


def now_ms() -> int:
    """Unix time in milliseconds."""
    return time.time_ns() // 1_000_000


def dead_key(stream: str) -> str:
    """The dead-letter stream of ``stream``."""
    return f"{stream}:dead"


def delayed_key(stream: str) -> str:
    """The sorted set of retries waiting for their time (score: due unix ms)."""
    return f"{stream}:delayed"


def done_key(stream: str, idempotency_key: str) -> str:
    """The marker of a completed idempotency key."""
    return f"{stream}:done:{idempotency_key}"
