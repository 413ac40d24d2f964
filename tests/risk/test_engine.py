"""The engine end to end: every violation reported, fail-closed paths, persistence, memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal, getcontext, localcontext
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from tradeguard.clock import FixedClock
from tradeguard.errors import OrderRejected
from tradeguard.events import EventBus, SecurityEvent
from tradeguard.risk import (
    AccountState,
    Order,
    OrderDecision,
    Quote,
    RiskEngine,
    RiskLimits,
    RiskStateUnavailable,
    TradingState,
    TradingStateStore,
    validate_order,
)
from tradeguard.storage import create_database_engine

BUY = {"symbol": "AAPL", "side": "buy", "quantity": 10}


def account(clock: FixedClock, value: object = 100_000, **kw: Any) -> AccountState:
    prices = {"AAPL": Quote(100, clock.now()), "MSFT": Quote(200, clock.now())}
    return AccountState(account_value=value, prices=kw.pop("prices", prices), **kw)


def limit(price: object = 100, **fields: Any) -> dict[str, Any]:
    return {**BUY, "limit_price": price, **fields}


class Calendar:
    """A calendar that answers as told (or raises as told)."""

    def __init__(self, answer: bool = True, error: Exception | None = None) -> None:
        self.answer, self.error = answer, error

    def is_open(self, venue: str, t: datetime) -> bool:
        if self.error is not None:
            raise self.error
        return self.answer


# -- decisions ---------------------------------------------------------------------------


def test_check_when_order_within_every_limit_then_approved_and_tracked(clock: FixedClock) -> None:
    engine = RiskEngine(RiskLimits(), clock=clock)
    decision = engine.check(limit(client_order_id="c-1"), account(clock))
    assert decision.approved and bool(decision)
    assert decision.violations == ()
    assert decision.client_order_id == "c-1"
    assert decision.order == Order.parse(limit(client_order_id="c-1"))
    assert engine.open_order_count("default") == 1
    assert engine.stats()["approved"] == 1


def test_check_when_order_breaks_several_limits_then_every_violation_reported(
    clock: FixedClock,
) -> None:
    limits = RiskLimits(max_order_quantity=100, restricted_symbols=["AAPL"])
    engine = RiskEngine(limits, clock=clock)
    decision = engine.check(limit(150, quantity=2500), account(clock))
    assert not decision.approved
    assert set(decision.codes) == {
        "RESTRICTED_SYMBOL",
        "MAX_ORDER_QUANTITY",
        "MAX_ORDER_NOTIONAL",
        "PRICE_COLLAR",
        "CONCENTRATION",
        "GROSS_EXPOSURE",
    }
    with pytest.raises(OrderRejected) as caught:
        decision.raise_if_rejected()
    assert caught.value.violations == decision.violations
    assert engine.stats()["rejections_by_code"] == dict.fromkeys(decision.codes, 1)
    assert engine.open_order_count() == 0


def test_check_when_mapping_malformed_then_invalid_order_decision_not_exception(
    clock: FixedClock,
) -> None:
    engine = RiskEngine(RiskLimits(), clock=clock)
    decision = engine.check({"symbol": "AAPL", "side": "hodl", "qty": "NaN"}, account(clock))
    assert decision.codes == ("INVALID_ORDER", "INVALID_ORDER")
    assert {v.detail["field"] for v in decision.violations} == {"side", "quantity"}
    assert decision.order is None


def test_check_when_tenths_sum_to_the_limit_then_exactly_at_it_and_approved(
    clock: FixedClock,
) -> None:
    engine = RiskEngine(RiskLimits(max_order_notional="0.3", price_collar=None), clock=clock)
    cheap = account(clock, prices={"AAPL": Quote(0.1, clock.now())})
    assert engine.check(limit(0.1, quantity=3), cheap).approved
    assert engine.check(limit(0.1, quantity="3.0000001"), cheap).codes == ("MAX_ORDER_NOTIONAL",)


def test_check_when_thread_decimal_context_is_coarse_then_still_exact(clock: FixedClock) -> None:
    engine = RiskEngine(RiskLimits(max_order_notional="1234567.89", price_collar=None), clock=clock)
    with localcontext() as coarse:
        coarse.prec = 9  # 1 x 1234567.894 would round to 1234567.89 and pass
        assert engine.check(limit("1234567.894", quantity=1), account(clock)).codes == (
            "MAX_ORDER_NOTIONAL",
        )
        assert engine.check(limit("1234567.89", quantity=1), account(clock)).approved
        assert getcontext().prec == 9


# -- fail closed -------------------------------------------------------------------------


def test_check_when_no_reference_price_then_refused(clock: FixedClock) -> None:
    engine = RiskEngine(RiskLimits(), clock=clock)
    bare = AccountState(account_value=100_000)
    assert engine.check(BUY, bare).codes == ("NO_REFERENCE_PRICE",)
    assert engine.check(limit(), bare).codes == ("NO_REFERENCE_PRICE",)


def test_check_when_reference_price_stale_then_refused(clock: FixedClock) -> None:
    engine = RiskEngine(RiskLimits(max_quote_age=60), clock=clock)
    acct = account(clock)
    clock.advance(60)
    assert engine.check(limit(), acct).approved
    clock.advance(timedelta(microseconds=1))
    assert engine.check(limit(quantity=11), acct).codes == ("STALE_REFERENCE_PRICE",)


@pytest.mark.parametrize("value", [0, -5000])
def test_check_when_account_value_not_positive_then_refused(clock: FixedClock, value: int) -> None:
    engine = RiskEngine(RiskLimits(), clock=clock)
    decision = engine.check(limit(), account(clock, value))
    assert "RISK_STATE_UNAVAILABLE" in decision.codes
    assert not decision.approved


def test_check_when_no_account_or_naive_now_then_refused(clock: FixedClock) -> None:
    engine = RiskEngine(RiskLimits(), clock=clock)
    assert engine.check(limit(), None).codes == ("RISK_STATE_UNAVAILABLE",)
    naive = datetime(2026, 1, 5, 14, 30)  # naive on purpose
    decision = engine.check(limit(), account(clock), now=naive)
    assert decision.violations[0].detail["check"] == "CLOCK"


@pytest.mark.parametrize(
    ("calendar", "venue", "codes"),
    [
        (Calendar(True), "XNYS", ()),
        (Calendar(False), "XNYS", ("MARKET_CLOSED",)),
        (Calendar(error=LookupError("past coverage")), "XNYS", ("MARKET_CLOSED",)),
        (Calendar(error=RuntimeError("boom")), "XNYS", ("MARKET_CLOSED",)),
        (Calendar(True), "", ("MARKET_CLOSED",)),
        (Calendar(error=RuntimeError("never asked")), "CRYPTO", ()),
    ],
)
def test_check_when_calendar_given_then_hours_enforced_and_unknowns_refused(
    clock: FixedClock, calendar: Calendar, venue: str, codes: tuple[str, ...]
) -> None:
    engine = RiskEngine(RiskLimits(), clock=clock, calendar=calendar)
    decision = engine.check(limit(venue=venue), account(clock))
    assert decision.codes == codes
    if (calendar.error is not None and venue != "CRYPTO") or venue == "":
        assert decision.violations[0].detail["fail_closed"] == "yes"  # the reason is given
        assert decision.violations[0].detail["reason"]


def test_check_when_snapshot_overflows_then_refused_not_raised(clock: FixedClock) -> None:
    huge = AccountState(account_value=Decimal("9e999999"), prices={"AAPL": Quote(100, clock.now())})
    decision = RiskEngine(RiskLimits(), clock=clock).check(limit(), huge)
    assert decision.codes == ("RISK_STATE_UNAVAILABLE",)
    assert decision.violations[0].detail["check"] == "build"


def test_check_when_a_check_raises_then_refused_naming_it(
    clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tradeguard.risk import engine as engine_module

    def broken(*_args: object) -> None:
        raise ZeroDivisionError

    monkeypatch.setattr(engine_module, "plan", lambda limits, market_hours: (broken,))
    decision = RiskEngine(RiskLimits(), clock=clock).check(limit(), account(clock))
    assert decision.codes == ("RISK_STATE_UNAVAILABLE",)
    assert decision.violations[0].detail["check"] == "broken"


# -- flow ----------------------------------------------------------------------------------


def test_order_rate_when_window_full_then_refused_until_it_moves(clock: FixedClock) -> None:
    engine = RiskEngine(RiskLimits(order_rate="3/second", symbol_order_rate="off"), clock=clock)
    acct = account(clock)
    assert all(engine.check(limit(quantity=q), acct).approved for q in (1, 2, 3))
    refused = engine.check(limit(quantity=4), acct)
    assert refused.codes == ("ORDER_RATE",)
    assert refused.violations[0].detail["scope"] == "account"
    clock.advance(1)
    assert engine.check(limit(quantity=4), acct).approved


def test_symbol_rate_when_accounts_share_a_symbol_then_counted_together(
    clock: FixedClock,
) -> None:
    engine = RiskEngine(RiskLimits(order_rate="off", symbol_order_rate="2/second"), clock=clock)
    acct = account(clock)
    assert engine.check(limit(account_id="a"), acct).approved
    assert engine.check(limit(account_id="b"), acct).approved
    refused = engine.check(limit(account_id="c"), acct)
    assert refused.violations[0].detail["scope"] == "symbol"


def test_duplicate_when_repeated_within_window_then_refused_and_at_window_passes(
    clock: FixedClock,
) -> None:
    engine = RiskEngine(RiskLimits(duplicate_window=2, max_quote_age=600), clock=clock)
    acct = account(clock)
    assert engine.check(limit(), acct).approved
    clock.advance(1.999999)
    assert engine.check(limit(), acct).codes == ("DUPLICATE_ORDER",)
    assert engine.check(limit(quantity=11), acct).approved  # not the same order
    clock.advance(0.000001)
    assert engine.check(limit(), acct).approved


def test_duplicate_when_client_order_id_still_open_then_refused(clock: FixedClock) -> None:
    engine = RiskEngine(RiskLimits(), clock=clock)
    acct = account(clock)
    assert engine.check(limit(client_order_id="x"), acct).approved
    assert engine.check(limit(quantity=5, client_order_id="x"), acct).codes == ("DUPLICATE_ORDER",)
    engine.on_cancel("x")
    assert engine.check(limit(quantity=5, client_order_id="x"), acct).approved


def test_open_orders_when_at_max_then_refused_until_one_closes(clock: FixedClock) -> None:
    engine = RiskEngine(RiskLimits(max_open_orders=2), clock=clock)
    acct = account(clock)
    first = engine.check(limit(quantity=1), acct)
    assert engine.check(limit(quantity=2), acct).approved
    assert engine.check(limit(quantity=3), acct).codes == ("MAX_OPEN_ORDERS",)
    assert engine.on_fill(first.client_order_id, 1, 100)
    assert engine.check(limit(quantity=3), acct).approved


def test_fills_and_cancels_update_open_orders_pending_and_positions(clock: FixedClock) -> None:
    engine = RiskEngine(RiskLimits(max_position_quantity=100), clock=clock)
    acct = account(clock)
    first = engine.check(limit(quantity=60), acct)
    assert engine.check(limit(quantity=41), acct).codes == ("MAX_POSITION",)  # 60 pending
    assert engine.open_quantity("default", "aapl", "buy") == 60
    assert engine.on_fill(first.client_order_id, 25, "100.5")
    assert engine.open_order_count() == 1
    assert engine.open_quantity("default", "AAPL", "buy") == 35
    assert engine.position("default", "AAPL") == 25
    assert engine.on_fill(first.client_order_id, 35, "100.5")
    assert engine.open_order_count() == 0
    assert engine.position("default", "AAPL") == 60
    second = engine.check(limit(quantity=7, side="sell"), acct)
    assert engine.on_cancel(second.client_order_id)
    assert engine.open_order_count() == 0
    assert not engine.on_cancel(second.client_order_id)
    assert not engine.on_fill("never-seen", 1, 1)
    with pytest.raises(ValueError, match="quantity"):
        engine.on_fill(first.client_order_id, 0, 1)
    with pytest.raises(ValueError, match="price"):
        engine.on_fill(first.client_order_id, 1, "NaN")


# -- trading state ---------------------------------------------------------------------------


def test_kill_switch_when_engaged_then_every_order_refused_and_event_critical(
    clock: FixedClock, events: tuple[EventBus, list[SecurityEvent]]
) -> None:
    bus, seen = events
    engine = RiskEngine(RiskLimits(), clock=clock, bus=bus)
    engine.engage_kill_switch("runaway strategy", "alice")
    assert engine.check(limit(), account(clock)).codes == ("KILL_SWITCH",)
    engine.release_kill_switch("bob")
    assert engine.check(limit(quantity=2), account(clock)).approved
    kinds = [(e.type, e.severity, e.actor) for e in seen if e.type.startswith("killswitch")]
    assert kinds == [
        ("killswitch.engaged", "critical", "alice"),
        ("killswitch.released", "critical", "bob"),
    ]
    engaged = next(e for e in seen if e.type == "killswitch.engaged")
    assert engaged.details["reason"] == "runaway strategy"
    assert engaged.details["persisted"] is True


def test_trading_state_when_reducing_then_only_reducing_orders_pass(
    clock: FixedClock, events: tuple[EventBus, list[SecurityEvent]]
) -> None:
    bus, seen = events
    engine = RiskEngine(RiskLimits(), clock=clock, bus=bus)
    engine.set_trading_state("REDUCING", reason="end of day", actor="ops")
    acct = account(clock, positions={"AAPL": 50})
    assert engine.check(limit(), acct).codes == ("REDUCE_ONLY",)
    assert engine.check(limit(side="sell", quantity=50), acct).approved
    assert [e.type for e in seen if e.type.startswith(("risk.", "kill"))] == [
        "risk.trading_state_changed"
    ]
    with pytest.raises(ValueError, match="reason"):
        engine.set_trading_state("ACTIVE", reason=" ", actor="ops")


def test_kill_switch_and_reducing_when_restarted_then_state_survives(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    first = RiskEngine(RiskLimits(), store=url)
    first.engage_kill_switch("manual halt", "alice")
    second = RiskEngine(RiskLimits(), store=create_database_engine(url))
    assert second.trading_state is TradingState.HALTED
    assert second.trading_status.reason == "manual halt"
    assert second.trading_status.actor == "alice"
    second.set_trading_state(TradingState.REDUCING, reason="wind down", actor="bob")
    third = RiskEngine(RiskLimits(), store=TradingStateStore(create_database_engine(url)))
    assert third.trading_state is TradingState.REDUCING
    first.refresh_trading_state()
    assert first.trading_state is TradingState.REDUCING


def test_store_when_unreadable_at_start_then_halted_with_that_reason(tmp_path: Path) -> None:
    db = create_database_engine(f"sqlite:///{tmp_path / 'state.db'}")
    store = TradingStateStore(db)
    with db.begin() as conn:
        conn.execute(text("DROP TABLE tg_trading_state"))
    engine = RiskEngine(RiskLimits(), store=store)
    assert engine.trading_state is TradingState.HALTED
    assert "could not be read" in engine.trading_status.reason


def test_store_when_row_holds_unknown_state_then_halted(tmp_path: Path) -> None:
    db = create_database_engine(f"sqlite:///{tmp_path / 'state.db'}")
    RiskEngine(RiskLimits(), store=db).set_trading_state("REDUCING", reason="r", actor="a")
    with db.begin() as conn:
        conn.execute(text("UPDATE tg_trading_state SET state = 'PAUSED'"))
    assert RiskEngine(RiskLimits(), store=db).trading_state is TradingState.HALTED


def test_store_when_write_fails_then_halt_still_takes_effect_and_release_does_not(
    tmp_path: Path, clock: FixedClock
) -> None:
    db = create_database_engine(f"sqlite:///{tmp_path / 'state.db'}")
    engine = RiskEngine(RiskLimits(), store=db, clock=clock)
    with db.begin() as conn:
        conn.execute(text("DROP TABLE tg_trading_state"))
    with pytest.raises(RiskStateUnavailable):
        engine.engage_kill_switch("halt", "alice")
    assert engine.trading_state is TradingState.HALTED
    assert engine.check(limit(), account(clock)).codes == ("KILL_SWITCH",)
    with pytest.raises(RiskStateUnavailable):
        engine.release_kill_switch("bob")
    assert engine.trading_state is TradingState.HALTED


def test_daily_loss_when_breached_then_kill_switch_engages_and_persists(
    tmp_path: Path, clock: FixedClock, events: tuple[EventBus, list[SecurityEvent]]
) -> None:
    bus, seen = events
    url = f"sqlite:///{tmp_path / 'state.db'}"
    engine = RiskEngine(RiskLimits(max_daily_loss=1000), clock=clock, bus=bus, store=url)
    losing = account(clock, realized_pnl_today=-800, unrealized_pnl="-200.01")
    assert engine.check(limit(), losing).codes == ("DAILY_LOSS_LIMIT",)
    assert engine.trading_state is TradingState.HALTED
    engaged = [e for e in seen if e.type == "killswitch.engaged"]
    assert len(engaged) == 1 and engaged[0].actor == "risk-engine"
    assert engine.check(limit(quantity=1), account(clock)).codes == ("KILL_SWITCH",)
    assert RiskEngine(RiskLimits(), store=url).trading_state is TradingState.HALTED


# -- events ----------------------------------------------------------------------------------


def test_events_when_subscribed_then_each_decision_published_with_details(
    clock: FixedClock, events: tuple[EventBus, list[SecurityEvent]]
) -> None:
    bus, seen = events
    engine = RiskEngine(RiskLimits(max_order_quantity=5), clock=clock, bus=bus)
    engine.check(limit(quantity=5, account_id="acct-1"), account(clock))
    engine.check(limit(quantity=6), account(clock))
    engine.check({"nonsense": True}, account(clock))
    approved, rejected, invalid = seen
    assert approved.type == "order.approved" and approved.severity == "info"
    assert approved.details["codes"] == []
    assert approved.details["account"] == "acct-1"
    assert rejected.type == "order.rejected" and rejected.severity == "warning"
    assert dict(rejected.details) | {"client_order_id": ""} == {
        "codes": ["MAX_ORDER_QUANTITY"],
        "symbol": "AAPL",
        "side": "buy",
        "quantity": "6",
        "account": "default",
        "client_order_id": "",
        "limit_price": "100",
        "reference_price": None,  # a rejection does not look the quote up
    }
    assert approved.details["reference_price"] is not None  # surveillance needs it
    assert invalid.details["codes"][0] == "INVALID_ORDER"


def test_fills_and_cancels_when_subscribed_then_published_for_surveillance(
    clock: FixedClock, events: tuple[EventBus, list[SecurityEvent]]
) -> None:
    bus, seen = events
    engine = RiskEngine(RiskLimits(), clock=clock, bus=bus)
    first = engine.check(limit(quantity=5, client_order_id="a1"), account(clock))
    engine.check(limit(101, quantity=3, client_order_id="a2"), account(clock))
    assert first.approved
    assert engine.on_fill("a1", 2, "100.5") and engine.on_cancel("a2")
    assert not engine.on_cancel("a2")  # a repeat is not announced twice
    fills = [e for e in seen if e.type == "order.filled"]
    cancels = [e for e in seen if e.type == "order.cancelled"]
    assert [(e.details["quantity"], e.details["price"]) for e in fills] == [("2", "100.5")]
    assert [(e.details["client_order_id"], e.details["quantity"]) for e in cancels] == [("a2", "3")]


def test_events_when_nobody_listens_then_nothing_built_but_counters_kept(
    clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    bus = EventBus()
    monkeypatch.setattr(bus, "publish", lambda event: pytest.fail("published to nobody"))
    engine = RiskEngine(RiskLimits(), clock=clock, bus=bus)
    engine.check(limit(), account(clock))
    engine.check(limit(quantity=10**6), account(clock))
    assert (engine.stats()["approved"], engine.stats()["rejected"]) == (1, 1)


# -- the facade piece ------------------------------------------------------------------------


def test_validate_order_when_seed_call_then_returns_a_decision() -> None:
    decision = validate_order(
        {"symbol": "AAPL", "side": "buy", "quantity": 10, "price": 150}, account_value=10000
    )
    assert isinstance(decision, OrderDecision)
    assert decision.codes == ("NO_REFERENCE_PRICE",)
    priced = validate_order(
        {"symbol": "AAPL", "side": "buy", "quantity": 10, "price": 150},
        account_value=10000,
        prices={"AAPL": 150},
    )
    assert priced.approved


@pytest.mark.parametrize(
    "order",
    [None, [], "AAPL", {"symbol": object()}, {1: 2}, {"symbol": "AAPL", "quantity": 1e400}],
)
def test_validate_order_when_order_malformed_then_invalid_not_raised(order: Any) -> None:
    decision = validate_order(order, account_value=10000)
    assert not decision.approved
    assert decision.codes[0] == "INVALID_ORDER"


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"account_value": "lots"},
        {"account_value": 1, "prices": {"AAPL": (1, 2, 3)}},
        {"account_value": 1, "prices": ["AAPL"]},
        {"account_value": 1, "positions": {"AAPL": "many"}},
    ],
)
def test_validate_order_when_account_unusable_then_refused_not_raised(
    kwargs: dict[str, Any],
) -> None:
    decision = validate_order(BUY, **kwargs)
    assert decision.codes == ("RISK_STATE_UNAVAILABLE",)
    assert decision.order == Order.parse(BUY)


def test_validate_order_when_engine_given_then_its_state_carries_over(clock: FixedClock) -> None:
    engine = RiskEngine(RiskLimits(), clock=clock)
    when = clock.now()
    first = validate_order(limit(), account_value=100_000, prices={"AAPL": 100}, engine=engine)
    again = validate_order(limit(), account_value=100_000, prices={"AAPL": 100}, engine=engine)
    assert first.approved and again.codes == ("DUPLICATE_ORDER",)
    acct = AccountState(account_value=100_000, prices={"AAPL": (100, when)})
    assert validate_order(limit(quantity=3), account=acct, now=when, engine=engine).approved


# -- memory ------------------------------------------------------------------------------------


def test_tracking_when_200k_orders_over_many_symbols_then_memory_stays_bounded() -> None:
    clock = FixedClock(datetime(2026, 1, 5, 14, 30, tzinfo=UTC))
    limits = RiskLimits(
        price_collar=None,
        order_rate="200/second;6000/minute",
        symbol_order_rate="200/second;6000/minute",
        max_open_orders=50,
    )
    engine = RiskEngine(limits, clock=clock)
    acct = AccountState(account_value=10**9)
    biggest: dict[str, int] = {}
    for i in range(200_000):
        order = Order.parse(
            {
                "symbol": f"S{i // 100}",
                "side": "buy" if i % 2 else "sell",
                "quantity": 1 + i % 97,
                "limit_price": "10",
                "account_id": f"a{i % 10}",
            }
        )
        decision = engine.check(order, acct)
        assert decision.approved, decision.violations
        engine.on_cancel(decision.client_order_id)
        clock.advance(0.001)
        if i % 1000 == 0:
            for name, size in engine.stats().items():
                if isinstance(size, int):
                    biggest[name] = max(biggest.get(name, 0), size)
    assert biggest["symbol_rate_keys"] <= 600 + 256  # 60 s of symbols, not all 2,000
    assert biggest["account_rate_keys"] <= 10
    assert biggest["duplicates"] <= 4000 + 256  # two generations of 2 s of orders
    assert biggest["rate_entries"] <= 10 * 6200 + 856 * 6200
    assert biggest["open_orders"] <= 1
    assert biggest["pending_keys"] <= 1


def test_tracking_when_cap_reached_then_refused_until_entries_age_out() -> None:
    clock = FixedClock()
    engine = RiskEngine(
        RiskLimits(price_collar=None, order_rate="off"), clock=clock, max_tracked=300
    )
    acct = AccountState(account_value=10**9)
    codes: set[str] = set()
    for i in range(700):
        decision = engine.check(limit(symbol=f"S{i}"), acct)
        engine.on_cancel(decision.client_order_id)
        codes.update(decision.codes)
    assert codes == {"RISK_STATE_UNAVAILABLE"}
    clock.advance(61)
    assert engine.check(limit(symbol="LATE"), acct).approved


def test_store_accepts_only_known_kinds() -> None:
    from tradeguard.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        RiskEngine(RiskLimits(), store=42)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        RiskEngine(RiskLimits(), calendar=object())  # type: ignore[arg-type]
    assert Decimal(1) == 1


def test_public_names_when_listed_then_all_importable() -> None:
    import inspect

    from tradeguard import risk

    public = {
        name
        for name, value in vars(risk).items()
        if not name.startswith("_")
        and not inspect.ismodule(value)
        and getattr(value, "__module__", "").startswith(("tradeguard.risk", "tradeguard.errors"))
    }
    assert public | {"Check"} == set(risk.__all__)  # Check is a type alias
