"""One event that cannot be encoded never stalls the chain: it is recorded without details."""

from __future__ import annotations

from typing import Any

import pytest

from tradeguard.audit import AuditLog, SqlAuditStore
from tradeguard.events import SecurityEvent


def _cycle() -> dict[str, Any]:
    details: dict[str, Any] = {"a": 1}
    details["self"] = details
    return details


@pytest.mark.parametrize(
    "poison",
    [
        SecurityEvent("x.cycle", actor="ada", details=_cycle()),
        SecurityEvent("x.surrogate", actor="ada\ud800", details={"k": "v\udfff"}),
        SecurityEvent("x.surrogate_key", details={"k\ud800": 1}),
        SecurityEvent("x\udc00.type", subject="s"),
    ],
    ids=["cycle", "surrogate-fields", "surrogate-key", "surrogate-type"],
)
def test_append_when_event_unencodable_then_recorded_and_chain_goes_on(
    store: SqlAuditStore, poison: SecurityEvent
) -> None:
    rows = store.append_rows([SecurityEvent("before"), poison, SecurityEvent("after")])
    assert [r[0] for r in rows] == [1, 2, 3]
    assert rows[0][2] == "before" and rows[2][2] == "after"
    stand_in = rows[1]
    assert "unencodable_details" in stand_in[8]
    assert "\ud800" not in "".join(str(v) for v in stand_in)
    result = store.verify()
    assert result.ok and result.checked == 3


def test_audit_log_when_poison_event_queued_then_flush_completes(store: SqlAuditStore) -> None:
    log = AuditLog(store)
    try:
        log.record(SecurityEvent("x.cycle", details=_cycle()))
        log.record(SecurityEvent("after"))
        assert log.flush(timeout=30)
        types = [r.type for r in log.query()]
        assert types == ["x.cycle", "after"]
        assert log.verify().ok
    finally:
        log.close()
