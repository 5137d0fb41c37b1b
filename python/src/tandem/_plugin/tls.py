"""AutoMTLS: the plugin's throwaway certificate and the TLS front that requires the host's.

go-plugin hosts with ``AutoMTLS`` send their own self-signed **P-521** certificate in
``PLUGIN_CLIENT_CERT`` and expect the plugin to (a) present a self-signed certificate for
``localhost`` whose DER goes into the handshake line, and (b) require the host's certificate.

grpcio's TLS (BoringSSL) never asks for ``ecdsa_secp521r1_sha512`` in its CertificateRequest,
so a Go client with a P-521 certificate sends none and ``require_client_auth=True`` fails every
connection. tandem therefore terminates TLS with Python's :mod:`ssl` (OpenSSL, which accepts
P-521) in front of a plaintext gRPC server on a private socket in a 0700 directory: the public
socket only speaks TLS 1.2+ with ALPN ``h2`` and **requires a client certificate that verifies
against exactly the PEM the host sent** (full mutual TLS, as a Go plugin gives).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import os
import ssl
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

log = logging.getLogger("tandem.plugin")


@dataclass(frozen=True)
class Certificate:
    """The plugin's certificate: PEM key and certificate, and the DER for the handshake line."""

    key_pem: bytes
    cert_pem: bytes
    der: bytes


def generate_certificate() -> Certificate:
    """A self-signed ECDSA P-256 certificate shaped like go-plugin's ``generateCert``.

    Subject/SAN ``localhost``, CA:TRUE, key usage digitalSignature|keyEncipherment|keyAgreement|
    keyCertSign, extended key usage serverAuth+clientAuth, valid from 30 s ago for 30 years.
    """
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    except ImportError as exc:
        raise RuntimeError(
            "AutoMTLS needs the cryptography package: pip install 'tandem[plugin]'"
        ) from exc

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tandem"),
            x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
        ]
    )
    now = datetime.datetime.now(datetime.timezone.utc)
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=True,
        data_encipherment=False,
        key_agreement=True,
        key_cert_sign=True,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    eku = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(seconds=30))
        .not_valid_after(now + datetime.timedelta(days=365 * 30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(eku, critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return Certificate(
        key_pem=key_pem,
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        der=cert.public_bytes(serialization.Encoding.DER),
    )


def server_context(cert: Certificate, client_pem: str) -> ssl.SSLContext:
    """An OpenSSL server context that requires a client certificate issued as ``client_pem``.

    :raises ValueError: when ``client_pem`` holds no usable certificate.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.verify_mode = ssl.CERT_REQUIRED
    try:
        ctx.load_verify_locations(cadata=client_pem)
    except ssl.SSLError as exc:
        raise ValueError(f"PLUGIN_CLIENT_CERT is not a PEM certificate: {exc}") from exc
    ctx.set_alpn_protocols(["h2"])
    # load_cert_chain only reads files: write them to a private directory, then remove them.
    with tempfile.TemporaryDirectory(prefix="tandem-tls-") as tmp:
        certfile, keyfile = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        for path, data in ((certfile, cert.cert_pem), (keyfile, cert.key_pem)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        ctx.load_cert_chain(certfile, keyfile)
    return ctx


class _Half(asyncio.Protocol):
    """One side of a relayed connection: what it receives is written to the other side.

    Protocol callbacks instead of stream reader/writer tasks: a relayed gRPC message costs two
    callbacks, not two task wake-ups per direction. Flow control crosses over: when this side's
    write buffer fills, the other side stops reading until it drains.
    """

    def __init__(
        self,
        on_lost: Callable[[_Half], None],
        on_made: Callable[[_Half], None] | None = None,
    ) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: _Half | None = None
        self._on_lost = on_lost
        self._on_made = on_made
        self._pending: list[bytes] = []  # received before the link
        self._eof = False
        self.closed = False

    def link(self, peer: _Half) -> None:
        """Connects this side to ``peer`` and flushes what arrived before the link."""
        self.peer = peer
        for data in self._pending:
            peer.write(data)
        self._pending.clear()
        if self._eof:
            peer.write_eof()

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def write_eof(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        if self.transport.can_write_eof():
            self.transport.write_eof()
        else:  # TLS has no half-close
            self.transport.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        if self._on_made is not None:
            self._on_made(self)

    def data_received(self, data: bytes) -> None:
        if self.peer is None:
            self._pending.append(data)
        else:
            self.peer.write(data)

    def eof_received(self) -> bool:
        if self.peer is None:
            self._eof = True
        else:
            self.peer.write_eof()
        # a plain socket stays open for writing (the peer closes it); TLS cannot half-close
        return self.transport is not None and self.transport.can_write_eof()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._on_lost(self)
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()

    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()


class TlsFront:
    """Accepts TLS on the public address and relays each connection to the private socket."""

    def __init__(self, ctx: ssl.SSLContext, private_path: str) -> None:
        self._ctx = ctx
        self._private = private_path
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._halves: set[_Half] = set()

    def _accept(self) -> _Half:
        """A new connection; once its TLS handshake is done, :meth:`_upstream` runs."""
        return _Half(self._halves.discard, on_made=self._upstream)

    def _upstream(self, front: _Half) -> None:
        """Opens the private socket for an authenticated connection, then links the halves."""
        self._halves.add(front)
        task = asyncio.ensure_future(self._connect(front))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect(self, front: _Half) -> None:
        log.debug("mutual TLS connection accepted from the host")
        loop = asyncio.get_running_loop()
        try:
            _, back = await loop.create_unix_connection(
                lambda: _Half(self._halves.discard), self._private
            )
        except OSError as exc:
            log.error("cannot reach the private grpc socket %s: %s", self._private, exc)
            if front.transport is not None:
                front.transport.close()
            return
        if front.closed:  # the host hung up while we connected
            if back.transport is not None:
                back.transport.close()
            return
        self._halves.add(back)
        back.link(front)
        front.link(back)

    async def start_unix(self, path: str) -> None:
        """Listens on the unix socket ``path``."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_unix_server(
            self._accept, path, ssl=self._ctx, ssl_handshake_timeout=10.0
        )

    async def start_tcp(self, ports: list[int] | range) -> int:
        """Listens on the first free ``127.0.0.1`` port of ``ports``; returns the port.

        :raises OSError: when no port in the range is free.
        """
        last: OSError | None = None
        for port in ports:
            try:
                self._server = await asyncio.get_running_loop().create_server(
                    self._accept, "127.0.0.1", port, ssl=self._ctx, ssl_handshake_timeout=10.0
                )
            except OSError as exc:
                last = exc
                continue
            sock = self._server.sockets[0]
            bound: int = sock.getsockname()[1]
            return bound
        raise OSError(f"no free TCP port in {ports}: {last}")

    async def close(self) -> None:
        """Stops accepting and drops the open relays."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        for half in list(self._halves):
            if half.transport is not None:
                half.transport.close()
        self._halves.clear()
