"""The App registry, Context and dispatch, without any transport."""

from __future__ import annotations

import asyncio
import time

import pytest

import tandem
from tandem import _codec


def make_app() -> tandem.App:
    app = tandem.App("t")

    @app.handler("echo")
    def echo(payload):  # type: ignore[no-untyped-def]
        return payload

    @app.handler("ctx")
    def ctx_info(payload, ctx):  # type: ignore[no-untyped-def]
        return {"method": ctx.method, "meta": dict(ctx.metadata), "tp": ctx.traceparent}

    @app.handler("aecho")
    async def aecho(payload, ctx):  # type: ignore[no-untyped-def]
        await asyncio.sleep(0)
        return payload

    @app.handler("boom")
    def boom(payload):  # type: ignore[no-untyped-def]
        raise ValueError("bad amount")

    @app.handler("reject")
    def reject(payload):  # type: ignore[no-untyped-def]
        raise tandem.BadRequest("amount must be positive")

    return app


@pytest.mark.parametrize("codec", ["json", "msgpack"])
def test_call_round_trips_values(codec: str) -> None:
    app = make_app()
    value = {"a": [1, 2.5, "x", None, True], "b": {"c": -3}}
    out, out_codec = app.call("echo", _codec.encode(codec, value), codec)
    assert out_codec == codec
    assert _codec.decode(out_codec, out) == value


def test_raw_in_raw_out() -> None:
    out, codec = make_app().call("echo", b"\x00\xff", "raw")
    assert (out, codec) == (b"\x00\xff", "raw")


def test_async_handler_runs_from_sync_call() -> None:
    out, codec = make_app().call("aecho", _codec.encode("json", [1]), "json")
    assert _codec.decode(codec, out) == [1]


def test_acall_runs_sync_and_async_handlers() -> None:
    app = make_app()

    async def run() -> list[object]:
        a = await app.acall("echo", _codec.encode("msgpack", 1), "msgpack")
        b = await app.acall("aecho", _codec.encode("msgpack", 2), "msgpack")
        return [_codec.decode(c, d) for d, c in (a, b)]

    assert asyncio.run(run()) == [1, 2]


def test_context_carries_metadata() -> None:
    ctx = tandem.Context("ctx", metadata={"tenant": "acme"}, traceparent="00-ab-cd-01")
    out, codec = make_app().call("ctx", _codec.encode("json", None), "json", ctx)
    assert _codec.decode(codec, out) == {
        "method": "ctx",
        "meta": {"tenant": "acme"},
        "tp": "00-ab-cd-01",
    }


def test_context_deadline() -> None:
    ctx = tandem.Context.with_timeout("m", 0.05)
    remaining = ctx.remaining()
    assert remaining is not None and 0 < remaining <= 0.05
    assert not ctx.expired
    ctx.deadline = time.monotonic() - 1
    assert ctx.expired and ctx.remaining() == 0.0
    assert tandem.Context("m").remaining() is None


def test_handler_exception_becomes_remote_with_traceback() -> None:
    with pytest.raises(tandem.Remote) as info:
        make_app().call("boom", _codec.encode("json", {}), "json")
    assert info.value.type == "ValueError"
    assert info.value.message == "bad amount"
    assert 'raise ValueError("bad amount")' in info.value.traceback


def test_handler_can_reject_input_as_bad_request() -> None:
    with pytest.raises(tandem.BadRequest, match="amount must be positive"):
        make_app().call("reject", _codec.encode("json", {}), "json")


def test_unknown_method_is_bad_request_listing_methods() -> None:
    with pytest.raises(tandem.BadRequest) as info:
        make_app().call("nope", b"", "json")
    assert "nope" in str(info.value) and "echo" in str(info.value)


def test_undecodable_payload_is_bad_request() -> None:
    with pytest.raises(tandem.BadRequest, match="does not decode"):
        make_app().call("echo", b"{not json", "json")
    with pytest.raises(tandem.BadRequest, match="unknown codec"):
        make_app().call("echo", b"", "yaml")


def test_unencodable_result_is_remote() -> None:
    app = tandem.App("t")
    app.handler("obj")(lambda p: object())
    with pytest.raises(tandem.Remote, match="cannot be sent as json"):
        app.call("obj", b"null", "json")


