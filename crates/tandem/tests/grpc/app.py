"""The App and models served by `python -m tandem serve` in the Rust grpc tests."""

import asyncio
import os

import tandem
from tandem.models import BatchConfig, Model, Registry

app = tandem.App("grpc-tests")


@app.handler("echo")
def echo(payload, ctx):
    return payload


@app.handler("pid")
def pid(payload, ctx):
    return {"pid": os.getpid()}


@app.handler("context")
def context(payload, ctx):
    return {
        "remaining": ctx.remaining(),
        "traceparent": ctx.traceparent,
        "metadata": dict(ctx.metadata),
        "idempotency_key": ctx.idempotency_key,
    }


@app.handler("sleep")
async def sleep(payload, ctx):
    await asyncio.sleep(payload["s"])
    return {"pid": os.getpid()}


@app.handler("boom")
def boom(payload, ctx):
    raise ValueError("boom on purpose")


class Double(Model):
    """Doubles `x`; reports the batch it ran in and its process."""

    name = "double"
    batching = BatchConfig(max_batch_size=16, max_queue_delay_ms=5.0)

    def predict_batch(self, inputs):
        return [{"y": item["x"] * 2, "batch": len(inputs), "pid": os.getpid()} for item in inputs]

    def stream(self, item):
        for i in range(item["n"]):
            yield {"i": i}


class Slow(Model):
    """Sleeps `s` seconds per batch, one input at a time (for overload tests)."""

    name = "slow"
    batching = BatchConfig(max_batch_size=1, max_queue_size=1, supports_batching=False)

    def predict_batch(self, inputs):
        import time

        time.sleep(inputs[0]["s"])
        return [{"ok": True} for _ in inputs]


models = Registry([Double(), Slow()])
