"""The supervising parent: reserves the port, forks the workers, restarts the ones that die.

The parent never imports grpc nor starts a thread: workers are forked from a single-threaded
process before any gRPC server exists (grpc/grpc#16001), and a dead one is re-forked the same
way. It waits for signals with ``sigtimedwait`` (SIGCHLD, SIGTERM, SIGINT blocked), so no
handler runs between a fork and its child's set-up.

Children exit when the parent dies: ``PR_SET_PDEATHSIG`` sends them SIGTERM (Linux), and the
read end of a pipe whose write end only the parent holds reaches EOF (every platform).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from .._parent import die_with_parent
from .settings import ServeSettings
from .worker import EXIT_CONFIG

__all__ = ["reserve_port", "supervise"]

log = logging.getLogger("tandem.serve")

WorkerFn = Callable[[ServeSettings, int, int], int]

_SIGNALS = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT}
_MAX_BACKOFF_S = 5.0
_HEALTHY_AFTER_S = 10.0


def reserve_port(host: str, port: int) -> socket.socket:
    """Binds (without listening) a SO_REUSEPORT socket on host:port so the port stays ours.

    Workers bind the same address with ``grpc.so_reuseport``; the kernel spreads new
    connections over the listening ones. Port 0 picks a free port (read it from the socket).

    :raises OSError: the address is taken by a socket without SO_REUSEPORT, or invalid.
    """
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 0:
        raise OSError("SO_REUSEPORT could not be set; run one worker (--workers 1)")
    sock.bind((host.strip("[]"), port))
    return sock


class _Supervisor:
    def __init__(self, settings: ServeSettings, target: WorkerFn) -> None:
        self.settings = settings
        self.target = target
        self.n = settings.worker_count()
        self.pids: dict[int, int] = {}  # pid -> worker index
        self.started: dict[int, float] = {}  # index -> start time
        self.backoff = [settings.restart_backoff_s] * self.n
        self.restart_at: dict[int, float] = {}
        self.pipe_r, self.pipe_w = os.pipe()
        self.reservation: socket.socket | None = None
        self.metrics_reservation: socket.socket | None = None
        self.metrics_dir: str | None = None  # a PROMETHEUS_MULTIPROC_DIR we created
        self.parent_pid = os.getpid()

    def spawn(self, index: int) -> None:
        pid = os.fork()
        if pid == 0:
            self._child(index)
        self.pids[pid] = index
        self.started[index] = time.monotonic()
        log.info("worker %d started (pid %d)", index, pid)

    def _child(self, index: int) -> None:
        code = 1
        try:
            os.close(self.pipe_w)
            if self.reservation is not None:
                self.reservation.close()
            if self.metrics_reservation is not None:
                self.metrics_reservation.close()
            signal.pthread_sigmask(signal.SIG_SETMASK, set())
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
                signal.signal(sig, signal.SIG_DFL)
            die_with_parent()
            if os.getppid() != self.parent_pid:
                os._exit(0)
            code = self.target(self.settings, index, self.pipe_r)
        except BaseException:
            log.exception("worker %d crashed", index)
        finally:
            logging.shutdown()
            os._exit(code)

    def reap(self, stopping: bool) -> int | None:
        """Collects dead children; schedules restarts. Returns an exit status to give up."""
        while self.pids:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return None
            if pid == 0:
                return None
            index = self.pids.pop(pid, None)
            if index is None:
                continue
            code = os.waitstatus_to_exitcode(status)
            if self.settings.metrics_port is not None:
                from ..metrics import mark_process_dead

                mark_process_dead(pid)
            if stopping:
                log.info("worker %d (pid %d) exited (%d)", index, pid, code)
                continue
            if code == EXIT_CONFIG:
                log.error("worker %d cannot start (see above); stopping the server", index)
                return 2
            lived = time.monotonic() - self.started.get(index, 0.0)
            if lived > _HEALTHY_AFTER_S:
                self.backoff[index] = self.settings.restart_backoff_s
            delay = self.backoff[index]
            self.backoff[index] = min(_MAX_BACKOFF_S, delay * 2)
            self.restart_at[index] = time.monotonic() + delay
            log.warning(
                "worker %d (pid %d) died (%d); restarting in %.1fs", index, pid, code, delay
            )
        return None

    def stop_children(self, sig: int) -> None:
        for pid in list(self.pids):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def run(self) -> int:
        if threading.active_count() > 1:
            log.warning(
                "tandem serve: %d threads run before forking workers; threads started at import "
                "time (move them to Model.load or on_startup) are not copied into workers",
                threading.active_count(),
            )
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        try:
            return self._loop()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
            os.close(self.pipe_r)
            os.close(self.pipe_w)
            if self.reservation is not None:
                self.reservation.close()
            if self.metrics_reservation is not None:
                self.metrics_reservation.close()
            if self.metrics_dir is not None:
                shutil.rmtree(self.metrics_dir, ignore_errors=True)

    def _metrics(self) -> None:
        """Reserves the metrics port and gives the workers one multiprocess directory."""
        s = self.settings
        if s.metrics_port is None:
            return
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            self.metrics_dir = tempfile.mkdtemp(prefix="tandem-metrics-")
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = self.metrics_dir
        self.metrics_reservation = reserve_port(s.host, s.metrics_port)
        port = self.metrics_reservation.getsockname()[1]
        self.settings = replace(s, metrics_port=port)
        log.info("tandem serve: metrics on http://%s:%d/metrics", s.host, port)

    def _loop(self) -> int:
        s = self.settings
        if s.port is not None:
            self.reservation = reserve_port(s.host, s.port)
            self.settings = s = replace(s, port=self.reservation.getsockname()[1])
        self._metrics()
        s = self.settings
        log.info(
            "tandem serve: %d workers on %s%s",
            self.n,
            f"{s.host}:{s.port}" if s.port is not None else "",
            f" unix:{s.unix}{'.N' if self.n > 1 else ''}" if s.unix else "",
        )
        for index in range(self.n):
            self.spawn(index)
        exit_code = 0
        stop_by: float | None = None
        while True:
            info = signal.sigtimedwait(_SIGNALS, 0.1)
            if info is not None and info.si_signo in (signal.SIGTERM, signal.SIGINT):
                if stop_by is None:
                    log.info("tandem serve: stopping %d workers", len(self.pids))
                    stop_by = time.monotonic() + s.drain_delay_s + s.grace_s + 5.0
                    self.stop_children(signal.SIGTERM)
            give_up = self.reap(stopping=stop_by is not None)
            if give_up is not None and stop_by is None:
                exit_code = give_up
                stop_by = time.monotonic() + s.grace_s + 5.0
                self.stop_children(signal.SIGTERM)
            if stop_by is not None:
                if not self.pids:
                    return exit_code
                if time.monotonic() > stop_by:
                    log.warning("tandem serve: workers still running after grace; killing them")
                    self.stop_children(signal.SIGKILL)
                    stop_by = time.monotonic() + 5.0
                continue
            now = time.monotonic()
            for index, at in list(self.restart_at.items()):
                if now >= at:
                    del self.restart_at[index]
                    self.spawn(index)


def supervise(settings: ServeSettings, target: WorkerFn) -> int:
    """Runs ``target(settings, index, parent_fd)`` in ``settings.worker_count()`` forked
    processes until SIGTERM/SIGINT; returns the exit status (0, or 2 if a worker could not
    start)."""
    return _Supervisor(settings, target).run()
