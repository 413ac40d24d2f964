"""Alert rules and the engine: thresholds in sliding windows, grouping, dedup, TOML, sinks."""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeguard.alerts import (
    DEFAULT_RULES,
    Alert,
    AlertConfigError,
    AlertEngine,
    AlertRule,
    CallbackSink,
    LogSink,
    load_rules,
    parse_rules,
)
from tradeguard.clock import FixedClock
from tradeguard.errors import ConfigurationError
from tradeguard.events import EventBus, SecurityEvent

LOGIN_RULE = AlertRule(
    name="login-failures",
    event_type="auth.login_failed",
    threshold=5,
    window=timedelta(minutes=5),
    group_by="actor",
    severity="warning",
    description="password guessing?",
)


class Collector:
    """A sink that keeps every alert."""

    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def send(self, alert: Alert) -> None:
        self.alerts.append(alert)


def make_engine(
    clock: FixedClock, *rules: AlertRule, **kwargs: int
) -> tuple[AlertEngine, Collector]:
    sink = Collector()
    return AlertEngine(rules or (LOGIN_RULE,), [sink], clock=clock, **kwargs), sink


def fail_login(engine: AlertEngine, actor: str | None = "alice", **kwargs: object) -> None:
    engine(SecurityEvent("auth.login_failed", actor=actor, **kwargs))  # type: ignore[arg-type]


# --- thresholds and windows -------------------------------------------------------------------


def test_rule_when_four_failures_in_window_then_no_alert(clock: FixedClock) -> None:
    engine, sink = make_engine(clock)
    for _ in range(4):
        fail_login(engine)
        clock.advance(30)
    assert sink.alerts == []
    assert engine.alerts_fired == 0


def test_rule_when_five_failures_in_window_then_one_alert(clock: FixedClock) -> None:
    engine, sink = make_engine(clock)
    start = clock.now()
    for _ in range(5):
        fail_login(engine, subject="login")
        clock.advance(30)
    [alert] = sink.alerts
    assert (alert.rule, alert.key, alert.severity, alert.count) == (
        "login-failures",
        "alice",
        "warning",
        5,
    )
    assert alert.first_seen == start
    assert alert.last_seen == start + timedelta(seconds=120)
    assert alert.event_types == ("auth.login_failed",)
    assert alert.subjects == ("login",)
    assert alert.description == "password guessing?"
    assert json.loads(json.dumps(alert.to_dict()))["first_seen"] == start.isoformat()


def test_rule_when_sixth_failure_in_same_window_then_deduplicated(clock: FixedClock) -> None:
    engine, sink = make_engine(clock)
    for _ in range(8):
        fail_login(engine)
        clock.advance(10)
    assert len(sink.alerts) == 1
    assert engine.suppressed == 3


def test_rule_when_window_passes_and_five_more_then_second_alert(clock: FixedClock) -> None:
    engine, sink = make_engine(clock)
    for _ in range(6):
        fail_login(engine)
    clock.advance(timedelta(minutes=5, seconds=1))
    for _ in range(4):
        fail_login(engine)
    assert len(sink.alerts) == 1
    fail_login(engine)
    first, second = sink.alerts
    assert second.count == 5
    assert second.first_seen == clock.now()
    assert second.suppressed == 1 and first.suppressed == 0


def test_rule_when_failures_for_different_actors_then_counted_separately(
    clock: FixedClock,
) -> None:
    engine, sink = make_engine(clock)
    for _ in range(4):
        fail_login(engine, "alice")
        fail_login(engine, "bob")
    assert sink.alerts == []
    fail_login(engine, "bob")
    assert [a.key for a in sink.alerts] == ["bob"]
    fail_login(engine, "alice")
    assert [a.key for a in sink.alerts] == ["bob", "alice"]


def test_rule_when_failures_spread_over_more_than_window_then_no_alert(
    clock: FixedClock,
) -> None:
    engine, sink = make_engine(clock)
    for _ in range(20):
        fail_login(engine)
        clock.advance(76)  # five failures span 304 s > 300 s
    assert sink.alerts == []


