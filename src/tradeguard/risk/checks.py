"""The pre-trade checks: pure functions of (order, limits, state, now) -> Violation | None.

Each reads only its arguments, so each is tested alone with a hand-built
:class:`~tradeguard.risk.state.RiskState`. A limit exactly reached passes; one unit over fails.
A check that cannot be evaluated denies: with RISK_STATE_UNAVAILABLE (naming the ``check``)
or with its own code (NO_REFERENCE_PRICE). Where a check skips for want of a price, the only
way to have no price is a market order without a quote, which
:func:`check_reference_price` (always in the plan) refuses.

Position-type checks (MAX_POSITION, CONCENTRATION, GROSS_EXPOSURE) never refuse an order
that does not grow the absolute position: cutting risk stays possible past a limit.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from tradeguard.risk.limits import RiskLimits
from tradeguard.risk.orders import Order, OrderType
from tradeguard.risk.state import ZERO, RiskState
from tradeguard.risk.violations import Code, Violation

_MARKET = OrderType.MARKET  # enum attribute lookups cost ~0.2 us on 3.11: bind once

Check = Callable[[Order, RiskLimits, RiskState, datetime], "Violation | None"]
"""The shape of every check."""


def _unavailable(check: str, message: str, **detail: str) -> Violation:
    return Violation(Code.RISK_STATE_UNAVAILABLE, message, {"check": check, **detail})


def check_risk_state(
    order: Order, limits: RiskLimits, state: RiskState, now: datetime
) -> Violation | None:
    """RISK_STATE_UNAVAILABLE when the account value is not positive or tracking is full."""
    value = state.account.account_value
    if value <= ZERO:  # a Decimal constant: comparing with int 0 costs 3x
        return _unavailable(
            "ACCOUNT_VALUE",
            f"account value {value:,} is not positive: limits relative to it cannot be sized",
            account_value=str(value),
        )
    if state.tracking_problem is not None:
        return _unavailable("TRACKING", state.tracking_problem)
    return None


def check_order_quantity(
    order: Order, limits: RiskLimits, state: RiskState, now: datetime
) -> Violation | None:
    """MAX_ORDER_QUANTITY: the order's quantity above ``max_order_quantity``."""
    cap = limits.max_order_quantity
    if cap is None or order.quantity <= cap:
        return None
    return Violation(
        Code.MAX_ORDER_QUANTITY,
        f"order quantity {order.quantity:,} exceeds max {cap:,}",
        {"quantity": str(order.quantity), "max": str(cap)},
    )


def check_order_notional(
    order: Order, limits: RiskLimits, state: RiskState, now: datetime
) -> Violation | None:
    """MAX_ORDER_NOTIONAL: quantity x the order's price above ``max_order_notional``."""
    cap, price = limits.max_order_notional, state.price
    if cap is None or price is None:
        return None
    notional = order.quantity * price
    if notional <= cap:
        return None
    return Violation(
        Code.MAX_ORDER_NOTIONAL,
        f"order notional {notional:,} exceeds max {cap:,}",
        {"notional": str(notional), "max": str(cap), "price": str(price)},
    )


def check_reference_price(
    order: Order, limits: RiskLimits, state: RiskState, now: datetime
) -> Violation | None:
    """NO_REFERENCE_PRICE: a market order, or a collared price, with no quote for the symbol."""
    if state.quote is not None:
        return None
    if order.order_type is _MARKET:
        return Violation(
            Code.NO_REFERENCE_PRICE,
            f"no reference price for {order.symbol}: a market order cannot be valued",
            {"symbol": order.symbol, "order_type": order.order_type.value},
        )
    if limits.price_collar is not None:
        return Violation(
            Code.NO_REFERENCE_PRICE,
            f"no reference price for {order.symbol} to hold the {order.order_type} price to",
            {"symbol": order.symbol, "order_type": order.order_type.value},
        )
    return None


def check_quote_age(
    order: Order, limits: RiskLimits, state: RiskState, now: datetime
) -> Violation | None:
    """STALE_REFERENCE_PRICE: the quote is older than ``max_quote_age`` (or that far ahead)."""
    quote, max_us = state.quote, limits.quote_age_us
    if quote is None or max_us is None:
        return None
    age = state.now_us - quote.micros
    if -max_us <= age <= max_us:
        return None
    when = "old" if age > 0 else "in the future"
    return Violation(
        Code.STALE_REFERENCE_PRICE,
        f"reference price for {order.symbol} is {abs(age) / 1e6:g} s {when} "
        f"(max {max_us / 1e6:g} s)",
        {
            "symbol": order.symbol,
            "age_seconds": f"{age / 1e6:g}",
            "max_seconds": f"{max_us / 1e6:g}",
            "quote_time": quote.time.isoformat(),
        },
    )


