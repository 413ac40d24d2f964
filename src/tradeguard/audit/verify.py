"""Chain verification, pure: which record is the first bad one, and why."""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from tradeguard.audit.chain import (
    GENESIS,
    AuditRecord,
    MacKey,
    checkpoint_mac,
    keyed,
    record_is_authentic,
)

_REORDER_WINDOW = 16


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed (seq, hash): the head of the chain, or the anchor left by a prune."""

    kind: str
    seq: int
    hash: str
    mac: str

    def authentic(self, key: MacKey) -> bool:
        """Whether the MAC is right for this key."""
        return hmac.compare_digest(checkpoint_mac(key, self.kind, self.seq, self.hash), self.mac)


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """``ok``, how many records were checked, the first bad sequence number and why."""

    ok: bool
    checked: int
    first_bad: int | None = None
    reason: str | None = None


def _true_position(key: MacKey, record: AuditRecord) -> int | None:
    for delta in range(1, _REORDER_WINDOW + 1):
        for candidate in (record.seq - delta, record.seq + delta):
            if candidate > 0 and record_is_authentic(key, record, as_seq=candidate):
                return candidate
    return None


def _classify_forgery(key: MacKey, record: AuditRecord, following: AuditRecord | None) -> str:
    moved_from = _true_position(key, record)
    if moved_from is not None:
        return f"reordered: the record stored at {record.seq} was written as {moved_from}"
    if following is not None and record_is_authentic(key, following, as_seq=record.seq):
        return "inserted: a record that was never written sits here; later ones were shifted"
    return "modified: the record does not match its MAC"


def verify_chain(
    key: MacKey,
    records: Iterable[AuditRecord],
    *,
    head: Checkpoint | None,
    anchor: Checkpoint | None = None,
) -> VerifyResult:
    """Walk ``records`` (ascending seq) from ``anchor`` (or the genesis) to the signed ``head``.

    Detected: a modified record, a deleted record (gap), an inserted record, reordered
    records, a tail cut off before the signed head, a record appended after it, and a
    forged head or anchor.
    """
    key = keyed(key)
    if anchor is not None and not anchor.authentic(key):
        return VerifyResult(False, 0, anchor.seq, "prune anchor forged: its MAC is wrong")
    if head is not None and not head.authentic(key):
        return VerifyResult(False, 0, head.seq, "head checkpoint forged: its MAC is wrong")
    expected_seq = anchor.seq + 1 if anchor else 1
    expected_prev = anchor.hash if anchor else GENESIS
    checked = 0
    iterator: Iterator[AuditRecord] = iter(records)
    current = next(iterator, None)
    while current is not None:
        following = next(iterator, None)
        if current.seq < expected_seq:
            return VerifyResult(False, checked, current.seq, "duplicate or out-of-order seq")
        if current.seq > expected_seq:
            return VerifyResult(
                False, checked, expected_seq,
                f"deleted: records {expected_seq}..{current.seq - 1} are missing",
            )  # fmt: skip
        if head is not None and current.seq > head.seq:
            return VerifyResult(
                False, checked, current.seq, "inserted: a record after the signed head"
            )
        if not record_is_authentic(key, current):
            reason = _classify_forgery(key, current, following)
            return VerifyResult(False, checked, current.seq, reason)
        if not hmac.compare_digest(current.prev_hash, expected_prev):
            reason = "reordered or deleted: a genuine record that does not follow its predecessor"
            return VerifyResult(False, checked, current.seq, reason)
        checked += 1
        expected_prev = current.hash
        expected_seq += 1
        current = following
    last_seq = expected_seq - 1
    if head is not None:
        if head.seq > last_seq:
            return VerifyResult(
                False, checked, last_seq + 1,
                f"truncated: the signed head is at {head.seq} but the chain ends at {last_seq}",
            )  # fmt: skip
        if head.seq == last_seq and not hmac.compare_digest(head.hash, expected_prev):
            return VerifyResult(False, checked, last_seq, "the last record is not the signed head")
    return VerifyResult(True, checked)
