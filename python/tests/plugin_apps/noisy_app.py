"""A plugin app that prints at import time and from its handlers (python/tests/test_plugin*.py)."""

import sys
import time

import tandem

print("noise printed at import time")

app = tandem.App("noisy")


@app.handler("echo")
def echo(payload, ctx):
    print(f"handler stdout {payload}", flush=True)
    print(f"handler stderr {payload}", file=sys.stderr, flush=True)
    return {
        "echo": payload,
        "remaining": ctx.remaining(),
        "traceparent": ctx.traceparent,
        "metadata": dict(ctx.metadata),
        "idempotency_key": ctx.idempotency_key,
    }


@app.handler("slow")
async def slow(payload):
    import asyncio

    await asyncio.sleep(float(payload))
    return "done"


@app.handler("raw_echo")
def raw_echo(payload):
    return payload


@app.handler("boom")
def boom(payload):
    raise KeyError(payload)


def sleep_forever() -> None:
    time.sleep(3600)
