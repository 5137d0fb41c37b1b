"""The App: a registry of named handlers that any transport serves.

::

    app = tandem.App("risk")

    @app.handler("score")
    def score(payload, ctx):
        return {"risk": 0.03}

    @app.handler("enrich")
    async def enrich(payload, ctx):
        ...

A handler takes the decoded payload and, if it accepts a second argument, a :class:`Context`.
Transports call :meth:`App.call` (sync loops) or :meth:`App.acall` (asyncio servers) with the
encoded bytes; both decode, run the handler, and encode the answer, raising a
:class:`~tandem.errors.TandemError` on failure.

Where a sync handler runs on an asyncio server (:meth:`App.acall`) is the ``blocking`` flag of
:meth:`App.handler`: ``True`` runs it in a worker thread (it does I/O or may take long: the event
loop, with its health checks and other calls, keeps going); ``False`` runs it on the event loop
(it is quick: no thread hop per call); ``None`` (the default) lets the transport decide. The
plugin runs such handlers inline and moves one to the thread pool, with a warning, the first time
it holds the loop longer than its budget; other transports use the thread pool.
"""

from __future__ import annotations

import enum
import inspect
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar

from . import _codec
from .errors import BadRequest, Remote, TandemError, Timeout

if TYPE_CHECKING:
    import asyncio

__all__ = ["App", "AppState", "Context", "Handler"]

_log = logging.getLogger("tandem.app")

# Results that cannot be awaitable: checked before the slower inspect.isawaitable.
_PLAIN = frozenset({dict, list, str, bytes, int, float, bool, type(None), tuple})

Handler = Callable[..., Any]
F = TypeVar("F", bound=Handler)
Hook = Callable[[], Any]


@dataclass
class Context:
    """What a handler knows about its call.

    :param method: the handler's registered name.
    :param deadline: ``time.monotonic()`` value after which the caller stops waiting, or None.
    :param metadata: free headers sent by the caller.
    :param traceparent: the caller's W3C ``traceparent``, or None.
    :param idempotency_key: the logical call's idempotency key, or None.
    :param transport: which transport delivered the call (``pool``, ``plugin``, ``grpc``, ...).
    :param attempt: the delivery attempt, 1 for the first (queue retries count up).
    """

    method: str
    deadline: float | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    traceparent: str | None = None
    idempotency_key: str | None = None
    transport: str = "local"
    attempt: int = 1

    @property
    def logger(self) -> logging.LoggerAdapter[logging.Logger]:
        """A ``tandem.handler`` logger that tags records with the method, transport and trace.

        Built on first use: most calls never log, and a context is made for every call.
        """
        adapter: logging.LoggerAdapter[logging.Logger] | None = self.__dict__.get("_logger")
        if adapter is None:
            extra: dict[str, object] = {"method": self.method, "transport": self.transport}
            if self.traceparent:
                extra["traceparent"] = self.traceparent
            adapter = logging.LoggerAdapter(logging.getLogger("tandem.handler"), extra)
            self.__dict__["_logger"] = adapter
        return adapter

    @classmethod
    def with_timeout(cls, method: str, timeout_s: float | None, **kwargs: Any) -> Context:
        """A context whose deadline is ``timeout_s`` seconds from now (None: no deadline)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        return cls(method, deadline, **kwargs)

    def remaining(self) -> float | None:
        """Seconds left before the deadline (0.0 once passed), or None without a deadline."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.monotonic())

    @property
    def expired(self) -> bool:
        """Whether the deadline has passed."""
        return self.deadline is not None and time.monotonic() >= self.deadline


class AppState(enum.Enum):
    """An App's lifecycle: NEW → STARTED (startup hooks ran) → CLOSED (shutdown hooks ran)."""

    NEW = "new"
    STARTED = "started"
    CLOSED = "closed"


@dataclass(frozen=True)
class _Registration:
    name: str
    fn: Handler
    is_async: bool
    takes_ctx: bool
    blocking: bool | None = None


def _takes_ctx(fn: Handler) -> bool:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return True
    positional = [
        p
        for p in params
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    has_varargs = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params)
    return has_varargs or len(positional) >= 2


