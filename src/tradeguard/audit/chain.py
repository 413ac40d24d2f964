"""The hash chain, pure: canonical encoding of a record and its HMAC-SHA256.

A record's MAC covers the JSON array ``[seq, time, type, actor, subject, ip, outcome,
severity, details, prev_hash]`` (``details`` as its canonical JSON text), encoded compactly
as UTF-8. The key lives in the SecretsManager, so whoever can write the database but lacks
the key cannot forge a record or re-link the chain.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tradeguard.events import SecurityEvent

GENESIS = "0" * 64


def _json_default(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if isinstance(value, datetime):
        return format_time(value)
    return str(value)


_dumps = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), sort_keys=True, default=_json_default
)


def canonical_details(details: Mapping[str, Any]) -> str:
    """Canonical JSON text of event details (sorted keys; non-JSON values as str)."""
    return _dumps.encode(dict(details)) if details else "{}"


def format_time(when: datetime) -> str:
    """Fixed-width UTC ISO-8601 with microseconds, so text order is time order.

    A naive datetime is taken as UTC (never as the machine's local time).
    """
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    elif when.utcoffset():
        when = when.astimezone(UTC)
    return when.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_time(text: str) -> datetime:
    """Inverse of :func:`format_time`."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One link of the chain, exactly as stored."""

    seq: int
    time: str
    type: str
    actor: str | None
    subject: str | None
    ip: str | None
    outcome: str | None
    severity: str
    details: str
    prev_hash: str
    hash: str

    def details_dict(self) -> dict[str, Any]:
        """The details, parsed."""
        value = json.loads(self.details)
        return value if isinstance(value, dict) else {}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (the JSON-lines export format)."""
        return {
            "seq": self.seq, "time": self.time, "type": self.type, "actor": self.actor,
            "subject": self.subject, "ip": self.ip, "outcome": self.outcome,
            "severity": self.severity, "details": self.details_dict(),
            "prev_hash": self.prev_hash, "hash": self.hash,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuditRecord:
        """Inverse of :meth:`to_dict` (details re-canonicalised)."""
        return cls(
            seq=int(data["seq"]), time=str(data["time"]), type=str(data["type"]),
            actor=data.get("actor"), subject=data.get("subject"), ip=data.get("ip"),
            outcome=data.get("outcome"), severity=str(data["severity"]),
            details=canonical_details(data.get("details") or {}),
            prev_hash=str(data["prev_hash"]), hash=str(data["hash"]),
        )  # fmt: skip


_material = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def mac_of_row(key: bytes, row: Sequence[Any]) -> str:
    """HMAC-SHA256 (hex) of ``[seq, time, ..., details, prev_hash]`` in that order."""
    return hmac.digest(key, _material(list(row)).encode("utf-8"), "sha256").hex()


def record_mac(key: bytes, seq: int, fields: tuple[Any, ...], prev_hash: str) -> str:
    """HMAC-SHA256 (hex) of a record's canonical form; ``fields`` = time..details."""
    return mac_of_row(key, (seq, *fields, prev_hash))


def fields_of(record: AuditRecord) -> tuple[Any, ...]:
    """The MAC-covered fields between seq and prev_hash."""
    return (
        record.time, record.type, record.actor, record.subject, record.ip, record.outcome,
        record.severity, record.details,
    )  # fmt: skip


def record_is_authentic(key: bytes, record: AuditRecord, *, as_seq: int | None = None) -> bool:
    """Whether the stored hash is the MAC of the record (taken at ``as_seq`` if given)."""
    seq = record.seq if as_seq is None else as_seq
    expected = record_mac(key, seq, fields_of(record), record.prev_hash)
    return hmac.compare_digest(expected, record.hash)


def seal_event(
    key: bytes, seq: int, event: SecurityEvent, prev_hash: str, now: datetime
) -> AuditRecord:
    """Make the record for ``event`` at position ``seq`` after ``prev_hash``."""
    fields = (
        format_time(event.time or now), event.type, event.actor, event.subject, event.ip,
        event.outcome, event.severity, canonical_details(event.details),
    )  # fmt: skip
    return AuditRecord(seq, *fields, prev_hash, record_mac(key, seq, fields, prev_hash))


def checkpoint_mac(key: bytes, kind: str, seq: int, hash_: str) -> str:
    """MAC of a checkpoint (the signed head, or a prune anchor)."""
    return mac_of_row(key, ("checkpoint", kind, seq, hash_))
