"""The fast paths give exactly what the straightforward code gives.

Sealing (pre-keyed HMAC, one material string, cached pieces), the multi-row insert, the
writer's lingering group commit, and the bus's redaction shortcut are each checked against a
plain reference or for the guarantee they must keep. No timings: a linger of an hour shows
that urgent work never waits for it.
"""

from __future__ import annotations

import hmac
import json
import os
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from tradeguard.audit import AuditLog, BatchWriter, SqlAuditStore
from tradeguard.audit.chain import AuditRecord, KeyedMac, Row, format_time, mac_of_row, seal_rows
from tradeguard.events import REDACTED, EventBus, SecurityEvent
from tradeguard.storage import create_database_engine

KEY = os.urandom(32)
NOW = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
HOUR = 3600.0


def reference_time(when: datetime) -> str:
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    elif when.utcoffset():
        when = when.astimezone(UTC)
    return when.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def reference_default(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if isinstance(value, datetime):
        return reference_time(value)
    return str(value)


def as_text(value: object) -> str | None:
    """A head field as stored: text or None; anything else as its repr."""
    return value if value is None or isinstance(value, str) else repr(value)


def reference_row(seq: int, event: SecurityEvent, prev: str) -> Row:
    """The record as the original implementation sealed it (json.dumps + hmac.new), with
    head fields that are not text stored and MACed as their repr."""
    details = (
        json.dumps(dict(event.details), ensure_ascii=False, separators=(",", ":"),
                   sort_keys=True, default=reference_default)
        if event.details else "{}"
    )  # fmt: skip
    fields = [seq, reference_time(event.time or NOW), event.type, as_text(event.actor),
              as_text(event.subject), as_text(event.ip), as_text(event.outcome),
              event.severity, details, prev]  # fmt: skip
    material = json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()
    return (*fields, hmac.new(KEY, material, "sha256").hexdigest())


ODD_EVENTS = [
    SecurityEvent("order.approved", actor="bot-1", subject="AAPL", details={"qty": 1}),
    SecurityEvent("order.approved", actor="bot-1", subject="AAPL", details={"qty": 1}),
    SecurityEvent("auth.login_failed", actor='quote"back\\slash\nnewline', ip="::1",
                  outcome="denied", severity="warning", time=datetime(999, 1, 2, tzinfo=UTC)),
    SecurityEvent("ünïcode.ev", actor="日本", subject="\u2028", details={"é": "ü", "a": [1, 2.5]}),
    SecurityEvent("t.naive", time=datetime(2026, 1, 1, 23, 59, 59), details={"n": None}),
    SecurityEvent("t.offset", time=datetime(2026, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=5)))),
    SecurityEvent("t.zero", time=datetime(2026, 6, 1, 12, 0, 0, 0, tzinfo=UTC)),
    SecurityEvent("nested", details=MappingProxyType(
        {"z": {"b": 1, "a": {"s": {3, 1, 2}}}, "when": NOW, "obj": Path("/x"), "t": (1, "2")})),
    SecurityEvent("odd.head", actor=7, subject=True, ip=1.5),  # type: ignore[arg-type]
    SecurityEvent("odd.head", actor="7", subject="True", ip="1.5"),
    SecurityEvent("unhashable", actor=["a", "b"]),  # type: ignore[arg-type]
]  # fmt: skip


def test_seal_rows_when_odd_events_then_byte_for_byte_the_reference() -> None:
    rows = seal_rows(KeyedMac(KEY), 41, "0" * 64, ODD_EVENTS, lambda: NOW)
    prev = "0" * 64
    for seq, (event, row) in enumerate(zip(ODD_EVENTS, rows, strict=True), start=42):
        assert row == reference_row(seq, event, prev)
        assert mac_of_row(KEY, row[:10]) == row[10]
        prev = row[10]


def test_append_when_head_fields_not_text_then_stored_as_text_and_chain_verifies(
    store: SqlAuditStore,
) -> None:
    odd = [event for event in ODD_EVENTS if event.type in ("odd.head", "unhashable")]
    rows = store.append_rows([*odd, SecurityEvent("after", actor="", subject="", ip="")])
    with store.snapshot() as conn:
        stored = list(store.iter_records(conn))
    assert stored == [AuditRecord(*row) for row in rows]
    assert [(r.actor, r.subject, r.ip) for r in stored] == [
        ("7", "True", "1.5"),
        ("7", "True", "1.5"),
        ("['a', 'b']", None, None),
        ("", "", ""),
    ]  # "" stays "" (only None is NULL)
    result = store.verify()
    assert result.ok and result.checked == 4


def test_seal_rows_when_no_time_then_clock_read_once_per_batch() -> None:
    calls: list[int] = []

    def now() -> datetime:
        calls.append(1)
        return NOW

    rows = seal_rows(KeyedMac(KEY), 0, "0" * 64, [SecurityEvent("a")] * 5, now)
    assert len(calls) == 1 and {row[1] for row in rows} == {"2026-03-04T05:06:07.890123Z"}


@pytest.mark.parametrize("size", [0, 1, 31, 32, 64, 65, 100])
def test_keyed_mac_when_any_key_length_then_equals_hmac(size: int) -> None:
    key = os.urandom(size)
    mac = KeyedMac(key)
    for message in (b"", b"x", os.urandom(63), os.urandom(64), os.urandom(1000)):
        assert mac.hexdigest(message) == hmac.new(key, message, "sha256").hexdigest()
    assert mac_of_row(key, [1, "a", None]) == mac_of_row(mac, (1, "a", None))


