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


@app.handler("ping")
def ping(payload):
    return payload


@app.handler("log")
def log_levels(payload, ctx):
    ctx.logger.debug("level check debug")
    ctx.logger.info("level check info")
    ctx.logger.warning("level check warn")
    ctx.logger.error("level check error")
    try:
        raise RuntimeError("level check exception")
    except RuntimeError:
        ctx.logger.exception("level check traceback")
    return "logged"


@app.handler("spawn")
def spawn_child(payload):
    import subprocess

    # a child that outlives the plugin; it inherits fds 1/2 (the stdio pipes), not the host's
    child = subprocess.Popen(["sleep", "60"], start_new_session=True)
    return child.pid
