"""Each pure check alone: a limit exactly reached passes, one unit over fails."""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from tradeguard.risk import AccountState, Code, Order, Quote, RiskLimits, RiskState, TradingState
from tradeguard.risk import checks as c
from tradeguard.risk import checks_flow as f
from tradeguard.risk.checks import Check
from tradeguard.risk.state import micros
from tradeguard.risk.violations import Violation

NOW = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)
OFF: dict[str, Any] = {
    "max_order_quantity": None,
    "max_order_notional": None,
    "max_concentration": None,
    "max_gross_exposure": None,
    "price_collar": None,
    "max_quote_age": None,
    "order_rate": "off",
    "symbol_order_rate": "off",
    "duplicate_window": None,
    "max_open_orders": None,
    "max_daily_loss_fraction": None,
}


def only(**limits: Any) -> RiskLimits:
    """Limits with every optional check off except those given."""
    return RiskLimits(**{**OFF, **limits})


def order(**fields: Any) -> Order:
    return Order.parse({"symbol": "AAPL", "side": "buy", "quantity": 10, **fields})


def account(
    value: object = 100_000, *, price: object | None = 100, age: float = 0, **kw: Any
) -> AccountState:
    prices = kw.pop("prices", {})
    if price is not None:
        prices = {"AAPL": Quote(price, NOW - timedelta(seconds=age)), **prices}
    return AccountState(account_value=value, prices=prices, **kw)


def run(
    check: Check, the_order: Order, limits: RiskLimits, acct: AccountState | None = None, **kw: Any
) -> Violation | None:
    acct = account() if acct is None else acct
    state = RiskState.build(the_order, acct, limits, micros(NOW), **kw)
    return check(the_order, limits, state, NOW)


def code_of(found: Violation | None) -> str | None:
    return None if found is None else found.code.value


# -- size --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        ("100", None),
        ("99.999", None),
        ("100.000000000001", "MAX_ORDER_QUANTITY"),
        (101, "MAX_ORDER_QUANTITY"),
    ],
)
def test_order_quantity_at_and_over_max(quantity: str, expected: str | None) -> None:
    found = run(c.check_order_quantity, order(quantity=quantity), only(max_order_quantity=100))
    assert code_of(found) == expected


def test_order_quantity_when_over_then_detail_names_both_values() -> None:
    found = run(c.check_order_quantity, order(quantity=101), only(max_order_quantity=100))
    assert found is not None
    assert found.detail == {"quantity": "101", "max": "100"}
    assert found.message == "order quantity 101 exceeds max 100"


@pytest.mark.parametrize(
    ("price", "expected"), [("100", None), ("99.99", None), ("100.01", "MAX_ORDER_NOTIONAL")]
)
def test_order_notional_at_and_over_max(price: str, expected: str | None) -> None:
    found = run(
        c.check_order_notional,
        order(quantity=100, limit_price=price),
        only(max_order_notional=10_000),
    )
    assert code_of(found) == expected


def test_order_notional_when_over_then_message_and_detail_in_key_value_form() -> None:
    found = run(
        c.check_order_notional,
        order(quantity=100, limit_price="120.00"),
        only(max_order_notional=10_000),
    )
    assert found == Violation(
        Code.MAX_ORDER_NOTIONAL,
        "order notional 12,000.00 exceeds max 10,000",
        {"notional": "12000.00", "max": "10000", "price": "120.00"},
    )
    assert str(found).startswith("MAX_ORDER_NOTIONAL: order notional 12,000.00 exceeds")


def test_order_notional_when_market_order_then_valued_at_the_reference() -> None:
    limits = only(max_order_notional=1000)
    assert run(c.check_order_notional, order(quantity=10), limits, account(price=100)) is None
    over = run(c.check_order_notional, order(quantity=10), limits, account(price="100.01"))
    assert code_of(over) == "MAX_ORDER_NOTIONAL"


def test_order_notional_when_tenths_add_to_the_limit_then_exact_and_passes() -> None:
    found = run(
        c.check_order_notional,
        order(quantity=3, limit_price=0.1),
        only(max_order_notional="0.3"),
        account(price="0.1"),
    )
    assert found is None  # 3 x 0.1 == 0.3 exactly in Decimal; in float it is 0.30000000000000004


# -- position ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("position", "pending", "side", "quantity", "expected"),
    [
        (60, 0, "buy", 40, None),
        (60, 0, "buy", 41, "MAX_POSITION"),
        (60, 30, "buy", 10, None),
        (60, 30, "buy", "10.5", "MAX_POSITION"),
        (-60, 0, "sell", 40, None),
        (-60, 0, "sell", 41, "MAX_POSITION"),
        (150, 0, "sell", 10, None),  # over the limit, but reducing
        (60, 0, "sell", 161, "MAX_POSITION"),  # flips to -101
    ],
)
def test_position_quantity_after_fill(
    position: int, pending: int, side: str, quantity: object, expected: str | None
) -> None:
    found = run(
        c.check_position_quantity,
        order(side=side, quantity=quantity),
        only(max_position_quantity=100),
        account(positions={"AAPL": position}),
        pending=Decimal(pending),
    )
    assert code_of(found) == expected


