"""``GuardMiddleware``: the request guard as pure ASGI middleware, for any Starlette/FastAPI app.

::

    from fastapi import Depends, FastAPI
    from tradeguard.server.dependencies import current_claims, require
    from tradeguard.server.middleware import GuardMiddleware

    app = FastAPI()
    app.add_middleware(GuardMiddleware)          # tradeguard's default validator and auth

    @app.post("/orders", dependencies=[Depends(require("orders:submit"))])
    def submit(claims=Depends(current_claims)): ...

Every response gets security headers and an ``X-Request-ID``; a refusal is an RFC 9457
problem document naming a stable code, never the offending value; an unexpected error is a
bare 500 problem (the trace goes to the log, not the client).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tradeguard.logs import get_logger
from tradeguard.server.deadlines import BodyDeadlines
from tradeguard.server.problems import problem_body
from tradeguard.server.screen import Identity, Refusal, Screen

_log = get_logger("tradeguard.server")
_stdlib_log = logging.getLogger("tradeguard.server")

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"geolocation=(), camera=(), microphone=()"),
)
_HSTS = (b"strict-transport-security", b"max-age=63072000; includeSubDomains")
INLINE_BODY_BYTES = 16 * 1024
HotRoute = Callable[[Request, Any], Awaitable[Response]]
"""A route answered right after the guard, given the request and its parsed JSON body."""


def _request_ids() -> itertools.count[int]:
    return itertools.count(int.from_bytes(os.urandom(6), "big") << 16)


# A random start, then a counter: unique per process without a system call per request
# (os.urandom releases the GIL, and reacquiring it behind a busy audit writer thread can
# cost a whole switch interval).
_next_id = _request_ids()


class RequestContext:
    """What the guard learnt about a request, at ``request.state.tradeguard``."""

    __slots__ = ("identity", "request_id")

    def __init__(self, identity: Identity, request_id: str) -> None:
        self.identity = identity
        self.request_id = request_id


def default_screen() -> Screen:
    """A screen over the facade's default validator and auth handler."""
    from tradeguard.facade import get_auth_handler, get_validator

    return Screen(get_validator(), get_auth_handler)


class GuardMiddleware:
    """Ban → size → rate limit → inspection before the app sees a request.

    ``inline`` runs the guard's synchronous decisions on the event loop for small bodies
    (microseconds with the in-process limiter); set it False when they may block (a Redis
    limiter, a network database) and they run in a worker thread instead.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        screen: Screen | Callable[[], Screen] | None = None,
        inline: bool = True,
        body_timeout: float = 15.0,
        hot_routes: Mapping[tuple[str, str], HotRoute] | None = None,
    ) -> None:
        self.app = app
        self._screen = screen or default_screen
        self._built: Screen | None = screen if isinstance(screen, Screen) else None
        self.inline = inline
        self.body_timeout = body_timeout
        self.hot_routes = dict(hot_routes or {})
        self._deadlines: BodyDeadlines | None = None

    @property
    def screen(self) -> Screen:
        """The screen in use (built on first request when given as a factory)."""
        if self._built is None:
            factory = self._screen
            self._built = factory if isinstance(factory, Screen) else factory()
        return self._built

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = f"{next(_next_id) & 0xFFFFFFFFFFFFFFFF:016x}"
        status = [0]
        send = _decorated(send, request_id, scope.get("scheme") == "https", status)
        try:
            await self._guarded(scope, receive, send, request_id)
        except Exception:
            _log.exception("request_failed", request_id=request_id)
            if status[0] == 0:
                await _answer(send, Refusal(500, "INTERNAL_ERROR", "the request failed"),
                              request_id)  # fmt: skip
        finally:
            # refusals and errors always; a successful request only at DEBUG (a log line
            # costs more than the whole guard; security decisions are in the audit trail)
            if status[0] >= 400 or _stdlib_log.isEnabledFor(logging.DEBUG):
                _log.log(
                    logging.INFO if status[0] >= 400 else logging.DEBUG, "request",
                    request_id=request_id, method=scope.get("method"),
                    path=scope.get("path", "")[:200], status=status[0],
                    ms=round((time.perf_counter() - started) * 1000, 2),
                )  # fmt: skip

    async def _guarded(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        screen = self.screen
        headers = _headers(scope)
        peer = scope["client"][0] if scope.get("client") else "0.0.0.0"  # noqa: S104
        ip, refusal = screen.before_body(peer, headers)
        if refusal is not None:
            await _answer(send, refusal, request_id)
            return
        body = await self._read_body(receive, screen.limits.max_body_bytes)
        if isinstance(body, Refusal):
            await _answer(send, body, request_id)
            return
        query = scope.get("query_string", b"").decode("latin-1")
        path = scope.get("raw_path", scope["path"].encode()).decode("latin-1").split("?", 1)[0]
        args = (scope["method"], path, query, headers, body, ip)
        if self.inline and len(body) <= INLINE_BODY_BYTES:
            identity, refusal = screen.after_body(*args)
        else:
            identity, refusal = await anyio.to_thread.run_sync(screen.after_body, *args)
        if refusal is not None:
            await _answer(send, refusal, request_id)
            return
        scope.setdefault("state", {})["tradeguard"] = RequestContext(identity, request_id)
        hot = self.hot_routes.get((scope["method"], scope["path"])) if self.hot_routes else None
        if hot is not None:
            response = await hot(Request(scope, _replay(body, receive)), identity.json)
            await response(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read_body(self, receive: Receive, limit: int) -> bytes | Refusal:
        deadlines = self._deadlines
        if deadlines is None or deadlines.timeout != self.body_timeout:
            deadlines = self._deadlines = BodyDeadlines(self.body_timeout)
        task = deadlines.start()
        try:
            return await _receive_body(receive, limit)
        except asyncio.CancelledError:
            if deadlines.finish(task):
                return Refusal(408, "REQUEST_TIMEOUT", "the request body arrived too slowly")
            raise
        finally:
            deadlines.finish(task)


async def _receive_body(receive: Receive, limit: int) -> bytes | Refusal:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return Refusal(400, "CLIENT_DISCONNECTED", "the client went away")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return Refusal(413, "BODY_TOO_LARGE",
                           "the request body is larger than the service accepts")  # fmt: skip
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _headers(scope: Scope) -> dict[str, str]:
    merged: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        merged[name] = f"{merged[name]},{value}" if name in merged else value
    return merged


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _decorated(send: Send, request_id: str, https: bool, status: list[int]) -> Send:
    extra = [*SECURITY_HEADERS, (b"x-request-id", request_id.encode())]
    if https:
        extra.append(_HSTS)

    async def decorated(message: Message) -> None:
        if message["type"] == "http.response.start":
            status[0] = message["status"]
            present = {name.lower() for name, _ in message.get("headers", ())}
            headers = list(message.get("headers", ()))
            headers.extend(pair for pair in extra if pair[0] not in present)
            message = {**message, "headers": headers}
        await send(message)

    return decorated


async def _answer(send: Send, refusal: Refusal, request_id: str) -> None:
    document = problem_body(
        refusal.status, refusal.code, refusal.detail, request_id=request_id, **refusal.extra
    )
    body = json.dumps(document, separators=(",", ":")).encode()
    headers: list[Any] = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
    ]
    headers.extend((k.lower().encode(), v.encode()) for k, v in refusal.headers.items())
    if refusal.status == 413:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
