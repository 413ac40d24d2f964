"""The batching writer and the AuditLog around it: durable waits, backpressure, no loss."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
from audit_support import KEY

import tradeguard
from tradeguard.audit import AuditLog, BatchWriter, JsonLinesSink, SqlAuditStore, read_jsonl
from tradeguard.audit.chain import AuditRecord, Row
from tradeguard.audit.store import SealedBatch
from tradeguard.audit.verify import verify_chain
from tradeguard.errors import AuditWriteFailed
from tradeguard.events import SecurityEvent
from tradeguard.storage import create_database_engine


def event(i: int, kind: str = "order.approved") -> SecurityEvent:
    return SecurityEvent(kind, actor="bot", subject=f"s{i}", details={"i": i})


class GatedAppend:
    """An append that blocks until released, and can fail a number of times first."""

    def __init__(self, store: SqlAuditStore, *, failures: int = 0) -> None:
        self.store = store
        self.gate = threading.Event()
        self.gate.set()
        self.failures = failures
        self.batches: list[int] = []

    def __call__(self, events: Sequence[SecurityEvent]) -> list[AuditRecord]:
        self.gate.wait(10)
        if self.failures:
            self.failures -= 1
            raise OSError("disk on fire")
        self.batches.append(len(events))
        return self.store.append(events)


def test_record_when_wait_then_committed_before_return(store: SqlAuditStore) -> None:
    log = AuditLog(store)
    log.record(event(1), wait=True)
    with store.snapshot() as conn:
        assert [r.subject for r in store.iter_records(conn)] == ["s1"]
    log.close()


def test_events_when_many_queued_then_committed_in_batches_and_verify(
    store: SqlAuditStore,
) -> None:
    append = GatedAppend(store)
    append.gate.clear()
    writer = BatchWriter(append, max_batch=500)
    for i in range(2000):
        writer.submit(event(i))
    append.gate.set()
    assert writer.flush(30)
    writer.close()
    assert sum(append.batches) == 2000
    assert len(append.batches) < 2000 / 10  # grouped, not one commit per event
    result = store.verify()
    assert result.ok and result.checked == 2000


def test_queue_when_full_then_producer_blocks_not_drops(store: SqlAuditStore) -> None:
    append = GatedAppend(store)
    append.gate.clear()
    writer = BatchWriter(append, max_queue=10, max_batch=5)
    for i in range(10):
        writer.submit(event(i))
    blocked = threading.Thread(target=lambda: [writer.submit(event(100 + i)) for i in range(20)])
    blocked.start()
    blocked.join(0.2)
    assert blocked.is_alive()  # backpressure: waiting for room, nothing dropped
    append.gate.set()
    blocked.join(30)
    assert not blocked.is_alive()
    assert writer.flush(30)
    writer.close()
    assert store.verify().checked == 30


def test_database_failure_when_transient_then_retried_and_nothing_lost(
    store: SqlAuditStore,
) -> None:
    append = GatedAppend(store, failures=3)
    writer = BatchWriter(append, retry_delay=0.001, max_attempts=10)
    writer.submit(event(1), wait=True, timeout=30)
    for i in range(2, 6):
        writer.submit(event(i))
    assert writer.flush(30)
    writer.close()
    assert writer.failures == 3
    assert store.verify().checked == 5


def test_database_failure_when_persistent_then_durable_waiter_told(
    store: SqlAuditStore,
) -> None:
    append = GatedAppend(store, failures=10_000)
    writer = BatchWriter(append, retry_delay=0.001, max_retry_delay=0.001, max_attempts=3)
    with pytest.raises(AuditWriteFailed, match="could not be committed"):
        writer.submit(event(1), wait=True, timeout=30)
    append.failures = 0  # the database comes back: the event is still written
    assert writer.flush(30)
    writer.close()
    assert store.verify().checked == 1


def test_close_when_events_queued_then_flushed_and_later_submits_refused(
    store: SqlAuditStore,
) -> None:
    log = AuditLog(store)
    for i in range(300):
        log.record(event(i))
    log.close()
    fresh = SqlAuditStore(create_database_engine(str(store._engine.url)), KEY)
    assert fresh.verify().checked == 300
    fresh.close()
    with pytest.raises(AuditWriteFailed, match="closed"):
        log.record(event(999))


def test_bus_when_durable_type_then_recorded_before_publish_returns(
    store: SqlAuditStore,
) -> None:
    log = AuditLog(store)
    assert log.is_durable(SecurityEvent("secret.written"))
    assert log.is_durable(SecurityEvent("order.approved", severity="critical"))
    assert not log.is_durable(SecurityEvent("order.approved"))
    append_calls: list[int] = []
    original = store.append_rows

    def spy(events: Sequence[SecurityEvent]) -> list[Row]:
        append_calls.append(len(events))
        return original(events)

    store.append_rows = spy  # type: ignore[method-assign]
    log2 = AuditLog(store)
    log2(SecurityEvent("killswitch.engaged", actor="ops"))
    assert append_calls  # committed before the call returned
    log2.close()
    log.close()


def test_jsonl_sink_when_records_committed_then_file_holds_verifiable_copy(
    store: SqlAuditStore, tmp_path: Path
) -> None:
    path = tmp_path / "siem" / "audit.jsonl"
    sink = JsonLinesSink(path)
    log = AuditLog(store, jsonl=sink)
    for i in range(50):
        log.record(event(i, kind="auth.login_failed"))
    log.close()
    assert oct(path.stat().st_mode & 0o777) == oct(0o600)
    records = list(read_jsonl(path.read_text().splitlines()))
    assert [r.seq for r in records] == list(range(1, 51))
    assert verify_chain(KEY, records, head=None).ok


def test_facade_when_events_published_then_recorded_with_redaction() -> None:
    bus = tradeguard.get_event_bus()
    bus.publish(SecurityEvent("auth.login_failed", actor="alice", details={"password": "hunter2"}))
    tradeguard.store_secret("brokers/alpaca", {"api_key": "AK-123", "secret": "SK-456"})
    log = tradeguard.get_audit_log()
    assert log.flush(10)
    types = [r.type for r in log.query()]
    assert "auth.login_failed" in types and "secret.written" in types
    assert types[:2] == ["secret.written", "secret.read"]  # the audit key's own creation
    dump = "".join(r.details for r in log.query())
    for secret in ("hunter2", "AK-123", "SK-456"):
        assert secret not in dump
    assert log.verify().ok


def test_facade_when_audit_disabled_then_bus_has_no_recorder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRADEGUARD_AUDIT_ENABLED", "false")
    tradeguard.reset()
    tradeguard.get_event_bus().publish(SecurityEvent("order.approved"))
    assert not (tradeguard.get_settings().home / "tradeguard.db").exists()


def _append_worker(url: str, key: bytes, worker: int, count: int) -> None:
    log = AuditLog(SqlAuditStore(create_database_engine(url), key))
    for i in range(count):
        log.record(SecurityEvent("order.approved", actor=f"proc-{worker}", details={"i": i}))
    log.close()


@pytest.mark.slow
def test_four_processes_when_appending_then_one_gap_free_chain(shared_url: str) -> None:
    url = shared_url
    SqlAuditStore(create_database_engine(url), KEY).close()  # schema first
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append_worker, args=(url, KEY, w, 500)) for w in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(120)
    assert [p.exitcode for p in workers] == [0, 0, 0, 0]
    store = SqlAuditStore(create_database_engine(url), KEY)
    result = store.verify()
    assert result.ok and result.checked == 2000
    with store.snapshot() as conn:
        records = list(store.iter_records(conn))
    assert [r.seq for r in records] == list(range(1, 2001))
    per_worker = {f"proc-{w}": [r.details_dict()["i"] for r in records if r.actor == f"proc-{w}"]
                  for w in range(4)}  # fmt: skip
    assert all(v == list(range(500)) for v in per_worker.values())  # each in its own order
    store.close()


def test_prepared_batch_when_another_writer_moved_the_head_then_sealed_again(
    shared_url: str,
) -> None:
    url = shared_url
    mine, other = (SqlAuditStore(create_database_engine(url), KEY) for _ in range(2))
    assert mine.prepare([event(0)]) == [event(0)]  # no head known yet: nothing sealed ahead
    mine.append_rows([event(1)])
    ahead = mine.prepare([event(2), event(3)])  # sealed after seq 1
    assert isinstance(ahead, SealedBatch) and [row[0] for row in ahead.rows] == [2, 3]
    other.append_rows([event(4)])  # another process takes seq 2 meanwhile
    rows = mine.append_rows(ahead)
    assert [(row[0], row[4]) for row in rows] == [(3, "s2"), (4, "s3")]
    quiet = mine.prepare([event(5)])
    assert isinstance(quiet, SealedBatch)
    assert mine.append_rows(quiet) is quiet.rows  # the head did not move: used as sealed
    result = mine.verify()
    assert result.ok and result.checked == 5
    with mine.snapshot() as conn:
        assert [r.subject for r in mine.iter_records(conn)] == ["s1", "s4", "s2", "s3", "s5"]
    mine.close()
    other.close()


def test_pipelined_writer_when_many_batches_and_durable_waits_then_in_order(
    store: SqlAuditStore,
) -> None:
    writer = BatchWriter(store.append_rows, prepare=store.prepare, max_batch=64, linger=0)
    durable = threading.Thread(
        target=lambda: [writer.submit(event(10_000 + i), wait=True) for i in range(50)]
    )
    durable.start()
    for i in range(3000):
        writer.submit(event(i))
    durable.join(30)
    assert writer.flush(30) and writer.pending == 0
    writer.close()
    result = store.verify()
    assert result.ok and result.checked == 3050
    with store.snapshot() as conn:
        subjects = [int(r.subject[1:]) for r in store.iter_records(conn) if r.subject]
    assert [i for i in subjects if i < 10_000] == list(range(3000))
    assert [i for i in subjects if i >= 10_000] == list(range(10_000, 10_050))
