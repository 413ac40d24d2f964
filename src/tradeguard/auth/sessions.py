"""Logins, token validation, refresh rotation with reuse detection, logout and revocation."""

from __future__ import annotations

import secrets as random_source
from datetime import UTC, datetime
from typing import Any, NoReturn

from tradeguard.auth.claims import Claims
from tradeguard.auth.core import AuthCore, Session, TokenPair
from tradeguard.auth.lockout import register_failure, retry_after
from tradeguard.auth.rbac import Role
from tradeguard.auth.store import UserRecord
from tradeguard.auth.usernames import MAX_USERNAME, normalize_username
from tradeguard.errors import (
    AccountLocked,
    InvalidCredentials,
    InvalidMFACode,
    MFARequired,
    TokenError,
    TokenExpired,
    TokenInvalid,
    TokenReuseDetected,
    TokenRevoked,
)

_VAGUE = "invalid username or password"


class SessionsMixin(AuthCore):
    """Who is logged in, and whether their tokens still count."""

    # -- login -------------------------------------------------------------------------

    def authenticate(
        self,
        username: str,
        password: str,
        mfa_code: str | None = None,
        *,
        ip: str | None = None,
        user_agent: str | None = None,
    ) -> TokenPair:
        """Check credentials (and the second factor) and start a session.

        Every credential failure raises the same :class:`InvalidCredentials`; the reason is
        in the ``auth.login_failed`` event. Failures count per normalised username, whether
        or not the user exists, toward an escalating lock (:class:`AccountLocked`).
        """
        name = normalize_username(username)
        track = name if name is not None and len(name) <= MAX_USERNAME else None
        now = self._now()
        who = {"actor": name or "(invalid)", "ip": ip}
        failures = self._store.failures(track) if track is not None else None
        if track is not None and failures is not None:
            wait = retry_after(failures, now)
            if wait is not None:
                self._publish("auth.login_failed", outcome="locked", reason="locked", **who)
                raise AccountLocked(
                    f"too many failed logins: try again in {int(wait) + 1} s", retry_after=wait
                )
        user = self._store.user_by_name(name) if name else None
        if user is None:
            self._hasher.dummy_verify(password)
            self._fail(track, "unknown_user", who)
        elif not self._hasher.verify(user.password_hash, password):
            self._fail(track, "bad_password", who)
        elif user.disabled:
            self._fail(track, "disabled", who)
        if user.mfa_state == "on":
            if mfa_code is None:
                self._publish("auth.login_mfa_required", outcome="mfa_required", **who)
                raise MFARequired("this account needs an MFA code")
            if self._check_second_factor(user, mfa_code) is None:
                self._fail(track, "bad_mfa", who, error=InvalidMFACode("invalid MFA code"))
        if track is not None and failures is not None and (failures.failures or failures.locks):
            self._store.clear_failures(track)  # only write when there is something to reset
        self._upgrade_hash(user, password)
        pair = self._start_session(user, now, ip=ip, user_agent=user_agent)
        self._publish("auth.login_succeeded", outcome="success", subject=user.id,
                      session_id=pair.session_id, **who)  # fmt: skip
        return pair

    def _fail(
        self, track: str | None, reason: str, who: dict[str, Any], error: Exception | None = None
    ) -> NoReturn:
        if track is not None:
            state = self._store.record_failure(
                track, lambda before: register_failure(before, self._now(), self._lockout)
            )
            if state.failures == 0 and state.locked_until > self._now():
                self._publish("auth.locked", severity="warning", outcome="locked",
                              until=state.locked_until, locks=state.locks, **who)  # fmt: skip
        self._publish("auth.login_failed", outcome="failure", reason=reason, **who)
        raise error or InvalidCredentials(_VAGUE)

    def _upgrade_hash(self, user: UserRecord, password: str) -> None:
        if self._hasher.needs_rehash(user.password_hash):
            self._store.update_user(user.id, self._now(), password_hash=self._hasher.hash(password))
            self._publish("auth.password_rehashed", actor=user.username, subject=user.id)

    def _start_session(
        self, user: UserRecord, now: float, *, ip: str | None, user_agent: str | None
    ) -> TokenPair:
        session_id = random_source.token_urlsafe(24)
        pair, refresh_jti = self._issue(user, session_id)
        self._store.add_session({
            "id": session_id, "user_id": user.id, "created_at": now,
            "absolute_expiry": now + self._session_max, "refresh_jti": refresh_jti,
            "ip": ip, "user_agent": (user_agent or "")[:512] or None,
        })  # fmt: skip
        return pair

    def _issue(self, user: UserRecord, session_id: str) -> tuple[TokenPair, str]:
        extra = {"username": user.username, "role": user.role.value}
        access, refresh = (
            self._tokens.issue(
                subject=user.id, token_type=kind, session_id=session_id, claims=extra
            )
            for kind in ("access", "refresh")
        )
        expires_in = int((access.expires_at - access.issued_at).total_seconds())
        return TokenPair(access.token, refresh.token, expires_in, session_id), refresh.jti

    # -- validation --------------------------------------------------------------------

    def validate_token(self, token: str) -> Claims:
        """The claims of a valid access token, with the user's current role.

        The signature is checked once per token (then cached); revocation, the session and
        the user are checked every time, from a per-token status this process keeps for at
        most ``state_ttl`` seconds (its own changes apply at once).
        """
        try:
            data = self._tokens.validate(token, expected_type="access")
        except TokenError as exc:
            self._publish("auth.token_rejected", outcome="rejected", reason=type(exc).__name__)
            raise
        return Claims(data, role=self._token_status(data))

    def _token_status(self, data: dict[str, Any]) -> Role:
        jti = data["jti"]
        cached = self._status.get(jti)
        if cached is None or cached[0] <= self._clock.monotonic():
            cached = self._load_status(data)
        if cached[1] is None:
            raise TokenRevoked(cached[2])
        return cached[1]

    def _load_status(self, data: dict[str, Any]) -> tuple[float, Role | None, str]:
        revoked = False
        session = self._sessions.get(data["sid"])
        if session is None or session[0] <= self._clock.monotonic():
            # one query for the session, its user and this jti's revocation; the session part
            # is kept for state_ttl, so a new token of a known session costs no query
            row = self._store.token_status(data["sid"], data["jti"])
            revoked = row is not None and row.revoked is not None
            session = self._session_entry(row)
            with self._status_lock:
                self._sessions[data["sid"]] = session
        if self._shared is not None and not revoked:
            revoked = self._shared.is_revoked(data["jti"])
        _, user_id, absolute_expiry, role, why = session
        if revoked:
            role, why = None, "the token was revoked"
        elif role is not None and user_id != data["sub"]:
            role, why = None, "the session has ended"
        elif role is not None and absolute_expiry <= self._now():
            role, why = None, "the session reached its maximum age"
        entry = (self._clock.monotonic() + self._state_ttl, role, why)
        with self._status_lock:
            if len(self._status) > 100_000 or len(self._sessions) > 100_000:
                self._status.clear()
                self._sessions.clear()
            self._status[data["jti"]] = entry
        return entry

    def _session_entry(self, row: Any) -> tuple[float, str | None, float, Role | None, str]:
        until = self._clock.monotonic() + self._state_ttl
        if row is None or row.ended_at is not None:
            return until, None, 0.0, None, "the session has ended"
        if row.role is None or row.disabled:
            return until, row.user_id, row.absolute_expiry, None, "the account is disabled or gone"
        return until, row.user_id, row.absolute_expiry, Role(row.role), ""

    # -- refresh, logout, revocation ---------------------------------------------------

    def refresh(self, refresh_token: str) -> TokenPair:
        """A new pair for a valid refresh token; each refresh token works once.

        Presenting one that was already used ends the whole session (its access tokens
        stop validating) and raises :class:`TokenReuseDetected`.
        """
        data = self._tokens.validate(refresh_token, expected_type="refresh")
        now = self._now()
        session = self._store.session(data["sid"])
        user = self._store.user_by_id(data["sub"])
        if session is None or session.ended_at is not None or session.user_id != data["sub"]:
            raise TokenRevoked("the session has ended")
        if self._store.is_revoked(data["jti"]) or (
            self._shared is not None and self._shared.is_revoked(data["jti"])
        ):
            raise TokenRevoked("the token was revoked")
        if session.absolute_expiry <= now:
            self._end(session.id, "max_age")
            raise TokenExpired("the session reached its maximum age: log in again")
        if user is None or user.disabled:
            raise TokenRevoked("the account is disabled or gone")
        pair, new_jti = self._issue(user, session.id)
        if not self._store.rotate_refresh(session.id, data["jti"], new_jti, now):
            self._end(session.id, "refresh_reuse")
            self._publish("auth.refresh_reuse", severity="critical", outcome="session_ended",
                          actor=user.username, subject=session.id)  # fmt: skip
            raise TokenReuseDetected("refresh token reused: the session has been ended")
        self._publish("auth.token_refreshed", actor=user.username, subject=session.id)
        return pair

    def logout(self, token: str) -> None:
        """End the session of an access or refresh token and revoke that token."""
        data = self._any_token(token)
        self._revoke_jti(data["jti"], float(data["exp"]))
        self._end(data["sid"], "logout")
        self._publish("auth.logout", subject=data["sid"], actor=data.get("username"))

    def _any_token(self, token: str) -> dict[str, Any]:
        try:
            return self._tokens.validate(token, expected_type="access")
        except TokenInvalid:
            return self._tokens.validate(token, expected_type="refresh")

    def revoke_token(self, jti: str, *, expires_at: datetime | None = None) -> None:
        """Put a token id on the revocation list (until its expiry, default the refresh TTL)."""
        if not isinstance(jti, str) or not 16 <= len(jti) <= 64:
            raise TokenInvalid("not a token id")
        until = expires_at.timestamp() if expires_at else self._now() + self._refresh_ttl
        self._revoke_jti(jti, until)
        self._publish("auth.token_revoked", subject=jti)

    def _end(self, session_id: str, reason: str) -> int:
        ended = self._store.end_sessions(self._now(), reason, session_id=session_id)
        self._invalidate()
        return ended

    def list_sessions(self, username: str) -> list[Session]:
        """Live sessions of ``username``."""
        user = self._user(username)
        return [
            Session(s.id, s.user_id, datetime.fromtimestamp(s.created_at, UTC),
                    datetime.fromtimestamp(s.absolute_expiry, UTC), s.ip, s.user_agent)
            for s in self._store.sessions_of(user.id)
        ]  # fmt: skip

    def revoke_session(self, session_id: str) -> bool:
        """End one session; False if it was not live."""
        ended = self._end(session_id, "revoked") > 0
        self._publish("auth.session_revoked", subject=session_id, ended=ended)
        return ended

    def revoke_all_sessions(self, username: str) -> int:
        """End every live session of ``username``; returns how many."""
        user = self._user(username)
        ended = self._store.end_sessions(self._now(), "revoked_all", user_id=user.id)
        self._invalidate()
        self._publish("auth.sessions_revoked", actor=user.username, subject=user.id, count=ended)
        return ended
