"""Audit: a hash-chained, HMAC-keyed, append-only log of every security event."""

from tradeguard.audit.chain import AuditRecord
from tradeguard.audit.factory import build_audit_log
from tradeguard.audit.jsonl import JsonLinesSink, read_jsonl, write_jsonl
from tradeguard.audit.log import DURABLE_PREFIXES, AuditLog
from tradeguard.audit.store import SqlAuditStore
from tradeguard.audit.verify import Checkpoint, VerifyResult, verify_chain
from tradeguard.audit.writer import BatchWriter

__all__ = [
    "DURABLE_PREFIXES",
    "AuditLog",
    "AuditRecord",
    "BatchWriter",
    "Checkpoint",
    "JsonLinesSink",
    "SqlAuditStore",
    "VerifyResult",
    "build_audit_log",
    "read_jsonl",
    "verify_chain",
    "write_jsonl",
]
