"""Unit tests of the go-plugin handshake helpers (no processes)."""

from __future__ import annotations

import base64

import pytest

from tandem._plugin.handshake import (
    HandshakeError,
    cookie_matches,
    handshake_line,
    negotiate,
    parse_versions,
    port_range,
)


def test_negotiate_highest_common() -> None:
    assert negotiate("1,2,3", [1, 3]) == 3
    assert negotiate("5, 3 ,1", [1, 3]) == 3
    assert negotiate(None, [1, 4, 2]) == 4
    assert negotiate("", [2]) == 2


def test_negotiate_none_common_says_both_sets() -> None:
    with pytest.raises(HandshakeError) as info:
        negotiate("4,5", [1, 2])
    msg = str(info.value)
    assert "no common plugin protocol version" in msg and "[4, 5]" in msg and "[1, 2]" in msg


def test_parse_versions_skips_garbage() -> None:
    assert parse_versions("1,x,,3") == [1, 3]


def test_handshake_line_unpadded_cert_and_multiplex() -> None:
    der = b"\x30\x82\x01"  # 3 bytes: base64 "MIIB", no padding either way
    assert handshake_line(1, "unix", "/tmp/p", None) == "1|1|unix|/tmp/p|grpc|"
    der = b"\x30\x82"  # needs padding in standard base64
    line = handshake_line(2, "tcp", "127.0.0.1:1", der, multiplex_asked=True)
    assert (
        line == "1|2|tcp|127.0.0.1:1|grpc|" + base64.b64encode(der).decode().rstrip("=") + "|false"
    )
    assert "=" not in line


def test_cookie_and_ports() -> None:
    assert cookie_matches({"K": "v"}, "K", "v")
    assert not cookie_matches({"K": "w"}, "K", "v")
    assert list(port_range({})) == [0]
    assert list(port_range({"PLUGIN_MIN_PORT": "10", "PLUGIN_MAX_PORT": "12"})) == [10, 11, 12]
    with pytest.raises(HandshakeError, match="greater than"):
        port_range({"PLUGIN_MIN_PORT": "20", "PLUGIN_MAX_PORT": "10"})
