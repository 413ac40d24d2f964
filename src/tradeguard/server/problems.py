"""RFC 9457 problem documents: every error the service answers, and how errors map to them.

A problem never carries a stack trace, a secret or the offending input: ``detail`` is one of
our own sentences, ``code`` a stable machine-readable reason.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from starlette.responses import Response

from tradeguard.errors import (
    AccountLocked,
    AuthError,
    BackendUnavailable,
    ConfigurationError,
    InvalidCredentials,
    InvalidMFACode,
    InvalidSecretPath,
    InvalidSecretValue,
    InvalidUsername,
    MFARequired,
    PermissionDenied,
    RateLimitExceeded,
    SecretNotFound,
    TokenError,
    TokenReuseDetected,
    TradeguardError,
    UnknownRole,
    UserExists,
    UserNotFound,
    VersionConflict,
    WeakPassword,
)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://tradeguard.dev/problems/"


def problem_body(
    status: int, code: str, detail: str, *, request_id: str | None = None, **extra: Any
) -> dict[str, Any]:
    """The JSON members of a problem document."""
    body: dict[str, Any] = {
        "type": TYPE_BASE + code.lower().replace("_", "-"),
        "title": HTTPStatus(status).phrase,
        "status": status,
        "code": code,
        "detail": detail,
    }
    if request_id is not None:
        body["request_id"] = request_id
    body.update(extra)
    return body


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    request_id: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> Response:
    """A ``application/problem+json`` response."""
    body = problem_body(status, code, detail, request_id=request_id, **extra)
    return Response(
        json.dumps(body, separators=(",", ":")).encode(),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=dict(headers or {}),
    )


def retry_after(seconds: float) -> dict[str, str]:
    """The ``Retry-After`` header for a wait of ``seconds`` (whole seconds, at least 1)."""
    return {"Retry-After": str(max(1, int(seconds + 0.999)))}


def bearer_challenge(error: str = "invalid_token") -> dict[str, str]:
    """The ``WWW-Authenticate`` header of a 401 (RFC 6750)."""
    return {"WWW-Authenticate": f'Bearer realm="tradeguard", error="{error}"'}


# (exception class, status, code); the first match wins, so subclasses come first
_MAPPING: tuple[tuple[type[Exception], int, str], ...] = (
    (MFARequired, 401, "MFA_REQUIRED"),
    (InvalidMFACode, 401, "INVALID_MFA_CODE"),
    (AccountLocked, 429, "ACCOUNT_LOCKED"),
    (InvalidCredentials, 401, "INVALID_CREDENTIALS"),
    (TokenReuseDetected, 401, "REFRESH_TOKEN_REUSED"),
    (TokenError, 401, "INVALID_TOKEN"),
    (PermissionDenied, 403, "FORBIDDEN"),
    (WeakPassword, 422, "WEAK_PASSWORD"),
    (InvalidUsername, 422, "INVALID_USERNAME"),
    (UnknownRole, 422, "UNKNOWN_ROLE"),
    (UserExists, 409, "USER_EXISTS"),
    (UserNotFound, 404, "USER_NOT_FOUND"),
    (SecretNotFound, 404, "SECRET_NOT_FOUND"),
    (InvalidSecretPath, 422, "INVALID_SECRET_PATH"),
    (InvalidSecretValue, 422, "INVALID_SECRET_VALUE"),
    (VersionConflict, 409, "VERSION_CONFLICT"),
    (BackendUnavailable, 503, "BACKEND_UNAVAILABLE"),
    (RateLimitExceeded, 429, "RATE_LIMITED"),
    (ConfigurationError, 422, "INVALID_CONFIGURATION"),
    (AuthError, 400, "AUTH_ERROR"),
)

# Messages of these errors may name what the caller sent (a path, a username); they are
# our sentences, never a secret, but stay generic where the text could echo input.
_GENERIC = {
    "INVALID_TOKEN": "the bearer token is missing, malformed, expired or revoked",
    "INVALID_CREDENTIALS": "invalid username or password",
}


def problem_for(exc: TradeguardError, *, request_id: str | None = None) -> Response:
    """The problem response for an expected tradeguard error."""
    status, code = next(
        ((status, code) for kind, status, code in _MAPPING if isinstance(exc, kind)),
        (400, "REQUEST_FAILED"),
    )
    detail = _GENERIC.get(code) or _first_line(str(exc)) or HTTPStatus(status).phrase
    headers: dict[str, str] = {}
    if status == 401:
        headers.update(bearer_challenge())
    retry = getattr(exc, "retry_after", None)
    if isinstance(retry, int | float) and retry > 0:
        headers["Retry-After"] = str(int(retry) + 1)
    return problem(status, code, detail, request_id=request_id, headers=headers)


def _first_line(text: str) -> str:
    return " ".join(text.split())[:300]