class App:
    """A named registry of handlers, served by any tandem transport.

    :param name: the app's name, used in logs and metrics.
    :param otel: run every call in an OpenTelemetry server span, child of the call's
        ``traceparent`` (needs ``tandem[otel]``); default: ``TANDEM_OTEL=1`` in the environment.
    """

    def __init__(self, name: str, *, otel: bool | None = None) -> None:
        from . import _otel

        self.name = name
        self._otel = _otel.enabled_by_env() if otel is None else otel
        self._handlers: dict[str, _Registration] = {}
        self._on_startup: list[Hook] = []
        self._on_shutdown: list[Hook] = []
        self._state = AppState.NEW
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"App({self.name!r}, methods={self.methods()}, state={self._state.value})"

    # ----- registration -------------------------------------------------------------------

    def handler(self, name: str | None = None, *, blocking: bool | None = None) -> Callable[[F], F]:
        """Registers the decorated function (sync or ``async def``) under ``name``.

        The name defaults to the function's ``__name__``. Registering a name twice is an error.

        :param blocking: for a sync handler served by an asyncio transport (plugin, grpc,
            queue): ``True`` if it blocks (network or disk I/O, sleeps, long computations), so it
            runs in a worker thread and never stalls the event loop; ``False`` if it is quick, so
            it runs on the event loop without a thread hop; ``None`` lets the transport decide
            (see the module docs). Ignored for ``async def`` handlers and by sync transports.
        """

        def register(fn: F) -> F:
            method = name or fn.__name__
            if not method:
                raise ValueError("a handler needs a non-empty name")
            if method in self._handlers:
                raise ValueError(f"app {self.name!r} already has a handler named {method!r}")
            self._handlers[method] = _Registration(
                method, fn, inspect.iscoroutinefunction(fn), _takes_ctx(fn), blocking
            )
            return fn

        return register

    def on_startup(self, fn: Hook) -> Hook:
        """Registers a hook (sync or async) run once before the first call: load models here."""
        self._on_startup.append(fn)
        return fn

    def on_shutdown(self, fn: Hook) -> Hook:
        """Registers a hook (sync or async) run once when the transport stops."""
        self._on_shutdown.append(fn)
        return fn

    def methods(self) -> list[str]:
        """The registered method names, sorted."""
        return sorted(self._handlers)

    @property
    def state(self) -> AppState:
        """The lifecycle state."""
        return self._state

    # ----- lifecycle ----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._state is AppState.CLOSED:
            raise RuntimeError(
                f"app {self.name!r} is closed: its shutdown hooks ran; create a new App to serve again"
            )

    def startup(self) -> None:
        """Runs the startup hooks once (sync callers). Idempotent."""
        self._check_open()
        if self._state is AppState.NEW:
            for hook in self._on_startup:
                self._run_sync(hook())
            self._state = AppState.STARTED

    async def astartup(self) -> None:
        """Runs the startup hooks once (async callers). Idempotent."""
        self._check_open()
        if self._state is AppState.NEW:
            for hook in self._on_startup:
                result = hook()
                if inspect.isawaitable(result):
                    await result
            self._state = AppState.STARTED

    def shutdown(self) -> None:
        """Runs the shutdown hooks once and closes the app (sync callers). Idempotent."""
        if self._state is AppState.CLOSED:
            return
        try:
            if self._state is AppState.STARTED:
                for hook in self._on_shutdown:
                    self._run_sync(hook())
        finally:
            self._state = AppState.CLOSED
            if self._loop is not None:
                self._loop.close()
                self._loop = None

    async def ashutdown(self) -> None:
        """Runs the shutdown hooks once and closes the app (async callers). Idempotent."""
        if self._state is AppState.CLOSED:
            return
        try:
            if self._state is AppState.STARTED:
                for hook in self._on_shutdown:
                    result = hook()
                    if inspect.isawaitable(result):
                        await result
        finally:
            self._state = AppState.CLOSED

    def _run_sync(self, result: Any) -> Any:
        if type(result) in _PLAIN or not inspect.isawaitable(result):
            return result
        if self._loop is None:
            import asyncio  # lazily: asyncio costs ~70 ms of start-up, and sync apps never need it

            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(_as_coroutine(result))

    # ----- dispatch -----------------------------------------------------------------------

    def _move_to_threads(self, reg: _Registration, held_s: float, budget_s: float) -> None:
        """Runs ``reg`` in worker threads from now on: it held the event loop past its budget."""
        self._handlers[reg.name] = replace(reg, blocking=True)
        _log.warning(
            "handler %r of app %r held the event loop for %.1f ms (budget %.1f ms): health "
            "checks and other calls waited; its later calls run in a worker thread. Register it "
            "with @app.handler(%r, blocking=True) to start there, or blocking=False to keep it "
            "inline",
            reg.name,
            self.name,
            held_s * 1e3,
            budget_s * 1e3,
            reg.name,
        )

    def _lookup(self, method: str) -> _Registration:
        reg = self._handlers.get(method)
        if reg is None:
            known = ", ".join(self.methods()) or "none"
            raise BadRequest(f"app {self.name!r} has no handler {method!r} (registered: {known})")
        return reg

    @staticmethod
    def _decode(method: str, codec: str, data: bytes) -> Any:
        try:
            return _codec.decode(codec, data)
        except _codec.CodecError as exc:
            raise BadRequest(f"payload for {method!r} does not decode: {exc}") from exc

    @staticmethod
    def _encode(method: str, codec: str, value: Any) -> tuple[bytes, str]:
        out_codec = _codec.reply_codec(codec, value)
        try:
            return _codec.encode(out_codec, value), out_codec
        except _codec.CodecError as exc:
            raise Remote(
                "tandem.EncodeError", f"result of {method!r} cannot be sent as {out_codec}: {exc}"
            ) from exc

    def call(
        self, method: str, data: bytes, codec: str, ctx: Context | None = None
    ) -> tuple[bytes, str]:
        """Decodes, runs and encodes one call from a synchronous loop.

        ``async def`` handlers run on the app's own event loop.

        :returns: the encoded answer and its codec.
        :raises TandemError: BadRequest for an unknown method or undecodable payload; Remote
            when the handler raised (with its traceback).
        """
        ctx = ctx or Context(method)
        if self._otel:
            from ._otel import span

            with span(ctx):
                return self._call(method, data, codec, ctx)
        return self._call(method, data, codec, ctx)

    def _call(self, method: str, data: bytes, codec: str, ctx: Context) -> tuple[bytes, str]:
        # The pool worker's hot path: each helper call avoided here is ~0.1 µs per call.
        reg = self._handlers.get(method)
        if reg is None or self._state is AppState.CLOSED:
            self._check_open()
            reg = self._lookup(method)
        value = self._decode(method, codec, data)
        try:
            result = reg.fn(value, ctx) if reg.takes_ctx else reg.fn(value)
            if type(result) not in _PLAIN:
                result = self._run_sync(result)
        except TandemError:
            raise
        except Exception as exc:
            raise Remote.from_exception(exc) from exc
        return self._encode(method, codec, result)

    async def acall(
        self,
        method: str,
        data: bytes,
        codec: str,
        ctx: Context | None = None,
        *,
        inline_budget_s: float | None = None,
        timeout_s: float | None = None,
    ) -> tuple[bytes, str]:
        """Decodes, runs and encodes one call from an asyncio server.

        A sync handler runs in a worker thread, so that it does not block the event loop, unless
        it was registered with ``blocking=False`` or ``inline_budget_s`` is given.

        :param inline_budget_s: run sync handlers registered with ``blocking=None`` on the event
            loop; one that holds it longer than this many seconds is logged (a warning naming
            the fix) and runs in a worker thread from its next call on.
        :param timeout_s: answer :class:`~tandem.errors.Timeout` when an ``async def`` handler
            or one in a worker thread runs longer (the thread itself cannot be stopped). A
            handler running on the event loop cannot be interrupted: no timer is armed for it.
        :returns: the encoded answer and its codec.
        :raises TandemError: as :meth:`call`; Timeout past ``timeout_s``.
        """
        ctx = ctx or Context(method)
        if self._otel:
            from ._otel import span

            with span(ctx):
                return await self._acall(method, data, codec, ctx, inline_budget_s, timeout_s)
        return await self._acall(method, data, codec, ctx, inline_budget_s, timeout_s)

    async def _acall(
        self,
        method: str,
        data: bytes,
        codec: str,
        ctx: Context,
        inline_budget_s: float | None,
        timeout_s: float | None,
    ) -> tuple[bytes, str]:
        self._check_open()
        reg = self._lookup(method)
        value = self._decode(method, codec, data)
        args = (value, ctx) if reg.takes_ctx else (value,)
        try:
            if reg.is_async:
                result = await self._within(reg.fn(*args), timeout_s, method)
            elif reg.blocking is False or (reg.blocking is None and inline_budget_s is not None):
                started = time.perf_counter()
                result = reg.fn(*args)
                held = time.perf_counter() - started
                if reg.blocking is None and inline_budget_s is not None and held > inline_budget_s:
                    self._move_to_threads(reg, held, inline_budget_s)
                if inspect.isawaitable(result):
                    result = await result
            else:
                result = await self._within(_in_thread(reg.fn, args), timeout_s, method)
        except TandemError:
            raise
        except Exception as exc:
            raise Remote.from_exception(exc) from exc
        return self._encode(method, codec, result)

    async def _within(self, aw: Awaitable[Any], seconds: float | None, method: str) -> Any:
        """Awaits ``aw``, raising Timeout after ``seconds`` (None: no limit)."""
        if seconds is None:
            return await aw
        import asyncio

        try:
            if sys.version_info >= (3, 11):
                # a timer on the current task: no extra task per call
                async with asyncio.timeout(seconds) as scope:
                    return await aw
            return await asyncio.wait_for(aw, seconds)  # pragma: no cover - Python 3.10
        except asyncio.TimeoutError:
            if sys.version_info >= (3, 11) and not scope.expired():
                raise  # the handler's own TimeoutError (e.g. a socket's), not our deadline
            raise Timeout(
                f"handler {method!r} of app {self.name!r} did not finish within the caller's "
                f"deadline ({seconds:.3f}s)"
            ) from None


async def _in_thread(fn: Handler, args: tuple[Any, ...]) -> Any:
    """Runs a sync handler in a worker thread (awaiting what it returns, if awaitable)."""
    import asyncio

    result = await asyncio.to_thread(fn, *args)
    if inspect.isawaitable(result):
        result = await result
    return result


async def _as_coroutine(aw: Awaitable[Any]) -> Any:
    return await aw


for _public in (App, AppState, Context):
    _public.__module__ = "tandem"  # re-exported as tandem.<Name>