@pytest.mark.parametrize(("quantity", "expected"), [("40", None), ("40.01", "MAX_POSITION")])
def test_position_notional_after_fill(quantity: str, expected: str | None) -> None:
    found = run(
        c.check_position_notional,
        order(quantity=quantity),
        only(max_position_notional=10_000),
        account(positions={"AAPL": 60}),
    )
    assert code_of(found) == expected
    if found is not None:
        assert found.detail["limit"] == "max_position_notional"


@pytest.mark.parametrize(("quantity", "expected"), [("200", None), ("200.01", "CONCENTRATION")])
def test_concentration_at_and_over_max(quantity: str, expected: str | None) -> None:
    found = run(c.check_concentration, order(quantity=quantity), only(max_concentration="0.20"))
    assert code_of(found) == expected


def test_concentration_when_reducing_an_oversized_position_then_passes() -> None:
    acct = account(positions={"AAPL": 900})
    limits = only(max_concentration="0.20")
    assert run(c.check_concentration, order(side="sell", quantity=1), limits, acct) is None
    assert code_of(run(c.check_concentration, order(quantity=1), limits, acct)) == "CONCENTRATION"


@pytest.mark.parametrize(("quantity", "expected"), [("1000", None), ("1000.01", "GROSS_EXPOSURE")])
def test_gross_exposure_at_and_over_max(quantity: str, expected: str | None) -> None:
    acct = account(
        positions={"MSFT": -500, "AAPL": 0},
        prices={"MSFT": Quote(200, NOW)},
    )
    found = run(c.check_gross_exposure, order(quantity=quantity), only(max_gross_exposure=2), acct)
    assert code_of(found) == expected


def test_gross_exposure_when_symbol_already_held_then_counted_once() -> None:
    acct = account(positions={"AAPL": 500, "MSFT": 500}, prices={"MSFT": Quote(100, NOW)})
    limits = only(max_gross_exposure=2)
    assert run(c.check_gross_exposure, order(quantity=1000), limits, acct) is None
    assert run(c.check_gross_exposure, order(quantity="1000.01"), limits, acct) is not None


def test_gross_exposure_when_another_holding_has_no_price_then_unavailable() -> None:
    acct = account(positions={"MSFT": 5})
    found = run(c.check_gross_exposure, order(quantity=1), only(max_gross_exposure=2), acct)
    assert found is not None
    assert found.code is Code.RISK_STATE_UNAVAILABLE
    assert found.detail["check"] == "GROSS_EXPOSURE"
    assert found.detail["symbols"] == "MSFT"


# -- prices ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"limit_price": "105"}, None),
        ({"limit_price": "95"}, None),
        ({"limit_price": "105.01"}, "PRICE_COLLAR"),
        ({"limit_price": "94.99"}, "PRICE_COLLAR"),
        ({"stop_price": "105"}, None),
        ({"stop_price": "105.01"}, "PRICE_COLLAR"),
        ({"limit_price": "100", "stop_price": "94.99"}, "PRICE_COLLAR"),
        ({}, None),
    ],
)
def test_price_collar_at_and_over_band(fields: dict[str, str], expected: str | None) -> None:
    found = run(c.check_price_collar, order(**fields), only(price_collar="0.05"))
    assert code_of(found) == expected


def test_price_collar_when_breached_then_detail_names_field_and_reference() -> None:
    found = run(c.check_price_collar, order(stop_price="110"), only(price_collar="0.05"))
    assert found is not None
    assert found.detail["field"] == "stop_price"
    assert found.detail["reference"] == "100"
    assert found.detail["deviation"] == "0.100000"


@pytest.mark.parametrize(
    ("age", "expected"),
    [(60, None), (60.000001, "STALE_REFERENCE_PRICE"), (-60, None), (-61, "STALE_REFERENCE_PRICE")],
)
def test_quote_age_at_and_over_max(age: float, expected: str | None) -> None:
    found = run(c.check_quote_age, order(), only(max_quote_age=60), account(age=age))
    assert code_of(found) == expected


@pytest.mark.parametrize(
    ("fields", "collar", "expected"),
    [
        ({}, None, "NO_REFERENCE_PRICE"),
        ({"limit_price": 10}, "0.05", "NO_REFERENCE_PRICE"),
        ({"stop_price": 10}, "0.05", "NO_REFERENCE_PRICE"),
        ({"limit_price": 10}, None, None),
    ],
)
def test_reference_price_when_missing(
    fields: dict[str, object], collar: str | None, expected: str | None
) -> None:
    found = run(
        c.check_reference_price, order(**fields), only(price_collar=collar), account(price=None)
    )
    assert code_of(found) == expected