def test_rule_when_five_failures_span_exactly_the_window_then_alert(clock: FixedClock) -> None:
    engine, sink = make_engine(clock)
    for _ in range(5):
        fail_login(engine)
        clock.advance(75)  # the window is inclusive: 0 .. 300 s
    assert len(sink.alerts) == 1


def test_rule_when_event_has_own_time_then_that_time_counts(clock: FixedClock) -> None:
    engine, sink = make_engine(clock)
    base = datetime(2020, 1, 1, tzinfo=UTC)
    for minute in range(0, 13, 2):  # the clock never moves, but no 5 minutes hold 4 events
        fail_login(engine, time=base + timedelta(minutes=minute))
    assert sink.alerts == []
    fail_login(engine, time=base + timedelta(minutes=12, seconds=1))
    assert sink.alerts == []
    fail_login(engine, time=base + timedelta(minutes=12, seconds=2))
    [alert] = sink.alerts
    assert alert.first_seen == base + timedelta(minutes=8)
    assert alert.last_seen == base + timedelta(minutes=12, seconds=2)


def test_rule_when_group_field_missing_then_grouped_under_dash(clock: FixedClock) -> None:
    engine, sink = make_engine(clock)
    for _ in range(5):
        fail_login(engine, actor=None)
    assert [a.key for a in sink.alerts] == ["-"]


def test_rule_when_grouped_by_details_key_then_keyed_by_that_value(clock: FixedClock) -> None:
    rule = AlertRule(name="venue", event_type="order.rejected", group_by="details.venue.name")
    engine, sink = make_engine(clock, rule)
    engine(SecurityEvent("order.rejected", details={"venue": {"name": "XNAS"}}))
    engine(SecurityEvent("order.rejected", details={"venue": "flat"}))
    assert [a.key for a in sink.alerts] == ["XNAS", "-"]


def test_rule_when_glob_type_then_matches_family_only(clock: FixedClock) -> None:
    rule = AlertRule(name="auth-any", event_type="auth.*", group_by="subject")
    engine, sink = make_engine(clock, rule)
    for kind in ("auth.login_failed", "auth.mfa_failed", "authz.denied", "auth", "secret.read"):
        engine(SecurityEvent(kind, subject=kind))
    assert [a.key for a in sink.alerts] == ["auth.login_failed", "auth.mfa_failed"]


def test_rule_when_min_severity_set_then_lesser_events_ignored(clock: FixedClock) -> None:
    rule = AlertRule(name="loud", event_type="*", min_severity="warning", group_by="subject")
    engine, sink = make_engine(clock, rule)
    for severity in ("info", "warning", "critical"):
        engine(SecurityEvent("x.y", subject=severity, severity=severity))  # type: ignore[arg-type]
    assert [a.key for a in sink.alerts] == ["warning", "critical"]


def test_rule_when_instant_rule_fires_then_cooldown_defaults_to_sixty_seconds(
    clock: FixedClock,
) -> None:
    engine, sink = make_engine(clock, *DEFAULT_RULES)
    engine(SecurityEvent("killswitch.engaged", actor="ops"))
    clock.advance(59)
    engine(SecurityEvent("killswitch.engaged", actor="ops"))
    assert [(a.rule, a.severity) for a in sink.alerts] == [("killswitch.engaged", "critical")]
    clock.advance(1)
    engine(SecurityEvent("killswitch.engaged", actor="ops"))
    assert len(sink.alerts) == 2
    assert sink.alerts[1].suppressed == 1


def test_rule_when_cooldown_set_then_it_overrides_the_window(clock: FixedClock) -> None:
    rule = AlertRule(name="r", event_type="a.b", threshold=2, window=10, cooldown=100)
    engine, sink = make_engine(clock, rule)
    for _ in range(12):
        engine(SecurityEvent("a.b"))
        clock.advance(10)
    assert len(sink.alerts) == 2  # at t=10 and t=110, not every 10 s
    assert sink.alerts[1].first_seen == sink.alerts[0].first_seen + timedelta(seconds=100)


