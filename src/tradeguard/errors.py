"""The one exception tree of tradeguard.

Every error tradeguard raises on purpose derives from :class:`TradeguardError`::

    TradeguardError
      ConfigurationError
        AlertConfigError         (also a ValueError)
      SecretsError
        SecretNotFound
        InvalidSecretPath        (also a ValueError)
        InvalidSecretValue       (also a ValueError)
        SecretIntegrityError
        VersionConflict
        BackendUnavailable
      AuthError
        InvalidCredentials, MFARequired, InvalidMFACode, AccountLocked, PermissionDenied
        WeakPassword, InvalidUsername, UnknownRole   (also ValueErrors)
        UserExists, UserNotFound
        TokenError
          TokenExpired, TokenInvalid, TokenRevoked, TokenReuseDetected
      ValidationError
        RequestRejected, RateLimitExceeded, IPBlocked
      RiskError
        OrderRejected            (carries the violations)
        InvalidOrder, InvalidAccountState   (also ValueErrors)
        RiskStateUnavailable, CalendarUnavailable
      AuditError
        AuditWriteFailed

A message says what failed and what to do about it. It never carries a secret value, a
password, a token or a URL that may embed credentials.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class TradeguardError(Exception):
    """Root of every error tradeguard raises on purpose."""


class ConfigurationError(TradeguardError):
    """Settings are missing, malformed or unsafe; the message names the setting to fix."""


class AlertConfigError(ConfigurationError, ValueError):
    """An alert rule, rule file or sink is misconfigured; the message names what to fix."""


class SecretsError(TradeguardError):
    """A secrets operation failed."""


class SecretNotFound(SecretsError, KeyError):
    """No live secret (or no such version) exists at the path."""

    def __init__(self, path: str, version: int | None = None, *, why: str = "") -> None:
        self.path = path
        self.version = version
        where = path if version is None else f"{path} (version {version})"
        super().__init__(f"secret not found: {where}{f' ({why})' if why else ''}")

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class InvalidSecretPath(SecretsError, ValueError):
    """A secret path breaks the path rules (segments of [A-Za-z0-9._-], depth <= 16)."""


class InvalidSecretValue(SecretsError, ValueError):
    """Secret data is not a non-empty str -> str mapping within the size limit."""


class SecretIntegrityError(SecretsError):
    """A stored secret failed authentication: tampered, moved, or opened with the wrong key."""

    def __init__(self, path: str, version: int | None, reason: str) -> None:
        self.path = path
        self.version = version
        self.reason = reason
        where = path if version is None else f"{path} version {version}"
        super().__init__(f"secret {where} failed its integrity check: {reason}")


class VersionConflict(SecretsError):
    """A check-and-set write found another current version than the one expected."""

    def __init__(self, path: str, expected: int, current: int) -> None:
        self.path = path
        self.expected = expected
        self.current = current
        super().__init__(
            f"version conflict on {path}: expected current version {expected}, found {current}"
        )


class BackendUnavailable(SecretsError):
    """The configured backend (Vault, database) cannot be reached; the cause is chained."""


class AuthError(TradeguardError):
    """Authentication or authorisation failed."""


class InvalidCredentials(AuthError):
    """Username, password or second factor were not accepted (deliberately vague)."""


class MFARequired(AuthError):
    """The account has MFA enabled and no code was given."""


class InvalidMFACode(AuthError):
    """The TOTP or recovery code was wrong or already used."""


class AccountLocked(AuthError):
    """Too many failures: the account is locked; ``retry_after`` says for how many seconds."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class PermissionDenied(AuthError):
    """The caller lacks the permission the action needs."""


class WeakPassword(AuthError, ValueError):
    """A new password breaks the policy (length, or too guessable); the message says which."""


class InvalidUsername(AuthError, ValueError):
    """A username breaks the rules (1-64 of letters, digits, '.', '_', '@', '-')."""


class UnknownRole(AuthError, ValueError):
    """A role name that is not ADMIN, TRADER, VIEWER or SERVICE."""


class UserExists(AuthError):
    """A user with that (normalised) name already exists."""


class UserNotFound(AuthError):
    """No such user (for administrative calls; logins answer InvalidCredentials)."""


class TokenError(AuthError):
    """A token was not accepted."""


class TokenExpired(TokenError):
    """The token's exp is in the past."""


class TokenInvalid(TokenError):
    """The token is malformed, badly signed, or of the wrong type."""


class TokenRevoked(TokenError):
    """The token, its session or its user was revoked."""


class TokenReuseDetected(TokenError):
    """A refresh token was used twice: its whole family is revoked."""


class ValidationError(TradeguardError):
    """A request was refused by the request guard."""


class RequestRejected(ValidationError):
    """The request carried a threat or broke a size limit."""


class RateLimitExceeded(ValidationError):
    """Too many requests; ``retry_after`` says how many seconds to wait."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class IPBlocked(ValidationError):
    """The client address is banned for repeated violations."""


class RiskError(TradeguardError):
    """A pre-trade risk decision went against the order."""


class OrderRejected(RiskError):
    """An order broke one or more risk limits; ``violations`` lists every one."""

    def __init__(self, message: str, *, violations: Sequence[Any] = ()) -> None:
        self.violations = tuple(violations)
        super().__init__(message)


class AuditError(TradeguardError):
    """The audit trail could not record or read events."""


class AuditWriteFailed(AuditError):
    """An audit record could not be committed (a durable append failed or timed out)."""


class InvalidOrder(RiskError, ValueError):
    """An order is malformed; ``problems`` lists ``(field, reason)`` for every fault found."""

    def __init__(self, problems: tuple[tuple[str, str], ...]) -> None:
        self.problems = problems
        super().__init__("malformed order: " + "; ".join(f"{f}: {r}" for f, r in problems))


class InvalidAccountState(RiskError, ValueError):
    """An account snapshot or quote is malformed; the message names the field."""


class RiskStateUnavailable(RiskError):
    """The trading-state store could not be read or written; the cause is chained."""


class CalendarUnavailable(RiskError):
    """No trustworthy answer (unknown venue, instant not covered, no build): refuse orders."""

    def __init__(self, venue: str, reason: str) -> None:
        super().__init__(f"market calendar for {venue!r} unavailable: {reason}")
        self.venue, self.reason = venue, reason
