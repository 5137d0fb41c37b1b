"""Payload codecs shared by every transport: json, msgpack and raw bytes.

``json`` and ``msgpack`` carry values (dicts, lists, numbers, strings); ``raw`` carries bytes
untouched. msgpack is imported on first use so that ``import tandem`` stays standard-library only.
"""

from __future__ import annotations

import json

# No ``typing`` at import time (one-shot scripts pay for every ms of start-up); mypy treats any
# ``TYPE_CHECKING`` name as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Literal, TypeAlias

    CodecName: TypeAlias = Literal["json", "msgpack", "raw"]
else:
    CodecName = str  # the runtime stand-in, for modules that import the name

CODECS: tuple[CodecName, ...] = ("json", "msgpack", "raw")
CODEC_IDS: dict[CodecName, int] = {"json": 1, "msgpack": 2, "raw": 3}
CODEC_BY_ID: dict[int, CodecName] = {v: k for k, v in CODEC_IDS.items()}

# One encoder for every call: json.dumps with non-default options builds a new one each time.
_JSON_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _c_json_encoder() -> Any:
    """The C encoder ``_JSON_ENCODER.encode`` builds on every call, built once, or None.

    Built without a circular-reference check (a cycle raises RecursionError, and the full path
    then reports it); ``encode`` falls back to the full path on any error.
    """
    from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]

    try:  # the arguments JSONEncoder.iterencode passes for separators (",", ":"), no indent
        return c_make_encoder(None, _JSON_ENCODER.default, encode_basestring, None, ":", ",",
                              False, False, True)  # fmt: skip
    except Exception:  # no C accelerator (None), or another signature: the full path serves
        return None


_JSON_FAST_ENCODE = _c_json_encoder()
# The C scanner ``decode`` calls after skipping whitespace with two regex matches.
_JSON_SCAN = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
# Values the JSON encoder takes as they are (containers are checked as it walks them).
_JSON_PLAIN = frozenset({dict, list, str, int, float, bool, type(None)})


class CodecError(ValueError):
    """Bytes that do not decode, or a value that does not encode, with the given codec."""


CodecError.__module__ = "tandem"  # re-exported as tandem.CodecError


_msgpack_module: Any = None


def _msgpack() -> Any:
    global _msgpack_module
    if _msgpack_module is None:
        try:
            import msgpack
        except ImportError as exc:  # pragma: no cover - msgpack is a base dependency
            raise CodecError(
                "the msgpack codec needs the msgpack package: pip install msgpack"
            ) from exc
        _msgpack_module = msgpack
    return _msgpack_module


def check_codec(name: str) -> CodecName:
    """Returns ``name`` as a codec name, or raises CodecError listing the accepted ones."""
    if name in CODECS:
        return name
    raise CodecError(f"unknown codec {name!r} (accepted: json, msgpack, raw)")


def decode(codec: str, data: bytes) -> Any:
    """Decodes ``data`` written with ``codec``; raw bytes come back as ``bytes``."""
    if codec == "json" and data:
        # Fast path for UTF-8 without surrounding whitespace (nearly every payload): straight
        # to the C scanner. json.loads on bytes first sniffs the encoding in pure Python, then
        # skips whitespace with regexes. Anything else, errors included, takes the full path.
        try:
            text = bytes(data).decode()
            value, end = _JSON_SCAN(text, 0)
            if end == len(text):
                return value
        except (ValueError, StopIteration):
            pass
    codec = check_codec(codec)
    try:
        if codec == "raw":
            return bytes(data)
        if codec == "json":
            return json.loads(data) if data else None
        return _msgpack().unpackb(data, raw=False, strict_map_key=False) if data else None
    except CodecError:
        raise
    except Exception as exc:
        raise CodecError(f"{codec} codec: cannot decode {len(data)} bytes: {exc}") from exc


def encode(codec: str, value: Any) -> bytes:
    """Encodes ``value`` with ``codec``; raw accepts bytes-like values only."""
    if codec == "json" and type(value) in _JSON_PLAIN:
        try:
            if _JSON_FAST_ENCODE is not None:
                return "".join(_JSON_FAST_ENCODE(value, 0)).encode()  # the common case
        except Exception:
            pass  # the full path below says what does not encode
    codec = check_codec(codec)
    try:
        if codec == "raw":
            if isinstance(value, (bytes, bytearray, memoryview)):
                return bytes(value)
            raise CodecError(f"raw codec: expected bytes, got {type(value).__name__}")
        if codec == "json":
            return _JSON_ENCODER.encode(value).encode()
        return bytes(_msgpack().packb(value, use_bin_type=True))
    except CodecError:
        raise
    except Exception as exc:
        raise CodecError(f"{codec} codec: cannot encode {type(value).__name__}: {exc}") from exc


def reply_codec(request_codec: str, value: Any) -> CodecName:
    """The codec an answer is sent with: raw for bytes, else the request's (msgpack after raw)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "raw"
    if request_codec == "raw":
        return "msgpack"
    return check_codec(request_codec)
