"""Secrets: versioned, envelope-encrypted credentials; local SQL store or Vault KV v2."""

from tradeguard.secrets.backend import SecretsBackend
from tradeguard.secrets.factory import build_secrets_manager
from tradeguard.secrets.manager import SecretsManager
from tradeguard.secrets.models import SecretMetadata, VersionInfo
from tradeguard.secrets.paths import validate_path
from tradeguard.secrets.sql_backend import SqlSecretsBackend

__all__ = [
    "SecretMetadata",
    "SecretsBackend",
    "SecretsManager",
    "SqlSecretsBackend",
    "VersionInfo",
    "build_secrets_manager",
    "validate_path",
]
