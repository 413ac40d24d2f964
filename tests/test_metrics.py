"""Metrics: events in, Prometheus text out, with bounded, PII-free labels."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tradeguard import metrics as metrics_module
from tradeguard.events import EventBus, SecurityEvent
from tradeguard.metrics import (
    CONTENT_TYPE,
    MAX_LABEL_VALUES,
    Metrics,
    code_value,
    default_metrics,
    label_value,
    render,
    reset_default_metrics,
)
from tradeguard.secrets import build_secrets_manager
from tradeguard.settings import Settings

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(autouse=True)
def fresh_default() -> Iterator[None]:
    reset_default_metrics()
    yield
    reset_default_metrics()


def samples(body: bytes) -> Samples:
    """Every sample in a text exposition, keyed by (sample name, labels)."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))


def labels_of(found: Samples, name: str, label: str) -> set[str]:
    return {dict(key)[label] for (sample, key) in found if sample == name}


def feed(metrics: Metrics, *events: SecurityEvent) -> Samples:
    for event in events:
        metrics(event)
    return samples(metrics.render())


def test_metrics_when_order_rejected_then_violation_codes_counted() -> None:
    metrics = Metrics()
    found = feed(
        metrics,
        SecurityEvent("order.rejected", details={"violations": ["MAX_ORDER_NOTIONAL", "KILL"]}),
        SecurityEvent("order.rejected", details={"codes": ["MAX_ORDER_NOTIONAL"]}),
        SecurityEvent("order.rejected", details={"violations": [{"code": "PRICE_BAND"}]}),
        SecurityEvent("order.approved"),
    )
    total = "tradeguard_order_violations_total"
    assert value(found, total, code="MAX_ORDER_NOTIONAL") == 2
    assert value(found, total, code="KILL") == 1
    assert value(found, total, code="PRICE_BAND") == 1
    assert value(found, "tradeguard_orders_checked_total", decision="rejected") == 3
    assert value(found, "tradeguard_orders_checked_total", decision="approved") == 1


def test_metrics_when_violation_is_an_object_with_code_then_counted() -> None:
    class Violation:
        code = "MAX_POSITION"

    found = feed(Metrics(), SecurityEvent("order.rejected", details={"violations": (Violation(),)}))
    assert value(found, "tradeguard_order_violations_total", code="MAX_POSITION") == 1


def test_metrics_when_violation_code_is_odd_then_sanitised_and_capped() -> None:
    found = feed(
        Metrics(),
        SecurityEvent("order.rejected", details={"violations": ["max-notional {x}", "Z" * 200]}),
    )
    codes = labels_of(found, "tradeguard_order_violations_total", "code")
    assert codes == {"MAX_NOTIONAL__X_", "Z" * 64}


def test_metrics_when_logins_then_counted_by_outcome() -> None:
    found = feed(
        Metrics(),
        SecurityEvent("auth.login", outcome="success"),
        SecurityEvent("auth.login", outcome="success"),
        SecurityEvent("auth.login", outcome="failure", severity="warning"),
        SecurityEvent("auth.login_locked"),
    )
    assert value(found, "tradeguard_logins_total", outcome="success") == 2
    assert value(found, "tradeguard_logins_total", outcome="failure") == 1
    assert value(found, "tradeguard_logins_total", outcome="locked") == 1


def test_metrics_when_tokens_checked_then_counted_by_result() -> None:
    found = feed(
        Metrics(),
        SecurityEvent("auth.token_validated"),
        SecurityEvent("auth.token_validated"),
        SecurityEvent("auth.token_rejected", outcome="expired"),
    )
    assert value(found, "tradeguard_tokens_total", result="validated") == 2
    assert value(found, "tradeguard_tokens_total", result="rejected") == 1


def test_metrics_when_rate_limit_decides_then_counted_by_decision() -> None:
    found = feed(
        Metrics(),
        SecurityEvent("ratelimit.allowed"),
        SecurityEvent("ratelimit.exceeded", severity="warning"),
        SecurityEvent("ratelimit.exceeded", severity="warning"),
    )
    name = "tradeguard_ratelimit_decisions_total"
    assert value(found, name, decision="allowed") == 1
    assert value(found, name, decision="exceeded") == 2


def test_metrics_when_any_event_then_generic_counter_by_type_and_severity() -> None:
    found = feed(
        Metrics(),
        SecurityEvent("guard.request_rejected", severity="warning"),
        SecurityEvent("guard.request_rejected", severity="warning"),
        SecurityEvent("risk.kill_switch", severity="critical"),
    )
    name = "tradeguard_security_events_total"
    assert value(found, name, type="guard.request_rejected", severity="warning") == 2
    assert value(found, name, type="risk.kill_switch", severity="critical") == 1


def test_metrics_when_type_is_odd_then_label_sanitised_and_truncated() -> None:
    found = feed(Metrics(), SecurityEvent("Weird Type/x"), SecurityEvent("a." + "b" * 100))
    types = labels_of(found, "tradeguard_security_events_total", "type")
    assert types == {"weird_type_x", ("a." + "b" * 100)[:64]}


def test_metrics_when_too_many_distinct_types_then_folded_into_other() -> None:
    metrics = Metrics()
    found = feed(metrics, *(SecurityEvent(f"x.t{i}") for i in range(MAX_LABEL_VALUES + 10)))
    types = labels_of(found, "tradeguard_security_events_total", "type")
    assert len(types) == MAX_LABEL_VALUES + 1
    assert value(found, "tradeguard_security_events_total", type="other", severity="info") == 10


