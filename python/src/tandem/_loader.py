"""Loads an App from a ``module:attribute`` spec, as every ``python -m tandem`` verb does."""

from __future__ import annotations

import importlib
import os
import sys

from .app import App


def load_app(spec: str) -> App:
    """Imports ``module:attr`` (attr defaults to ``app``) and returns the App it names.

    The current directory is put on ``sys.path`` first, as ``python -m`` users expect.

    :raises SystemExit: with a message saying what was given and what is expected.
    """
    module_name, _, attr = spec.partition(":")
    attr = attr or "app"
    if not module_name:
        raise SystemExit(
            f"tandem: invalid app spec {spec!r} (expected MODULE:APP, e.g. service:app)"
        )
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SystemExit(
            f"tandem: cannot import module {module_name!r} for app spec {spec!r}: {exc} "
            f"(check PYTHONPATH and the working directory)"
        ) from exc
    obj = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise SystemExit(
                f"tandem: module {module_name!r} has no attribute {attr!r} (app spec {spec!r})"
            ) from None
    if not isinstance(obj, App):
        raise SystemExit(
            f"tandem: {spec!r} is a {type(obj).__name__}, not a tandem.App "
            f"(create one with app = tandem.App(name))"
        )
    return obj
