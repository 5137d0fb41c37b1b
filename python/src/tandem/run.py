"""``python -m tandem run MODULE:APP [METHOD]``: one call of an App method, one-shot.

The script contract of :mod:`tandem.script` for an App instead of a ``@tandem.script`` file, so
``tandem::process::Script`` (and ``tandem bench --all``) can run any handler one process per
call::

    echo '{"n": 1}' | python -m tandem run service:app echo

1. loads the App and runs its startup hooks;
2. reads the payload from stdin (codec ``$TANDEM_CODEC``, default json) and calls METHOD
   (default ``$TANDEM_METHOD``, which ``tandem::process::Script`` sets to the request's method);
3. writes the encoded answer to stdout and exits 0, or ``{"error": {...}}`` and exits 1;
4. runs the shutdown hooks.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from .script import context, run_once

__all__ = ["main"]

log = logging.getLogger("tandem.run")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tandem run",
        description="Run one call of an App method: payload on stdin, answer on stdout.",
    )
    p.add_argument("app", help="the App, as MODULE:ATTR (e.g. service:app)")
    p.add_argument(
        "method", nargs="?", default=None, help="the handler to call (default: $TANDEM_METHOD)"
    )
    return p


def main(argv: Sequence[str]) -> int:
    """``python -m tandem run MODULE:APP [METHOD]``; returns the exit status (0, 1 or 2)."""
    from ._loader import load_app

    args = _parser().parse_args(list(argv))
    method = args.method or os.environ.get("TANDEM_METHOD")
    if not method:
        sys.stderr.write("tandem run: no METHOD given and $TANDEM_METHOD is not set\n")
        return 2
    try:
        app = load_app(args.app)
    except SystemExit as exc:
        if isinstance(exc.code, str):
            log.error("%s", exc.code)
            return 2
        raise

    def produce(raw: bytes, codec: str) -> bytes:
        app.startup()
        return app.call(method, raw, codec, context(method))[0]

    try:
        return run_once(produce, method=method)
    finally:
        app.shutdown()
