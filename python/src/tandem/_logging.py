"""Logging set-up for ``python -m tandem``; libraries never configure logging themselves."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import datetime, timezone
from typing import ClassVar, TextIO

_LEVELS = {"trace": 5, "debug": 10, "info": 20, "warn": 30, "warning": 30, "error": 40}


class HclogJsonFormatter(logging.Formatter):
    """Formats records as hclog JSON lines (``@level``, ``@message``, ``@timestamp``, ...).

    go-plugin hosts parse these from a plugin's stderr and re-emit them at the right level.
    """

    _NAMES: ClassVar[dict[int, str]] = {
        5: "trace",
        10: "debug",
        20: "info",
        30: "warn",
        40: "error",
        50: "error",
    }

    def format(self, record: logging.LogRecord) -> str:
        level = self._NAMES.get(record.levelno, "info")
        out: dict[str, object] = {
            "@level": level,
            "@message": record.getMessage(),
            "@module": record.name,
            "@timestamp": datetime.fromtimestamp(record.created, timezone.utc).isoformat(
                timespec="microseconds"
            ),
        }
        for key in ("method", "traceparent", "transport"):
            value = getattr(record, key, None)
            if value is not None:
                out[key] = value
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    """Plain ``LEVEL name: message [key=value ...]`` lines."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{record.levelname} {record.name}: {record.getMessage()}"
        for key in ("method", "traceparent"):
            value = getattr(record, key, None)
            if value is not None:
                line += f" {key}={value}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure(fmt: str = "text", stream: TextIO | None = None) -> None:
    """Sends the root logger to ``stream`` (stderr) as ``text`` or ``hclog`` JSON.

    The level comes from ``TANDEM_LOG`` (trace, debug, info, warn, error; default info).
    """
    level = _LEVELS.get(os.environ.get("TANDEM_LOG", "info").lower(), logging.INFO)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(HclogJsonFormatter() if fmt == "hclog" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
