"""Settings from ``TRADEGUARD_*`` environment variables (pydantic-settings)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_HOME = Path("~/.tradeguard")
DATABASE_FILENAME = "tradeguard.db"
MASTER_KEY_FILENAME = "master.key"


class Settings(BaseSettings):
    """Everything tradeguard reads from its environment.

    Values that may carry credentials (master key, Vault token, URLs with passwords) are
    kept out of ``repr``.
    """

    model_config = SettingsConfigDict(env_prefix="TRADEGUARD_", frozen=True, extra="ignore")

    home: Path = Field(default=DEFAULT_HOME, description="Where the embedded state lives.")
    database_url: SecretStr | None = Field(
        default=None, repr=False, description="SQLAlchemy URL; default: SQLite under home."
    )
    secrets_url: SecretStr | None = Field(
        default=None,
        repr=False,
        description="Secrets backend: unset for the local store, or vault+https://host:port/?mount=",
    )
    master_key: SecretStr | None = Field(default=None, repr=False)
    master_key_file: Path | None = None
    vault_token: SecretStr | None = Field(default=None, repr=False)
    vault_timeout: float = Field(default=5.0, gt=0)
    secrets_cache_ttl: float = Field(default=300.0, ge=0)
    secrets_cache_size: int = Field(default=1024, ge=0)
    actor: str = Field(default="local", description="Who this process acts as in events.")
    audit_enabled: bool = Field(
        default=True, description="Record every bus event in the audit log."
    )
    audit_jsonl: Path | None = Field(default=None, description="Also append records to this file.")
    jwt_algorithm: Literal["EdDSA", "ES256", "RS256", "HS256"] = "EdDSA"
    jwt_secret: SecretStr | None = Field(default=None, repr=False, description="HS256 only")
    jwt_issuer: str = "tradeguard"
    jwt_audience: str = "tradeguard"
    access_ttl_seconds: int = Field(default=900, gt=0)
    refresh_ttl_seconds: int = Field(default=604_800, gt=0)
    session_max_seconds: int = Field(default=2_592_000, gt=0, description="absolute cap")
    auth_state_ttl: float = Field(
        default=1.0, ge=0, description="how long another process's revocations may take"
    )
    redis_url: SecretStr | None = Field(default=None, repr=False)
    rate_limits: Path | None = Field(default=None, description="TOML [limits] / [fail_mode]")
    trusted_proxies: list[str] = Field(default_factory=list, description="CIDRs of proxies")
    risk_config: Path | None = Field(default=None, description="TOML risk limits")
    admin_password: SecretStr | None = Field(
        default=None,
        repr=False,
        description="The first-run admin's password (serve); else generated, printed once",
    )
    alert_rules: Path | None = Field(default=None, description="TOML rules; default: built-in.")
    alert_webhook_url: SecretStr | None = Field(default=None, repr=False)
    alert_webhook_secret: SecretStr | None = Field(default=None, repr=False)

    @field_validator(
        "home", "master_key_file", "audit_jsonl", "alert_rules", "risk_config", mode="after"
    )
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @property
    def database_path(self) -> Path:
        """The embedded SQLite file under home."""
        return self.home / DATABASE_FILENAME

    def resolved_database_url(self) -> str:
        """The database URL to use: the setting, or the SQLite file under home."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{self.database_path}"

    def resolved_vault_token(self) -> str | None:
        """``TRADEGUARD_VAULT_TOKEN``, else Vault's own ``VAULT_TOKEN``."""
        if self.vault_token is not None:
            return self.vault_token.get_secret_value()
        return os.environ.get("VAULT_TOKEN") or None
