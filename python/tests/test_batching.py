"""Dynamic batching: a real server under concurrency, and the Batcher's own rules."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from serve_helpers import Server

from tandem._proto import inference_pb2, inference_pb2_grpc
from tandem._serve.batching import Batcher
from tandem.errors import Overloaded, Remote, Timeout
from tandem.models import BatchConfig, Model, RiskModel

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path, "--drain-delay", "0")
    srv.open_gate("load")
    try:
        srv.wait_serving()
        yield srv
    finally:
        srv.close()


def test_200_concurrent_predicts_each_get_their_own_score(server: Server) -> None:
    payments = [
        {
            "amount": 5.0 + 7.3 * i,
            "merchant_category": "electronics",
            "hour": i % 24,
            "velocity_1h": i % 5,
            "card_age_days": 10 + i,
        }
        for i in range(200)
    ]
    local = RiskModel()
    local.load()
    expected = local.predict_batch([local.prepare(json.dumps(p).encode(), {}) for p in payments])

    async def run() -> list[tuple[Any, Any]]:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as ch:
            stub = inference_pb2_grpc.InferenceServiceStub(ch)

            async def one(p: dict[str, Any]) -> tuple[Any, Any]:
                call = stub.Predict(
                    inference_pb2.PredictRequest(
                        model_name="risk", input_data=json.dumps(p).encode()
                    ),
                    timeout=30,
                )
                reply = await call
                return reply, dict(await call.trailing_metadata())

            return await asyncio.gather(*(one(p) for p in payments))

    results = asyncio.run(run())
    for (reply, _), want in zip(results, expected, strict=True):
        assert json.loads(reply.output_data) == want
    sizes = [int(trailers["tandem-batch-size"]) for _, trailers in results]
    assert max(sizes) > 1, sizes


class _Doubler(Model):
    name = "double"

    def __init__(self, fail: str = "") -> None:
        self.calls: list[list[Any]] = []
        self.fail = fail

    def predict_batch(self, inputs: list[Any]) -> list[Any]:
        self.calls.append(list(inputs))
        if self.fail == "raise":
            raise ValueError("bad weights")
        if self.fail == "short":
            return inputs[:-1]
        return [2 * x for x in inputs]


def _run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_batcher_gathers_up_to_max_batch_size() -> None:
    model = _Doubler()

    async def go() -> list[Any]:
        b = Batcher(model, BatchConfig(max_batch_size=4, max_queue_delay_ms=50))
        try:
            return await asyncio.gather(*(b.submit(i, None) for i in range(10)))
        finally:
            await b.close()

    results = _run(go())
    assert [out for out, _ in results] == [2 * i for i in range(10)]
    assert [len(c) for c in model.calls] == [4, 4, 2]
    assert results[0][1].batch_size == 4


def test_batcher_off_runs_one_at_a_time() -> None:
    model = _Doubler()

    async def go() -> None:
        b = Batcher(model, BatchConfig(supports_batching=False, max_batch_size=64))
        try:
            await asyncio.gather(*(b.submit(i, None) for i in range(5)))
        finally:
            await b.close()

    _run(go())
    assert [len(c) for c in model.calls] == [1] * 5


def test_batcher_refuses_past_queue_size_and_drops_expired() -> None:
    model = _Doubler()

    async def go() -> None:
        b = Batcher(model, BatchConfig(max_batch_size=8, max_queue_delay_ms=20, max_queue_size=3))
        try:
            with pytest.raises(Overloaded, match="queue full"):
                b.submit_many([1, 2, 3, 4], None)
            (expired,) = b.submit_many([1], time.monotonic() - 1.0)
            kept = b.submit_many([2], None)[0]
            fresh = b.submit_many([5], None)[0]
            with pytest.raises(Timeout, match="dropped before compute"):
                await expired
            assert (await kept)[0] == 4 and (await fresh)[0] == 10
        finally:
            await b.close()

    _run(go())
    assert model.calls == [[2, 5]]


def test_batcher_reports_model_failures_to_every_caller() -> None:
    async def go(fail: str) -> list[Any]:
        b = Batcher(_Doubler(fail), BatchConfig(max_batch_size=4, max_queue_delay_ms=20))
        try:
            return await asyncio.gather(
                *(b.submit(i, None) for i in range(3)), return_exceptions=True
            )
        finally:
            await b.close()

    raised = _run(go("raise"))
    assert all(isinstance(e, Remote) and e.type == "ValueError" for e in raised)
    short = _run(go("short"))
    assert all(isinstance(e, Remote) and "returned 2 outputs for 3 inputs" in str(e) for e in short)


class _ThreadSpy(_Doubler):
    def __init__(self) -> None:
        super().__init__()
        self.threads: list[int] = []

    def predict_batch(self, inputs: list[Any]) -> list[Any]:
        self.threads.append(threading.get_ident())
        return super().predict_batch(inputs)


@pytest.mark.parametrize("inline", [True, False])
def test_batcher_runs_inline_models_on_the_loop_thread(inline: bool) -> None:
    model = _ThreadSpy()

    async def go() -> int:
        b = Batcher(model, BatchConfig(max_batch_size=4, max_queue_delay_ms=5, inline=inline))
        try:
            assert [
                out for out, _ in await asyncio.gather(*(b.submit(i, None) for i in range(6)))
            ] == [2 * i for i in range(6)]
        finally:
            await b.close()
        return threading.get_ident()

    loop_thread = _run(go())
    assert model.threads and all((t == loop_thread) is inline for t in model.threads)


def test_batcher_flushes_once_inputs_stop_arriving() -> None:
    model = _Doubler()

    async def go() -> float:
        # The delay alone would hold the batch for 60 s (and _run gives up after 20 s); the
        # idle flush sends it once no input came for 50 ms. Inputs 10 ms apart all join it.
        b = Batcher(
            model, BatchConfig(max_batch_size=64, max_queue_delay_ms=60_000, flush_idle_ms=50)
        )
        try:
            started = time.monotonic()
            futures = []
            for i in range(5):
                futures += b.submit_many([i], None)
                await asyncio.sleep(0.01)
            await asyncio.gather(*futures)
            return time.monotonic() - started
        finally:
            await b.close()

    elapsed = _run(go())
    assert model.calls == [[0, 1, 2, 3, 4]]
    assert elapsed < 10, elapsed
