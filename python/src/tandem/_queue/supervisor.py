"""The multi-process parent: starts N consumer processes, restarts dead ones, stops them.

Children are forked (so ``run(app)`` works with an App object), each in its own process group
(a signal sent to the parent's group reaches only the parent, which forwards it once), with
``PR_SET_PDEATHSIG`` and a ``getppid()`` check so they stop when the parent dies.

Signals: the first SIGTERM/SIGINT is forwarded as SIGTERM (children finish their batch, ack
and exit); a second one SIGKILLs them (their in-flight tasks stay pending, not lost).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from .._parent import die_with_parent

log = logging.getLogger("tandem.consume")


def _child_main(target: Callable[[int], int], index: int, parent: int) -> None:
    os.setpgid(0, 0)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent()
    if os.getppid() != parent:
        os._exit(0)
    code = target(index)
    sys.stdout.flush()
    os._exit(code)


def supervise(
    target: Callable[[int], int],
    processes: int,
    *,
    on_exit: Callable[[int], None] | None = None,
) -> int:
    """Runs ``target(index)`` in ``processes`` forked children until a signal; returns 0.

    ``on_exit(pid)`` is called for each child that exits (e.g. ``metrics.mark_process_dead``).

    A child that exits while the parent is not stopping is restarted with a short backoff
    (doubling up to 5 s while it keeps dying within a second).
    """
    ctx = multiprocessing.get_context("fork")
    stopping = 0

    def on_signal(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping += 1

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    children: dict[int, Any] = {}
    started: dict[int, float] = {}
    backoff: dict[int, float] = dict.fromkeys(range(processes), 0.1)
    restart_at: dict[int, float] = {}

    def start(i: int) -> None:
        proc = ctx.Process(target=_child_main, args=(target, i, os.getpid()), daemon=False)
        proc.start()
        children[i] = proc
        started[i] = time.monotonic()
        log.info("consumer process %d started (pid %s)", i, proc.pid)

    for i in range(processes):
        start(i)
    forwarded = 0
    while True:
        if stopping > forwarded:
            sig = signal.SIGTERM if stopping == 1 else signal.SIGKILL
            for proc in children.values():
                if proc.is_alive() and proc.pid:
                    os.kill(proc.pid, sig)
            forwarded = stopping
        if stopping:
            if not any(p.is_alive() for p in children.values()):
                break
        else:
            now = time.monotonic()
            for i, proc in list(children.items()):
                if i not in restart_at and not proc.is_alive():
                    proc.join()
                    if on_exit is not None and proc.pid:
                        on_exit(proc.pid)
                    quick = now - started[i] < 1.0
                    backoff[i] = min(backoff[i] * 2, 5.0) if quick else 0.1
                    restart_at[i] = now + (backoff[i] if quick else 0.0)
                    log.warning(
                        "consumer process %d (pid %s) exited with %s; restarting",
                        i,
                        proc.pid,
                        proc.exitcode,
                    )
                if i in restart_at and now >= restart_at[i]:
                    del restart_at[i]
                    start(i)
        time.sleep(0.05)
    for proc in children.values():
        proc.join()
    return 0
