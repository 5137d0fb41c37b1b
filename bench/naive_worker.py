"""The naive design: newline-delimited JSON over the worker's stdin/stdout.

Each line is ``{"method": ..., "payload": ...}``; the answer is ``{"result": ...}`` or
``{"error": ...}`` on one line. This is what most hand-rolled "call Python from X" code does.
"""

import json
import sys
from typing import Any


def echo(payload: Any) -> Any:
    return payload


HANDLERS = {"echo": echo}


def main() -> None:
    for line in sys.stdin:
        req = json.loads(line)
        try:
            reply = {"result": HANDLERS[req["method"]](req["payload"])}
        except Exception as exc:
            reply = {"error": repr(exc)}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
