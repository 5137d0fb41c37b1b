"""The model contract the InferenceService serves, and the registry that holds models."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import BadRequest

__all__ = ["BatchConfig", "Model", "Registry"]


@dataclass(frozen=True)
class BatchConfig:
    """How the server batches one model's Predict calls (Triton's dynamic batcher, simplified).

    :param max_batch_size: most inputs per ``predict_batch`` call.
    :param max_queue_delay_ms: how long the first queued input waits for others to join.
    :param flush_idle_ms: dispatch before ``max_queue_delay_ms`` once no input has arrived
        for this long (0: off). With a long delay it lets a batch take every call that is
        streaming in, and go as soon as they stop.
    :param max_queue_size: inputs allowed to wait; past it calls fail with RESOURCE_EXHAUSTED.
    :param supports_batching: False serves inputs one at a time (``max_batch_size`` is then 1).
    :param max_concurrent_batches: ``predict_batch`` calls allowed at once (threads).
    :param inline: run ``predict_batch`` on the event loop's own thread, one batch at a time,
        instead of in a worker thread (``max_concurrent_batches`` is then ignored). For models
        made of many small numpy steps (a recurrent network's time steps): each BLAS call
        releases the GIL, the busy event loop thread takes it, and the model thread waits up
        to the interpreter's switch interval (5 ms) to get it back, at every step (the GIL
        convoy). On the loop the batch runs without those hand-offs; calls that arrive
        meanwhile wait in gRPC's buffers and join the next batch. Health checks wait for the
        batch in flight too, so keep batches to milliseconds.
    """

    max_batch_size: int = 64
    max_queue_delay_ms: float = 2.0
    flush_idle_ms: float = 0.0
    max_queue_size: int = 1024
    supports_batching: bool = True
    max_concurrent_batches: int = 1
    inline: bool = False

    def effective_batch_size(self) -> int:
        """``max_batch_size``, or 1 when the model does not support batching."""
        return max(1, self.max_batch_size) if self.supports_batching else 1


class Model:
    """Base class of a served model: override ``name``, ``load``, ``predict_batch``.

    The server calls, in each worker process: ``load()`` then ``warm()`` (health NOT_SERVING
    until both return), then ``prepare(bytes)`` per input on the event loop (cheap decoding and
    validation: raise :class:`~tandem.errors.BadRequest` or ``ValueError`` for bad input, which
    becomes INVALID_ARGUMENT), and ``predict_batch(list)`` in a worker thread with up to
    ``batching.max_batch_size`` prepared inputs, returning one output per input, in order.
    """

    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    batching: ClassVar[BatchConfig] = BatchConfig()

    def load(self) -> None:
        """Loads weights; runs once per worker process before it serves."""

    def warm(self) -> None:
        """Runs a first prediction so the first caller does not pay for lazy set-up."""

    def prepare(self, data: bytes, parameters: Mapping[str, str]) -> Any:
        """Decodes and validates one input (default: JSON). Raise BadRequest for bad input."""
        try:
            return json.loads(data)
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadRequest(
                f"model {self.name!r}: input_data is not JSON ({len(data)} bytes): {exc}"
            ) from exc

    def predict_batch(self, inputs: list[Any]) -> list[Any]:
        """Predicts a batch of prepared inputs: one output per input, same order."""
        raise NotImplementedError(f"model {self.name!r} does not implement predict_batch")

    def stream(self, item: Any) -> Iterator[Any]:
        """Yields incremental results for one prepared input (default: its one prediction)."""
        yield from self.predict_batch([item])

    def encode(self, output: Any) -> tuple[bytes, float]:
        """Encodes one output as ``output_data`` bytes and its confidence (default: JSON, and
        the output's ``confidence`` key when it is a dict)."""
        confidence = 0.0
        if isinstance(output, Mapping):
            value = output.get("confidence", 0.0)
            confidence = float(value) if isinstance(value, (int, float)) else 0.0
        return json.dumps(output, separators=(",", ":")).encode(), confidence


class Registry:
    """The models a server exposes, by name.

    ::

        models = tandem.models.Registry()
        models.add(RiskModel())

    ``python -m tandem serve service:app`` serves ``service.models`` when the module has one
    (or the registry named by ``--models service:registry``).
    """

    def __init__(self, models: Iterable[Model] = ()) -> None:
        self._models: dict[str, Model] = {}
        for model in models:
            self.add(model)

    def add(self, model: Model) -> Model:
        """Adds a model; its ``name`` must be non-empty and unique."""
        if not model.name:
            raise ValueError(f"{type(model).__name__} needs a non-empty class attribute `name`")
        if model.name in self._models:
            raise ValueError(f"a model named {model.name!r} is already registered")
        self._models[model.name] = model
        return model

    def get(self, name: str) -> Model | None:
        """The model named ``name``, or None."""
        return self._models.get(name)

    def names(self) -> list[str]:
        """The registered model names, sorted."""
        return sorted(self._models)

    def __iter__(self) -> Iterator[Model]:
        return iter(list(self._models.values()))

    def __len__(self) -> int:
        return len(self._models)

    def __repr__(self) -> str:
        return f"Registry({self.names()})"
