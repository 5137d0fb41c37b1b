"""The floor: a bare length-prefixed echo loop with no dispatch, no decoding, no framing header.

Reads ``u32 big-endian length + body`` frames on stdin and writes each body back the same way.
Whatever the pool costs above this loop is tandem's own overhead.
"""

import os
import struct
import sys


def _read_exact(fd: int, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            sys.exit(0)
        buf += chunk
    return bytes(buf)


def main() -> None:
    rfd, wfd = sys.stdin.fileno(), sys.stdout.fileno()
    while True:
        (n,) = struct.unpack(">I", _read_exact(rfd, 4))
        body = _read_exact(rfd, n)
        frame = struct.pack(">I", n) + body
        view = memoryview(frame)
        while view:
            view = view[os.write(wfd, view) :]


if __name__ == "__main__":
    main()
