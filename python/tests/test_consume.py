"""The consumer against a real private redis-server: results, retries, dead letters."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
from _queue_support import ConsumerProc, RedisServer, publish, redis_server, wait_until, write_app

__all__ = ["redis_server"]

APP = """
@app.handler("echo")
def echo(p, ctx):
    r = ctx_redis()
    r.sadd(os.environ.get("SEEN", "seen"), p["n"])
    return {"n": p["n"], "attempt": ctx.attempt, "tp": ctx.traceparent}

@app.handler("aecho")
async def aecho(p, ctx):
    await asyncio.sleep(0.01)
    return {"n": p["n"]}

@app.handler("fail")
def fail(p, ctx):
    ctx_redis().incr("fail_calls")
    raise ValueError("no luck " + str(p["n"]))

@app.handler("crash")
def crash(p, ctx):
    ctx_redis().incr("crash_calls")
    os._exit(3)

def ctx_redis():
    import redis
    return redis.Redis.from_url(os.environ["REDIS_URL"])
"""


@pytest.fixture()
def stream() -> str:
    return "s-" + uuid.uuid4().hex[:8]


@pytest.fixture()
def consumer(
    tmp_path: Path, redis_server: RedisServer, stream: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    write_app(tmp_path, APP)
    procs: list[ConsumerProc] = []

    def start(*args: str) -> ConsumerProc:
        c = ConsumerProc(tmp_path, redis_server.url, stream, *args)
        procs.append(c)
        return c

    yield start
    for c in procs:
        c.kill()


def test_tasks_run_once_and_are_deleted(
    redis_server: RedisServer, stream: str, consumer: Any
) -> None:
    r = redis_server.client()
    consumer("--processes", "2")
    for n in range(200):
        publish(r, stream, "echo", b'{"n": %d}' % n)
    wait_until(20, lambda: r.scard("seen") == 200 and r.xlen(stream) == 0, "200 tasks handled")
    assert r.xpending(stream, "g")["pending"] == 0
    r.delete("seen")


def test_entries_of_a_dead_consumer_are_taken_over_with_their_delivery_count(
    redis_server: RedisServer, stream: str, consumer: Any
) -> None:
    """Redis 8.4+: XREADGROUP … CLAIM hands them over in the read itself; older servers:
    the XAUTOCLAIM pass. Either way they run once more, as attempt 2."""
    r = redis_server.client()
    r.xgroup_create(stream, "g", id="0", mkstream=True)
    for n in range(3):
        publish(r, stream, "echo", json.dumps({"n": n}).encode(), reply_to=f"{stream}:r")
    assert len(r.xreadgroup("g", "dead", {stream: ">"}, count=10)[0][1]) == 3  # then "dies"
    c = consumer("--visibility-timeout", "0.3", "--reclaim-interval", "0.2")
    wait_until(20, lambda: r.xlen(f"{stream}:r") == 3, "the replies of the taken-over tasks")
    replies = [json.loads(f[b"payload"]) for _, f in r.xrange(f"{stream}:r")]
    assert sorted(p["n"] for p in replies) == [0, 1, 2]
    assert {p["attempt"] for p in replies} == {2}, replies
    mechanism = "XREADGROUP CLAIM" if redis_server.version() >= (8, 4) else "XAUTOCLAIM"
    assert f"idle entries ({mechanism})" in c.output(), c.output()
    # New entries are not takeovers (with CLAIM they come with 0 earlier deliveries).
    for n in range(3, 6):
        publish(r, stream, "echo", json.dumps({"n": n}).encode(), reply_to=f"{stream}:r")
    wait_until(20, lambda: r.xlen(f"{stream}:r") == 6, "the replies of the new tasks")
    replies = [json.loads(f[b"payload"]) for _, f in r.xrange(f"{stream}:r")]
    assert [p["attempt"] for p in replies if p["n"] >= 3] == [1, 1, 1], replies
    assert c.output().count("took over") == 1, c.output()
    assert r.xpending(stream, "g")["pending"] == 0


def test_a_dead_consumers_entry_deleted_while_pending_leaves_no_pending_reference(
    redis_server: RedisServer, stream: str, consumer: Any
) -> None:
    """XREADGROUP … CLAIM skips such references; the periodic XAUTOCLAIM pass removes them
    (on every version)."""
    r = redis_server.client()
    r.xgroup_create(stream, "g", id="0", mkstream=True)
    eid = r.xadd(stream, {"x": "1"})
    r.xreadgroup("g", "dead", {stream: ">"}, count=1)
    r.xdel(stream, eid)
    assert r.xpending(stream, "g")["pending"] == 1
    consumer("--visibility-timeout", "0.2", "--reclaim-interval", "0.05")
    wait_until(20, lambda: r.xpending(stream, "g")["pending"] == 0, "the reference to go")


def test_result_and_error_come_back_on_the_reply_stream(
    redis_server: RedisServer, stream: str, consumer: Any
) -> None:
    r = redis_server.client()
    consumer("--max-deliveries", "1")
    ok = publish(r, stream, "aecho", b'{"n": 7}', reply_to=f"{stream}:reply:x")
    bad = publish(r, stream, "fail", b'{"n": 1}', reply_to=f"{stream}:reply:x")
    rows = wait_until(
        10, lambda: len(r.xrange(f"{stream}:reply:x")) == 2 and r.xrange(f"{stream}:reply:x")
    )
    by_id = {f[b"id"].decode(): f for _, f in rows}
    assert by_id[ok][b"status"] == b"ok" and json.loads(by_id[ok][b"payload"]) == {"n": 7}
    assert by_id[bad][b"status"] == b"error"
    assert by_id[bad][b"type"] == b"ValueError" and b"no luck 1" in by_id[bad][b"message"]
    assert r.ttl(f"{stream}:reply:x") > 0


def test_failing_task_is_retried_with_backoff_then_dead_lettered(
    redis_server: RedisServer, stream: str, consumer: Any
) -> None:
    r = redis_server.client()
    r.delete("fail_calls")
    consumer("--max-deliveries", "3", "--retry-base", "0.05", "--reclaim-interval", "0.05")
    tid = publish(r, stream, "fail", b'{"n": 5}')
    dead = wait_until(15, lambda: r.xrange(f"{stream}:dead"), "the dead letter")
    f = dead[0][1]
    assert f[b"id"].decode() == tid and f[b"dead_reason"] == b"failed"
    assert f[b"err_type"] == b"ValueError" and b"no luck 5" in f[b"err_message"]
    assert b"Traceback" in f[b"err_traceback"] and f[b"attempts"] == b"3"
    assert int(r.get("fail_calls")) == 3
    assert r.zcard(f"{stream}:delayed") == 0 and r.xlen(stream) == 0


def test_poison_message_that_kills_consumers_ends_in_dead_letters(
    redis_server: RedisServer, stream: str, consumer: Any
) -> None:
    r = redis_server.client()
    r.delete("crash_calls", "seen")
    # The supervisor restarts the killed child under the same name; it re-reads its pending
    # entry, whose delivery count grows until max_deliveries sends it to the dead letters.
    consumer("--max-deliveries", "3", "--processes", "2")
    publish(r, stream, "crash", b'{"n": 0}')
    for n in range(50):
        publish(r, stream, "echo", b'{"n": %d}' % n)
    dead = wait_until(30, lambda: r.xrange(f"{stream}:dead"), "the poison message's dead letter")
    assert dead[0][1][b"dead_reason"] == b"max_deliveries"
    assert b"without an ack" in dead[0][1][b"err_message"]
    assert int(r.get("crash_calls")) == 3
    wait_until(20, lambda: r.scard("seen") == 50, "the other tasks")
    r.delete("seen")


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({b"v": b"1", b"id": b"x"}, b"missing fields method"),
        ({b"garbage": b"\xff"}, b"missing fields"),
        (
            {
                b"v": b"9",
                b"id": b"x",
                b"method": b"echo",
                b"codec": b"json",
                b"payload": b"",
                b"attempt": b"1",
                b"enq_ms": b"0",
            },
            b"unsupported format version",
        ),
        (
            {
                b"v": b"1",
                b"id": b"x",
                b"method": b"echo",
                b"codec": b"yaml",
                b"payload": b"",
                b"attempt": b"1",
                b"enq_ms": b"0",
            },
            b"unknown codec 'yaml'",
        ),
        (
            {
                b"v": b"1",
                b"id": b"x",
                b"method": b"echo",
                b"codec": b"json",
                b"payload": b"{",
                b"attempt": b"1",
                b"enq_ms": b"0",
            },
            b"does not decode",
        ),
        (
            {
                b"v": b"1",
                b"id": b"x",
                b"method": b"nope",
                b"codec": b"json",
                b"payload": b"{}",
                b"attempt": b"one",
                b"enq_ms": b"0",
            },
            b"'attempt' is not an integer",
        ),
        (
            {
                b"v": b"1",
                b"id": b"x",
                b"method": b"nope",
                b"codec": b"json",
                b"payload": b"{}",
                b"attempt": b"1",
                b"enq_ms": b"0",
            },
            b"has no handler 'nope'",
        ),
    ],
)
def test_malformed_entries_go_to_dead_letters_with_the_reason(
    redis_server: RedisServer, stream: str, consumer: Any, fields: dict[bytes, bytes], reason: bytes
) -> None:
    r = redis_server.client()
    c = consumer()
    r.xadd(stream, fields)
    publish(r, stream, "aecho", b'{"n": 1}', reply_to=f"{stream}:r")
    dead = wait_until(10, lambda: r.xrange(f"{stream}:dead"), "the dead letter")
    assert reason in dead[0][1][b"err_message"], dead[0][1]
    wait_until(10, lambda: r.xlen(f"{stream}:r") == 1, "the good task after the bad one")
    assert c.proc.poll() is None, c.output()


def test_msgpack_roundtrip_and_dedup(redis_server: RedisServer, stream: str, consumer: Any) -> None:
    r = redis_server.client()
    consumer("--dedup-ttl", "60")
    body = msgpack.packb({"n": 3})
    publish(r, stream, "aecho", body, codec="msgpack", idem="k1", reply_to=f"{stream}:r")
    wait_until(10, lambda: r.xlen(f"{stream}:r") == 1)
    publish(r, stream, "aecho", body, codec="msgpack", idem="k1", reply_to=f"{stream}:r")
    wait_until(10, lambda: r.xlen(stream) == 0 and r.xpending(stream, "g")["pending"] == 0)
    rows = r.xrange(f"{stream}:r")
    assert len(rows) == 1 and msgpack.unpackb(rows[0][1][b"payload"]) == {"n": 3}
    assert r.exists(f"{stream}:done:k1")


SLOW_APP = """
@app.handler("slow")
def slow(p, ctx):
    import redis
    r = redis.Redis.from_url(os.environ["REDIS_URL"])
    r.incr("slow_runs")
    time.sleep(p["s"])
    return {"ok": True}
