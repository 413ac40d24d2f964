"""Tables of users, sessions, revoked tokens, API keys and login failures."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Double, Integer, MetaData, String, Table, Text

metadata = MetaData()

users = Table(
    "tg_user",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("username", String(64), nullable=False, unique=True),  # normalised
    Column("display_name", String(256), nullable=False),
    Column("password_hash", String(512), nullable=False),
    Column("role", String(16), nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("must_change_password", Boolean, nullable=False, default=False),
    Column("mfa_state", String(16), nullable=False, default="off"),  # off | pending | on
    Column("mfa_last_step", Integer, nullable=True),
    Column("recovery_codes", Text, nullable=False, default="[]"),  # JSON list of hashes
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
)

sessions = Table(
    "tg_session",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("user_id", String(36), nullable=False, index=True),
    Column("created_at", Double, nullable=False),
    Column("absolute_expiry", Double, nullable=False),
    Column("refresh_jti", String(64), nullable=False),
    Column("refreshed_at", Double, nullable=True),
    Column("ended_at", Double, nullable=True),
    Column("end_reason", String(64), nullable=True),
    Column("ip", String(64), nullable=True),
    Column("user_agent", String(512), nullable=True),
)

revocations = Table(
    "tg_token_revocation",
    metadata,
    Column("jti", String(64), primary_key=True),
    Column("expires_at", Double, nullable=False, index=True),
    Column("revoked_at", Double, nullable=False),
)

api_keys = Table(
    "tg_api_key",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("user_id", String(36), nullable=False, index=True),
    Column("name", String(128), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("created_at", Double, nullable=False),
    Column("expires_at", Double, nullable=True),
    Column("revoked_at", Double, nullable=True),
    Column("last_used_at", Double, nullable=True),
)

login_failures = Table(
    "tg_login_failure",
    metadata,
    Column("username", String(64), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("locks", Integer, nullable=False),
    Column("locked_until", Double, nullable=False),
)