def test_default_rules_when_engine_sees_the_examples_then_each_alerts(clock: FixedClock) -> None:
    engine, sink = make_engine(clock, *DEFAULT_RULES)
    assert {r.name for r in DEFAULT_RULES} == {
        "auth.login_failures",
        "killswitch.engaged",
        "secret.integrity_failure",
        "ratelimit.storm",
    }
    bus = EventBus(clock=clock)
    bus.subscribe(engine)
    for _ in range(5):
        bus.publish(SecurityEvent("auth.login_failed", actor="eve"))
    bus.publish(SecurityEvent("killswitch.engaged"))
    bus.publish(SecurityEvent("secret.integrity_failure", subject="brokers/alpaca"))
    for _ in range(99):
        bus.publish(SecurityEvent("ratelimit.exceeded", ip="203.0.113.9"))
    assert len(sink.alerts) == 3
    bus.publish(SecurityEvent("ratelimit.exceeded", ip="203.0.113.9"))
    assert [(a.rule, a.key, a.severity) for a in sink.alerts] == [
        ("auth.login_failures", "eve", "warning"),
        ("killswitch.engaged", "*", "critical"),
        ("secret.integrity_failure", "brokers/alpaca", "critical"),
        ("ratelimit.storm", "203.0.113.9", "warning"),
    ]


def test_alert_when_event_carries_details_then_alert_holds_none_of_them(
    clock: FixedClock,
) -> None:
    engine, sink = make_engine(clock, *DEFAULT_RULES)
    bus = EventBus(clock=clock)
    bus.subscribe(engine)
    bus.publish(
        SecurityEvent(
            "secret.integrity_failure",
            subject="brokers/alpaca",
            details={"api_key": "AKIA-SECRET-VALUE", "note": "nonsecret-but-private"},
        )
    )
    [alert] = sink.alerts
    text = json.dumps(alert.to_dict())
    assert "AKIA-SECRET-VALUE" not in text and "nonsecret-but-private" not in text
    assert "brokers/alpaca" in text


# --- memory bounds ----------------------------------------------------------------------------


