"""Tying a forked child's life to its parent's, shared by the multi-process supervisors."""

from __future__ import annotations

import ctypes
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Asks Linux to send ``sig`` to this process when its parent dies (``PR_SET_PDEATHSIG``).

    Best effort: elsewhere, or without a usable libc, it does nothing, so callers keep their own
    ``getppid()`` check for the race between fork and this call.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - no libc prctl
        pass
