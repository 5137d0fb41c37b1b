"""``inference.InferenceService``: Predict, BatchPredict and StreamPredict over the registry.

Errors (see docs/grpc.md): Predict and StreamPredict end with a gRPC status (NOT_FOUND unknown
model, INVALID_ARGUMENT bad input, RESOURCE_EXHAUSTED queue full, DEADLINE_EXCEEDED dropped
after its deadline, UNAVAILABLE still loading, INTERNAL the model raised) and trailing metadata
``tandem-error-kind``. BatchPredict fails as a whole for NOT_FOUND, RESOURCE_EXHAUSTED and
UNAVAILABLE; an input that does not decode or whose prediction failed gets ``success=false``
and ``error="kind: message"`` in its own result.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from typing import Any

from .._proto import inference_pb2, inference_pb2_grpc
from ..errors import BadRequest, Remote, TandemError, Unavailable
from ..models import Model, Registry
from .batching import Batcher, BatchInfo
from .status import abort, deadline_of, error_text

__all__ = ["InferenceService"]

_END = object()


class InferenceService(inference_pb2_grpc.InferenceServiceServicer):
    """Serves a registry's models; a model answers once its Batcher is attached."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.batchers: dict[str, Batcher] = {}
        self._pid = str(os.getpid())

    async def _model(self, name: str, context: Any) -> tuple[Model, Batcher]:
        import grpc

        model = self.registry.get(name)
        if model is None:
            known = ", ".join(self.registry.names()) or "none"
            await context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"model {name!r} is not served here (models: {known})",
                (("tandem-error-kind", "bad_request"),),
            )
            raise AssertionError("unreachable")  # pragma: no cover - abort raises
        batcher = self.batchers.get(name)
        if batcher is None:
            await abort(context, Unavailable(f"model {name!r} is still loading; retry shortly"))
            raise AssertionError("unreachable")  # pragma: no cover
        return model, batcher

    @staticmethod
    def _prepare(model: Model, data: bytes, parameters: Any) -> Any:
        try:
            return model.prepare(data, parameters)
        except TandemError:
            raise
        except (ValueError, TypeError) as exc:
            raise BadRequest(f"model {model.name!r}: invalid input: {exc}") from exc

    def _trailers(self, info: BatchInfo) -> tuple[tuple[str, str], ...]:
        return (
            ("tandem-batch-size", str(info.batch_size)),
            ("tandem-queue-us", str(int(info.queue_s * 1e6))),
            ("tandem-worker-pid", self._pid),
        )

    async def Predict(self, request: Any, context: Any) -> Any:
        started = time.monotonic()
        model, batcher = await self._model(request.model_name, context)
        try:
            value = self._prepare(model, request.input_data, request.parameters)
            output, info = await batcher.submit(value, deadline_of(context))
            data, confidence = model.encode(output)
        except TandemError as exc:
            await abort(context, exc)
            raise AssertionError("unreachable") from exc  # pragma: no cover
        context.set_trailing_metadata(self._trailers(info))
        return inference_pb2.PredictResponse(
            success=True,
            output_data=data,
            confidence=confidence,
            latency_ms=int((time.monotonic() - started) * 1000),
        )

    async def BatchPredict(self, request: Any, context: Any) -> Any:
        started = time.monotonic()
        model, batcher = await self._model(request.model_name, context)
        results: list[Any] = [None] * len(request.inputs)
        valid: list[int] = []
        values: list[Any] = []
        for i, data in enumerate(request.inputs):
            try:
                values.append(self._prepare(model, data, {}))
                valid.append(i)
            except TandemError as exc:
                results[i] = inference_pb2.PredictResponse(success=False, error=error_text(exc))
        try:
            futures = batcher.submit_many(values, deadline_of(context))
        except TandemError as exc:
            await abort(context, exc)
            raise AssertionError("unreachable") from exc  # pragma: no cover
        outcomes = await asyncio.gather(*futures, return_exceptions=True)
        latency = int((time.monotonic() - started) * 1000)
        for i, outcome in zip(valid, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                results[i] = inference_pb2.PredictResponse(
                    success=False, error=error_text(outcome), latency_ms=latency
                )
                continue
            data, confidence = model.encode(outcome[0])
            results[i] = inference_pb2.PredictResponse(
                success=True, output_data=data, confidence=confidence, latency_ms=latency
            )
        return inference_pb2.BatchPredictResponse(results=results)

    async def StreamPredict(self, request: Any, context: Any) -> AsyncIterator[Any]:
        model, _ = await self._model(request.model_name, context)
        try:
            value = self._prepare(model, request.input_data, request.parameters)
        except TandemError as exc:
            await abort(context, exc)
            return
        loop = asyncio.get_running_loop()
        chunks = model.stream(value)
        try:
            pending = await loop.run_in_executor(None, next, chunks, _END)
            while pending is not _END:
                after = await loop.run_in_executor(None, next, chunks, _END)
                data, _ = model.encode(pending)
                yield inference_pb2.PredictChunk(data=data, is_final=after is _END)
                pending = after
        except TandemError as exc:
            await abort(context, exc)
        except Exception as exc:
            await abort(context, Remote.from_exception(exc))
        finally:
            close = getattr(chunks, "close", None)
            try:
                if close is not None:
                    close()
            except ValueError:  # still running in its thread (the caller cancelled): let it end
                pass
