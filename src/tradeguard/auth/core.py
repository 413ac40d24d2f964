"""Shared parts of the AuthHandler: records handed out, token issuing, MFA checks, events."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tradeguard.auth import mfa
from tradeguard.auth.lockout import LockoutPolicy
from tradeguard.auth.passwords import PasswordHasher, PasswordPolicy
from tradeguard.auth.rbac import Role
from tradeguard.auth.shared_state import RedisAuthState
from tradeguard.auth.store import AuthStore, UserRecord
from tradeguard.auth.tokens import TokenService
from tradeguard.auth.usernames import normalize_username
from tradeguard.clock import SYSTEM_CLOCK, Clock
from tradeguard.errors import SecretNotFound, UserNotFound
from tradeguard.events import EventBus, SecurityEvent
from tradeguard.secrets import SecretsManager

MFA_SECRET_PATH = "tradeguard/auth/mfa/{user_id}"  # noqa: S105 - a path, not a secret


@dataclass(frozen=True, slots=True)
class TokenPair:
    """What a login or refresh returns."""

    access_token: str
    refresh_token: str
    expires_in: int
    session_id: str
    token_type: str = "Bearer"  # noqa: S105 - the scheme name

    def __repr__(self) -> str:
        return f"TokenPair(session_id={self.session_id!r}, expires_in={self.expires_in})"


@dataclass(frozen=True, slots=True)
class User:
    """A user as callers see one (no password hash, no MFA secret)."""

    id: str
    username: str
    display_name: str
    role: Role
    disabled: bool
    mfa_enabled: bool
    must_change_password: bool
    created_at: datetime

    @classmethod
    def of(cls, record: UserRecord) -> User:
        """From a stored record."""
        return cls(
            record.id, record.username, record.display_name, record.role, record.disabled,
            record.mfa_state == "on", record.must_change_password,
            datetime.fromtimestamp(record.created_at, UTC),
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Session:
    """A live session, for listing."""

    id: str
    user_id: str
    created_at: datetime
    expires_at: datetime
    ip: str | None
    user_agent: str | None


class AuthCore:
    """State and helpers the AuthHandler's parts share."""

    def __init__(
        self,
        store: AuthStore,
        tokens: TokenService,
        secrets: SecretsManager,
        *,
        bus: EventBus | None = None,
        clock: Clock = SYSTEM_CLOCK,
        hasher: PasswordHasher | None = None,
        policy: PasswordPolicy | None = None,
        lockout: LockoutPolicy | None = None,
        refresh_ttl: int = 604_800,
        session_max: int = 2_592_000,
        state_ttl: float = 1.0,
        shared: RedisAuthState | None = None,
    ) -> None:
        self._store = store
        self._tokens = tokens
        self._secrets = secrets
        self._bus = bus if bus is not None else EventBus(clock=clock)
        self._clock = clock
        self._hasher = hasher or PasswordHasher()
        self._policy = policy or PasswordPolicy()
        self._lockout = lockout or LockoutPolicy()
        self._refresh_ttl = refresh_ttl
        self._session_max = session_max
        self._state_ttl = state_ttl
        # jti -> (valid until (monotonic), role or None when refused, why refused)
        self._status: dict[str, tuple[float, Role | None, str]] = {}
        # sid -> (valid until, user id, absolute expiry, role or None, why refused)
        self._sessions: dict[str, tuple[float, str | None, float, Role | None, str]] = {}
        self._status_lock = threading.Lock()
        self._shared = shared
        if shared is not None:
            shared.listen(self._drop_status)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(store={self._store.engine.dialect.name!r})"

    @property
    def store(self) -> AuthStore:
        """The SQL store."""
        return self._store

    @property
    def tokens(self) -> TokenService:
        """The token service (issuing, validation, signing keys)."""
        return self._tokens

    def close(self) -> None:
        """Release connections (and stop listening to Redis)."""
        if self._shared is not None:
            self._shared.close()
        self._store.close()

    def _now(self) -> float:
        return self._clock.now().timestamp()

    def _publish(self, kind: str, *, severity: Any = "info", **fields: Any) -> None:
        if not self._bus.has_subscribers:
            return
        known = {k: fields.pop(k) for k in ("actor", "subject", "ip", "outcome") if k in fields}
        self._bus.publish(SecurityEvent(kind, severity=severity, details=fields, **known))

    def _drop_status(self) -> None:
        with self._status_lock:
            self._status.clear()
            self._sessions.clear()

    def _invalidate(self) -> None:
        """Forget cached token status here, and (with Redis) in every other process."""
        self._drop_status()
        if self._shared is not None:
            self._shared.announce()

    def _revoke_jti(self, jti: str, expires_at: float) -> None:
        self._store.revoke(jti, expires_at, self._now())
        if self._shared is not None:
            self._shared.revoke(jti, int(expires_at - self._now()) + 1)
        self._invalidate()

    def _user(self, username: str) -> UserRecord:
        name = normalize_username(username)
        record = self._store.user_by_name(name) if name else None
        if record is None:
            raise UserNotFound(f"no user named {username!r}")
        return record

    def _mfa_secret(self, user_id: str) -> str | None:
        try:
            return self._secrets.get_secret(MFA_SECRET_PATH.format(user_id=user_id))["totp"]
        except SecretNotFound:
            return None

    def _check_second_factor(self, user: UserRecord, code: str) -> str | None:
        """Accept a fresh TOTP code or an unused recovery code; returns which, or None."""
        secret = self._mfa_secret(user.id)
        if secret is not None:
            step = mfa.verify_totp(
                secret, code, at=self._clock.now(), last_used_step=user.mfa_last_step
            )
            if (
                step is not None
                and (self._shared is None or self._shared.claim_mfa_step(user.id, step))
                and self._store.claim_mfa_step(user.id, step)
            ):
                return "totp"
        index = mfa.match_recovery_code(code, user.recovery_codes)
        if index is not None:
            remaining = user.recovery_codes[:index] + user.recovery_codes[index + 1 :]
            if self._store.use_recovery_code(user.id, remaining, user.recovery_codes):
                self._publish(
                    "auth.mfa_recovery_code_used", actor=user.username, subject=user.id,
                    remaining=len(remaining),
                )  # fmt: skip
                return "recovery_code"
        return None