def test_duplicate_registration_is_an_error() -> None:
    app = make_app()
    with pytest.raises(ValueError, match="already has a handler"):
        app.handler("echo")(lambda p: p)


def test_lifecycle_runs_hooks_once_and_closed_app_refuses_calls() -> None:
    app = make_app()
    seen: list[str] = []
    app.on_startup(lambda: seen.append("start"))

    async def stop() -> None:
        seen.append("stop")

    app.on_shutdown(stop)
    app.startup()
    app.startup()
    assert app.state is tandem.AppState.STARTED
    app.shutdown()
    app.shutdown()
    assert seen == ["start", "stop"]
    with pytest.raises(RuntimeError, match="is closed"):
        app.call("echo", b"null", "json")


def _thread_app() -> tandem.App:
    """Handlers that answer the id of the thread they ran on."""
    import threading

    app = tandem.App("threads")

    def where(payload):  # type: ignore[no-untyped-def]
        time.sleep(0.001)  # so that a zero budget is always exceeded
        return threading.get_ident()

    app.handler("default")(where)
    app.handler("quick", blocking=False)(where)
    app.handler("blocking", blocking=True)(where)
    return app


def _ran_on_loop(app: tandem.App, method: str, budget: float | None) -> bool:
    import threading

    async def run() -> bool:
        data, _ = await app.acall(method, b"null", "json", inline_budget_s=budget)
        return bool(_codec.decode("json", data) == threading.get_ident())

    return asyncio.run(run())


def test_acall_runs_sync_handlers_where_their_blocking_flag_says() -> None:
    app = _thread_app()
    # without a budget (grpc, queue): the thread pool, unless the handler is marked quick
    assert not _ran_on_loop(app, "default", None)
    assert _ran_on_loop(app, "quick", None)
    assert not _ran_on_loop(app, "blocking", None)
    # with a budget (the plugin): inline unless marked blocking
    assert _ran_on_loop(app, "default", 10.0)
    assert _ran_on_loop(app, "quick", 0.0)
    assert not _ran_on_loop(app, "blocking", 10.0)


def test_a_handler_over_the_inline_budget_moves_to_threads_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = _thread_app()
    with caplog.at_level("WARNING", logger="tandem.app"):
        assert _ran_on_loop(app, "default", 0.0)  # this call held the loop past the budget
        assert not _ran_on_loop(app, "default", 0.0)
        assert _ran_on_loop(app, "quick", 0.0)  # blocking=False: the user's choice stands
    (record,) = caplog.records
    assert "'default'" in record.message and "held the event loop" in record.message
    assert "blocking=True" in record.message


def test_context_logger_is_built_once_on_first_use() -> None:
    ctx = tandem.Context("score", transport="plugin", traceparent="00-a-b-01")
    assert ctx.logger is ctx.logger
    assert ctx.logger.extra == {
        "method": "score",
        "transport": "plugin",
        "traceparent": "00-a-b-01",
    }
    assert ctx == tandem.Context("score", transport="plugin", traceparent="00-a-b-01")


def test_acall_timeout_answers_timeout_but_keeps_a_handlers_own_timeout_error() -> None:
    app = tandem.App("t")

    @app.handler("hang")
    async def hang(payload):  # type: ignore[no-untyped-def]
        await asyncio.sleep(30)

    @app.handler("own")
    async def own(payload):  # type: ignore[no-untyped-def]
        raise TimeoutError("upstream socket timed out")

    @app.handler("thread", blocking=True)
    def thread(payload):  # type: ignore[no-untyped-def]
        raise TimeoutError("upstream socket timed out")

    async def run(method: str) -> BaseException:
        with pytest.raises(tandem.TandemError) as info:
            await app.acall(method, b"null", "json", timeout_s=0.05)
        return info.value

    err = asyncio.run(run("hang"))
    assert isinstance(err, tandem.Timeout), err
    assert "'hang'" in str(err) and "deadline" in str(err)
    for method in ("own", "thread"):
        err = asyncio.run(run(method))
        assert isinstance(err, tandem.Remote) and err.type == "TimeoutError", err