def check_price_collar(
    order: Order, limits: RiskLimits, state: RiskState, now: datetime
) -> Violation | None:
    """PRICE_COLLAR: a limit or stop price more than ``price_collar`` away from the reference."""
    collar, quote = limits.price_collar, state.quote
    if collar is None or quote is None or order.order_type is _MARKET:
        return None
    reference = quote.price
    band = reference * collar
    limit, stop = order.limit_price, order.stop_price
    if limit is not None and abs(limit - reference) > band:
        return _collar("limit_price", limit, reference, collar)
    if stop is not None and abs(stop - reference) > band:
        return _collar("stop_price", stop, reference, collar)
    return None


def _collar(name: str, price: Decimal, reference: Decimal, collar: Decimal) -> Violation:
    deviation = abs(price - reference) / reference
    return Violation(
        Code.PRICE_COLLAR,
        f"{name} {price:,} is {deviation:.2%} from reference {reference:,} (max {collar:.2%})",
        {
            "field": name,
            "price": str(price),
            "reference": str(reference),
            "deviation": f"{deviation:.6f}",
            "max": str(collar),
        },
    )


def check_position_quantity(
    order: Order, limits: RiskLimits, state: RiskState, now: datetime
) -> Violation | None:
    """MAX_POSITION: |position after the fill| above ``max_position_quantity`` (if it grows)."""
    cap = limits.max_position_quantity
    if cap is None or not state.grows or state.after_abs <= cap:
        return None
    return Violation(
        Code.MAX_POSITION,
        f"position in {order.symbol} after the fill {state.after_abs:,} exceeds max {cap:,}",
        {
            "limit": "max_position_quantity",
            "position_after": str(state.position_after),
            "max": str(cap),
            "pending": str(state.pending),
        },
    )


def check_position_notional(
    order: Order, limits: RiskLimits, state: RiskState, now: datetime
) -> Violation | None:
    """MAX_POSITION: |position after| x mark above ``max_position_notional`` (if it grows)."""
    cap, value = limits.max_position_notional, state.value_after
    if cap is None or value is None or value <= cap:
        return None
    return Violation(
        Code.MAX_POSITION,
        f"position value in {order.symbol} after the fill {value:,} exceeds max {cap:,}",
        {
            "limit": "max_position_notional",
            "position_value": str(value),
            "max": str(cap),
            "mark": str(state.mark),
        },
    )


def check_concentration(
    order: Order, limits: RiskLimits, state: RiskState, now: datetime
) -> Violation | None:
    """CONCENTRATION: position value after / account value above ``max_concentration``."""
    cap, value = state.caps.concentration, state.value_after
    if cap is None or value is None or value <= cap:
        return None
    equity = state.account.account_value
    share = value / equity
    return Violation(
        Code.CONCENTRATION,
        f"{order.symbol} would be {share:.2%} of the account (max {limits.max_concentration:.2%})",
        {
            "position_value": str(value),
            "account_value": str(equity),
            "concentration": f"{share:.6f}",
            "max": str(limits.max_concentration),
        },
    )


def check_gross_exposure(
    order: Order, limits: RiskLimits, state: RiskState, now: datetime
) -> Violation | None:
    """GROSS_EXPOSURE: sum of |position values| after / account value above the cap.

    Denies with RISK_STATE_UNAVAILABLE when another held symbol has no quote to value it.
    """
    cap, value = state.caps.gross, state.value_after
    if cap is None or value is None:
        return None
    account, symbol = state.account, order.symbol
    unpriced = account.unpriced
    if unpriced and (len(unpriced) > 1 or symbol not in unpriced):
        missing = ",".join(sorted(unpriced - {symbol}))
        return _unavailable(
            "GROSS_EXPOSURE",
            f"gross exposure cannot be valued: no price for held {missing}",
            symbols=missing,
        )
    gross = account.gross_exposure + value
    if state.before_abs and symbol not in unpriced:
        gross -= state.before_abs * state.mark  # type: ignore[operator]  # mark is set
    if gross <= cap:
        return None
    equity = account.account_value
    ratio = gross / equity
    return Violation(
        Code.GROSS_EXPOSURE,
        f"gross exposure after the fill {gross:,} is {ratio:.2f}x the account "
        f"(max {limits.max_gross_exposure}x)",
        {
            "gross_exposure": str(gross),
            "account_value": str(equity),
            "ratio": f"{ratio:.6f}",
            "max": str(limits.max_gross_exposure),
        },
    )
