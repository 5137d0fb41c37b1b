"""The payload codecs' JSON fast paths give exactly what the standard library's full path gives."""

import json
import math
from typing import Any

import pytest

from tandem import _codec

VALUES: list[Any] = [
    {"x": "a" * 88},
    [1, 2.5, -0.0, 1e300, 12345678901234567890, True, False, None],
    'é \u2028 \x00 " \\ 🦀',
    {"nested": [{"a": None, "b": [[], {}]}]},
    {1: "int key", None: "null key", 2.5: "float key", False: "bool key"},
    [],
    0,
]


def stdlib(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


@pytest.mark.parametrize("value", VALUES)
def test_json_encode_equals_the_standard_library(value: Any) -> None:
    assert _codec.encode("json", value) == stdlib(value)


@pytest.mark.parametrize("value", VALUES)
def test_json_decode_equals_the_standard_library(value: Any) -> None:
    data = stdlib(value)
    assert _codec.decode("json", data) == json.loads(data)


def test_json_non_finite_floats_encode_as_the_standard_library_does() -> None:
    data = _codec.encode("json", [math.nan, math.inf, -math.inf])
    assert data == b"[NaN,Infinity,-Infinity]"
    assert math.isnan(_codec.decode("json", data)[0])


def test_json_circular_value_is_a_codec_error_naming_the_cycle() -> None:
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(_codec.CodecError, match="Circular reference"):
        _codec.encode("json", cycle)


def test_json_value_it_cannot_encode_is_a_codec_error() -> None:
    with pytest.raises(_codec.CodecError, match=r"cannot encode dict.*set"):
        _codec.encode("json", {"a": {1, 2}})


@pytest.mark.parametrize(
    ("data", "value"),
    [(b" 1", 1), (b"1 ", 1), (b"\n{}\n", {}), ('{"a":1}'.encode("utf-16"), {"a": 1})],
)
def test_json_decode_takes_whitespace_and_utf16_through_the_full_path(
    data: bytes, value: Any
) -> None:
    assert _codec.decode("json", data) == value


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"[1,", "Expecting value: line 1 column 4"),
        (b"nope", "Expecting value: line 1 column 1"),
        (b"1 2", "Extra data"),
        (b"\xff", "can't decode byte 0xff"),
    ],
)
def test_json_decode_errors_say_what_is_wrong(data: bytes, message: str) -> None:
    with pytest.raises(_codec.CodecError, match=message):
        _codec.decode("json", data)