def test_reference_price_when_present_then_passes() -> None:
    assert run(c.check_reference_price, order(), only()) is None


# -- flow --------------------------------------------------------------------------------


def times(*seconds_ago: float) -> deque[int]:
    return deque(micros(NOW - timedelta(seconds=s)) for s in seconds_ago)


@pytest.mark.parametrize(
    ("seen", "expected"),
    [
        ((0.9, 0.5, 0.1), "ORDER_RATE"),
        ((1.0, 0.5, 0.1), None),  # the oldest is exactly one window old: out of it
        ((0.5, 0.1), None),
        ((5, 0.9, 0.5, 0.1), "ORDER_RATE"),
    ],
)
def test_order_rate_at_and_over_limit(seen: tuple[float, ...], expected: str | None) -> None:
    limits = only(order_rate="3/second", symbol_order_rate="3/second")
    account_found = run(f.check_account_order_rate, order(), limits, account_rates=(times(*seen),))
    symbol_found = run(f.check_symbol_order_rate, order(), limits, symbol_rates=(times(*seen),))
    assert code_of(account_found) == code_of(symbol_found) == expected
    if account_found is not None and symbol_found is not None:
        assert account_found.detail["scope"] == "account"
        assert symbol_found.detail == {
            "scope": "symbol",
            "key": "AAPL",
            "limit": "3/second",
            "count": "3",
        }


def test_order_rate_when_second_window_full_then_it_is_named() -> None:
    limits = only(order_rate="3/second;4/minute")
    seen = (times(30, 20, 10, 0.5), times(30, 20, 10, 0.5))
    found = run(f.check_account_order_rate, order(), limits, account_rates=seen)
    assert found is not None
    assert found.detail["limit"] == "4/minute"


@pytest.mark.parametrize(
    ("ago", "expected"), [(2, None), (1.999999, "DUPLICATE_ORDER"), (0, "DUPLICATE_ORDER")]
)
def test_duplicate_within_window(ago: float, expected: str | None) -> None:
    last = micros(NOW - timedelta(seconds=ago))
    found = run(f.check_duplicate, order(), only(duplicate_window=2), last_same_at_us=last)
    assert code_of(found) == expected


def test_duplicate_when_client_order_id_open_then_refused_even_without_window() -> None:
    found = run(f.check_duplicate, order(client_order_id="c-1"), only(), client_id_open=True)
    assert code_of(found) == "DUPLICATE_ORDER"
    assert found is not None and found.detail == {"client_order_id": "c-1"}


def test_restricted_symbol_when_listed_or_not_allowed() -> None:
    restricted = only(restricted_symbols=["AAPL"])
    allowed = only(allowed_symbols=["MSFT"])
    assert code_of(run(f.check_restricted_symbol, order(), restricted)) == "RESTRICTED_SYMBOL"
    found = run(f.check_restricted_symbol, order(), allowed)
    assert found is not None and found.detail["list"] == "allowed_symbols"
    assert run(f.check_restricted_symbol, order(symbol="msft"), allowed) is None


@pytest.mark.parametrize(
    ("realized", "unrealized", "expected"),
    [(-600, -400, None), (-600, "-400.01", "DAILY_LOSS_LIMIT"), (500, -1400, None), (0, 0, None)],
)
def test_daily_loss_at_and_over_cap(
    realized: object, unrealized: object, expected: str | None
) -> None:
    acct = account(realized_pnl_today=realized, unrealized_pnl=unrealized)
    found = run(f.check_daily_loss, order(), only(max_daily_loss=1000), acct)
    assert code_of(found) == expected


@pytest.mark.parametrize(("value", "expected"), [("95000", None), ("94999.99", "DAILY_LOSS_LIMIT")])
def test_daily_loss_fraction_of_start_of_day_equity(value: str, expected: str | None) -> None:
    loss = Decimal(value) - 100_000  # start-of-day equity stays 100,000
    acct = account(value, realized_pnl_today=loss)
    found = run(f.check_daily_loss, order(), only(max_daily_loss_fraction="0.05"), acct)
    assert code_of(found) == expected


def test_daily_loss_when_both_caps_then_the_smaller_applies() -> None:
    acct = account(99_000, realized_pnl_today=-1000)
    limits = only(max_daily_loss=999, max_daily_loss_fraction="0.05")
    found = run(f.check_daily_loss, order(), limits, acct)
    assert found is not None and found.detail["max"] == "999"