def test_format_time_when_many_instants_and_zones_then_equals_isoformat() -> None:
    zones = [None, UTC, timezone(timedelta(hours=-7, minutes=-30)), timezone(timedelta(0))]
    start = datetime(2026, 12, 31, 23, 59, 58, 999_999)
    for step in range(0, 5000, 7):
        for zone in zones:
            when = (start + timedelta(microseconds=step * 997)).replace(tzinfo=zone)
            assert format_time(when) == reference_time(when)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlAuditStore]:
    built = SqlAuditStore(create_database_engine(f"sqlite:///{tmp_path / 'a.db'}"), KEY)
    yield built
    built.close()


def test_append_rows_when_batches_straddle_chunk_sizes_then_stored_as_returned(
    store: SqlAuditStore,
) -> None:
    returned: list[Row] = []
    for size in (1, 2, 3, 7, 2047, 2048, 2049, 4100):
        events = [SecurityEvent("x", subject=f"{size}-{i}", details={"i": i}) for i in range(size)]
        returned += store.append_rows(events)
    assert store.append_rows([]) == []
    with store.snapshot() as conn:
        stored = list(store.iter_records(conn))
    assert stored == [AuditRecord(*row) for row in returned]
    assert [r.seq for r in stored] == list(range(1, len(returned) + 1))
    result = store.verify()
    assert result.ok and result.checked == len(returned)


class Gate:
    """An append that holds every batch until opened."""

    def __init__(self, store: SqlAuditStore) -> None:
        self.store, self.open, self.batches = store, threading.Event(), [0]

    def __call__(self, events: Any) -> list[Row]:
        self.open.wait(30)
        self.batches.append(len(events))
        return self.store.append_rows(events)


def test_linger_when_durable_record_then_committed_without_waiting_for_it(
    store: SqlAuditStore,
) -> None:
    writer = BatchWriter(store.append_rows, linger=HOUR)
    for i in range(5):
        writer.offer(SecurityEvent("queued", subject=str(i)))
    writer.submit(SecurityEvent("secret.written"), wait=True, timeout=30)  # not after an hour
    assert store.verify().checked == 6
    writer.close()


def test_linger_when_flush_or_close_then_everything_committed(store: SqlAuditStore) -> None:
    writer = BatchWriter(store.append_rows, linger=HOUR)
    for i in range(10):
        writer.offer(SecurityEvent("queued", subject=str(i)))
    assert writer.flush(30)
    assert store.verify().checked == 10
    for i in range(3):
        writer.offer(SecurityEvent("queued", subject=str(i)))
    writer.close(30)
    assert store.verify().checked == 13


def test_linger_when_queue_full_then_producer_released_not_stuck(store: SqlAuditStore) -> None:
    gate = Gate(store)
    writer = BatchWriter(gate, max_queue=4, max_batch=2, linger=HOUR)
    done = threading.Event()

    def produce() -> None:
        for i in range(20):
            writer.offer(SecurityEvent("burst", subject=str(i)))
        done.set()

    producer = threading.Thread(target=produce)
    producer.start()
    gate.open.set()
    assert done.wait(30)  # a full queue hurries the writer instead of waiting out the linger
    producer.join(30)
    assert writer.flush(30)
    writer.close()
    assert sum(gate.batches) == 20 and max(gate.batches) <= 2
    assert store.verify().checked == 20


def test_audit_log_when_subscribed_then_durable_types_and_critical_wait(
    store: SqlAuditStore,
) -> None:
    log = AuditLog(store)
    bus = EventBus()
    bus.subscribe(log)
    for _ in range(2):  # the second time the type's classification comes from the cache
        assert log.is_durable(SecurityEvent("auth.login"))
        assert not log.is_durable(SecurityEvent("order.approved"))
        bus.publish(SecurityEvent("auth.login", actor="alice"))
        bus.publish(SecurityEvent("order.approved", severity="critical"))
    with store.snapshot() as conn:  # both durable: committed before publish returned
        assert [r.type for r in store.iter_records(conn)] == ["auth.login", "order.approved"] * 2
    log.close()


def test_bus_when_details_flat_or_nested_then_secrets_redacted_every_time() -> None:
    bus = EventBus()
    seen: list[SecurityEvent] = []
    bus.subscribe(seen.append)
    flat = {"qty": 1, "price": "1.5", "Api_Key": "AK", "note": None}
    nested = {"qty": 1, "headers": {"Authorization": "Bearer x", "ok": [{"password": "p"}]}}
    for _ in range(3):  # first sight of each key, then the cached verdicts
        bus.publish(SecurityEvent("a", details=flat))
        bus.publish(SecurityEvent("b", details=nested))
        bus.publish(SecurityEvent("c", details={"qty": 1, 5: "five"}))  # type: ignore[dict-item]
    for event in seen[0::3]:
        assert dict(event.details) == {"qty": 1, "price": "1.5", "Api_Key": REDACTED, "note": None}
    for event in seen[1::3]:
        headers = event.details["headers"]
        assert headers == {"Authorization": REDACTED, "ok": [{"password": REDACTED}]}
    for event in seen[2::3]:
        assert dict(event.details) == {"qty": 1, "5": "five"}
    assert all(e.time is not None for e in seen)


def test_bus_when_publisher_mutates_details_later_then_delivered_event_unchanged() -> None:
    bus = EventBus()
    seen: list[SecurityEvent] = []
    bus.subscribe(seen.append)
    details: dict[str, Any] = {"qty": 1}
    delivered = bus.publish(SecurityEvent("a", details=details))
    details["qty"] = 2
    details["token"] = "t"
    assert dict(delivered.details) == {"qty": 1} and seen == [delivered]
    with pytest.raises(TypeError):
        delivered.details["qty"] = 3  # type: ignore[index]
