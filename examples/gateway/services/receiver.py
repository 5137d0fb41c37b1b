"""A local merchant webhook receiver for the demo and the end-to-end test.

    python receiver.py --port 9000 --secret demo-secret --out received.jsonl

Verifies ``X-Signature: t=<ts>,v1=<hex>`` (HMAC-SHA256 of ``"<ts>.<body>"``, at most 5 minutes
old), answers 204 and appends ``{"valid": true, "event": ...}`` to ``--out``; a bad or missing
signature gets 401 and is recorded with ``"valid": false``.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import logging
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger("receiver")
MAX_AGE_S = 300


def verify(secret: bytes, header: str, body: bytes, now: float) -> bool:
    """Whether ``header`` is a fresh, valid signature of ``body``."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    ts, sig = parts.get("t", ""), parts.get("v1", "")
    if not ts.isdigit() or abs(now - int(ts)) > MAX_AGE_S:
        return False
    want = hmac.new(secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, sig)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--secret", required=True)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    secret = args.secret.encode()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            valid = verify(secret, self.headers.get("X-Signature", ""), body, time.time())
            try:
                event: Any = json.loads(body)
            except ValueError:
                event = None
            with lock, open(args.out, "a") as f:
                f.write(json.dumps({"valid": valid, "event": event}) + "\n")
            self.send_response(204 if valid else 401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *a: Any) -> None:
            log.debug(format, *a)

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    log.info("webhook receiver on 127.0.0.1:%d", args.port)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