def test_engine_when_more_keys_than_cap_then_oldest_forgotten(
    clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    engine, sink = make_engine(clock, max_keys_per_rule=3)
    for _ in range(4):
        fail_login(engine, "alice")
    for actor in ("bob", "carol", "dave"):  # alice is now the least recently seen of four
        fail_login(engine, actor)
    assert engine.evicted_keys == 1
    assert "forgotten" in caplog.text
    fail_login(engine, "alice")  # her four earlier failures were forgotten
    assert sink.alerts == []


# --- sinks ------------------------------------------------------------------------------------


def test_engine_when_a_sink_raises_then_other_sinks_still_get_the_alert(
    clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        def send(self, alert: Alert) -> None:
            raise RuntimeError("sink down")

    before: list[Alert] = []
    got: list[Alert] = []
    sinks = [CallbackSink(before.append), Broken(), CallbackSink(got.append)]
    engine = AlertEngine(DEFAULT_RULES, sinks, clock=clock)
    bus = EventBus(clock=clock)
    seen: list[SecurityEvent] = []
    bus.subscribe(engine)
    bus.subscribe(seen.append)
    bus.publish(SecurityEvent("killswitch.engaged"))
    assert [a.rule for a in got] == ["killswitch.engaged"]
    assert before == got
    assert len(seen) == 1
    assert engine.sink_errors == 1
    assert "sink down" in caplog.text


def test_engine_when_every_sink_raises_then_alert_logged_critical(
    clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(alert: Alert) -> None:
        raise RuntimeError("nope")

    engine = AlertEngine(DEFAULT_RULES, [CallbackSink(broken)], clock=clock)
    engine(SecurityEvent("killswitch.engaged"))
    [record] = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert "killswitch.engaged" in record.getMessage()


def test_log_sink_when_alert_then_level_follows_severity(
    clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tradeguard.alerts")
    engine = AlertEngine(DEFAULT_RULES, [LogSink()], clock=clock)
    engine(SecurityEvent("killswitch.engaged"))
    for _ in range(5):
        engine(SecurityEvent("auth.login_failed", actor="mallory\nFAKE LOG LINE"))
    levels = [
        (r.levelname, r.getMessage()) for r in caplog.records if r.name == "tradeguard.alerts"
    ]
    assert [level for level, _ in levels] == ["CRITICAL", "WARNING"]
    assert "killswitch.engaged" in levels[0][1]
    assert "actor='mallory\\nFAKE LOG LINE'" in levels[1][1]
    assert "\n" not in levels[1][1]


def test_engine_when_built_without_sinks_or_with_duplicate_rules_then_refused() -> None:
    with pytest.raises(ValueError, match="at least one sink"):
        AlertEngine(DEFAULT_RULES, [])
    with pytest.raises(ValueError, match="two alert rules are named 'login-failures'"):
        AlertEngine([LOGIN_RULE, LOGIN_RULE], [LogSink()])
    with pytest.raises(ValueError, match="at least one rule"):
        AlertEngine([], [LogSink()])


# --- concurrency ------------------------------------------------------------------------------


@pytest.mark.parametrize("attempt", range(4))
def test_engine_when_threads_publish_concurrently_then_exact_alert_count(
    clock: FixedClock, attempt: int
) -> None:
    engine, sink = make_engine(clock)
    bus = EventBus(clock=clock)
    bus.subscribe(engine)
    actors = [f"user{i}" for i in range(40)]
    barrier = threading.Barrier(8)

    def worker(offset: int) -> None:
        barrier.wait()
        for round_ in range(25):  # 8 threads x 25 = every actor gets 5 failures, "hot" gets 200
            bus.publish(
                SecurityEvent("auth.login_failed", actor=actors[(offset + round_ * 8) % 40])
            )
            bus.publish(SecurityEvent("auth.login_failed", actor="hot"))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible to expose races
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        sys.setswitchinterval(interval)
    assert sorted(a.key for a in sink.alerts) == sorted([*actors, "hot"])
    assert engine.suppressed == 195
    assert engine.alerts_fired == 41
    assert all(a.count == 5 for a in sink.alerts)


# --- a reference model ------------------------------------------------------------------------


def reference_alerts(offsets: list[int], threshold: int, window: int) -> list[int]:
    """Times (s) at which a straightforward model of the rule fires, for in-order events."""
    fired: list[int] = []
    quiet_until: int | None = None
    for i, now in enumerate(offsets):
        in_window = [t for t in offsets[: i + 1] if t >= now - window]
        if quiet_until is not None and now < quiet_until:
            continue
        if len(in_window) >= threshold:
            fired.append(now)
            quiet_until = now + window
    return fired


@settings(max_examples=150, deadline=None)
@given(
    gaps=st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=60),
    threshold=st.integers(min_value=2, max_value=6),
    window=st.integers(min_value=1, max_value=100),
)
def test_engine_when_random_event_times_then_matches_reference_model(
    gaps: list[int], threshold: int, window: int
) -> None:
    clock = FixedClock()
    rule = AlertRule(name="r", event_type="a.b", threshold=threshold, window=window)
    engine, sink = make_engine(clock, rule)
    offsets: list[int] = []
    for gap in gaps:
        clock.advance(gap)
        offsets.append(sum(gaps[: len(offsets) + 1]))
        engine(SecurityEvent("a.b"))
    start = FixedClock().now()
    got = [int((a.last_seen - start).total_seconds()) for a in sink.alerts]
    assert got == reference_alerts(offsets, threshold, window)


# --- rule validation and TOML -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": ""}, "'name'"),
        ({"event_type": ""}, "'event_type'"),
        ({"event_type": "auth login"}, "'event_type'"),
        ({"threshold": 0}, "'threshold'"),
        ({"threshold": 2.5}, "'threshold'"),
        ({"threshold": True}, "'threshold'"),
        ({"window": -1}, "'window'"),
        ({"window": float("nan")}, "'window'"),
        ({"threshold": 3, "window": 0}, "'window'"),
        ({"cooldown": -5}, "'cooldown'"),
        ({"group_by": "password"}, "'group_by'"),
        ({"group_by": "details."}, "'group_by'"),
        ({"severity": "loud"}, "'severity'"),
        ({"min_severity": "debug"}, "'min_severity'"),
    ],
)
def test_rule_when_field_invalid_then_value_error_names_it(
    kwargs: dict[str, object], field: str
) -> None:
    values: dict[str, object] = {"name": "r1", "event_type": "a.b", **kwargs}
    with pytest.raises(ValueError, match=field) as caught:
        AlertRule(**values)  # type: ignore[arg-type]
    assert isinstance(caught.value, ConfigurationError)


def test_rule_when_window_given_as_seconds_then_equal_to_timedelta() -> None:
    assert AlertRule(name="r", event_type="a", threshold=2, window=90) == AlertRule(
        name="r", event_type="a", threshold=2, window=timedelta(seconds=90)
    )


GOOD_TOML = """
[[rule]]
name = "login-failures"
event_type = "auth.login_failed"
threshold = 5
window = "5m"
group_by = "actor"
description = "password guessing?"

[[rule]]
name = "any-auth"
event_type = "auth.*"
window = 30
cooldown = "1h"
severity = "critical"
min_severity = "warning"
"""


def test_load_rules_when_file_is_good_then_rules_built(tmp_path: Path) -> None:
    path = tmp_path / "alerts.toml"
    path.write_text(GOOD_TOML)
    login, auth = load_rules(path)
    assert login == LOGIN_RULE
    assert auth == AlertRule(
        name="any-auth",
        event_type="auth.*",
        window=30,
        cooldown=timedelta(hours=1),
        severity="critical",
        min_severity="warning",
    )
    assert auth.cooldown_seconds == 3600


def with_second_rule(body: str) -> str:
    return GOOD_TOML.split('[[rule]]\nname = "any-auth"')[0] + "[[rule]]\n" + body


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (with_second_rule('event_type = "a.b"\n'), r"#2: field 'name' is missing"),
        (with_second_rule('name = "x"\n'), r"#2 \('x'\): field 'event_type' is missing"),
        (with_second_rule('name = "x"\nevent_type = "a"\nthreshold = 0\n'), r"#2.*'threshold'"),
        (with_second_rule('name = "x"\nevent_type = "a"\nthreshold = "5"\n'), "'threshold'"),
        (with_second_rule('name = "x"\nevent_type = "a"\nwindow = "5 fortnights"\n'), "'window'"),
        (with_second_rule('name = "x"\nevent_type = "a"\nwindow = -3\n'), r"#2 \('x'\).*'window'"),
        (with_second_rule('name = "x"\nevent_type = "a"\nthreshold = 2\n'), "'window' must be > 0"),
        (with_second_rule('name = "x"\nevent_type = "a"\ncooldown = true\n'), "'cooldown'"),
        (with_second_rule('name = "x"\nevent_type = "a"\ntreshold = 5\n'), "unknown.*'treshold'"),
        (with_second_rule('name = "x"\nevent_type = "a"\ngroup_by = "pwd"\n'), "'group_by'"),
        (with_second_rule('name = "x"\nevent_type = "a"\nseverity = "meh"\n'), "'severity'"),
        (with_second_rule('name = "x"\nevent_type = 5\n'), "'event_type' must be a string"),
        (with_second_rule('name = "login-failures"\nevent_type = "a"\n'), "#2.*'name' repeats"),
        ('[rule]\nname = "x"\nevent_type = "a"\n', r"no \[\[rule\]\] tables"),
        ("", r"no \[\[rule\]\] tables"),
        ('[[rules]]\nname = "x"\n', "unexpected top-level key.*'rules'"),
        ("[[rule]\n", "not valid TOML"),
        ("rule = [1]\n", "#1: must be a table"),
    ],
)
def test_load_rules_when_file_is_bad_then_value_error_names_the_field(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "alerts.toml"
    path.write_text(text)
    with pytest.raises(AlertConfigError, match=message) as caught:
        load_rules(path)
    assert isinstance(caught.value, ValueError)
    assert str(path) in str(caught.value)


def test_parse_rules_when_text_then_same_as_file() -> None:
    assert parse_rules(GOOD_TOML)[0] == LOGIN_RULE
