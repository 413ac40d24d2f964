"""User administration, MFA enrolment and API keys for SERVICE accounts."""

from __future__ import annotations

import hashlib
import hmac
import secrets as random_source
import uuid
from datetime import UTC, datetime, timedelta

from tradeguard.auth import mfa
from tradeguard.auth.claims import Claims
from tradeguard.auth.core import MFA_SECRET_PATH, AuthCore, User
from tradeguard.auth.rbac import Role, parse_role
from tradeguard.auth.store import UserRecord
from tradeguard.auth.usernames import require_username
from tradeguard.errors import InvalidCredentials, InvalidMFACode, PermissionDenied, TokenRevoked

API_KEY_PREFIX = "tg_"


class AdminMixin(AuthCore):
    """Changes to users; each takes effect at once for tokens this process validates."""

    def create_user(
        self, username: str, password: str, *, role: Role | str,
        display_name: str | None = None, must_change_password: bool = False,
    ) -> User:  # fmt: skip
        """Add a user; the password must pass the policy (:class:`WeakPassword`)."""
        name = require_username(username)
        chosen = parse_role(role)
        self._policy.check(password, user_inputs=(name,))
        now = self._now()
        values = {
            "id": str(uuid.uuid4()), "username": name, "display_name": display_name or username,
            "password_hash": self._hasher.hash(password), "role": chosen.value, "disabled": False,
            "must_change_password": must_change_password, "mfa_state": "off",
            "mfa_last_step": None, "recovery_codes": "[]", "created_at": now, "updated_at": now,
        }  # fmt: skip
        self._store.add_user(values)
        self._publish("auth.user_created", subject=values["id"], actor=name, role=chosen.value)
        return User.of(self._user(name))

    def list_users(self) -> list[User]:
        """Every user."""
        return [User.of(r) for r in self._store.list_users()]

    def get_user(self, username: str) -> User:
        """One user (:class:`UserNotFound` if absent)."""
        return User.of(self._user(username))

    def _change(self, username: str, event: str, **values: object) -> User:
        user = self._user(username)
        self._store.update_user(user.id, self._now(), **values)
        self._invalidate()
        self._publish(event, subject=user.id, actor=user.username,
                      **{k: v for k, v in values.items() if k in ("role", "disabled")})  # fmt: skip
        return User.of(self._user(username))

    def set_role(self, username: str, role: Role | str) -> User:
        """Change a role; tokens already issued carry the new role at once."""
        return self._change(username, "auth.role_changed", role=parse_role(role).value)

    def disable_user(self, username: str) -> User:
        """Refuse logins and every token of the user, and end their sessions."""
        user = self._change(username, "auth.user_disabled", disabled=True)
        self._store.end_sessions(self._now(), "disabled", user_id=user.id)
        return user

    def enable_user(self, username: str) -> User:
        """Allow the user again."""
        return self._change(username, "auth.user_enabled", disabled=False)

    def unlock_user(self, username: str) -> None:
        """Clear failed-login counters and any lock."""
        user = self._user(username)
        self._store.clear_failures(user.username)
        self._publish("auth.user_unlocked", subject=user.id, actor=user.username)

    def change_password(self, username: str, old: str, new: str) -> None:
        """The user's own change: the old password must be right; other sessions end."""
        user = self._user(username)
        if not self._hasher.verify(user.password_hash, old):
            self._publish("auth.password_change_failed", subject=user.id, actor=user.username)
            raise InvalidCredentials("invalid username or password")
        self._set_password(user.id, user.username, new)

    def reset_password(self, username: str, new: str, *, must_change: bool = False) -> None:
        """An administrator's reset: every session of the user ends."""
        user = self._user(username)
        self._set_password(user.id, user.username, new, must_change=must_change)

    def _set_password(
        self, user_id: str, name: str, new: str, *, must_change: bool = False
    ) -> None:
        self._policy.check(new, user_inputs=(name,))
        self._store.update_user(user_id, self._now(), password_hash=self._hasher.hash(new),
                                must_change_password=must_change)  # fmt: skip
        self._store.end_sessions(self._now(), "password_changed", user_id=user_id)
        self._invalidate()
        self._publish("auth.password_changed", subject=user_id, actor=name)

    def delete_user(self, username: str) -> None:
        """Remove a user, their sessions, API keys and MFA secret."""
        user = self._user(username)
        self._store.delete_user(user.id)
        self._drop_mfa_secret(user.id)
        self._invalidate()
        self._publish("auth.user_deleted", subject=user.id, actor=user.username, severity="warning")

    # -- MFA ---------------------------------------------------------------------------

    def enroll_mfa(self, username: str) -> mfa.MFAEnrollment:
        """Start TOTP enrolment; it counts only after :meth:`confirm_mfa` with a valid code.

        An account that already has MFA must disable it first (which needs a current code).
        """
        user = self._user(username)
        if user.mfa_state == "on":
            raise PermissionDenied("MFA is already on: disable it with a current code first")
        secret = mfa.generate_secret()
        self._secrets.store_secret(MFA_SECRET_PATH.format(user_id=user.id), {"totp": secret})
        codes = mfa.generate_recovery_codes()
        self._store.update_user(
            user.id, self._now(), mfa_state="pending", mfa_last_step=None,
            recovery_codes=tuple(mfa.hash_recovery_code(c) for c in codes),
        )  # fmt: skip
        uri = mfa.provisioning_uri(secret, user.username)
        self._publish("auth.mfa_enrolment_started", subject=user.id, actor=user.username)
        return mfa.MFAEnrollment(secret, uri, mfa.qr_svg(uri), codes)

    def confirm_mfa(self, username: str, code: str) -> None:
        """Turn MFA on once the user proves the authenticator works."""
        user = self._user(username)
        secret = self._mfa_secret(user.id)
        if user.mfa_state != "pending" or secret is None:
            raise PermissionDenied("no MFA enrolment is pending: start an enrolment first")
        step = mfa.verify_totp(
            secret, code, at=self._clock.now(), last_used_step=user.mfa_last_step
        )
        if step is None or not self._store.claim_mfa_step(user.id, step):
            raise InvalidMFACode("invalid MFA code")
        self._store.update_user(user.id, self._now(), mfa_state="on")
        self._publish("auth.mfa_enabled", subject=user.id, actor=user.username)

    def disable_mfa(self, username: str, code: str) -> None:
        """Turn MFA off; needs a current TOTP or recovery code."""
        user = self._require_code(username, code)
        self._store.update_user(user.id, self._now(), mfa_state="off", recovery_codes=())
        self._drop_mfa_secret(user.id)
        self._publish("auth.mfa_disabled", subject=user.id, actor=user.username, severity="warning")

    def reset_mfa(self, username: str) -> None:
        """An administrator's reset (lost device): MFA off, sessions ended."""
        user = self._user(username)
        self._store.update_user(user.id, self._now(), mfa_state="off", recovery_codes=())
        self._drop_mfa_secret(user.id)
        self._store.end_sessions(self._now(), "mfa_reset", user_id=user.id)
        self._invalidate()
        self._publish("auth.mfa_reset", subject=user.id, actor=user.username, severity="warning")

    def regenerate_recovery_codes(self, username: str, code: str) -> list[str]:
        """New recovery codes (the old ones stop working); needs a current code."""
        user = self._require_code(username, code)
        codes = mfa.generate_recovery_codes()
        self._store.update_user(
            user.id, self._now(), recovery_codes=tuple(mfa.hash_recovery_code(c) for c in codes)
        )
        self._publish("auth.mfa_recovery_codes_regenerated", subject=user.id, actor=user.username)
        return codes

    def _require_code(self, username: str, code: str) -> UserRecord:
        user = self._user(username)
        if user.mfa_state != "on":
            raise PermissionDenied("MFA is not on for this account")
        if self._check_second_factor(user, code) is None:
            self._publish("auth.mfa_failed", subject=user.id, actor=user.username)
            raise InvalidMFACode("invalid MFA code")
        return user

    def _drop_mfa_secret(self, user_id: str) -> None:
        path = MFA_SECRET_PATH.format(user_id=user_id)
        if self._secrets.list_secrets(path) == [path]:
            self._secrets.destroy_secret(path)

    # -- API keys ----------------------------------------------------------------------

    def create_api_key(
        self, service_username: str, *, name: str, expires_in: timedelta | float | None = None
    ) -> str:
        """A new key ``tg_<id>_<secret>`` for a SERVICE account, shown once, stored hashed."""
        user = self._user(service_username)
        if user.role is not Role.SERVICE:
            raise PermissionDenied("API keys are for SERVICE accounts only")
        key_id = random_source.token_hex(8)
        secret = random_source.token_urlsafe(32)
        now = self._now()
        seconds = expires_in.total_seconds() if isinstance(expires_in, timedelta) else expires_in
        self._store.add_api_key({
            "id": key_id, "user_id": user.id, "name": name[:128], "secret_hash": _digest(secret),
            "created_at": now, "expires_at": None if seconds is None else now + seconds,
        })  # fmt: skip
        self._publish("auth.api_key_created", subject=key_id, actor=user.username, name=name[:128])
        return f"{API_KEY_PREFIX}{key_id}_{secret}"

    def authenticate_api_key(self, key: str) -> Claims:
        """Claims of the key's service account; :class:`InvalidCredentials` otherwise."""
        parts = key.split("_", 2) if isinstance(key, str) and key.startswith(API_KEY_PREFIX) else []
        row = None
        if len(parts) == 3 and len(parts[1]) == 16:
            row = self._store.api_key(parts[1])
        now = self._now()
        given = _digest(parts[2]) if len(parts) == 3 else _digest("")
        stored = row.secret_hash if row is not None else _digest("-")
        if row is None or not hmac.compare_digest(given, stored):
            self._publish("auth.api_key_rejected", outcome="failure")
            raise InvalidCredentials("invalid API key")
        user = self._store.user_by_id(row.user_id)
        if row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
            raise TokenRevoked("the API key is revoked or expired")
        if user is None or user.disabled or user.role is not Role.SERVICE:
            raise TokenRevoked("the API key's account is disabled or no longer a service")
        claims = {"sub": user.id, "username": user.username, "jti": f"apikey:{row.id}",
                  "sid": f"apikey:{row.id}", "exp": int(row.expires_at or 4102444800),
                  "typ": "api_key"}  # fmt: skip
        return Claims(claims, role=user.role)

    def revoke_api_key(self, key_id: str) -> bool:
        """Revoke by the id (the part after ``tg_``); False if unknown."""
        done = self._store.revoke_api_key(key_id, self._now())
        self._publish("auth.api_key_revoked", subject=key_id, revoked=done)
        return done

    def list_api_keys(self, service_username: str) -> list[dict[str, object]]:
        """Id, name and dates of a service account's keys (never the secrets)."""
        user = self._user(service_username)
        rows = self._store.api_keys_of(user.id)
        return [
            {"id": r.id, "name": r.name, "created_at": _when(r.created_at),
             "expires_at": _when(r.expires_at), "revoked_at": _when(r.revoked_at)}
            for r in rows
        ]  # fmt: skip


def _digest(secret: str) -> str:
    # API key secrets carry 256 random bits: a plain SHA-256 is the right hash here
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _when(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)
