"""An external-API adapter served as a go-plugin plugin: ``adapter.ExternalAdapter`` in Python.

The Rust core (or any go-plugin host) calls ``Call(method, endpoint, payload, headers)``; this
plugin makes the real HTTP request and answers ``(status_code, data, error)``. Run it with::

    python -m tandem plugin service:app --servicers service:servicers

Providers (picked with the ``x-adapter-provider`` request header, default ``json``):

* ``json``: sends the payload as ``application/json`` (rejects a payload that is not JSON);
* ``webhook``: signs the body with HMAC-SHA256 of ``"<unix-ts>.<body>"`` using
  ``ADAPTER_WEBHOOK_SECRET`` and sends ``X-Signature: t=<ts>,v1=<hex>``; receivers recompute it
  and reject stale timestamps.

Settings (environment): ``ADAPTER_TIMEOUT_S`` (default 10; the gRPC deadline shortens it),
``ADAPTER_ALLOWED_HOSTS`` (comma-separated; empty allows any), ``ADAPTER_WEBHOOK_SECRET``.

Sensitive headers (Authorization, cookies, API keys, tokens, the signature) and sensitive query
parameters never reach a log: :func:`redact_headers` and :func:`redact_url` replace their values.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import os
import threading
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import tandem
from tandem._proto import adapter_pb2, adapter_pb2_grpc

log = logging.getLogger("adapter")

PROVIDER_HEADER = "x-adapter-provider"
SIGNATURE_HEADER = "X-Signature"
REDACTED = "[redacted]"
_SENSITIVE_NAMES = {"authorization", "proxy-authorization", "cookie", "set-cookie"}
_SENSITIVE_PARTS = (
    "key",
    "token",
    "secret",
    "password",
    "signature",
    "auth",
    "session",
)
_MAX_IDLE_PER_HOST = 8


def _sensitive(name: str) -> bool:
    lower = name.lower()
    return lower in _SENSITIVE_NAMES or any(part in lower for part in _SENSITIVE_PARTS)


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """``headers`` with the values of sensitive ones replaced by ``[redacted]``."""
    return {k: (REDACTED if _sensitive(k) else v) for k, v in headers.items()}


def redact_url(url: str) -> str:
    """``url`` without userinfo and with sensitive query parameter values redacted."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    query = urllib.parse.urlencode(
        [
            (k, REDACTED if _sensitive(k) else v)
            for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        ],
        safe="[]",
    )
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, ""))


class AdapterError(Exception):
    """A request the adapter refuses or cannot complete; the message goes to the caller."""


@dataclass
class Prepared:
    """An outgoing request after the provider shaped it."""

    method: str
    url: str
    body: bytes
    headers: dict[str, str]


class JsonProvider:
    """Sends the payload as JSON and asks for JSON back."""

    name = "json"

    def prepare(self, method: str, url: str, body: bytes, headers: dict[str, str]) -> Prepared:
        if body:
            try:
                json.loads(body)
            except ValueError as exc:
                raise AdapterError(f"payload for {redact_url(url)} is not JSON: {exc}") from exc
        headers.setdefault("Content-Type", "application/json")
        headers.setdefault("Accept", "application/json")
        return Prepared(method, url, body, headers)


