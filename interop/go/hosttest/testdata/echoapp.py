"""A tandem App used by the Go host interop tests (interop/go/hosttest)."""

import sys

import tandem

print("this import-time print must not reach the handshake")

app = tandem.App("echo")


@app.handler("echo")
def echo(payload, ctx):
    print(f"stdout from echo {payload.get('n')}", flush=True)
    print(f"stderr from echo {payload.get('n')}", file=sys.stderr, flush=True)
    ctx.logger.warning("echo handled")
    return {
        "echo": payload,
        "has_deadline": ctx.deadline is not None,
        "traceparent": ctx.traceparent,
        "transport": ctx.transport,
    }


@app.handler("fail")
def fail(payload):
    raise ValueError("bad input: " + str(payload))