"""


def _two_slow_consumers(
    tmp_path: Path, server: RedisServer, stream: str, lease_s: str, visibility_s: str
) -> tuple[ConsumerProc, ConsumerProc]:
    write_app(tmp_path, SLOW_APP)
    server.client().delete("slow_runs")
    opts = (
        "--visibility-timeout",
        visibility_s,
        "--reclaim-interval",
        "0.1",
        "--lease-interval",
        lease_s,
    )
    a = ConsumerProc(tmp_path, server.url, stream, "--name", "a", *opts)
    b = ConsumerProc(tmp_path, server.url, stream, "--name", "b", *opts)
    return a, b


def test_lease_keeps_a_slow_task_from_being_stolen(
    tmp_path: Path, redis_server: RedisServer, stream: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A handler three times slower than the visibility timeout runs once with two consumers."""
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    r = redis_server.client()
    a, b = _two_slow_consumers(tmp_path, redis_server, stream, "0.15", "0.6")
    try:
        publish(r, stream, "slow", b'{"s": 2.0}', reply_to=f"{stream}:r")
        wait_until(20, lambda: r.xlen(f"{stream}:r") == 1, "the slow task's reply")
        assert int(r.get("slow_runs")) == 1, a.output() + b.output()
        assert r.xpending(stream, "g")["pending"] == 0
    finally:
        a.kill()
        b.kill()


def test_without_lease_extension_a_slow_task_would_be_taken_over(
    tmp_path: Path, redis_server: RedisServer, stream: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control for the lease test: a lease period longer than the handler lets the
    second consumer reclaim the entry, so the task runs twice (what the lease prevents)."""
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    r = redis_server.client()
    a, b = _two_slow_consumers(tmp_path, redis_server, stream, "60", "0.3")
    try:
        publish(r, stream, "slow", b'{"s": 1.5}')
        wait_until(20, lambda: int(r.get("slow_runs") or 0) >= 2, "the takeover")
    finally:
        a.kill()
        b.kill()


def test_bad_options_exit_2_with_the_reason() -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "tandem", "consume", "service:app", "--processes", "0"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert out.returncode == 2
    assert "processes must be at least 1, got 0" in out.stderr