def test_metrics_when_secrets_manager_works_then_operations_counted(
    settings_for: Callable[..., Settings],
) -> None:
    bus, metrics = EventBus(), Metrics()
    bus.subscribe(metrics)
    manager = build_secrets_manager(settings_for(secrets_cache_ttl=0), bus=bus)
    try:
        manager.store_secret("brokers/alpaca", {"api_key": "k1"})
        manager.store_secret("brokers/alpaca", {"api_key": "k2"})
        manager.get_secret("brokers/alpaca")
        manager.list_secrets()
        manager.delete_secret("brokers/alpaca")
        manager.undelete_secret("brokers/alpaca")
        manager.destroy_secret("brokers/alpaca")
        manager.rotate_key()
    finally:
        manager.close()
    found = samples(metrics.render())
    name = "tradeguard_secret_operations_total"
    assert value(found, name, operation="written", outcome="success") == 2
    for operation in ("read", "listed", "deleted", "undeleted", "destroyed", "key_rotated"):
        assert value(found, name, operation=operation, outcome="success") == 1, operation
    events = "tradeguard_security_events_total"
    assert value(found, events, type="secret.destroyed", severity="warning") == 1


def test_metrics_when_secret_failures_then_counted_with_their_outcome() -> None:
    found = feed(
        Metrics(),
        SecurityEvent("secret.integrity_failure", outcome="failure", severity="critical"),
        SecurityEvent("secret.backend_unavailable", outcome="served_from_mirror"),
    )
    name = "tradeguard_secret_operations_total"
    assert value(found, name, operation="integrity_failure", outcome="failure") == 1
    assert value(found, name, operation="backend_unavailable", outcome="served_from_mirror") == 1


def test_metrics_when_events_carry_people_and_places_then_no_label_holds_them() -> None:
    private = ("alice@example.com", "203.0.113.7", "brokers/alpaca", "/home/alice/keys")
    metrics = Metrics()
    for kind in ("auth.login", "auth.token_rejected", "ratelimit.exceeded", "secret.read"):
        metrics(
            SecurityEvent(
                kind,
                actor=private[0],
                ip=private[1],
                subject=private[2],
                outcome="failure",
                details={"path": private[3], "user": private[0], "ip": private[1]},
            )
        )
    metrics(SecurityEvent("order.rejected", actor=private[0], details={"violations": ["X"]}))
    text = metrics.render().decode()
    assert "tradeguard_logins_total" in text
    for value_ in private:
        assert value_ not in text
    assert "alice" not in text


def test_metrics_when_audit_status_set_then_gauges_follow() -> None:
    metrics = Metrics()
    before = samples(metrics.render())
    assert math.isnan(before[("tradeguard_audit_chain_ok", frozenset())])
    metrics.set_audit_status(True, 120)
    found = samples(metrics.render())
    assert value(found, "tradeguard_audit_chain_ok") == 1
    assert value(found, "tradeguard_audit_records_verified") == 120
    metrics(SecurityEvent("audit.verified", details={"ok": False, "checked": 7}))
    found = samples(metrics.render())
    assert value(found, "tradeguard_audit_chain_ok") == 0
    assert value(found, "tradeguard_audit_records_verified") == 7


def test_metrics_when_audit_event_details_malformed_then_gauges_untouched() -> None:
    metrics = Metrics()
    metrics.set_audit_status(True, 5)
    metrics(SecurityEvent("audit.verified", details={"ok": 0, "checked": True}))
    found = samples(metrics.render())
    assert value(found, "tradeguard_audit_chain_ok") == 1
    assert value(found, "tradeguard_audit_records_verified") == 5


@pytest.mark.parametrize(("ok", "checked"), [(1, 3), (True, -1), (True, 2.5), (False, True)])
def test_metrics_when_audit_status_malformed_then_refused(ok: object, checked: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        Metrics().set_audit_status(ok, checked)  # type: ignore[arg-type]


def test_metrics_when_subscribed_to_bus_then_published_events_counted() -> None:
    bus, metrics = EventBus(), Metrics()
    unsubscribe = bus.subscribe(metrics)
    bus.publish(SecurityEvent("ratelimit.allowed", details={"token": "t"}))
    unsubscribe()
    bus.publish(SecurityEvent("ratelimit.allowed"))
    found = samples(metrics.render())
    assert value(found, "tradeguard_ratelimit_decisions_total", decision="allowed") == 1


def test_metrics_when_two_instances_then_registries_are_separate() -> None:
    first, second = Metrics(), Metrics()
    first(SecurityEvent("ratelimit.allowed"))
    name = "tradeguard_ratelimit_decisions_total"
    assert value(samples(first.render()), name, decision="allowed") == 1
    assert value(samples(second.render()), name, decision="allowed") is None
    assert b"tradeguard_" not in prometheus_client.generate_latest(prometheus_client.REGISTRY)


def test_metrics_when_default_used_then_shared_until_reset() -> None:
    default_metrics()(SecurityEvent("ratelimit.exceeded"))
    name = "tradeguard_ratelimit_decisions_total"
    assert default_metrics() is default_metrics()
    assert value(samples(render()), name, decision="exceeded") == 1
    old = default_metrics()
    reset_default_metrics()
    assert default_metrics() is not old
    assert value(samples(render()), name, decision="exceeded") is None
    assert metrics_module.Metrics.content_type == CONTENT_TYPE
    assert CONTENT_TYPE.startswith("text/plain; version=0.0.4")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("secret.read", "secret.read"), ("A-B c", "a_b_c"), ("", "unknown"), (None, "unknown")],
)
def test_label_value_when_given_raw_then_safe(raw: object, expected: str) -> None:
    assert label_value(raw) == expected


def test_code_value_when_lower_or_empty_then_upper_or_unknown() -> None:
    assert code_value("max_notional") == "MAX_NOTIONAL"
    assert code_value("") == "UNKNOWN"
    assert len(code_value("x" * 500)) == 64
