"""The floor for the plugin benchmark: a bare grpcio server on a unix socket.

It answers ``/tandem.v1.Call/Invoke`` with a generic handler (no deserialisation, no App, no
codec), returning a CallReply that carries the same 100 bytes the benchmark sends, so the Rust
client sees the same bytes as from a real plugin. It uses ``grpc.aio`` like the plugin SDK.

Usage: python bench/grpc_floor.py SOCKET_PATH [PAYLOAD_SIZE]
It writes "ready" to stdout once serving, and exits when stdin closes.
"""

from __future__ import annotations

import asyncio
import sys


async def main(path: str, size: int) -> None:
    import grpc
    from tandem._proto import call_pb2

    reply = call_pb2.CallReply(ok=call_pb2.Payload(data=b"x" * size, codec="raw"))
    reply_bytes = reply.SerializeToString()

    async def invoke(request: bytes, context: object) -> bytes:
        return reply_bytes

    handler = grpc.method_handlers_generic_handler(
        "tandem.v1.Call",
        {"Invoke": grpc.unary_unary_rpc_method_handler(invoke)},
    )
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port("unix:" + path)
    await server.start()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    await server.stop(0)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 100))
