"""The error tree and its portable wire form."""

from __future__ import annotations

import pytest

import tandem
from tandem.errors import error_from_wire, error_to_wire


@pytest.mark.parametrize(
    ("cls", "kind"),
    [
        (tandem.Timeout, "timeout"),
        (tandem.Unavailable, "unavailable"),
        (tandem.Overloaded, "overloaded"),
        (tandem.BreakerOpen, "breaker_open"),
        (tandem.BadRequest, "bad_request"),
        (tandem.ProtocolError, "protocol"),
    ],
)
def test_kinds_round_trip(cls: type[tandem.TandemError], kind: str) -> None:
    wire = error_to_wire(cls("why"))
    assert wire["kind"] == kind
    back = error_from_wire(wire)
    assert type(back) is cls and back.message == "why"


def test_plain_exception_becomes_remote() -> None:
    try:
        raise KeyError("k")
    except KeyError as exc:
        wire = error_to_wire(exc)
    assert wire["kind"] == "remote" and wire["type"] == "KeyError"
    back = error_from_wire(wire)
    assert isinstance(back, tandem.Remote) and "KeyError" in back.traceback


def test_unknown_kind_is_protocol_error() -> None:
    back = error_from_wire({"kind": "weird", "message": "m"})
    assert isinstance(back, tandem.ProtocolError) and "weird" in back.message
