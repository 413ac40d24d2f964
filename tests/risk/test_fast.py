"""The fast path decides exactly as the full checks: same decisions, same tracked state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import (
    ROUND_05UP,
    ROUND_CEILING,
    ROUND_FLOOR,
    ROUND_HALF_EVEN,
    Decimal,
    Inexact,
    localcontext,
)
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeguard.clock import FixedClock
from tradeguard.risk import (
    AccountState,
    Order,
    OrderDecision,
    OrderType,
    Quote,
    RiskEngine,
    RiskLimits,
    Side,
    TradingState,
)
from tradeguard.risk import engine as engine_module
from tradeguard.risk.calendar import MarketCalendar
from tradeguard.risk.fast import canonical, duplicate_key
from tradeguard.risk.state import micros

NOW = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)
TICK = Decimal("0.0001")


def pair(limits: RiskLimits, clock: FixedClock, **kw: Any) -> tuple[RiskEngine, RiskEngine]:
    """The same engine twice: with the fast path, and with the full checks only."""
    fast = RiskEngine(limits, clock=clock, **kw)
    assert fast._fast
    return fast, RiskEngine(limits, clock=clock, fast_path=False, **kw)


def same(a: OrderDecision, b: OrderDecision) -> None:
    assert (a.approved, a.client_order_id, a.order) == (b.approved, b.client_order_id, b.order)
    assert [(v.code, v.message, dict(v.detail)) for v in a.violations] == [
        (v.code, v.message, dict(v.detail)) for v in b.violations
    ]


def state(engine: RiskEngine) -> tuple[object, ...]:
    t = engine._tracker
    rates = {
        k: [list(d) for d in v] for k, v in (*t.account_rates.items(), *t.symbol_rates.items())
    }
    return (t.sizes(), t.open, t.open_count, t.pending, t.duplicates, t.older, rates)


def amounts(low: str, high: int) -> st.SearchStrategy[Decimal]:
    return st.decimals(min_value=Decimal(low), max_value=Decimal(high), places=4, allow_nan=False)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[RiskLimits, AccountState, list[Order], list[int]]:
    """Limits drawn around the orders' own values, so boundaries (at, one tick over) occur."""
    mark = draw(amounts("1", 500))
    held = draw(amounts("-300", 300))
    orders: list[Order] = []
    for i in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from([OrderType.LIMIT, OrderType.MARKET, OrderType.STOP]))
        price = (mark * (1 + draw(st.integers(-6, 6)) * Decimal("0.01"))).quantize(TICK)
        orders.append(
            Order(
                "AAPL" if draw(st.booleans()) else "MSFT",
                draw(st.sampled_from(list(Side))),
                Decimal(draw(st.integers(1, 40))),
                kind,
                limit_price=price if kind is OrderType.LIMIT else None,
                stop_price=price if kind is OrderType.STOP else None,
                client_order_id=draw(st.sampled_from(["", f"c{i}", "c0"])),
                reduce_only=draw(st.sampled_from([False] * 7 + [True])),
            )
        )
    first = orders[0]
    near = st.sampled_from([Decimal(0), TICK, -TICK])  # at the limit, one tick over or under
    notional = first.quantity * (first.limit_price or first.stop_price or mark)
    value = (abs(held) + first.quantity) * mark
    limits = RiskLimits(
        max_order_quantity=draw(st.sampled_from([None, first.quantity, first.quantity + 5])),
        max_order_notional=draw(st.sampled_from([None, notional - draw(near), notional * 9])),
        max_position_quantity=draw(
            st.sampled_from([None, None, abs(held) + first.quantity, 60, 10**6])
        ),
        max_position_notional=draw(st.sampled_from([None, value - draw(near), value * 9])),
        max_concentration=draw(st.sampled_from([None, "0.05", "0.2", "1"])),
        max_gross_exposure=draw(st.sampled_from([None, "0.1", "0.5", "2", "10"])),
        price_collar=draw(st.sampled_from([None, "0.04", "0.05", "0.5", "0.5"])),
        max_quote_age=draw(st.sampled_from([None, 1, 60, 60])),
        order_rate=draw(st.sampled_from(["off", "2/second", "3/second;5/10s", "100/second"])),
        symbol_order_rate=draw(st.sampled_from(["off", "2/second", "4/minute", "50/second"])),
        duplicate_window=draw(st.sampled_from([None, 1, 2])),
        max_open_orders=draw(st.sampled_from([None, 2, 5, 50])),
        max_daily_loss=draw(st.sampled_from([None, None, 100, 10_000])),
        max_daily_loss_fraction=None,
        restricted_symbols=draw(st.sampled_from([[], [], ["MSFT"]])),
        symbol_overrides=draw(st.sampled_from([None, {"MSFT": {"max_order_quantity": 7}}])),
    )
    quoted = {"AAPL": Quote(mark, NOW), "MSFT": Quote(mark * 2, NOW)}
    if draw(st.sampled_from([False, False, True])):
        del quoted["MSFT"]
    account = AccountState(
        account_value=draw(st.sampled_from([Decimal(-1), mark * 200, mark * 10**4, mark * 10**5])),
        positions={"AAPL": held, **({"MSFT": 10} if draw(st.sampled_from([0, 0, 1])) else {})},
        prices=quoted,
        realized_pnl_today=draw(st.sampled_from([0, -200])),
        open_orders=draw(st.sampled_from([0, 3])),
    )
    gaps = [draw(st.sampled_from([0, 1, 250_000, 999_999, 1_000_000])) for _ in orders]
    return limits, account, orders, gaps


