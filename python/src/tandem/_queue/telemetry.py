"""The queue consumer's metrics: what became of each task, by method.

Added to :class:`tandem.metrics.Metrics`' registry (whose ``tandem_handler_*`` families time
every handler call with ``transport="queue"``)::

    tandem_queue_tasks_total{method,outcome}

``outcome`` is ``handled`` (acked after success), ``failed`` (a handler attempt failed,
whatever happens next), ``retried`` (scheduled for another attempt) or ``dead_lettered``
(moved to ``<stream>:dead``: failed for good, a bad request, a malformed entry or too many
deliveries). With several consumer processes the samples are summed through
``PROMETHEUS_MULTIPROC_DIR``, which the supervisor sets when ``--metrics-port`` is given.
"""

from __future__ import annotations

from ..metrics import Metrics

__all__ = ["OUTCOMES", "QueueMetrics"]

#: The values of the ``outcome`` label.
OUTCOMES = ("handled", "failed", "retried", "dead_lettered")


class QueueMetrics:
    """One consumer process's metrics: :attr:`calls` (handler calls) and task outcomes."""

    def __init__(self) -> None:
        self.calls = Metrics()
        self._tasks = self.calls._prom.Counter(
            "tandem_queue_tasks",
            "Queue tasks by method and outcome (handled, failed, retried, dead_lettered)",
            ("method", "outcome"),
            registry=self.calls.registry,
        )

    def count(self, method: str, outcome: str) -> None:
        """Counts one task ``outcome`` (one of :data:`OUTCOMES`) for ``method``."""
        self._tasks.labels(self.calls._method_label(method), outcome).inc()
