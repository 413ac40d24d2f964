"""The guard in front of every request, as plain synchronous decisions.

The order is fixed: IP ban → body size (from Content-Length before reading; the middleware
counts while streaming otherwise) → rate limit per identity and per IP → inspection of
path, query and JSON → authentication → permission. The first two stages run before the
body is read (:meth:`Screen.before_body`); the rest after (:meth:`Screen.after_body`).
Authentication only *identifies* here (the rate limit is per real user, not per claimed
one); the 401 itself comes from the ``current_claims`` dependency, after inspection.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tradeguard.auth import AuthHandler, Claims
from tradeguard.errors import TokenExpired, TokenInvalid, TradeguardError
from tradeguard.guard.request import RequestLimits, check_content_length
from tradeguard.guard.validator import SecurityValidator
from tradeguard.server.problems import retry_after

API_KEY_PREFIX = "tg_"
UNKNOWN_PEER = "0.0.0.0"  # noqa: S104 - a key for peers without an address, never bound
_CREDENTIAL_FIELDS = frozenset({
    "password", "old_password", "new_password", "current_password", "mfa_code", "code",
    "refresh_token", "token",
})  # fmt: skip


@functools.lru_cache(maxsize=4096)  # field paths repeat request after request
def opaque_credential(where: str) -> bool:
    """JSON leaves never interpolated anywhere (hashed, compared or encrypted): passwords,
    one-time codes, tokens, and the values of a secret (``data.<key>``)."""
    if where.endswith(" (key)"):
        return False
    if where.startswith("data."):
        return True
    return where.rsplit(".", 1)[-1] in _CREDENTIAL_FIELDS


_PLAIN_SEGMENT = re.compile(r"(?:[A-Za-z0-9_-]{1,64})?(?:\[[0-9]{1,9}\])*", re.ASCII)


def shown_field(where: str) -> str:
    """The field a refusal names, never the caller's text: a JSON key or query name that is
    not a plain name (the offending key itself, say) shows as ``*``."""
    base, suffix = where, ""
    for tail in (" (key)", " (name)"):
        if base.endswith(tail):
            base, suffix = base[: -len(tail)], tail
            break
    shown: list[str] = []
    for segment in base.split("."):
        plain = segment and _PLAIN_SEGMENT.fullmatch(segment)
        if plain or shown[-1:] != ["*"]:  # a key with dots in it is still one ``*``
            shown.append(segment if plain else "*")
    return ".".join(shown)[:200] + suffix


@dataclass(slots=True)
class Refusal:
    """Why the guard answers instead of the route."""

    status: int
    code: str
    detail: str
    headers: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Identity:
    """Who is asking: the address, and the claims (or why the credential failed)."""

    ip: str
    claims: Claims | None = None
    auth_error: TradeguardError | None = None
    credential: str | None = None
    json: Any = field(default=None, repr=False)  # the body: may hold passwords, secret values


class Screen:
    """The guard's decisions for one service (or one mounted app)."""

    def __init__(
        self,
        validator: SecurityValidator,
        auth: AuthHandler | Callable[[], AuthHandler],
        *,
        limits: RequestLimits | None = None,
        action: str = "api_requests",
    ) -> None:
        self.validator = validator
        self._auth = auth
        self.limits = limits or validator.request_limits
        self.action = action

    @property
    def auth(self) -> AuthHandler:
        """The handler that validates credentials."""
        auth = self._auth
        return auth if isinstance(auth, AuthHandler) else auth()

    def before_body(self, peer: str, headers: Mapping[str, str]) -> tuple[str, Refusal | None]:
        """The client address, and a refusal from the ban list or the declared size."""
        try:
            ip = self.validator.client_ip(peer, headers.get("x-forwarded-for"))
        except ValueError:  # a peer that is no IP address (a Unix socket, a test client)
            ip = UNKNOWN_PEER
        banned = self.validator.is_blocked(ip)
        if banned is not None:
            return ip, Refusal(
                403, "IP_BANNED", "this address is temporarily banned after repeated violations",
                {"Retry-After": str(int(banned) + 1)},
            )  # fmt: skip
        early = check_content_length(headers.get("content-length"), self.limits)
        if early is not None and early.reason is not None:
            return ip, Refusal(early.status, early.reason, _SIZE_DETAIL.get(early.reason, ""))
        return ip, None

    def after_body(
        self,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes,
        ip: str,
    ) -> tuple[Identity, Refusal | None]:
        """Rate-limit, inspect; the identity carries the claims and the parsed JSON body.

        The per-IP limit is decided before the credential is validated (a flood of forged
        tokens must not buy signature checks), the per-identity one after it.
        """
        refusal = self._limit(f"ip:{ip}", ip)
        if refusal is not None:
            return Identity(ip), refusal
        who = self.identify(headers.get("authorization"), ip)
        refusal = self._limit(self._identity_key(who), ip)
        if refusal is not None:
            return who, refusal
        verdict = self.validator.inspect_request(
            method, path, query, headers, body, client_ip=ip, exempt=opaque_credential
        )
        if not verdict.allowed:
            reason = verdict.reason or "REQUEST_REJECTED"
            detail = _SIZE_DETAIL.get(reason) or f"the request was refused: {reason.lower()}"
            extra: dict[str, Any] = {"field": shown_field(verdict.field)} if verdict.field else {}
            if verdict.threats:
                extra["threats"] = sorted({t.kind for t in verdict.threats})
            return who, Refusal(verdict.status, reason, detail, extra=extra)
        who.json = verdict.json
        return who, None

    def identify(self, authorization: str | None, ip: str) -> Identity:
        """Validate the bearer credential, if any (a JWT, or a ``tg_`` API key)."""
        who = Identity(ip)
        if authorization is None:
            return who
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        try:
            if scheme.lower() != "bearer" or not token or len(token) > 8192:
                raise TokenInvalid("the Authorization header must be 'Bearer <token>'")
            if token.startswith(API_KEY_PREFIX):
                who.claims = self.auth.authenticate_api_key(token)
            else:
                who.claims = self.auth.validate_token(token)
        except TradeguardError as exc:
            who.auth_error = exc
            # the rate-limit bucket of a credential that did not verify: keyed by its digest
            who.credential = hashlib.sha256(authorization.encode(errors="replace")).hexdigest()
            if not isinstance(exc, TokenExpired):  # an honest client's stale token is no attack
                self.validator.record_violation(ip, "bad_token")
        return who

    @staticmethod
    def _identity_key(who: Identity) -> str | None:
        if who.claims is not None:
            return f"user:{who.claims.subject}"
        if who.credential is not None:
            # an unverified credential gets its own bucket, keyed by its digest (never by
            # the subject it claims, which anyone could name to exhaust someone else's)
            return f"cred:{who.credential}"
        return None

    def _limit(self, key: str | None, ip: str) -> Refusal | None:
        if key is None:
            return None
        decision = self.validator.rate_limit(key, self.action)
        if decision.allowed:
            return None
        self.validator.record_violation(ip, "rate_limit")
        return Refusal(429, "RATE_LIMITED", "too many requests: slow down",
                       retry_after(decision.retry_after))  # fmt: skip


_SIZE_DETAIL = {
    "BODY_TOO_LARGE": "the request body is larger than the service accepts",
    "INVALID_CONTENT_LENGTH": "the Content-Length header is not a number",
    "URL_TOO_LONG": "the URL is too long",
    "TOO_MANY_HEADERS": "the request has too many headers",
    "HEADERS_TOO_LARGE": "the request headers are too large",
    "UNSUPPORTED_CONTENT_TYPE": "send application/json",
    "MALFORMED_JSON": "the body is not valid JSON",
    "JSON_TOO_DEEP": "the JSON body is nested too deeply",
    "JSON_TOO_MANY_KEYS": "the JSON body has too many keys",
    "JSON_DUPLICATE_KEY": "the JSON body repeats a key",
    "INVALID_ENCODING": "the request is not valid UTF-8",
    "THREAT_DETECTED": "a field looks like an injection attempt",
    "FIELD_TOO_LONG": "a field is too long",
}
