"""Surveillance: each pattern at its threshold and not below, dedup, escalation, bus, memory."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest

from tradeguard.clock import FixedClock
from tradeguard.errors import ConfigurationError
from tradeguard.events import EventBus, SecurityEvent
from tradeguard.risk import AccountState, Quote, RiskEngine, RiskLimits, TradingState
from tradeguard.risk.surveillance import PATTERNS, Surveillance, SurveillanceConfig

OFF: dict[str, Any] = {f"{pattern}_action": "off" for pattern in PATTERNS}
COMMON = {"pattern", "account", "action", "symbol"}
EXPECTED_KEYS = {
    "burst": COMMON | {"orders", "min_orders", "factor", "baseline", "window_seconds"},
    "cancel_ratio": COMMON | {"cancels", "fills", "ratio", "min_cancels", "window_seconds"},
    "wash": COMMON | {"side", "price", "cross_account", "window_seconds"},
    "layering": COMMON | {"orders", "min_orders", "distance_pct", "window_seconds"},
    "unusual_hours": COMMON | {"hour_of_week", "prior_orders", "min_prior", "learned_orders"},
}


def watch(
    clock: FixedClock, *, only: str | None = None, engine: RiskEngine | None = None, **settings: Any
) -> tuple[Surveillance, list[SecurityEvent]]:
    """A Surveillance on a fresh bus; with ``only``, every other pattern is off."""
    bus = EventBus(clock=clock)
    seen: list[SecurityEvent] = []
    bus.subscribe(seen.append)
    actions: dict[str, Any] = {} if only is None else {**OFF, f"{only}_action": "alert"}
    config = SurveillanceConfig(**{**actions, **settings})
    return Surveillance(config, bus=bus, clock=clock, engine=engine), seen


def alerts(seen: list[SecurityEvent], pattern: str | None = None) -> list[SecurityEvent]:
    prefix = f"surveillance.{pattern}" if pattern else "surveillance."
    return [event for event in seen if event.type.startswith(prefix)]


# -- configuration -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        {"burst_window": 0},
        {"burst_min_orders": 1.5},
        {"burst_min_orders": True},
        {"burst_action": "block"},
        {"wash_any_account": 1},
        {"cooldown": -1},
        {"layering_distance_pct": float("nan")},
        {"cancel_window": float("inf")},
        {"max_orders": "10"},
    ],
)
def test_config_when_value_invalid_then_configuration_error(bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match=next(iter(bad))):
        SurveillanceConfig(**bad)


def test_config_when_zero_cooldown_and_ratio_then_allowed_and_frozen() -> None:
    config = SurveillanceConfig(cooldown=0, cancel_ratio=0)
    with pytest.raises(AttributeError):
        config.cooldown = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        SurveillanceConfig(5)  # type: ignore[call-arg]


def test_init_when_escalating_without_engine_then_configuration_error(clock: FixedClock) -> None:
    for action in ("reduce", "halt"):
        with pytest.raises(ConfigurationError, match="engine"):
            Surveillance(SurveillanceConfig(wash_action=action), bus=EventBus(), clock=clock)
    Surveillance(SurveillanceConfig(wash_action="off"), bus=EventBus(), clock=clock)


# -- burst -------------------------------------------------------------------------------------


def test_burst_when_orders_reach_floor_then_alert_and_not_below(clock: FixedClock) -> None:
    watcher, seen = watch(clock, only="burst", burst_min_orders=5)
    for _ in range(4):
        assert watcher.on_order("AAPL", "buy", account="a1") == ()
    (event,) = watcher.on_order("AAPL", "buy", account="a1")
    assert alerts(seen) == [event]
    assert (event.type, event.severity, event.outcome) == (
        "surveillance.burst",
        "warning",
        "alerted",
    )
    assert (event.actor, event.subject) == ("surveillance", "a1")
    assert dict(event.details) == {
        "pattern": "burst",
        "account": "a1",
        "action": "alert",
        "symbol": "AAPL",
        "orders": 5,
        "min_orders": 5,
        "factor": 5.0,
        "baseline": 0.0,
        "window_seconds": 10.0,
    }


def test_burst_when_orders_spread_past_window_then_no_alert(clock: FixedClock) -> None:
    watcher, seen = watch(clock, only="burst", burst_min_orders=3, cooldown=0)
    watcher.on_order("AAPL", "buy", account="a1")
    watcher.on_order("AAPL", "buy", account="a1")
    clock.advance(10)  # the edge is inclusive: orders 10 s ago still count
    assert len(watcher.on_order("AAPL", "buy", account="a1")) == 1
    clock.advance(10.5)
    assert watcher.on_order("AAPL", "buy", account="a1") == ()
    assert len(alerts(seen)) == 1


def test_burst_when_baseline_established_then_factor_times_baseline_needed(
    clock: FixedClock,
) -> None:
    # baseline window == window: the EWMA is exactly the last finished window's count
    watcher, seen = watch(
        clock, only="burst", burst_min_orders=6, burst_factor=2, burst_baseline_window=10
    )
    for _ in range(5):
        watcher.on_order("AAPL", "buy", account="a1")
    clock.advance(11)  # the first window (5 orders) is folded into the baseline
    for _ in range(10):
        assert watcher.on_order("AAPL", "buy", account="a1") == ()  # 10 <= 2 x 5
    (event,) = watcher.on_order("AAPL", "buy", account="a1")
    assert (event.details["orders"], event.details["baseline"]) == (11, 5.0)
    assert len(alerts(seen)) == 1


def test_burst_when_account_idle_then_baseline_decays(clock: FixedClock) -> None:
    watcher, _ = watch(
        clock, only="burst", burst_min_orders=6, burst_factor=2, burst_baseline_window=10
    )
    for _ in range(5):
        watcher.on_order("AAPL", "buy", account="a1")
    clock.advance(25)  # one window of 5, then an empty one: the baseline is 0 again
    results = [watcher.on_order("AAPL", "buy", account="a1") for _ in range(6)]
    assert [len(r) for r in results] == [0, 0, 0, 0, 0, 1]
    assert results[-1][0].details["baseline"] == 0.0


# -- cancel-to-fill ratio ---------------------------------------------------------------------


def test_cancel_ratio_when_cancels_exceed_ratio_times_fills_then_alert(clock: FixedClock) -> None:
    watcher, seen = watch(
        clock, only="cancel_ratio", cancel_ratio=2, cancel_min_cancels=5, cancel_window=60
    )
    for n in range(3):
        watcher.on_fill(f"unknown-{n}", account="a1")
    for n in range(6):  # 6 cancels: not more than 2 x 3 fills
        assert watcher.on_cancel(f"gone-{n}", account="a1") == ()
    (event,) = watcher.on_cancel("gone-7", account="a1")
    assert dict(event.details) == {
        "pattern": "cancel_ratio",
        "account": "a1",
        "action": "alert",
        "symbol": None,
        "cancels": 7,
        "fills": 3,
        "ratio": 2.0,
        "min_cancels": 5,
        "window_seconds": 60.0,
    }
    assert alerts(seen) == [event]


def test_cancel_ratio_when_below_min_cancels_or_fills_expired_then_as_counted(
    clock: FixedClock,
) -> None:
    watcher, _ = watch(
        clock, only="cancel_ratio", cancel_ratio=2, cancel_min_cancels=5, cancel_window=60
    )
    watcher.on_order("AAPL", "buy", account="a1", client_order_id="o-1", quantity=10)
    watcher.on_fill("o-1", quantity=10)  # counted for a1 through the order
    for n in range(4):
        assert watcher.on_cancel(f"gone-{n}", account="a1") == ()  # 4 < min_cancels
    clock.advance(61)  # the fill and the four cancels leave the window
    for n in range(4):
        assert watcher.on_cancel(f"later-{n}", account="a1") == ()
    (event,) = watcher.on_cancel("later-5", account="a1")
    assert (event.details["cancels"], event.details["fills"]) == (5, 0)


# -- wash / self-trade ------------------------------------------------------------------------


def test_wash_when_opposite_open_order_same_price_then_alert(clock: FixedClock) -> None:
    watcher, seen = watch(clock, only="wash", cooldown=0)
    assert watcher.on_order("AAPL", "buy", account="a1", client_order_id="b", price="100") == ()
    assert watcher.on_order("AAPL", "sell", account="a1", price="100.01") == ()
    assert watcher.on_order("MSFT", "sell", account="a1", price="100") == ()
    assert watcher.on_order("AAPL", "sell", account="a2", price="100") == ()  # another account
    assert watcher.on_order("AAPL", "sell", account="a1") == ()  # unpriced: no match
    (event,) = watcher.on_order("AAPL", "sell", account="a1", price="100.00")
    assert dict(event.details) == {
        "pattern": "wash",
        "account": "a1",
        "action": "alert",
        "symbol": "AAPL",
        "side": "sell",
        "price": "100.00",
        "cross_account": False,
        "window_seconds": 5.0,
    }
    assert alerts(seen) == [event]


def test_wash_when_opposite_order_closed_then_matches_only_within_window(
    clock: FixedClock,
) -> None:
    watcher, _ = watch(clock, only="wash", cooldown=0)
    watcher.on_order("AAPL", "buy", account="a1", client_order_id="b1", price=50, quantity=10)
    watcher.on_fill("b1", quantity=4)  # partly filled: still open
    clock.advance(60)
    assert len(watcher.on_order("AAPL", "sell", account="a1", price=50)) == 1
    watcher.on_fill("b1", quantity=6)  # now complete
    clock.advance(5)
    assert len(watcher.on_order("AAPL", "sell", account="a1", price=50)) == 1
    clock.advance(0.001)
    assert watcher.on_order("AAPL", "sell", account="a1", price=50) == ()
    watcher.on_order("AAPL", "buy", account="a1", client_order_id="b2", price=51)
    watcher.on_cancel("b2")
    assert len(watcher.on_order("AAPL", "sell", account="a1", price=51)) == 1


def test_wash_when_any_account_configured_then_cross_account_match(clock: FixedClock) -> None:
    watcher, _ = watch(clock, only="wash", wash_any_account=True)
    watcher.on_order("AAPL", "buy", account="a1", price=100)
    (event,) = watcher.on_order("AAPL", "sell", account="a2", price=100)
    assert event.details["cross_account"] is True
    assert event.subject == "a2"


# -- layering ---------------------------------------------------------------------------------


def test_layering_when_enough_away_orders_cancelled_then_alert(clock: FixedClock) -> None:
    watcher, seen = watch(clock, only="layering", layering_min_orders=3)
    prices = {"l1": ("buy", "97.99"), "l2": ("sell", "102.01"), "l3": ("buy", "90")}
    for cid, (side, price) in prices.items():
        watcher.on_order("AAPL", side, account="a1", client_order_id=cid, price=price,
                         reference_price=100)  # fmt: skip
    assert watcher.on_cancel("l1") == ()
    assert watcher.on_cancel("l2") == ()
    (event,) = watcher.on_cancel("l3")
    assert dict(event.details) == {
        "pattern": "layering",
        "account": "a1",
        "action": "alert",
        "symbol": "AAPL",
        "orders": 3,
        "min_orders": 3,
        "distance_pct": 2.0,
        "window_seconds": 30.0,
    }
    assert alerts(seen) == [event]


def test_layering_when_orders_near_marketable_or_slow_then_not_counted(clock: FixedClock) -> None:
    watcher, _ = watch(clock, only="layering", layering_min_orders=1)
    near = {"n1": ("buy", "98"), "n2": ("sell", "102"), "n3": ("buy", "103"), "n4": ("sell", "90")}
    for cid, (side, price) in near.items():  # exactly 2 % away, or on the aggressive side
        watcher.on_order("AAPL", side, account="a1", client_order_id=cid, price=price,
                         reference_price=100)  # fmt: skip
    watcher.on_order("AAPL", "buy", account="a1", client_order_id="n5", price=80)  # no reference
    assert [watcher.on_cancel(cid) for cid in (*near, "n5")] == [()] * 5
    watcher.on_order("AAPL", "buy", account="a1", client_order_id="slow", price=80,
                     reference_price=100)  # fmt: skip
    clock.advance(30.5)  # cancelled later than the window after placing
    assert watcher.on_cancel("slow") == ()
    assert watcher.sizes()["layers"] == 0
    watcher.on_order("AAPL", "buy", account="a1", client_order_id="fast", price=80,
                     reference_price=100)  # fmt: skip
    clock.advance(30)  # the window's edge is inclusive
    assert len(watcher.on_cancel("fast")) == 1


# -- unusual hours ----------------------------------------------------------------------------


def test_unusual_hours_when_learned_and_rare_bucket_then_alert(clock: FixedClock) -> None:
    watcher, _ = watch(
        clock, only="unusual_hours", hours_learning_orders=10, hours_min_prior=2, cooldown=0
    )
    for _ in range(9):  # Monday 14:30 UTC
        assert watcher.on_order("AAPL", "buy", account="a1") == ()
    clock.set(datetime(2026, 1, 6, 3, 15, tzinfo=UTC))  # Tuesday 03:15 UTC
    assert watcher.on_order("AAPL", "buy", account="a1") == ()  # 9 learned: still learning
    (event,) = watcher.on_order("AAPL", "buy", account="a1")  # 1 prior < 2
    assert dict(event.details) == {
        "pattern": "unusual_hours",
        "account": "a1",
        "action": "alert",
        "symbol": "AAPL",
        "hour_of_week": 27,
        "prior_orders": 1,
        "min_prior": 2,
        "learned_orders": 10,
    }
    assert watcher.on_order("AAPL", "buy", account="a1") == ()  # 2 prior: usual now
    assert watcher.on_order("AAPL", "buy", account="other") == ()  # per account


def test_unusual_hours_when_usual_bucket_then_no_alert(clock: FixedClock) -> None:
    watcher, seen = watch(clock, only="unusual_hours", hours_learning_orders=5, hours_min_prior=1)
    for _ in range(20):
        watcher.on_order("AAPL", "buy", account="a1")
    clock.set(datetime(2026, 1, 12, 14, 59, tzinfo=UTC))  # Monday again, same hour
    watcher.on_order("AAPL", "buy", account="a1")
    assert alerts(seen) == []


# -- deduplication ----------------------------------------------------------------------------


def test_dedup_when_within_cooldown_then_suppressed_per_pattern_account(
    clock: FixedClock,
) -> None:
    watcher, seen = watch(clock, only="burst", burst_min_orders=3, burst_window=100, cooldown=60)
    fired = [len(watcher.on_order("AAPL", "buy", account="a1")) for _ in range(10)]
    assert fired == [0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
    assert (watcher.alerts, watcher.suppressed) == (1, 7)
    assert [len(watcher.on_order("AAPL", "buy", account="a2")) for _ in range(3)] == [0, 0, 1]
    clock.advance(59)
    assert watcher.on_order("AAPL", "buy", account="a1") == ()
    clock.advance(1)
    assert len(watcher.on_order("AAPL", "buy", account="a1")) == 1
    assert [e.subject for e in alerts(seen)] == ["a1", "a2", "a1"]


def test_dedup_when_wash_on_other_symbol_then_separate_alert(clock: FixedClock) -> None:
    watcher, _ = watch(clock, only="wash")
    for symbol in ("AAPL", "MSFT"):
        watcher.on_order(symbol, "buy", account="a1", price=10)
        assert len(watcher.on_order(symbol, "sell", account="a1", price=10)) == 1
        assert watcher.on_order(symbol, "sell", account="a1", price=10) == ()


# -- escalation -------------------------------------------------------------------------------


def test_action_when_reduce_then_engine_reducing_and_alert_critical(clock: FixedClock) -> None:
    engine = RiskEngine(RiskLimits(), clock=clock)
    watcher, _ = watch(clock, only="burst", engine=engine, burst_min_orders=2,
                       burst_action="reduce")  # fmt: skip
    watcher.on_order("AAPL", "buy", account="a1")
    assert engine.trading_state is TradingState.ACTIVE
    (event,) = watcher.on_order("AAPL", "buy", account="a1")
    assert engine.trading_status.state is TradingState.REDUCING
    assert engine.trading_status.actor == "surveillance"
    assert "burst" in engine.trading_status.reason
    assert (event.severity, event.outcome, event.details["action"]) == (
        "critical",
        "reduced",
        "reduce",
    )


def test_action_when_halt_then_kill_switch_engaged(clock: FixedClock) -> None:
    engine = RiskEngine(RiskLimits(), clock=clock)
    watcher, _ = watch(clock, only="wash", engine=engine, wash_action="halt")
    watcher.on_order("AAPL", "buy", account="a1", price=10)
    (event,) = watcher.on_order("AAPL", "sell", account="a1", price=10)
    assert engine.trading_state is TradingState.HALTED
    assert (event.severity, event.outcome) == ("critical", "halted")


def test_action_when_reduce_but_already_halted_then_not_loosened(clock: FixedClock) -> None:
    engine = RiskEngine(RiskLimits(), clock=clock)
    engine.engage_kill_switch("operator", actor="ops")
    watcher, _ = watch(clock, only="burst", engine=engine, burst_min_orders=1,
                       burst_action="reduce")  # fmt: skip
    (event,) = watcher.on_order("AAPL", "buy", account="a1")
    assert engine.trading_state is TradingState.HALTED
    assert engine.trading_status.actor == "ops"
    assert event.outcome == "reduced"


def test_action_when_engine_raises_then_alert_still_published(
    clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = RiskEngine(RiskLimits(), clock=clock)

    def broken(reason: str, actor: str) -> None:
        raise RuntimeError("store down")

    monkeypatch.setattr(engine, "engage_kill_switch", broken)
    watcher, seen = watch(clock, only="burst", engine=engine, burst_min_orders=1,
                          burst_action="halt")  # fmt: skip
    (event,) = watcher.on_order("AAPL", "buy", account="a1")
    assert (event.severity, event.outcome) == ("critical", "action_failed")
    assert alerts(seen) == [event]


def test_action_when_alert_then_engine_untouched(clock: FixedClock) -> None:
    engine = RiskEngine(RiskLimits(), clock=clock)
    watcher, _ = watch(clock, only="burst", engine=engine, burst_min_orders=1)
    assert len(watcher.on_order("AAPL", "buy", account="a1")) == 1
    assert engine.trading_state is TradingState.ACTIVE


# -- the bus ----------------------------------------------------------------------------------


def test_bus_when_subscribed_then_engine_approvals_feed_burst(clock: FixedClock) -> None:
    bus = EventBus(clock=clock)
    seen: list[SecurityEvent] = []
    bus.subscribe(seen.append)
    engine = RiskEngine(RiskLimits(), clock=clock, bus=bus)
    config = SurveillanceConfig(**{**OFF, "burst_action": "reduce"}, burst_min_orders=3)
    bus.subscribe(Surveillance(config, bus=bus, clock=clock, engine=engine))
    account = AccountState(account_value=100_000, prices={"AAPL": Quote(100, clock.now())})
    for quantity in (1, 2, 3):
        order = {"symbol": "AAPL", "side": "buy", "quantity": quantity, "account_id": "acct-1"}
        assert engine.check(order, account).approved
    types = [event.type for event in seen]
    assert types[:3] == ["order.approved"] * 3
    assert "surveillance.burst" in types and "risk.trading_state_changed" in types
    (event,) = alerts(seen)
    assert event.subject == "acct-1" and event.details["orders"] == 3
    assert engine.trading_state is TradingState.REDUCING
    assert not engine.check({**order, "quantity": 4}, account).approved  # REDUCING: no new risk


def test_bus_when_fill_and_cancel_events_then_consumed(clock: FixedClock) -> None:
    watcher, seen = watch(clock, layering_min_orders=2, cancel_min_cancels=2, cancel_ratio=1)
    bus = EventBus(clock=clock)
    bus.subscribe(watcher)
    bus.subscribe(seen.append)
    for cid in ("x1", "x2", "x3"):
        details = {"symbol": "AAPL", "side": "buy", "quantity": "5", "account": "acct-1"}
        details |= {"client_order_id": cid, "limit_price": "90", "reference_price": "100"}
        bus.publish(SecurityEvent("order.approved", details=details))
    bus.publish(SecurityEvent("order.filled", details={"client_order_id": "x3", "quantity": "5"}))
    for cid in ("x1", "x2"):
        bus.publish(SecurityEvent("order.cancelled", details={"client_order_id": cid}))
    assert sorted(event.type for event in alerts(seen)) == [
        "surveillance.cancel_ratio",
        "surveillance.layering",
    ]
    assert {event.subject for event in alerts(seen)} == {"acct-1"}
    assert watcher.sizes()["open"] == 0


def test_bus_when_event_malformed_or_foreign_then_skipped_and_counted(clock: FixedClock) -> None:
    watcher, seen = watch(clock)
    watcher(SecurityEvent("order.approved", details={"side": "buy"}))  # no symbol
    watcher(SecurityEvent("order.approved", details={"symbol": "AAPL", "side": "hodl"}))
    watcher(SecurityEvent("order.filled", details={"client_order_id": "x", "quantity": "-1"}))
    watcher(SecurityEvent("order.approved", details={"symbol": "AAPL", "side": "buy",
                                                     "account": ["a"]}))  # fmt: skip
    watcher(SecurityEvent("auth.login", details={"symbol": "AAPL"}))
    watcher(SecurityEvent("surveillance.burst"))
    assert watcher.malformed_events == 4
    assert seen == []


# -- memory, threads and what alerts carry ----------------------------------------------------


def test_memory_when_many_accounts_and_orders_then_bounded(clock: FixedClock) -> None:
    watcher, _ = watch(
        clock, max_accounts=10, max_orders=20, max_events_per_account=5, burst_min_orders=1000
    )
    for n in range(2000):
        side, account = ("buy" if n % 2 else "sell"), f"acct-{n % 500}"
        watcher.on_order("AAPL", side, account=account, client_order_id=f"o-{n}",
                         price=100 + n % 7, reference_price=200)  # fmt: skip
        if n % 3 == 0:
            watcher.on_cancel(f"o-{n}")
        clock.advance(0.01)
    sizes = watcher.sizes()
    assert sizes["accounts"] <= 10 and sizes["open"] <= 20 and sizes["book"] <= 20
    assert sizes["layers"] <= 10 and sizes["quiet"] <= 10
    assert watcher.evicted > 0
    for n in range(50):
        watcher.on_order("AAPL", "buy", account="hot", client_order_id=f"h-{n}")
    assert max(len(a.orders) for a in watcher._accounts.values()) <= 5


def test_threads_when_concurrent_then_consistent(clock: FixedClock) -> None:
    watcher, _ = watch(clock, burst_min_orders=10**6, cancel_min_cancels=10**6)
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for n in range(300):
                cid = f"w{worker}-{n}"
                watcher.on_order("AAPL", "buy", account=f"a{worker}", client_order_id=cid, price=1)
                watcher.on_cancel(cid)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert watcher.sizes()["open"] == 0


def test_alerts_when_every_pattern_fires_then_only_expected_scalar_details(
    clock: FixedClock,
) -> None:
    watcher, seen = watch(
        clock, burst_min_orders=3, cancel_min_cancels=3, layering_min_orders=2,
        hours_learning_orders=1, hours_min_prior=1,
    )  # fmt: skip
    bus = EventBus(clock=clock)
    bus.subscribe(watcher)
    watcher.on_order("AAPL", "buy", account="a1", client_order_id="coid-1", price="90")
    clock.set(datetime(2026, 1, 7, 2, 0, tzinfo=UTC))
    for n in range(3):
        details = {"symbol": "AAPL", "side": "sell", "account": "a1", "reference_price": "100"}
        details |= {"client_order_id": f"sid-{n}-q", "limit_price": "90" if n == 0 else "110"}
        details |= {"api_key": "sk-live-SECRET", "password": "hunter2"}
        bus.publish(SecurityEvent("order.approved", details=details))
    for n in range(3):
        watcher.on_cancel(f"sid-{n}-q")
    found = {event.type.removeprefix("surveillance."): event for event in alerts(seen)}
    assert set(found) == set(PATTERNS)
    for pattern, event in found.items():
        assert set(event.details) == EXPECTED_KEYS[pattern]
        assert all(type(v) in (str, int, float, bool, type(None)) for v in event.details.values())
        assert (event.actor, event.subject, event.ip) == ("surveillance", "a1", None)
        text = repr(event)
        assert "coid-1" not in text and "sid-" not in text
        assert "SECRET" not in text and "hunter2" not in text
