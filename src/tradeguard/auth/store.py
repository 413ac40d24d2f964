"""SQL storage for auth (SQLite default, PostgreSQL): rows in, plain records out."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Engine, bindparam, delete, insert, select, update
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.exc import IntegrityError, OperationalError

from tradeguard.auth import schema
from tradeguard.auth.lockout import FailureState
from tradeguard.auth.rbac import Role
from tradeguard.errors import BackendUnavailable, UserExists
from tradeguard.storage import begin_write, is_sqlite
from tradeguard.storage.database import SQLITE_BUSY_TIMEOUT_MS

_U, _S, _F = schema.users, schema.sessions, schema.login_failures
_R = schema.revocations

# One round trip for everything a token's validity depends on besides its signature.
_TOKEN_STATUS = (
    select(
        _S.c.user_id,
        _S.c.ended_at,
        _S.c.absolute_expiry,
        _U.c.role,
        _U.c.disabled,
        _R.c.jti.label("revoked"),
    )
    .select_from(_S)
    .outerjoin(_U, _U.c.id == _S.c.user_id)
    .outerjoin(_R, _R.c.jti == bindparam("jti"))
    .where(_S.c.id == bindparam("sid"))
)


class _StatusRow(NamedTuple):
    user_id: str
    ended_at: float | None
    absolute_expiry: float
    role: str | None
    disabled: bool | None
    revoked: str | None


# The same query compiled for SQLite's qmark style (parameters: jti, then sid).
_FAST_STATUS_SQL = str(_TOKEN_STATUS.compile(dialect=sqlite_dialect.dialect()))


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A user row (the password hash is in it: never log one)."""

    id: str
    username: str
    display_name: str
    password_hash: str
    role: Role
    disabled: bool
    must_change_password: bool
    mfa_state: str
    mfa_last_step: int | None
    recovery_codes: tuple[str, ...]
    created_at: float

    def __repr__(self) -> str:
        return f"UserRecord(id={self.id!r}, username={self.username!r}, role={self.role})"


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A login session."""

    id: str
    user_id: str
    created_at: float
    absolute_expiry: float
    refresh_jti: str
    ended_at: float | None
    end_reason: str | None
    ip: str | None
    user_agent: str | None


def _user(row: Any) -> UserRecord:
    return UserRecord(
        row.id, row.username, row.display_name, row.password_hash, Role(row.role),
        bool(row.disabled), bool(row.must_change_password), row.mfa_state, row.mfa_last_step,
        tuple(json.loads(row.recovery_codes)), row.created_at,
    )  # fmt: skip


def _session(row: Any) -> SessionRecord:
    return SessionRecord(
        row.id, row.user_id, row.created_at, row.absolute_expiry, row.refresh_jti,
        row.ended_at, row.end_reason, row.ip, row.user_agent,
    )  # fmt: skip


class AuthStore:
    """Users, sessions, revocations, API keys and failure counters in SQL."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        schema.metadata.create_all(engine, checkfirst=True)
        database = engine.url.database if is_sqlite(engine) else None
        self._sqlite_path = database if database and database != ":memory:" else None
        self._local = threading.local()
        self._fast_lock = threading.Lock()
        self._fast_connections: list[sqlite3.Connection] = []

    def close(self) -> None:
        """Release connections."""
        with self._fast_lock:
            for connection in self._fast_connections:
                connection.close()
            self._fast_connections.clear()
        self._local = threading.local()
        self.engine.dispose()

    def _fast_status(self, session_id: str, jti: str) -> Any:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(
                self._sqlite_path or "", isolation_level=None, check_same_thread=False,
                timeout=SQLITE_BUSY_TIMEOUT_MS / 1000,
            )  # fmt: skip
            with self._fast_lock:
                self._fast_connections.append(connection)
            self._local.connection = connection
        row = connection.execute(_FAST_STATUS_SQL, (jti, session_id)).fetchone()
        return None if row is None else _StatusRow(*row)

    def _drop_fast_connection(self) -> None:
        connection = getattr(self._local, "connection", None)
        self._local.connection = None  # this thread only; others keep theirs
        if connection is not None:
            with self._fast_lock:
                if connection in self._fast_connections:
                    self._fast_connections.remove(connection)
            connection.close()

    def _read(self, query: Any) -> list[Any]:
        try:
            with self.engine.connect() as conn:
                return list(conn.execute(query))
        except OperationalError as exc:
            raise BackendUnavailable("the auth database is unavailable") from exc

    def _write(self, *statements: Any) -> int:
        try:
            with begin_write(self.engine) as conn:
                return sum(int(conn.execute(s).rowcount or 0) for s in statements)
        except OperationalError as exc:
            raise BackendUnavailable("the auth database is unavailable") from exc

    # -- users -------------------------------------------------------------------------

    def add_user(self, values: dict[str, Any]) -> None:
        """Insert a user; :class:`UserExists` on a taken username."""
        try:
            self._write(insert(_U).values(**values))
        except IntegrityError:
            raise UserExists(f"user {values['username']!r} already exists") from None

    def user_by_name(self, username: str) -> UserRecord | None:
        """The user with this normalised name."""
        rows = self._read(select(_U).where(_U.c.username == username))
        return _user(rows[0]) if rows else None

    def user_by_id(self, user_id: str) -> UserRecord | None:
        """The user with this id."""
        rows = self._read(select(_U).where(_U.c.id == user_id))
        return _user(rows[0]) if rows else None

    def list_users(self) -> list[UserRecord]:
        """Every user, by name."""
        return [_user(r) for r in self._read(select(_U).order_by(_U.c.username))]

    def update_user(self, user_id: str, now: float, **values: Any) -> bool:
        """Change fields of a user; False if there is no such user."""
        if "recovery_codes" in values:
            values["recovery_codes"] = json.dumps(list(values["recovery_codes"]))
        if "role" in values:
            values["role"] = Role(values["role"]).value
        return (
            self._write(update(_U).where(_U.c.id == user_id).values(updated_at=now, **values)) == 1
        )

    def claim_mfa_step(self, user_id: str, step: int) -> bool:
        """Record ``step`` as used, only if it is newer than the last (the replay guard)."""
        newer = (_U.c.mfa_last_step.is_(None)) | (_U.c.mfa_last_step < step)
        return (
            self._write(update(_U).where(_U.c.id == user_id, newer).values(mfa_last_step=step)) == 1
        )

    def use_recovery_code(
        self, user_id: str, remaining: tuple[str, ...], before: tuple[str, ...]
    ) -> bool:
        """Replace the code list only if nobody changed it meanwhile (each code works once)."""
        return self._write(
            update(_U).where(_U.c.id == user_id, _U.c.recovery_codes == json.dumps(list(before)))
            .values(recovery_codes=json.dumps(list(remaining)))
        ) == 1  # fmt: skip

    def delete_user(self, user_id: str) -> bool:
        """Remove a user with their sessions and API keys."""
        return (
            self._write(
                delete(schema.api_keys).where(schema.api_keys.c.user_id == user_id),
                delete(_S).where(_S.c.user_id == user_id),
                delete(_U).where(_U.c.id == user_id),
            )
            > 0
        )

    # -- sessions ----------------------------------------------------------------------

    def add_session(self, values: dict[str, Any]) -> None:
        """Start a session."""
        self._write(insert(_S).values(**values))

    def session(self, session_id: str) -> SessionRecord | None:
        """A session by id."""
        rows = self._read(select(_S).where(_S.c.id == session_id))
        return _session(rows[0]) if rows else None

    def sessions_of(self, user_id: str) -> list[SessionRecord]:
        """Live sessions of a user, newest first."""
        query = select(_S).where(_S.c.user_id == user_id, _S.c.ended_at.is_(None))
        return [_session(r) for r in self._read(query.order_by(_S.c.created_at.desc()))]

    def token_status(self, session_id: str, jti: str) -> Any:
        """Session, its user and the jti's revocation in one row (None: no such session).

        On SQLite the query runs on a plain sqlite3 connection kept per thread: through the
        engine, pool checkout and statement handling cost ten times the query itself, and
        this read sits on the path of every first validation of a token.
        """
        if self._sqlite_path is not None:
            try:
                return self._fast_status(session_id, jti)
            except sqlite3.Error:
                self._drop_fast_connection()  # fall back to the engine below
        try:
            with self.engine.connect() as conn:
                return conn.execute(_TOKEN_STATUS, {"sid": session_id, "jti": jti}).first()
        except OperationalError as exc:
            raise BackendUnavailable("the auth database is unavailable") from exc

    def rotate_refresh(self, session_id: str, old_jti: str, new_jti: str, now: float) -> bool:
        """Move the session to a new refresh token only if ``old_jti`` is still current."""
        return self._write(
            update(_S).where(_S.c.id == session_id, _S.c.refresh_jti == old_jti,
                             _S.c.ended_at.is_(None))
            .values(refresh_jti=new_jti, refreshed_at=now)
        ) == 1  # fmt: skip

    def end_sessions(self, now: float, reason: str, *, session_id: str | None = None,
                     user_id: str | None = None) -> int:  # fmt: skip
        """End one session, or every live session of a user."""
        query = update(_S).where(_S.c.ended_at.is_(None))
        if session_id is not None:
            query = query.where(_S.c.id == session_id)
        if user_id is not None:
            query = query.where(_S.c.user_id == user_id)
        return self._write(query.values(ended_at=now, end_reason=reason))

    # -- revocations -------------------------------------------------------------------

    def revoke(self, jti: str, expires_at: float, now: float) -> None:
        """Add a jti to the revocation list (kept until the token would expire anyway)."""
        try:
            self._write(
                insert(schema.revocations).values(jti=jti, expires_at=expires_at, revoked_at=now)
            )
        except IntegrityError:
            pass  # already revoked

    def is_revoked(self, jti: str) -> bool:
        """Whether the jti is on the list."""
        return bool(
            self._read(select(schema.revocations.c.jti).where(schema.revocations.c.jti == jti))
        )

    def purge_revocations(self, now: float) -> int:
        """Drop entries for tokens that have expired anyway."""
        return self._write(delete(schema.revocations).where(schema.revocations.c.expires_at < now))

    # -- API keys ----------------------------------------------------------------------

    def add_api_key(self, values: dict[str, Any]) -> None:
        """Store a new API key row (the secret only as its hash)."""
        self._write(insert(schema.api_keys).values(**values))

    def api_key(self, key_id: str) -> Any:
        """The row of one key, or None."""
        rows = self._read(select(schema.api_keys).where(schema.api_keys.c.id == key_id))
        return rows[0] if rows else None

    def api_keys_of(self, user_id: str) -> list[Any]:
        """A user's key rows, oldest first."""
        query = select(schema.api_keys).where(schema.api_keys.c.user_id == user_id)
        return self._read(query.order_by(schema.api_keys.c.created_at))

    def revoke_api_key(self, key_id: str, now: float) -> bool:
        """Mark a key revoked; False if unknown or already revoked."""
        keys = schema.api_keys
        query = update(keys).where(keys.c.id == key_id, keys.c.revoked_at.is_(None))
        return self._write(query.values(revoked_at=now)) == 1

    # -- lockout -----------------------------------------------------------------------

    def failures(self, username: str) -> FailureState:
        """Failure counters of a normalised username."""
        rows = self._read(select(_F).where(_F.c.username == username))
        return (
            FailureState(rows[0].failures, rows[0].locks, rows[0].locked_until)
            if rows
            else FailureState()
        )

    def record_failure(
        self, username: str, update_state: Callable[[FailureState], FailureState]
    ) -> FailureState:
        """Apply ``update_state`` to the counters atomically (one write transaction)."""
        try:
            with begin_write(self.engine) as conn:
                row = conn.execute(
                    select(_F).where(_F.c.username == username).with_for_update()
                ).first()
                before = (
                    FailureState(row.failures, row.locks, row.locked_until)
                    if row
                    else FailureState()
                )
                after = update_state(before)
                values = {
                    "failures": after.failures,
                    "locks": after.locks,
                    "locked_until": after.locked_until,
                }
                if row is None:
                    conn.execute(insert(_F).values(username=username, **values))
                else:
                    conn.execute(update(_F).where(_F.c.username == username).values(**values))
                return after
        except OperationalError as exc:
            raise BackendUnavailable("the auth database is unavailable") from exc
        except IntegrityError:  # a concurrent first failure inserted the row: apply on top
            return self.record_failure(username, update_state)

    def clear_failures(self, username: str) -> None:
        """A success (or an admin unlock) resets the counters."""
        self._write(delete(_F).where(_F.c.username == username))
