"""Properties: smaller orders are never riskier, parsing never throws, windows hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tradeguard.clock import FixedClock
from tradeguard.risk import (
    AccountState,
    InvalidOrder,
    Order,
    OrderType,
    Quote,
    RiskEngine,
    RiskLimits,
    RiskState,
    Side,
)
from tradeguard.risk import checks as c
from tradeguard.risk.orders import parse_order
from tradeguard.risk.state import micros

NOW = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)
SIZE_CHECKS = (
    c.check_order_quantity,
    c.check_order_notional,
    c.check_position_quantity,
    c.check_position_notional,
    c.check_concentration,
    c.check_gross_exposure,
)


def amounts(low: str = "0.0001", high: int = 10**6) -> st.SearchStrategy[Decimal]:
    return st.decimals(min_value=Decimal(low), max_value=Decimal(high), places=4, allow_nan=False)


caps = st.one_of(st.none(), amounts("1"))


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Order, Order, RiskLimits, AccountState, Decimal]:
    limits = RiskLimits(
        max_order_quantity=draw(caps),
        max_order_notional=draw(caps),
        max_position_quantity=draw(caps),
        max_position_notional=draw(caps),
        max_concentration=draw(st.one_of(st.none(), amounts("0.01", 5))),
        max_gross_exposure=draw(st.one_of(st.none(), amounts("0.01", 5))),
    )
    quoted = draw(st.booleans())
    kind = draw(
        st.sampled_from([OrderType.MARKET, OrderType.LIMIT] if quoted else [OrderType.LIMIT])
    )
    price = draw(amounts("0.01", 10_000)) if kind is OrderType.LIMIT else None
    positions = {"AAPL": draw(amounts("-100000", 100_000)), "MSFT": draw(amounts("-1000", 1000))}
    prices = {"MSFT": Quote(draw(amounts("0.01", 1000)), NOW)}
    if quoted:
        prices["AAPL"] = Quote(draw(amounts("0.01", 10_000)), NOW)
    account = AccountState(
        account_value=draw(amounts("-1000", 10**7)), positions=positions, prices=prices
    )
    quantity = draw(amounts())
    smaller = draw(amounts(high=1)) * quantity
    side = draw(st.sampled_from(list(Side)))
    big = Order(symbol="AAPL", side=side, quantity=quantity, order_type=kind, limit_price=price)
    small = big.replace(quantity=max(smaller, Decimal("0.0001")))
    pending = draw(st.sampled_from([Decimal(0), draw(amounts())]))
    return big, small, limits, account, pending


def codes(order: Order, limits: RiskLimits, account: AccountState, pending: Decimal) -> set[str]:
    state = RiskState.build(order, account, limits, micros(NOW), pending=pending)
    found = (check(order, limits, state, NOW) for check in SIZE_CHECKS)
    return {v.code.value for v in found if v is not None}


@settings(max_examples=400)
@given(scenarios())
def test_shrinking_an_order_never_adds_a_size_or_exposure_violation(
    scenario: tuple[Order, Order, RiskLimits, AccountState, Decimal],
) -> None:
    big, small, limits, account, pending = scenario
    assert small.quantity <= big.quantity
    assert codes(small, limits, account, pending) <= codes(big, limits, account, pending)


FIELDS = [
    "symbol", "side", "quantity", "order_type", "limit_price", "stop_price", "time_in_force",
    "venue", "client_order_id", "account_id", "strategy_id", "reduce_only", "price", "qty",
]  # fmt: skip
values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.decimals(),
    st.text(max_size=40),
    st.sampled_from(["buy", "SELL", "limit", "stop_limit", "AAPL", "1e400", "NaN", "-0", "gtc"]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
mappings = st.dictionaries(
    st.one_of(st.sampled_from(FIELDS), st.text(max_size=12), st.integers()), values, max_size=8
)


@settings(max_examples=500)
@given(st.one_of(mappings, values))
def test_parse_on_anything_returns_an_order_or_problems_and_never_raises(raw: Any) -> None:
    result = parse_order(raw)
    assert isinstance(result, Order) or (
        isinstance(result, tuple) and result and all(len(p) == 2 for p in result)
    )
    try:
        Order.parse(raw)
    except InvalidOrder as exc:
        assert exc.problems
    engine = RiskEngine(RiskLimits())
    decision = engine.check(raw, AccountState(account_value=1000))
    assert decision.approved or decision.violations
    if decision.order is None:
        assert set(decision.codes) == {"INVALID_ORDER"}


@settings(max_examples=200)
@given(st.integers(1, 50), amounts("0.0001", 1000))
def test_decimal_notional_exactly_at_the_limit_passes_and_one_unit_more_fails(
    count: int, price: Decimal
) -> None:
    limits = RiskLimits(max_order_notional=count * price, price_collar=None)
    order = Order(
        symbol="AAPL",
        side=Side.BUY,
        quantity=Decimal(count),
        order_type=OrderType.LIMIT,
        limit_price=price,
    )
    account = AccountState(account_value=10**12)
    state = RiskState.build(order, account, limits, micros(NOW))
    assert c.check_order_notional(order, limits, state, NOW) is None
    over = order.replace(limit_price=price + Decimal("0.0001"))
    state = RiskState.build(over, account, limits, micros(NOW))
    assert c.check_order_notional(over, limits, state, NOW) is not None


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 400), min_size=1, max_size=60))
def test_rate_windows_never_admit_more_than_the_limit_and_never_refuse_below_it(
    gaps_ms: list[int],
) -> None:
    clock = FixedClock(NOW)
    limits = RiskLimits(order_rate="4/second;9/5s", symbol_order_rate="off", max_open_orders=None)
    engine = RiskEngine(limits, clock=clock)
    account = AccountState(account_value=10**9, prices={"AAPL": Quote(10, NOW)})
    approved: list[datetime] = []
    for i, gap in enumerate(gaps_ms):
        clock.advance(timedelta(milliseconds=gap))
        now = clock.now()
        order = {"symbol": "AAPL", "side": "buy", "quantity": i + 1, "limit_price": 10}
        in_1s = sum(1 for t in approved if t > now - timedelta(seconds=1))
        in_5s = sum(1 for t in approved if t > now - timedelta(seconds=5))
        decision = engine.check(order, account, now=now)
        expected = in_1s < 4 and in_5s < 9
        assert decision.approved is expected, (decision.codes, in_1s, in_5s)
        if decision.approved:
            approved.append(now)
