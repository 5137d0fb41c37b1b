"""The gateway's webhook adapter plugin: the plugin-adapter example's code, reused as is.

The gateway starts it as a go-plugin child::

    python -m tandem plugin adapter:app

and calls its ``call`` handler with ``x-adapter-provider: webhook``, which signs each body with
HMAC-SHA256 (``ADAPTER_WEBHOOK_SECRET``) and sends ``X-Signature: t=<ts>,v1=<hex>``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugin-adapter"))

from service import adapter, app, servicers, sign

__all__ = ["adapter", "app", "servicers", "sign"]
