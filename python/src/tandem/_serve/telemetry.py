"""The gRPC server's metrics: handler calls (``tandem.metrics``) plus dynamic batching.

Added to :class:`tandem.metrics.Metrics`' registry::

    tandem_batch_size{model}            histogram: inputs per batch run
    tandem_batch_queue_seconds{model}   histogram: time an input waited for its batch

Every worker writes its samples to ``PROMETHEUS_MULTIPROC_DIR`` (the supervisor sets it to a
temporary directory when ``--metrics-port`` is given) and listens on the metrics port with
SO_REUSEPORT, so whichever worker answers a scrape reports the sum over all of them, and the
endpoint survives a worker restart.
"""

from __future__ import annotations

from ..metrics import Metrics

__all__ = ["BATCH_BUCKETS", "QUEUE_BUCKETS", "ServeMetrics"]

#: Buckets of ``tandem_batch_size`` (inputs), the Rust side's ``tandem_grpc_batch_size``.
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
#: Buckets of ``tandem_batch_queue_seconds``.
QUEUE_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class ServeMetrics:
    """One worker's metrics: :attr:`calls` (handler calls) and the batching histograms."""

    def __init__(self) -> None:
        self.calls = Metrics()
        prom = self.calls._prom
        self._batch_size = prom.Histogram(
            "tandem_batch_size",
            "Inputs per batch run by a model",
            ("model",),
            buckets=BATCH_BUCKETS,
            registry=self.calls.registry,
        )
        self._queue = prom.Histogram(
            "tandem_batch_queue_seconds",
            "Time an input waited in a model's queue before its batch ran",
            ("model",),
            buckets=QUEUE_BUCKETS,
            registry=self.calls.registry,
        )

    def observe_batch(self, model: str, size: int, queue_s: list[float]) -> None:
        """Records one batch of ``size`` inputs and each input's time in the queue."""
        self._batch_size.labels(model).observe(size)
        queue = self._queue.labels(model)
        for waited in queue_s:
            queue.observe(waited)