@settings(max_examples=400, deadline=None)
@given(scenarios(), st.sampled_from([None, 0, 1]), st.sampled_from([False] * 5 + [True]))
def test_fast_path_when_random_orders_then_same_decisions_and_state_as_full_checks(
    scenario: tuple[RiskLimits, AccountState, list[Order], list[int]],
    cancel_every: int | None,
    reducing: bool,
) -> None:
    limits, account, orders, gaps = scenario
    clock = FixedClock(NOW)
    fast, full = pair(limits, clock)
    if reducing:
        for engine in (fast, full):
            engine.set_trading_state(TradingState.REDUCING, reason="test", actor="t")
    for i, (order, gap) in enumerate(zip(orders, gaps, strict=True)):
        clock.advance(timedelta(microseconds=gap))
        a, b = fast.check(order, account), full.check(order, account)
        same(a, b)
        if a.approved and cancel_every is not None and i % 2 == cancel_every:
            assert fast.on_cancel(a.client_order_id) == full.on_cancel(b.client_order_id)
        assert state(fast) == state(full)
    assert fast.stats() == full.stats()


def test_fast_path_when_plain_order_then_it_decides(
    clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = RiskEngine(RiskLimits(), clock=clock)
    account = AccountState(account_value=100_000, prices={"AAPL": Quote(100, clock.now())})
    order = Order("AAPL", Side.BUY, Decimal(10), OrderType.LIMIT, Decimal(100))
    assert engine._fast
    monkeypatch.setattr(engine_module, "check_full", None)  # the full checks are not called
    decision = engine.check(order, account)
    assert decision.approved and decision.client_order_id == "tg-1"
    assert engine.open_order_count() == 1 and engine.stats()["approved"] == 1


@pytest.mark.parametrize("setting", ["halted", "coarse", "trapped", "naive", "mapping"])
def test_fast_path_when_unusual_then_full_checks_decide_alike(setting: str) -> None:
    clock = FixedClock(NOW)
    fast, full = pair(RiskLimits(max_order_notional="1234567.89", price_collar=None), clock)
    account = AccountState(account_value=10**7, prices={"AAPL": Quote(100, NOW)})
    order: Any = Order("AAPL", Side.BUY, Decimal(1), OrderType.LIMIT, Decimal("1234567.894"))
    now = None
    if setting == "halted":
        for engine in (fast, full):
            engine.engage_kill_switch("test", "t")
    if setting == "naive":
        now = datetime(2026, 1, 5, 14, 30)  # naive on purpose
    if setting == "mapping":
        order = {"symbol": "aapl", "side": "buy", "quantity": 1, "limit_price": "1234567.89"}
    with localcontext() as context:
        if setting == "coarse":
            context.prec = 9  # 1 x 1234567.894 would round to the limit and pass
        if setting == "trapped":
            context.traps[Inexact] = True
        same(fast.check(order, account, now=now), full.check(order, account, now=now))
        same(fast.check(order, account, now=now), full.check(order, account, now=now))


def test_fast_path_when_duplicate_re_approved_later_then_trim_keeps_the_newer_time() -> None:
    clock = FixedClock(NOW)
    limits = RiskLimits(duplicate_window=2, symbol_overrides={"MSFT": {"duplicate_window": 1}})
    engine = RiskEngine(limits, clock=clock)
    account = AccountState(account_value=10**7, prices={"MSFT": Quote(100, NOW)})
    order = Order("MSFT", Side.BUY, Decimal(1), OrderType.LIMIT, Decimal(100))
    assert engine.check(order, account).approved
    clock.advance(1.5)  # past MSFT's 1 s window, inside the 2 s horizon
    assert engine.check(order, account, now=clock.now()).approved
    clock.advance(0.6)  # the first approval is past the 2 s horizon, the second is not
    engine._tracker.prune(micros(clock.now()))
    seen = engine._tracker.last_seen(duplicate_key(order))
    assert seen == micros(NOW + timedelta(seconds=1.5))
    assert engine.check(order, account).codes == ("DUPLICATE_ORDER",)


def test_open_span_when_asked_then_answer_holds_over_the_span_and_not_past_it() -> None:
    clock = FixedClock(datetime(2026, 3, 10, 15, 0, tzinfo=UTC))
    calendar = MarketCalendar(clock=clock)
    us = timedelta(microseconds=1)
    assert calendar.coverage("XNYS") is not None  # built: open_span answers from the build
    for t in (
        datetime(2026, 3, 10, 15, 0, tzinfo=UTC),  # open (11:00 New York)
        datetime(2026, 3, 10, 21, 0, tzinfo=UTC),  # closed (17:00)
        datetime(2026, 3, 14, 12, 0, tzinfo=UTC),  # Saturday
    ):
        answer, since, until = calendar.open_span("XNYS", t)
        assert since <= t < until
        assert calendar.is_open("XNYS", since) is answer is calendar.is_open("XNYS", until - us)
        assert calendar.is_open("XNYS", until) is not answer
        if since > calendar.coverage("XNYS")[0]:  # type: ignore[index]
            assert calendar.is_open("XNYS", since - us) is not answer


def test_fast_path_when_calendar_rebuilds_then_spans_are_asked_again() -> None:
    clock = FixedClock(datetime(2026, 3, 10, 15, 0, tzinfo=UTC))
    calendar = MarketCalendar(clock=clock)
    engine = RiskEngine(RiskLimits(), clock=clock, calendar=calendar)
    account = AccountState(account_value=10**7, prices={"AAPL": Quote(100, clock.now())})
    order = Order("AAPL", Side.BUY, Decimal(1), OrderType.LIMIT, Decimal(100), venue="XNYS")
    assert engine.check(order, account).approved  # builds XNYS: no span yet
    assert engine.check(order.replace(quantity=Decimal(2)), account).approved  # a span now
    generation = calendar.generation
    assert engine._entries.hours.known["XNYS"][2] == generation
    clock.advance(timedelta(days=340))  # under 30 days of coverage left: rebuilt on use
    late = AccountState(account_value=10**7, prices={"AAPL": Quote(100, clock.now())})
    decision = engine.check(order.replace(client_order_id="late"), late)
    assert calendar.generation > generation
    assert decision.approved is calendar.is_open("XNYS", clock.now())


MODES = [None, (28, ROUND_HALF_EVEN), (28, ROUND_CEILING), (28, ROUND_05UP), (50, ROUND_FLOOR)]


@st.composite
def edges(draw: st.DrawFn) -> tuple[RiskLimits, AccountState, list[Order]]:
    """Orders of many digits against one cap set at, a hair over or a hair under what they
    need: the bounds the fast path derives must never let through what the checks refuse."""
    places = draw(st.sampled_from([2, 8, 20]))

    def number(low: str, high: int) -> Decimal:
        value = draw(st.decimals(min_value=Decimal(low), max_value=high, places=places))
        assert value.is_finite()
        return value

    mark, held = number("0.001", 10**6), number("-100000", 100_000)
    side = draw(st.sampled_from(list(Side)))
    quantities = [number("0.000001", 100_000) for _ in range(draw(st.integers(1, 2)))]
    quantities = [q for q in quantities if q > 0] or [Decimal(1)]
    collar = draw(st.sampled_from([None, Decimal("0.05"), Decimal("0.0123456789")]))
    price = mark if collar is None else mark * (1 + collar * draw(st.sampled_from([-1, 1])))
    nudge = draw(st.sampled_from([0, Decimal("1e-30"), Decimal("-1e-30"), Decimal("1e-12"), -1]))
    price = price + nudge if collar is not None and price + nudge > 0 else price
    with localcontext() as exact:
        exact.prec = 120
        wanted = sum(quantities, Decimal(0))
        after = held + wanted if side is Side.BUY else held - wanted
        value = abs(after) * mark
        cap = draw(st.sampled_from(["position", "value", "share", "gross", "notional"]))
        edge = {"position": abs(after), "notional": quantities[0] * price}.get(cap, value) + nudge
        edge = edge if edge > 0 else Decimal("0.000001")
        equity = Decimal(10**12)
        if cap in ("share", "gross"):
            equity = edge / Decimal("0.25")
    limits = RiskLimits(
        max_order_quantity=None, max_order_notional=edge if cap == "notional" else None,
        max_position_quantity=edge if cap == "position" else None,
        max_position_notional=edge if cap == "value" else None,
        max_concentration="0.25" if cap == "share" else None,
        max_gross_exposure="0.25" if cap == "gross" else None,
        price_collar=collar, max_quote_age=None, order_rate="off", symbol_order_rate="off",
        duplicate_window=None, max_open_orders=None, max_daily_loss_fraction=None,
    )  # fmt: skip
    account = AccountState(
        account_value=equity, positions={"AAPL": held}, prices={"AAPL": Quote(mark, NOW)}
    )
    orders = [
        Order("AAPL", side, q, OrderType.LIMIT, price, client_order_id=f"e{i}")
        for i, q in enumerate(quantities)
    ]
    return limits, account, orders


@settings(max_examples=400, deadline=None)
@given(edges(), st.sampled_from(MODES))
def test_fast_path_when_caps_at_the_edge_then_same_decisions_as_full_checks(
    scenario: tuple[RiskLimits, AccountState, list[Order]], mode: tuple[int, str] | None
) -> None:
    limits, account, orders = scenario
    clock = FixedClock(NOW)
    fast, full = pair(limits, clock)
    with localcontext() as context:
        if mode is not None:
            context.prec, context.rounding = mode
        for order in orders:
            same(fast.check(order, account), full.check(order, account))
            assert state(fast) == state(full)


@pytest.mark.parametrize(
    ("first", "again"),
    [("1.50", "1.5"), ("10", "1E+1"), ("0.00000010", "1E-7"), ("100.0", "100"), ("7", "7.000")],
)
def test_duplicate_when_same_amount_written_differently_then_refused(
    first: str, again: str
) -> None:
    clock = FixedClock(NOW)
    account = AccountState(account_value=10**7, prices={"AAPL": Quote(100, NOW)})
    for field in ("quantity", "limit_price"):
        engine = RiskEngine(RiskLimits(duplicate_window=2, price_collar=None), clock=clock)
        base = Order("AAPL", Side.BUY, Decimal(3), OrderType.LIMIT, Decimal(100))
        one, two = (base.replace(**{field: Decimal(text)}) for text in (first, again))
        assert engine.check(one.replace(client_order_id="x1"), account).approved
        decision = engine.check(two.replace(client_order_id="x2"), account)
        assert decision.codes == ("DUPLICATE_ORDER",), field
    assert canonical(Decimal(first)) == canonical(Decimal(again))
    assert canonical(Decimal("1.05")) != canonical(Decimal("1.5"))
    assert canonical(Decimal("100")) != canonical(Decimal("10"))