class WebhookProvider(JsonProvider):
    """JSON plus a timestamped HMAC-SHA256 signature of the body."""

    name = "webhook"

    def __init__(self, secret: bytes | None, clock: Any = time.time) -> None:
        self._secret = secret
        self._clock = clock

    def prepare(self, method: str, url: str, body: bytes, headers: dict[str, str]) -> Prepared:
        if not self._secret:
            raise AdapterError(
                "the webhook provider needs a signing secret: set ADAPTER_WEBHOOK_SECRET"
            )
        prepared = super().prepare(method, url, body, headers)
        ts = str(int(self._clock()))
        prepared.headers[SIGNATURE_HEADER] = f"t={ts},v1={sign(self._secret, ts, body)}"
        return prepared


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``"<timestamp>.<body>"`` (what receivers recompute)."""
    return hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class ConnectionPool:
    """Keep-alive ``http.client`` connections, reused per (scheme, host, port)."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, str, int], list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()

    def request(self, p: Prepared, timeout_s: float) -> tuple[int, bytes]:
        parts = urllib.parse.urlsplit(p.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise AdapterError(f"endpoint must be an http(s) URL, got {redact_url(p.url)!r}")
        key = (
            parts.scheme,
            parts.hostname,
            parts.port or (443 if parts.scheme == "https" else 80),
        )
        path = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
        for attempt in (1, 2):
            conn, reused = self._take(key, timeout_s)
            try:
                conn.request(p.method, path, body=p.body or None, headers=p.headers)
                resp = conn.getresponse()
                data = resp.read()
            except (
                http.client.RemoteDisconnected,
                BrokenPipeError,
                ConnectionResetError,
            ):
                conn.close()
                if reused and attempt == 1:
                    continue  # a stale keep-alive connection: retry once on a fresh one
                raise
            except BaseException:
                conn.close()
                raise
            if resp.will_close:
                conn.close()
            else:
                self._give(key, conn)
            return resp.status, data
        raise AssertionError("unreachable")

    def _take(
        self, key: tuple[str, str, int], timeout_s: float
    ) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            idle = self._idle.get(key)
            if idle:
                conn = idle.pop()
                conn.timeout = timeout_s
                if conn.sock is not None:
                    conn.sock.settimeout(timeout_s)
                return conn, True
        scheme, host, port = key
        cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
        return cls(host, port, timeout=timeout_s), False

    def _give(self, key: tuple[str, str, int], conn: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < _MAX_IDLE_PER_HOST:
                idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            for conns in self._idle.values():
                for conn in conns:
                    conn.close()
            self._idle.clear()


class Adapter(adapter_pb2_grpc.ExternalAdapterServicer):  # type: ignore[misc]
    """``adapter.ExternalAdapter``: one real HTTP call per ``Call``."""

    def __init__(
        self,
        *,
        timeout_s: float = 10.0,
        allowed_hosts: frozenset[str] = frozenset(),
        webhook_secret: bytes | None = None,
    ) -> None:
        self.timeout_s = timeout_s
        self.allowed_hosts = allowed_hosts
        self.pool = ConnectionPool()
        self.providers: dict[str, JsonProvider] = {
            p.name: p for p in (JsonProvider(), WebhookProvider(webhook_secret))
        }

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Adapter:
        hosts = {h.strip() for h in env.get("ADAPTER_ALLOWED_HOSTS", "").split(",") if h.strip()}
        secret = env.get("ADAPTER_WEBHOOK_SECRET", "")
        return cls(
            timeout_s=float(env.get("ADAPTER_TIMEOUT_S", "10")),
            allowed_hosts=frozenset(hosts),
            webhook_secret=secret.encode() if secret else None,
        )

    def Call(self, request: Any, context: Any) -> Any:
        started = time.monotonic()
        headers = dict(request.headers)
        provider_name = headers.pop(PROVIDER_HEADER, "json")
        method = (request.method or "POST").upper()
        safe_url = redact_url(request.endpoint)
        remaining = context.time_remaining() if context is not None else None
        timeout_s = (
            self.timeout_s if remaining is None else max(min(self.timeout_s, remaining), 0.001)
        )
        try:
            provider = self.providers.get(provider_name)
            if provider is None:
                raise AdapterError(
                    f"unknown provider {provider_name!r} (known: {', '.join(sorted(self.providers))})"
                )
            host = urllib.parse.urlsplit(request.endpoint).hostname or ""
            if self.allowed_hosts and host not in self.allowed_hosts:
                raise AdapterError(f"host {host!r} is not in ADAPTER_ALLOWED_HOSTS")
            prepared = provider.prepare(method, request.endpoint, bytes(request.payload), headers)
            status, data = self.pool.request(prepared, timeout_s)
        except AdapterError as exc:
            log.warning("call refused: %s", exc, extra={"method": method})
            return adapter_pb2.CallResponse(status_code=0, error=str(exc))
        except TimeoutError:
            error = f"{method} {safe_url} timed out after {timeout_s:.3f}s"
            log.warning("%s", error, extra={"method": method})
            return adapter_pb2.CallResponse(status_code=0, error=error)
        except (OSError, http.client.HTTPException) as exc:
            error = f"{method} {safe_url} failed: {type(exc).__name__}: {exc}"
            log.warning("%s", error, extra={"method": method})
            return adapter_pb2.CallResponse(status_code=0, error=error)
        log.info(
            "%s %s -> %d in %.1f ms headers=%s",
            method,
            safe_url,
            status,
            (time.monotonic() - started) * 1000,
            json.dumps(redact_headers(prepared.headers), sort_keys=True),
            extra={"method": method},
        )
        return adapter_pb2.CallResponse(status_code=status, data=data)

    def HealthCheck(self, request: Any, context: Any) -> Any:
        return adapter_pb2.HealthResponse(
            healthy=True, message=f"providers: {', '.join(sorted(self.providers))}"
        )


adapter = Adapter.from_env()

#: The App served through ``tandem.v1.Call`` (for hosts that use the generic call).
app = tandem.App("adapter")


@app.handler("call", blocking=True)  # real HTTP calls: keep them off the event loop
def call(payload: dict[str, Any], ctx: tandem.Context) -> dict[str, Any]:
    """Generic-call form: ``{"method", "endpoint", "payload" (JSON value), "headers"}``."""
    body = json.dumps(payload.get("payload")).encode() if "payload" in payload else b""
    req = adapter_pb2.CallRequest(
        method=payload.get("method", "POST"),
        endpoint=payload["endpoint"],
        payload=body,
        headers=payload.get("headers", {}),
    )
    resp = adapter.Call(req, None)
    return {
        "status_code": resp.status_code,
        "data": resp.data.decode(errors="replace"),
        "error": resp.error,
    }


@app.on_shutdown
def _close() -> None:
    adapter.pool.close()


def servicers() -> list[tuple[Any, Any]]:
    """The typed services for ``--servicers service:servicers``."""
    return [(adapter_pb2_grpc.add_ExternalAdapterServicer_to_server, adapter)]
