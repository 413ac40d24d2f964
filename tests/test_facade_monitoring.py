"""The default bus wires everything: every event is counted, recorded and run through alerts."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

import tradeguard
from tradeguard import metrics
from tradeguard.errors import AlertConfigError
from tradeguard.events import SecurityEvent


def sample(name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(metrics.render().decode()):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


def test_default_bus_when_events_then_metrics_audit_and_alert_all_see_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = tradeguard.get_event_bus()
    with caplog.at_level(logging.WARNING):
        for _ in range(5):
            bus.publish(SecurityEvent("auth.login_failed", actor="alice", outcome="failure"))
        bus.publish(SecurityEvent("killswitch.engaged", actor="ops", severity="critical"))
    assert sample("tradeguard_logins_total", outcome="failure") == 5
    assert sample("tradeguard_security_events_total", type="killswitch.engaged") == 1
    log = tradeguard.get_audit_log()
    assert [r.type for r in log.query(type="killswitch.*")] == ["killswitch.engaged"]
    engine = tradeguard.get_alert_engine()
    assert engine.alerts_fired == 2
    assert "auth.login_failures" in caplog.text and "killswitch.engaged" in caplog.text
    assert log.verify().ok
    assert sample("tradeguard_audit_chain_ok") == 1


def test_reset_when_called_then_metrics_start_from_zero() -> None:
    tradeguard.get_event_bus().publish(SecurityEvent("order.rejected", details={"codes": ["X"]}))
    assert sample("tradeguard_orders_checked_total", decision="rejected") == 1
    tradeguard.reset()
    tradeguard.get_event_bus()
    assert sample("tradeguard_orders_checked_total", decision="rejected") == 0


def test_alert_settings_when_webhook_without_secret_then_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRADEGUARD_ALERT_WEBHOOK_URL", "https://ops.example.com/hook")
    tradeguard.reset()
    with pytest.raises(AlertConfigError, match="SECRET"):
        tradeguard.get_event_bus()


def test_alert_settings_when_rules_file_then_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\nname = "any-order"\nevent_type = "order.*"\n')
    monkeypatch.setenv("TRADEGUARD_ALERT_RULES", str(rules))
    tradeguard.reset()
    tradeguard.get_event_bus().publish(SecurityEvent("order.approved"))
    assert tradeguard.get_alert_engine().alerts_fired == 1


def test_default_risk_engine_when_wash_pattern_then_surveillance_alerts_on_the_bus() -> None:
    seen: list[SecurityEvent] = []
    tradeguard.get_event_bus().subscribe(seen.append)
    account = {"account_value": 1_000_000, "prices": {"BTC-USD": "100"}}
    order = {"symbol": "BTC-USD", "quantity": 1, "order_type": "limit", "limit_price": "100",
             "venue": "CRYPTO", "account_id": "acct-1"}  # fmt: skip
    buy = tradeguard.validate_order({**order, "side": "buy", "client_order_id": "b1"}, **account)
    sell = tradeguard.validate_order({**order, "side": "sell", "client_order_id": "s1"}, **account)
    assert buy.approved and sell.approved  # surveillance alerts; by default it blocks nothing
    alerts = [e for e in seen if e.type.startswith("surveillance.")]
    assert [e.type for e in alerts] == ["surveillance.wash"]
    assert alerts[0].subject == "acct-1"
    assert tradeguard.get_risk_engine().trading_state.value == "ACTIVE"