@pytest.mark.parametrize(
    ("tracked", "broker", "expected"),
    [(2, 0, None), (3, 0, "MAX_OPEN_ORDERS"), (0, 3, "MAX_OPEN_ORDERS")],
)
def test_open_orders_at_and_over_max(tracked: int, broker: int, expected: str | None) -> None:
    acct = account(open_orders=broker)
    found = run(f.check_open_orders, order(), only(max_open_orders=3), acct, open_orders=tracked)
    assert code_of(found) == expected


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (TradingState.ACTIVE, None),
        (TradingState.REDUCING, None),
        (TradingState.HALTED, "KILL_SWITCH"),
    ],
)
def test_kill_switch_only_when_halted(state: TradingState, expected: str | None) -> None:
    assert code_of(run(f.check_kill_switch, order(), only(), trading_state=state)) == expected


@pytest.mark.parametrize(
    ("position", "pending", "side", "quantity", "expected"),
    [
        (100, 0, "sell", 100, None),
        (100, 0, "sell", 101, "REDUCE_ONLY"),  # would cross zero
        (100, 50, "sell", 51, "REDUCE_ONLY"),  # with the open sell, crosses zero
        (100, 0, "buy", 1, "REDUCE_ONLY"),
        (-100, 0, "buy", 100, None),
        (-100, 0, "sell", 1, "REDUCE_ONLY"),
        (0, 0, "sell", 1, "REDUCE_ONLY"),
    ],
)
def test_reduce_only_when_reducing_state_or_flag(
    position: int, pending: int, side: str, quantity: int, expected: str | None
) -> None:
    acct = account(positions={"AAPL": position})
    the_order = order(side=side, quantity=quantity)
    by_state = run(
        f.check_reduce_only,
        the_order,
        only(),
        acct,
        trading_state=TradingState.REDUCING,
        pending=Decimal(pending),
    )
    flagged = order(side=side, quantity=quantity, reduce_only=True)
    by_flag = run(f.check_reduce_only, flagged, only(), acct, pending=Decimal(pending))
    assert code_of(by_state) == code_of(by_flag) == expected
    assert run(f.check_reduce_only, the_order, only(), acct) is None  # ACTIVE, no flag


def test_market_hours_when_closed_unknown_or_open() -> None:
    closed = run(f.check_market_hours, order(venue="XNYS"), only(), market_open=False)
    assert code_of(closed) == "MARKET_CLOSED"
    assert closed is not None and closed.detail["venue"] == "XNYS"
    unknown = run(f.check_market_hours, order(venue="XNYS"), only(), market_problem="down")
    assert code_of(unknown) == "MARKET_CLOSED"  # cannot establish open: fail closed
    assert unknown is not None and unknown.detail["reason"] == "down"
    assert unknown.detail["fail_closed"] == "yes"
    assert run(f.check_market_hours, order(venue="XNYS"), only(), market_open=True) is None


class _Calendar:
    def __init__(self, answer: object = True, error: Exception | None = None) -> None:
        self.answer, self.error = answer, error

    def is_open(self, venue: str, t: datetime) -> bool:
        if self.error is not None:
            raise self.error
        return self.answer  # type: ignore[return-value]


def test_market_status_fails_closed_on_every_unknown() -> None:
    assert f.market_status(_Calendar(False), "XNYS", NOW) == (False, None)
    assert f.market_status(_Calendar(error=KeyError("XXXX")), "CRYPTO", NOW) == (True, None)
    assert f.market_status(_Calendar(), "", NOW)[1] == "the order names no venue"
    problem = f.market_status(_Calendar(error=LookupError("out of range")), "XNYS", NOW)[1]
    assert problem is not None and "LookupError" in problem and "out of range" in problem
    assert "not a bool" in str(f.market_status(_Calendar(answer=1), "XNYS", NOW)[1])


@pytest.mark.parametrize("value", [0, -1, "-0.01"])
def test_risk_state_when_account_value_not_positive_then_unavailable(value: object) -> None:
    found = run(c.check_risk_state, order(), only(), account(value))
    assert code_of(found) == "RISK_STATE_UNAVAILABLE"
    assert found is not None and found.detail["check"] == "ACCOUNT_VALUE"


def test_risk_state_when_tracking_full_then_unavailable() -> None:
    found = run(c.check_risk_state, order(), only(), tracking_problem="full")
    assert found is not None and found.detail == {"check": "TRACKING"}
    assert run(c.check_risk_state, order(), only()) is None


def test_plan_when_everything_off_then_only_always_on_checks() -> None:
    names = [check.__name__ for check in f.plan(only(), market_hours=False)]
    assert names == [
        "check_risk_state",
        "check_kill_switch",
        "check_reduce_only",
        "check_reference_price",
        "check_duplicate",
    ]
    limits = RiskLimits(max_position_quantity=1, max_position_notional=1, restricted_symbols=["X"])
    everything = f.plan(limits, market_hours=True)
    assert len(everything) == 19
