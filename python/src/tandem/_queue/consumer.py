"""One consumer process: read a batch, run the handlers, commit acks, replies, retries and dead
letters in one MULTI per batch.

Order of one loop turn: check the parent, move due retries back, reclaim idle entries of dead
consumers (XAUTOCLAIM), read new entries (XREADGROUP ``>``), run them, commit. At start the
consumer first drains its own pending entries (XREADGROUP ``0``), left by a crash of the same
name.

Redis 8.x commands, detected at connect (``INFO server``; Valkey has none of them):

- 8.2 ``XACKDEL``: ack and delete in one command (else XACK + XDEL in the same MULTI);
- 8.4 ``XREADGROUP … CLAIM <visibility timeout>``: the read also returns entries idle past
  the visibility timeout (their consumer died), with their delivery count, so the XAUTOCLAIM
  pass is skipped. Lease extension resets the idle time of live entries, so a live long task
  is never claimed;
- 8.8 ``XNACK … SILENT``: on graceful shutdown, entries read but not started are released at
  once (their delivery count restored) instead of finishing the whole batch.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import time
from dataclasses import dataclass, field
from typing import Any

from ..app import App, Context
from ..errors import BadRequest, Remote, TandemError, error_to_wire
from . import fields as wire
from .lease import Lease
from .scripts import MOVE_DUE
from .settings import ConsumerSettings

log = logging.getLogger("tandem.consume")

Entry = tuple[bytes, dict[bytes, bytes] | None]

# On Redis 8.4+ (XREADGROUP CLAIM), the XAUTOCLAIM pass runs every this many reclaim intervals.
_CLEANUP_EVERY = 12


@dataclass
class _Batch:
    """What one batch commits in a single MULTI."""

    ack: list[bytes] = field(default_factory=list)
    replies: list[tuple[str, dict[str, bytes]]] = field(default_factory=list)
    dead: list[dict[bytes, bytes]] = field(default_factory=list)
    retries: list[tuple[float, bytes]] = field(default_factory=list)
    done_keys: list[str] = field(default_factory=list)


def _parse_read(resp: Any, **_options: Any) -> Any:
    """XREADGROUP reply parser that keeps what redis-py's drops: the delivery count of an
    entry claimed by ``CLAIM`` (with CLAIM every entry is ``[id, fields, idle ms, deliveries
    before this one]``; a new entry has 0 there)."""
    if not resp:
        return []
    out = []
    streams = resp.items() if isinstance(resp, dict) else resp  # a map with some parsers
    for stream, raw in streams:
        entries = []
        for item in raw:
            flds = item[1]
            fields = dict(zip(flds[::2], flds[1::2], strict=False)) if flds else None
            # With CLAIM every entry has 4 elements; a new one has had 0 deliveries before.
            before = int(item[3]) if len(item) >= 4 else 0
            delivered = before + 1 if before > 0 else None
            entries.append((item[0], fields, delivered))
        out.append((stream, entries))
    return out


def _stream_entries(resp: Any) -> tuple[list[Entry], dict[bytes, int]]:
    """The entries of a read, and the delivery counts of those claimed by ``CLAIM``."""
    out: list[Entry] = []
    counts: dict[bytes, int] = {}
    for _stream, entries in resp or []:
        for eid, flds, delivered in entries:
            out.append((eid, flds or None))
            if delivered is not None:
                counts[eid] = delivered
    return out, counts


class Consumer:
    """A Redis Streams consumer serving one App in this process.

    :param app: the App whose handlers run the tasks.
    :param settings: the options; see :class:`ConsumerSettings`.
    :param index: this process's index (its name is ``<settings.name>-<index>``).
    """

    def __init__(self, app: App, settings: ConsumerSettings, index: int = 0) -> None:
        self.app = app
        self.s = settings
        self.name = settings.consumer_name(index)
        self._stop = asyncio.Event()
        self._signals = 0
        self._parent = os.getppid()
        self._r: Any = None
        self._ackdel = False
        self._claim = False
        self._xnack = False
        self._sem = asyncio.Semaphore(settings.concurrency)
        self._lease = Lease(
            settings.redis_url, settings.stream, settings.group, self.name, settings.lease_every_s
        )
        self._next_reclaim = 0.0
        self._reclaims = 1  # the first cleanup pass comes after _CLEANUP_EVERY intervals
        self._move_due: Any = None
        self.handled = 0
        self.metrics: Any = None  # a telemetry.QueueMetrics with --metrics-port

    # ----- lifecycle ----------------------------------------------------------------------

    def stop(self) -> None:
        """Asks the loop to stop after the batch in flight (graceful)."""
        self._stop.set()

    def _on_signal(self) -> None:
        log.info("consumer %s: stopping after the tasks in flight", self.name)
        self._stop.set()

    async def run(self) -> None:
        """Serves until :meth:`stop` (or SIGTERM/SIGINT), then returns."""
        try:
            import redis.asyncio as aioredis
        except ImportError as exc:
            raise RuntimeError(
                "the queue consumer needs redis: pip install 'tandem[redis]'"
            ) from exc
        loop = asyncio.get_running_loop()
        if self.s.handle_signals:
            # signal.signal, not loop.add_signal_handler: a sync handler runs inline and
            # blocks the loop, and a second SIGTERM must still exit at once.
            def on_signal(_signum: int, _frame: object) -> None:
                self._signals += 1
                if self._signals > 1:
                    os._exit(1)  # in-flight entries stay pending and are redelivered
                loop.call_soon_threadsafe(self._on_signal)

            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, on_signal)
        self._r = aioredis.Redis.from_url(self.s.redis_url, health_check_interval=10)
        self._r.set_response_callback("XREADGROUP", _parse_read)
        self._move_due = self._r.register_script(MOVE_DUE)
        await self.app.astartup()
        self._lease.start()
        try:
            await self._connect()
            await self._drain_own_pending()
            while not self._stop.is_set():
                if os.getppid() != self._parent:
                    log.warning("consumer %s: parent exited, stopping", self.name)
                    break
                await self._turn()
        finally:
            self._lease.stop()
            await self.app.ashutdown()
            await self._r.aclose()

    async def _connect(self) -> None:
        import redis

        delay = 0.05
        while not self._stop.is_set():
            try:
                await self._ensure_group()
                info = await self._r.info("server")
                valkey = "valkey" in str(info.get("server_name", "")).lower()
                version = _version(str(info.get("redis_version", "0")))
                redis8 = (0,) if valkey else version
                self._ackdel = redis8 >= (8, 2)
                self._claim = redis8 >= (8, 4)
                self._xnack = redis8 >= (8, 8)
                log.debug(
                    "consumer %s: redis %s: XACKDEL %s, XREADGROUP CLAIM %s, XNACK %s",
                    self.name,
                    ".".join(map(str, version)),
                    self._ackdel,
                    self._claim,
                    self._xnack,
                )
                return
            except redis.ConnectionError as exc:
                log.warning("consumer %s: redis unreachable (%s), retrying", self.name, exc)
                await self._sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _ensure_group(self) -> None:
        import redis

        try:
            await self._r.xgroup_create(self.s.stream, self.s.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stop.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    # ----- one turn -----------------------------------------------------------------------

    async def _turn(self) -> None:
        import redis

        try:
            now = time.monotonic()
            if now >= self._next_reclaim:
                self._next_reclaim = now + self.s.reclaim_interval_s
                await self._move_due(
                    keys=[wire.delayed_key(self.s.stream), self.s.stream],
                    args=[wire.now_ms(), 1000],
                )
                # With CLAIM the read takes over idle entries, but it skips (and keeps) the
                # pending references of entries deleted meanwhile; an XAUTOCLAIM pass every
                # _CLEANUP_EVERY reclaim intervals removes those.
                if not self._claim or self._reclaims % _CLEANUP_EVERY == 0:
                    await self._reclaim()
                self._reclaims += 1
            entries, counts = _stream_entries(await self._read_new())
            if counts:
                log.warning(
                    "consumer %s: took over %d idle entries (XREADGROUP CLAIM)",
                    self.name,
                    len(counts),
                )
            if entries:
                await self._process(entries, counts)
        except redis.ConnectionError as exc:
            log.warning("consumer %s: redis connection lost (%s), reconnecting", self.name, exc)
            await self._sleep(0.2)
            await self._connect()
            await self._drain_own_pending()  # a commit lost with the connection
        except redis.ResponseError as exc:
            if "NOGROUP" in str(exc):
                log.warning("consumer %s: group missing (%s), recreating", self.name, exc)
                await self._connect()
            else:
                log.error("consumer %s: redis refused a command: %s", self.name, exc)
                await self._sleep(1.0)

    async def _read_new(self) -> Any:
        """XREADGROUP ``>``; on Redis 8.4+ with ``CLAIM``, which also returns entries idle past
        the visibility timeout (the XAUTOCLAIM pass of older servers, in the same call)."""
        block = max(1, int(self.s.block_s * 1000))
        if not self._claim:
            return await self._r.xreadgroup(
                self.s.group, self.name, {self.s.stream: ">"}, count=self.s.batch, block=block
            )
        return await self._r.execute_command(
            "XREADGROUP",
            "GROUP",
            self.s.group,
            self.name,
            "COUNT",
            self.s.batch,
            "BLOCK",
            block,
            "CLAIM",
            int(self.s.visibility_timeout_s * 1000),
            "STREAMS",
            self.s.stream,
            ">",
        )

    async def _delivery_counts(self, ids: list[bytes]) -> dict[bytes, int]:
        if not ids:
            return {}
        rows = await self._r.xpending_range(
            self.s.stream,
            self.s.group,
            min="-",
            max="+",
            count=len(ids) + 1000,
            consumername=self.name,
        )
        wanted = set(ids)
        return {
            r["message_id"]: int(r["times_delivered"]) for r in rows if r["message_id"] in wanted
        }

    async def _drain_own_pending(self) -> None:
        """Re-runs what this consumer name had in flight when it last died."""
        import redis

        start = b"0"
        while not self._stop.is_set():
            try:
                # One at a time: a read counts a delivery, and if one entry of the batch
                # that was in flight at the crash is a poison message, its neighbours must
                # not use up their deliveries with it.
                resp = await self._r.xreadgroup(
                    self.s.group, self.name, {self.s.stream: start}, count=1
                )
            except redis.ConnectionError:
                await self._sleep(0.2)
                continue
            entries, _ = _stream_entries(resp)
            if not entries:
                return
            log.info("consumer %s: re-running %d pending entries", self.name, len(entries))
            counts = await self._delivery_counts([e for e, _ in entries])
            await self._process(entries, counts)
            start = entries[-1][0]

    async def _reclaim(self) -> None:
        """Takes over entries idle past the visibility timeout (their consumer died)."""
        cursor: bytes | str = "0-0"
        for _ in range(10):
            resp = await self._r.xautoclaim(
                self.s.stream,
                self.s.group,
                self.name,
                min_idle_time=int(self.s.visibility_timeout_s * 1000),
                start_id=cursor,
                count=self.s.batch,
            )
            cursor = resp[0]
            entries: list[Entry] = [(eid, flds or None) for eid, flds in resp[1]]
            if entries:
                log.warning(
                    "consumer %s: took over %d idle entries (XAUTOCLAIM)", self.name, len(entries)
                )
                counts = await self._delivery_counts([e for e, _ in entries])
                await self._process(entries, counts)
            if cursor in (b"0-0", "0-0"):
                return

    # ----- running tasks ------------------------------------------------------------------

    async def _process(self, entries: list[Entry], counts: dict[bytes, int]) -> None:
        ids = [eid for eid, _ in entries]
        self._lease.add(ids)
        batch = _Batch()
        released: list[bytes] = []
        try:
            concurrent = []
            for eid, flds in entries:
                if self._xnack and self._stop.is_set():
                    released.append(eid)  # not started: hand back at once (XNACK SILENT)
                    continue
                run = self._one(batch, eid, flds, counts.get(eid, 1))
                if self._is_async(flds):
                    concurrent.append(run)
                else:
                    await run  # sync handler or bad entry: no task, no thread hop
            if concurrent:
                await asyncio.gather(*concurrent)
            await self._commit(batch)
            if released:
                await self._release(released)
        finally:
            self._lease.discard(ids)

    async def _release(self, ids: list[bytes]) -> None:
        """Redis 8.8+: gives entries read but not started back to the group on graceful
        shutdown, with their delivery count restored, so another consumer gets them at once
        (older servers: the batch is finished instead)."""
        s = self.s
        await self._r.execute_command("XNACK", s.stream, s.group, "SILENT", "IDS", len(ids), *ids)
        log.info("consumer %s: released %d entries not started (XNACK)", self.name, len(ids))

    def _is_async(self, flds: dict[bytes, bytes] | None) -> bool:
        method = flds.get(b"method") if flds else None
        reg = self.app._handlers.get(method.decode(errors="replace")) if method else None
        return bool(reg and reg.is_async)

    async def _one(
        self, batch: _Batch, eid: bytes, flds: dict[bytes, bytes] | None, delivered: int
    ) -> None:
        if flds is None:  # deleted while pending: only its PEL reference is left
            batch.ack.append(eid)
            return
        try:
            task = wire.decode_task(flds)
        except wire.MalformedTask as exc:
            log.error("consumer %s: malformed entry %s: %s", self.name, eid.decode(), exc)
            err = {"kind": "protocol", "type": "tandem.MalformedTask", "message": str(exc)}
            self._dead(batch, eid, flds, "malformed", err, delivered)
            return
        attempts = task.attempt + delivered - 1
        if attempts > self.s.max_deliveries:
            msg = (
                f"delivered {attempts} times without an ack (max_deliveries "
                f"{self.s.max_deliveries}): its consumers died or were killed while handling it"
            )
            err = {"kind": "remote", "type": "tandem.MaxDeliveries", "message": msg}
            self._dead(batch, eid, flds, "max_deliveries", err, attempts, task)
            return
        if task.idempotency_key and self.s.dedup_ttl_s:
            key = wire.done_key(self.s.stream, task.idempotency_key)
            if await self._r.exists(key):
                log.info("task %s: key %s already done, skipping", task.id, task.idempotency_key)
                batch.ack.append(eid)
                return
        ctx = Context(
            task.method,
            deadline=_monotonic_deadline(task.deadline_ms),
            metadata=task.headers,
            traceparent=task.traceparent,
            idempotency_key=task.idempotency_key,
            transport="queue",
            attempt=attempts,
        )
        try:
            data, codec = await self._call(task, ctx)
        except BadRequest as exc:
            self._count(task.method, "failed")
            self._dead(batch, eid, flds, "bad_request", error_to_wire(exc), attempts, task)
            return
        except TandemError as exc:
            self._failed(batch, eid, task, exc, attempts, flds)
            return
        except Exception as exc:  # a bug below the handler; never crash the loop on it
            self._failed(batch, eid, task, Remote.from_exception(exc), attempts, flds)
            return
        self.handled += 1
        self._count(task.method, "handled")
        batch.ack.append(eid)
        if task.reply_to:
            batch.replies.append((task.reply_to, wire.reply_ok(task.id, data, codec)))
        if task.idempotency_key and self.s.dedup_ttl_s:
            batch.done_keys.append(wire.done_key(self.s.stream, task.idempotency_key))

    def _count(self, method: str, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.count(method, outcome)

    async def _call(self, task: wire.Task, ctx: Context) -> tuple[bytes, str]:
        if self.metrics is None:
            return await self._run(task, ctx)
        with self.metrics.calls.time_call(task.method, transport="queue"):
            return await self._run(task, ctx)

    async def _run(self, task: wire.Task, ctx: Context) -> tuple[bytes, str]:
        reg = self.app._lookup(task.method)
        if not reg.is_async:
            # Sync handlers run inline: no thread hop, one at a time (the GIL would
            # serialize them anyway); the lease thread keeps their entries owned.
            return self.app.call(task.method, task.payload, task.codec, ctx)
        async with self._sem:
            return await self.app.acall(task.method, task.payload, task.codec, ctx)

    def _failed(
        self,
        batch: _Batch,
        eid: bytes,
        task: wire.Task,
        exc: TandemError,
        attempts: int,
        flds: dict[bytes, bytes],
    ) -> None:
        err = error_to_wire(exc)
        self._count(task.method, "failed")
        if attempts >= self.s.max_deliveries:
            log.error("task %s (%s) failed %d times, dead: %s", task.id, task.method, attempts, exc)
            self._dead(batch, eid, flds, "failed", err, attempts, task)
            return
        delay = min(self.s.retry_max_s, self.s.retry_base_s * 2 ** (attempts - 1))
        delay = random.uniform(delay / 2, delay)  # jitter: spread a burst of failures
        log.warning(
            "task %s (%s) attempt %d failed (%s), retrying in %.2fs",
            task.id,
            task.method,
            attempts,
            exc,
            delay,
        )
        import msgpack

        task.attempt = attempts + 1
        flat: list[bytes] = []
        for k, v in wire.encode_task(task).items():
            flat += [k.encode(), v]
        batch.retries.append(
            (wire.now_ms() + delay * 1000, msgpack.packb(flat, use_bin_type=False))
        )
        self._count(task.method, "retried")
        batch.ack.append(eid)

    def _dead(
        self,
        batch: _Batch,
        eid: bytes,
        flds: dict[bytes, bytes],
        reason: str,
        err: dict[str, str],
        attempts: int,
        task: wire.Task | None = None,
    ) -> None:
        self._count(task.method if task is not None else "other", "dead_lettered")
        batch.dead.append(
            wire.dead_letter(flds, entry_id=eid, reason=reason, wire=err, attempts=attempts)
        )
        batch.ack.append(eid)
        if task is not None and task.reply_to:
            batch.replies.append((task.reply_to, wire.reply_error(task.id, err)))

    async def _commit(self, batch: _Batch) -> None:
        """Writes replies, dead letters, retries and done markers, and acks, atomically."""
        if not batch.ack:
            return
        s = self.s
        pipe = self._r.pipeline(transaction=True)
        for stream, reply in batch.replies:
            pipe.xadd(stream, reply, maxlen=10_000, approximate=True)
            pipe.expire(stream, max(1, int(s.reply_ttl_s)))
        for dead in batch.dead:
            pipe.xadd(wire.dead_key(s.stream), dead)
        if batch.retries:
            pipe.zadd(wire.delayed_key(s.stream), {m: score for score, m in batch.retries})
        for key in batch.done_keys:
            pipe.set(key, b"1", ex=max(1, int(s.dedup_ttl_s or 1)), nx=True)
        if self._ackdel:
            pipe.execute_command("XACKDEL", s.stream, s.group, "IDS", len(batch.ack), *batch.ack)
        else:
            pipe.xack(s.stream, s.group, *batch.ack)
            pipe.xdel(s.stream, *batch.ack)
        results = await pipe.execute()
        if not self._ackdel:
            acked = results[-2]
            if acked != len(batch.ack):
                log.warning(
                    "consumer %s: acked %s of %d entries (the rest were taken over after a "
                    "lease loss, or already acked)",
                    self.name,
                    acked,
                    len(batch.ack),
                )


def _version(text: str) -> tuple[int, ...]:
    """``"7.0.15"`` → ``(7, 0, 15)`` (XACKDEL exists from Redis 8.2; not in Valkey)."""
    parts = []
    for p in text.split(".")[:3]:
        parts.append(int(p) if p.isdigit() else 0)
    return tuple(parts)


def _monotonic_deadline(deadline_ms: int | None) -> float | None:
    if deadline_ms is None:
        return None
    return time.monotonic() + (deadline_ms - wire.now_ms()) / 1000
