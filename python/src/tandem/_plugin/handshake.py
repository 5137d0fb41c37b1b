"""The go-plugin handshake: the magic cookie, version negotiation, the listener and the line.

Everything here mirrors ``hashicorp/go-plugin``'s ``server.go`` so that a real Go host accepts a
tandem plugin; see ``docs/plugins.md`` for the field-by-field description.
"""

from __future__ import annotations

import base64
import logging
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

log = logging.getLogger("tandem.plugin")

#: go-plugin's core protocol version; a Go host rejects any other value.
CORE_PROTOCOL_VERSION = 1

#: tandem's default cookie (the same as ``interop/go/handshake.go`` and the Rust host).
DEFAULT_COOKIE_KEY = "TANDEM_PLUGIN"
DEFAULT_COOKIE_VALUE = "5f0b7c2e-tandem-go-plugin"

#: What a go-plugin plugin prints on stderr when it is started by hand (verbatim from Go).
NOT_A_PLUGIN_MESSAGE = (
    "This binary is a plugin. These are not meant to be executed directly.\n"
    "Please execute the program that consumes these plugins, which will\n"
    "load any plugins automatically\n"
)


class HandshakeError(Exception):
    """The plugin cannot start: the message says what failed and what to do."""


def cookie_matches(env: Mapping[str, str], key: str, value: str) -> bool:
    """Whether the host set ``key=value`` in the environment, as go-plugin requires."""
    return env.get(key) == value


def parse_versions(raw: str) -> list[int]:
    """The versions in ``PLUGIN_PROTOCOL_VERSIONS`` (comma-separated), skipping bad entries."""
    out: list[int] = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            out.append(int(part))
        except ValueError:
            log.warning("server sent invalid plugin version %r", part)
    return out


def negotiate(offered: str | None, supported: Iterable[int]) -> int:
    """Picks the highest version both the host offers and the plugin supports.

    Without ``PLUGIN_PROTOCOL_VERSIONS`` (``offered`` is None or empty) the plugin's highest
    version is used, as go-plugin does with its default version.

    :raises HandshakeError: when there is no version in common.
    """
    ours = sorted(set(supported), reverse=True)
    if not ours:
        raise HandshakeError("the plugin supports no protocol version (pass --versions 1)")
    if not offered:
        return ours[0]
    theirs = set(parse_versions(offered))
    for version in ours:
        if version in theirs:
            return version
    raise HandshakeError(
        f"no common plugin protocol version: the host offers {sorted(theirs)} "
        f"(PLUGIN_PROTOCOL_VERSIONS={offered!r}), this plugin supports {sorted(ours)}; "
        "upgrade the plugin or the host, or serve an older version with --versions"
    )


def handshake_line(
    version: int,
    network: str,
    address: str,
    cert_der: bytes | None = None,
    *,
    multiplex_asked: bool = False,
) -> str:
    """The line a go-plugin host reads from stdout (without the newline).

    ``CORE|APP-VERSION|NETWORK|ADDRESS|grpc|CERT``, where CERT is the unpadded standard base64
    of the plugin's DER certificate (Go decodes it with ``RawStdEncoding``) or empty. A 7th field
    ``false`` is added only when the host set ``PLUGIN_MULTIPLEX_GRPC``: older hosts split the
    line into at most 6 fields and would glue it onto the certificate.
    """
    cert = base64.b64encode(cert_der).decode("ascii").rstrip("=") if cert_der else ""
    line = f"{CORE_PROTOCOL_VERSION}|{version}|{network}|{address}|grpc|{cert}"
    if multiplex_asked:
        line += "|false"
    return line


@dataclass(frozen=True)
class Address:
    """Where the plugin listens: ``unix`` + a socket path, or ``tcp`` + ``127.0.0.1:PORT``."""

    network: str
    address: str

    @property
    def grpc_target(self) -> str:
        """The address in the form grpcio's ``add_*_port`` expects."""
        return f"unix:{self.address}" if self.network == "unix" else self.address


def unix_socket_path(env: Mapping[str, str]) -> str:
    """A fresh socket path like Go's ``os.CreateTemp(PLUGIN_UNIX_SOCKET_DIR, "plugin")``.

    The temp file is created (so the name is unique) and removed again, ready for bind.
    """
    directory = env.get("PLUGIN_UNIX_SOCKET_DIR") or None
    fd, path = tempfile.mkstemp(prefix="plugin", dir=directory)
    os.close(fd)
    os.unlink(path)
    return path


def apply_socket_group(path: str, env: Mapping[str, str]) -> None:
    """With ``PLUGIN_UNIX_SOCKET_GROUP`` (a name or gid), chowns the socket and makes it 0660.

    :raises HandshakeError: naming the group when it does not exist or cannot be applied.
    """
    group = env.get("PLUGIN_UNIX_SOCKET_GROUP")
    if not group:
        return
    import grp  # unix only, like the sockets themselves

    try:
        gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
        os.chown(path, -1, gid)
        os.chmod(path, 0o660)
    except (KeyError, OSError) as exc:
        raise HandshakeError(
            f"cannot give socket {path} to group {group!r} (PLUGIN_UNIX_SOCKET_GROUP): {exc}"
        ) from exc


def port_range(env: Mapping[str, str]) -> Sequence[int]:
    """The TCP ports to try, in order: ``PLUGIN_MIN_PORT``..``PLUGIN_MAX_PORT``, or ``[0]``.

    As in go-plugin, an unset bound counts as 0, so with neither set the OS picks a port.

    :raises HandshakeError: when a bound is not a number or min > max.
    """
    try:
        low = int(env.get("PLUGIN_MIN_PORT") or 0)
        high = int(env.get("PLUGIN_MAX_PORT") or 0)
    except ValueError as exc:
        raise HandshakeError(f"PLUGIN_MIN_PORT/PLUGIN_MAX_PORT must be numbers: {exc}") from exc
    if low > high:
        raise HandshakeError(
            f"PLUGIN_MIN_PORT ({low}) is greater than PLUGIN_MAX_PORT ({high}); fix the host's range"
        )
    if low == 0 and high == 0:
        return [0]
    return range(max(low, 1), high + 1)
