"""Every kind of tampering is found, with the right sequence number, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, insert, select, update

from tradeguard.audit import AuditLog, SqlAuditStore, read_jsonl, verify_chain
from tradeguard.audit.chain import checkpoint_mac, record_mac
from tradeguard.audit.schema import head, records
from tradeguard.clock import FixedClock
from tradeguard.events import SecurityEvent
from tradeguard.storage import create_database_engine

KEY = os.urandom(32)
COUNT = 60


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'audit.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    built = create_database_engine(url)
    yield built
    built.dispose()


@pytest.fixture
def log(engine: Engine, clock: FixedClock) -> Iterator[AuditLog]:
    audit = AuditLog(SqlAuditStore(engine, KEY, clock=clock))
    for i in range(COUNT):
        clock.advance(1)
        audit.record(SecurityEvent(
            "order.approved", actor=f"bot-{i % 3}", subject="AAPL", outcome="approved",
            details={"qty": i, "price": "187.20"}, time=clock.now(),
        ))  # fmt: skip
    assert audit.flush(10)
    yield audit
    audit.close()


def row(engine: Engine, seq: int) -> dict[str, object]:
    with engine.connect() as conn:
        return dict(conn.execute(select(records).where(records.c.seq == seq)).one()._mapping)


def execute(engine: Engine, *statements: object) -> None:
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(statement)  # type: ignore[call-overload]


def test_untouched_chain_verifies(log: AuditLog) -> None:
    result = log.verify()
    assert result.ok and result.checked == COUNT and result.first_bad is None


@pytest.mark.parametrize("column", ["actor", "details", "type", "time", "outcome"])
def test_modified_record_found_at_its_seq(log: AuditLog, engine: Engine, column: str) -> None:
    value = {"details": '{"qty":1000000}', "time": "2020-01-01T00:00:00.000000Z"}.get(column, "x")
    execute(engine, update(records).where(records.c.seq == 17).values({column: value}))
    result = log.verify()
    assert not result.ok
    assert result.first_bad == 17
    assert result.reason is not None and result.reason.startswith("modified")


def test_modified_record_with_recomputed_plain_hash_still_found(
    log: AuditLog, engine: Engine
) -> None:
    """An attacker without the key can't recompute the MAC, whatever hash they write."""
    forged = row(engine, 30)
    fields = (forged["time"], forged["type"], "mallory", forged["subject"], forged["ip"],
              forged["outcome"], forged["severity"], forged["details"])  # fmt: skip
    wrong_key_mac = record_mac(os.urandom(32), 30, fields, str(forged["prev_hash"]))
    execute(engine, update(records).where(records.c.seq == 30).values(
        actor="mallory", hash=wrong_key_mac))  # fmt: skip
    result = log.verify()
    assert (result.ok, result.first_bad) == (False, 30)


def test_deleted_record_found_at_the_gap(log: AuditLog, engine: Engine) -> None:
    execute(engine, delete(records).where(records.c.seq == 23))
    result = log.verify()
    assert (result.ok, result.first_bad) == (False, 23)
    assert result.reason is not None and result.reason.startswith("deleted")
    assert result.checked == 22


def test_deleted_first_record_found(log: AuditLog, engine: Engine) -> None:
    execute(engine, delete(records).where(records.c.seq == 1))
    result = log.verify()
    assert (result.ok, result.first_bad) == (False, 1)


def test_inserted_record_with_shift_found_where_inserted(log: AuditLog, engine: Engine) -> None:
    with engine.begin() as conn:
        for seq in range(COUNT, 39, -1):  # make room at 40, as an attacker would have to
            conn.execute(update(records).where(records.c.seq == seq).values(seq=seq + 1))
        template = row(engine, 39)
        template.update(seq=40, actor="mallory", prev_hash=template["hash"], hash="0" * 64)
        conn.execute(insert(records).values(template))
    result = log.verify()
    assert (result.ok, result.first_bad) == (False, 40)
    assert result.reason is not None and result.reason.startswith("inserted")


def test_record_appended_after_signed_head_found(log: AuditLog, engine: Engine) -> None:
    last = row(engine, COUNT)
    last.update(seq=COUNT + 1, prev_hash=last["hash"], hash="f" * 64)
    execute(engine, insert(records).values(last))
    result = log.verify()
    assert (result.ok, result.first_bad) == (False, COUNT + 1)
    assert result.reason is not None and "inserted" in result.reason


def test_reordered_records_found_at_first_swapped(log: AuditLog, engine: Engine) -> None:
    a, b = row(engine, 33), row(engine, 34)
    a.pop("seq"), b.pop("seq")
    execute(
        engine,
        update(records).where(records.c.seq == 33).values(b),
        update(records).where(records.c.seq == 34).values(a),
    )
    result = log.verify()
    assert (result.ok, result.first_bad) == (False, 33)
    assert result.reason is not None and result.reason.startswith("reordered")


def test_truncated_tail_found_against_signed_head(log: AuditLog, engine: Engine) -> None:
    execute(engine, delete(records).where(records.c.seq > 50))
    result = log.verify()
    assert (result.ok, result.first_bad) == (False, 51)
    assert result.reason is not None and result.reason.startswith("truncated")
    assert result.checked == 50


def test_truncation_hidden_by_rewinding_head_without_key_found(
    log: AuditLog, engine: Engine
) -> None:
    new_last = row(engine, 50)
    forged_mac = checkpoint_mac(os.urandom(32), "head", 50, str(new_last["hash"]))
    execute(
        engine,
        delete(records).where(records.c.seq > 50),
        update(head).values(seq=50, hash=new_last["hash"], mac=forged_mac),
    )
    result = log.verify()
    assert not result.ok and result.reason is not None and "forged" in result.reason


def test_prune_when_cut_then_rest_verifies_and_tampering_still_found(
    log: AuditLog, engine: Engine, clock: FixedClock
) -> None:
    cut = clock.now() - timedelta(seconds=COUNT - 20.5)  # records 1..20 are older
    assert log.prune(cut) == 20
    result = log.verify()
    assert result.ok and result.checked == COUNT - 20
    execute(engine, delete(records).where(records.c.seq == 21))
    result = log.verify()
    assert (result.ok, result.first_bad) == (False, 21)


def test_query_filters_by_type_actor_and_time(log: AuditLog, clock: FixedClock) -> None:
    log.record(SecurityEvent("auth.login_failed", actor="eve", time=clock.now()))
    assert [r.type for r in log.query(type="auth.*")] == ["auth.login_failed"]
    assert len(log.query(actor="bot-1")) == COUNT // 3
    since = clock.now() - timedelta(seconds=5)
    assert [r.seq for r in log.query(since=since, type="order.approved")] == list(
        range(COUNT - 5, COUNT + 1)
    )
    newest = log.query(limit=2, newest_first=True)
    assert [r.seq for r in newest] == [COUNT + 1, COUNT]


def test_export_when_jsonl_then_copy_verifies_on_its_own(log: AuditLog) -> None:
    out = io.StringIO()
    assert log.export(out) == COUNT
    copy = list(read_jsonl(out.getvalue().splitlines()))
    assert verify_chain(KEY, copy, head=None).ok
    tampered = out.getvalue().splitlines()
    tampered[5] = tampered[5].replace('"qty":5', '"qty":500')
    result = verify_chain(KEY, read_jsonl(tampered), head=None)
    assert (result.ok, result.first_bad) == (False, 6)


def test_wrong_key_when_verifying_then_first_record_bad(log: AuditLog, engine: Engine) -> None:
    other = SqlAuditStore(engine, os.urandom(32))
    result = other.verify()
    assert not result.ok
