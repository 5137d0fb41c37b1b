"""Dynamic batching: concurrent inputs for one model are gathered into one ``predict_batch``.

A batch is dispatched when it holds ``max_batch_size`` inputs or when its oldest input has
waited ``max_queue_delay_ms`` (Triton's dynamic batcher). Inputs past ``max_queue_size``
waiting ones are refused at once (:class:`~tandem.errors.Overloaded`); inputs whose deadline
passed while queued are dropped before compute (:class:`~tandem.errors.Timeout`). The model
runs in its own thread pool (``max_concurrent_batches`` threads) so the event loop keeps
accepting calls while numpy computes, or on the event loop itself when the model's
``BatchConfig.inline`` says so (models of many small steps, which a busy loop thread would
stall at every GIL hand-off).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ..errors import Overloaded, Remote, Timeout, Unavailable
from ..models import BatchConfig, Model

__all__ = ["BatchInfo", "Batcher"]

log = logging.getLogger("tandem.serve.batching")


@dataclass(frozen=True)
class BatchInfo:
    """How one input was served: the size of its batch and its time in the queue."""

    batch_size: int
    queue_s: float


@dataclass
class _Item:
    value: Any
    deadline: float | None
    enqueued: float
    future: asyncio.Future[tuple[Any, BatchInfo]]


class Batcher:
    """Queues one model's inputs and runs them in batches.

    :param model: a loaded model.
    :param config: its batching configuration (``supports_batching=False``: batches of one).
    """

    def __init__(self, model: Model, config: BatchConfig) -> None:
        self.model = model
        self.max_batch_size = config.effective_batch_size()
        self.delay_s = max(0.0, config.max_queue_delay_ms) / 1000.0
        self.idle_s = max(0.0, config.flush_idle_ms) / 1000.0
        self._last_arrival = 0.0
        self.max_queue_size = max(1, config.max_queue_size)
        self._queue: deque[_Item] = deque()
        self._arrived = asyncio.Event()
        concurrent = 1 if config.inline else max(1, config.max_concurrent_batches)
        #: The model's threads; None when its batches run on the event loop (``inline``).
        self._executor = (
            None
            if config.inline
            else ThreadPoolExecutor(
                max_workers=concurrent, thread_name_prefix=f"model-{model.name}"
            )
        )
        self._tasks = [
            asyncio.get_running_loop().create_task(self._consume(), name=f"batcher-{model.name}")
            for _ in range(concurrent)
        ]
        self.batches = 0
        self.inputs = 0
        self.metrics: Any = None  # a telemetry.ServeMetrics with --metrics-port

    @property
    def pending(self) -> int:
        """Inputs waiting for a batch."""
        return len(self._queue)

    def submit_many(
        self, values: Sequence[Any], deadline: float | None
    ) -> list[asyncio.Future[tuple[Any, BatchInfo]]]:
        """Queues every value or none of them; each future gives (output, BatchInfo).

        :raises Overloaded: when the queue cannot take all of them.
        """
        if len(self._queue) + len(values) > self.max_queue_size:
            raise Overloaded(
                f"model {self.model.name!r}: queue full ({len(self._queue)} waiting, limit "
                f"{self.max_queue_size}, {len(values)} more asked); retry later or add workers"
            )
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        items = [_Item(v, deadline, now, loop.create_future()) for v in values]
        self._queue.extend(items)
        self._last_arrival = now
        self._arrived.set()
        return [item.future for item in items]

    async def submit(self, value: Any, deadline: float | None) -> tuple[Any, BatchInfo]:
        """Queues one value and waits for its output.

        :raises Overloaded: queue full. :raises Timeout: deadline passed while queued.
        :raises Remote: the model raised.
        """
        (future,) = self.submit_many([value], deadline)
        return await future

    async def _next_batch(self) -> list[_Item]:
        while not self._queue:
            self._arrived.clear()
            await self._arrived.wait()
        flush_at = self._queue[0].enqueued + self.delay_s
        while len(self._queue) < self.max_batch_size:
            now = time.monotonic()
            left = flush_at - now
            if self.idle_s:
                left = min(left, self._last_arrival + self.idle_s - now)
            if left <= 0:
                break
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except asyncio.TimeoutError:
                break
        batch: list[_Item] = []
        now = time.monotonic()
        while self._queue and len(batch) < self.max_batch_size:
            item = self._queue.popleft()
            if item.future.done():  # the caller went away
                continue
            if item.deadline is not None and now >= item.deadline:
                item.future.set_exception(
                    Timeout(
                        f"model {self.model.name!r}: deadline passed after "
                        f"{now - item.enqueued:.3f}s in the queue; dropped before compute"
                    )
                )
                continue
            batch.append(item)
        return batch

    async def _consume(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._next_batch()
            if not batch:
                continue
            started = time.monotonic()
            values = [item.value for item in batch]
            try:
                if self._executor is None:
                    outputs = self.model.predict_batch(values)
                else:
                    outputs = await loop.run_in_executor(
                        self._executor, self.model.predict_batch, values
                    )
                if len(outputs) != len(batch):
                    raise Remote(
                        "tandem.ModelError",
                        f"model {self.model.name!r} returned {len(outputs)} outputs for "
                        f"{len(batch)} inputs (predict_batch must return one per input)",
                    )
            except Exception as exc:
                error = exc if isinstance(exc, Remote) else Remote.from_exception(exc)
                log.warning("model %s: batch of %d failed: %s", self.model.name, len(batch), exc)
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(error)
                continue
            self.batches += 1
            self.inputs += len(batch)
            if self.metrics is not None:
                self.metrics.observe_batch(
                    self.model.name, len(batch), [started - item.enqueued for item in batch]
                )
            for item, output in zip(batch, outputs, strict=True):
                if not item.future.done():
                    item.future.set_result((output, BatchInfo(len(batch), started - item.enqueued)))

    async def close(self) -> None:
        """Stops batching; queued inputs fail with Unavailable."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        while self._queue:
            item = self._queue.popleft()
            if not item.future.done():
                item.future.set_exception(
                    Unavailable(f"model {self.model.name!r}: the server is shutting down")
                )
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
