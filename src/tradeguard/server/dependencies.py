"""FastAPI dependencies: who is calling (``current_claims``) and may they (``require``).

They read what :class:`~tradeguard.server.middleware.GuardMiddleware` found; mounted without
the middleware they validate the bearer credential themselves through the facade's default
auth handler. Failures raise :class:`ProblemError`, which the service (or
:func:`install_problem_handlers` in your own app) turns into an RFC 9457 response: 401 with
``WWW-Authenticate`` when the credential is missing or bad, 403 when the role lacks the
permission or the account must first change its password / enrol MFA.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import Response

from tradeguard.auth import Claims, Permission
from tradeguard.auth.rbac import parse_permission
from tradeguard.errors import TradeguardError
from tradeguard.server.middleware import RequestContext, default_screen
from tradeguard.server.problems import bearer_challenge, problem, problem_for
from tradeguard.server.screen import Identity


class ProblemError(Exception):
    """Answer with a problem document (status, stable code, one sentence)."""

    def __init__(
        self, status: int, code: str, detail: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}


def request_context(request: Request) -> RequestContext | None:
    """What the guard middleware stored for this request, if it ran."""
    context = request.scope.get("state", {}).get("tradeguard")
    return context if isinstance(context, RequestContext) else None


def request_id(request: Request) -> str | None:
    """The request id the middleware assigned."""
    context = request_context(request)
    return context.request_id if context is not None else None


def identity(request: Request) -> Identity:
    """The guard's identity for this request (computed here when no middleware ran)."""
    context = request_context(request)
    if context is not None:
        return context.identity
    peer = request.client.host if request.client else "0.0.0.0"  # noqa: S104
    return default_screen().identify(request.headers.get("authorization"), peer)


_GATE_EXEMPT = ("/v1/auth/",)


async def current_claims(request: Request) -> Claims:
    """The caller's validated claims; 401 (with ``WWW-Authenticate``) otherwise."""
    who = identity(request)
    if who.claims is None:
        if who.auth_error is None:
            raise ProblemError(401, "AUTHENTICATION_REQUIRED",
                               "send Authorization: Bearer <access token or API key>",
                               bearer_challenge("invalid_request"))  # fmt: skip
        raise ProblemError(401, "INVALID_TOKEN",
                           "the bearer token is missing, malformed, expired or revoked",
                           bearer_challenge())  # fmt: skip
    gate = getattr(request.app.state, "account_gate", None)
    if gate is not None and not request.scope["path"].startswith(_GATE_EXEMPT):
        outstanding = await gate(who.claims)
        if outstanding is not None:
            raise ProblemError(403, *outstanding)
    return who.claims


def require(permission: Permission | str) -> Callable[[Request], Awaitable[Claims]]:
    """A dependency that passes only callers whose role holds ``permission`` (403 else)."""
    needed = parse_permission(permission)

    async def dependency(request: Request) -> Claims:
        claims = await current_claims(request)
        if needed not in claims.permissions:
            raise ProblemError(
                403, "FORBIDDEN", f"the {claims.role.value} role lacks {needed.value}"
            )
        return claims

    dependency.__name__ = f"require_{needed.name.lower()}"
    return dependency


def install_problem_handlers(app: FastAPI) -> None:
    """Answer ``ProblemError``, tradeguard errors, request validation and crashes (a bare
    500, nothing of the exception) as problem+json."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    async def on_problem(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, ProblemError):  # registered for ProblemError only
            raise exc
        return problem(exc.status, exc.code, exc.detail, request_id=request_id(request),
                       headers=exc.headers)  # fmt: skip

    async def on_error(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, TradeguardError):  # registered for TradeguardError only
            raise exc
        return problem_for(exc, request_id=request_id(request))

    async def on_invalid(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, RequestValidationError):  # registered for it only
            raise exc
        return invalid_request(request, exc.errors())

    async def on_http(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, HTTPException):  # registered for HTTPException only
            raise exc
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "HTTP_ERROR")
        return problem(exc.status_code, code, _http_detail(exc.status_code),
                       request_id=request_id(request), headers=dict(exc.headers or {}))  # fmt: skip

    async def on_crash(request: Request, exc: Exception) -> Response:
        # Starlette's ServerErrorMiddleware sends this, then re-raises for the log
        return problem(500, "INTERNAL_ERROR", "the request failed",
                       request_id=request_id(request))  # fmt: skip

    app.add_exception_handler(Exception, on_crash)
    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(TradeguardError, on_error)
    app.add_exception_handler(RequestValidationError, on_invalid)
    app.add_exception_handler(HTTPException, on_http)


def invalid_request(request: Request, errors: Any) -> Response:
    """422: where the body or parameters fail the schema (never the values sent)."""
    return problem(422, "INVALID_REQUEST", "the request does not match the schema",
                   request_id=request_id(request), errors=locations(errors))  # fmt: skip


def locations(errors: Any) -> list[dict[str, Any]]:
    """Where and what kind of schema error, never the input value (it may be a secret)."""
    found: list[dict[str, Any]] = []
    for error in list(errors)[:20]:
        loc = [_shown_loc(part) for part in error.get("loc", ())]
        found.append({"loc": loc, "type": str(error.get("type", ""))[:64]})
    return found


_PLAIN_LOC = re.compile(r"[A-Za-z0-9_-]{1,64}", re.ASCII)


def _shown_loc(part: object) -> str | int:
    """A location segment; a JSON key that is not a plain name (caller's text) shows as ``*``."""
    if isinstance(part, int):
        return part
    text = str(part)
    return text if _PLAIN_LOC.fullmatch(text) else "*"


def _http_detail(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "error"
