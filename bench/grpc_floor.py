"""The floor for the plugin benchmark: a bare grpcio server on a unix socket.

It answers ``/tandem.v1.Call/Invoke`` with a generic handler (no deserialisation, no App, no
codec), returning a CallReply that carries the same 100 bytes the benchmark sends, so the Rust
client sees the same bytes as from a real plugin. It uses ``grpc.aio`` like the plugin SDK.

Usage:

* ``python bench/grpc_floor.py SOCKET_PATH [PAYLOAD_SIZE]``: listens on SOCKET_PATH, writes
  "ready" to stdout once serving, and exits when stdin closes (called with a bare tonic client).
* ``python bench/grpc_floor.py --plugin [PAYLOAD_SIZE]``: started by a go-plugin host
  (``tandem::plugin::Host``) like a plugin: the handshake line on stdout, health ``plugin``
  SERVING, GRPCController/Shutdown, and with ``PLUGIN_CLIENT_CERT`` the **same AutoMTLS setup as
  the tandem SDK** (its certificate and its OpenSSL TLS front, ``tandem._plugin.tls``), so that
  the TLS plugin row has a TLS floor to be compared with.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
from typing import Any


def _invoke_handler(size: int) -> Any:
    import grpc
    from tandem._proto import call_pb2

    reply = call_pb2.CallReply(ok=call_pb2.Payload(data=b"x" * size, codec="raw"))
    reply_bytes = reply.SerializeToString()

    async def invoke(request: bytes, context: object) -> bytes:
        return reply_bytes

    return grpc.method_handlers_generic_handler(
        "tandem.v1.Call",
        {"Invoke": grpc.unary_unary_rpc_method_handler(invoke)},
    )


async def main(path: str, size: int) -> None:
    import grpc

    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((_invoke_handler(size),))
    server.add_insecure_port("unix:" + path)
    await server.start()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    await server.stop(0)


async def main_plugin(size: int) -> None:
    import grpc
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc
    from tandem._plugin import handshake, tls

    stop = asyncio.Event()

    async def shutdown(request: bytes, context: object) -> bytes:
        stop.set()
        return b""  # plugin.Empty

    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers(
        (
            _invoke_handler(size),
            grpc.method_handlers_generic_handler(
                "plugin.GRPCController",
                {"Shutdown": grpc.unary_unary_rpc_method_handler(shutdown)},
            ),
        )
    )
    health_servicer = health.aio.HealthServicer()
    await health_servicer.set("plugin", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)

    socket_path = handshake.unix_socket_path(os.environ)
    client_pem = os.environ.get("PLUGIN_CLIENT_CERT", "")
    front = None
    cert_der = None
    with tempfile.TemporaryDirectory(prefix="tandem-floor-") as private_dir:
        if client_pem:
            cert = tls.generate_certificate()
            cert_der = cert.der
            private_path = os.path.join(private_dir, "grpc.sock")
            server.add_insecure_port(f"unix:{private_path}")
            front = tls.TlsFront(tls.server_context(cert, client_pem), private_path)
        else:
            server.add_insecure_port(f"unix:{socket_path}")
        await server.start()
        if front is not None:
            await front.start_unix(socket_path)
        sys.stdout.write(handshake.handshake_line(1, "unix", socket_path, cert_der) + "\n")
        sys.stdout.flush()
        await stop.wait()
        await server.stop(0)
        if front is not None:
            await front.close()
    with contextlib.suppress(OSError):
        os.unlink(socket_path)


if __name__ == "__main__":
    if sys.argv[1] == "--plugin":
        asyncio.run(main_plugin(int(sys.argv[2]) if len(sys.argv) > 2 else 100))
    else:
        asyncio.run(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 100))
