"""Build the AuditLog from settings: the database URL, the key from the SecretsManager."""

from __future__ import annotations

from tradeguard.audit.jsonl import JsonLinesSink
from tradeguard.audit.key import load_or_create_audit_key
from tradeguard.audit.log import AuditLog
from tradeguard.audit.store import SqlAuditStore
from tradeguard.clock import SYSTEM_CLOCK, Clock
from tradeguard.events import EventBus
from tradeguard.secrets import SecretsManager
from tradeguard.settings import Settings
from tradeguard.storage import create_database_engine


def build_audit_log(
    settings: Settings,
    secrets: SecretsManager,
    *,
    bus: EventBus | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> AuditLog:
    """An AuditLog over ``TRADEGUARD_DATABASE_URL`` with the optional JSON-lines sink."""
    key = load_or_create_audit_key(secrets)
    store = SqlAuditStore(
        create_database_engine(settings.resolved_database_url()), key, clock=clock
    )
    jsonl = JsonLinesSink(settings.audit_jsonl) if settings.audit_jsonl is not None else None
    return AuditLog(store, jsonl=jsonl, bus=bus)
