"""The audit HMAC key: kept in the SecretsManager, created on first use."""

from __future__ import annotations

import base64
import os

from tradeguard.errors import SecretNotFound, VersionConflict
from tradeguard.secrets import SecretsManager

AUDIT_KEY_PATH = "tradeguard/audit/hmac-key"
_FIELD = "key"


def load_or_create_audit_key(secrets: SecretsManager) -> bytes:
    """Read the key; if absent, create it with check-and-set so concurrent starters agree."""
    try:
        return _decode(secrets.get_secret(AUDIT_KEY_PATH))
    except SecretNotFound:
        pass
    fresh = base64.urlsafe_b64encode(os.urandom(32)).decode("ascii")
    try:
        secrets.store_secret(AUDIT_KEY_PATH, {_FIELD: fresh}, cas=0)
    except VersionConflict:
        pass  # another process created it: use theirs
    return _decode(secrets.refresh(AUDIT_KEY_PATH))


def _decode(data: dict[str, str]) -> bytes:
    return base64.urlsafe_b64decode(data[_FIELD])
