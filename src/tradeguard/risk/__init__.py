"""Pre-trade risk: orders, limits, pure checks, the engine, the kill switch.

Reference points: SEC Rule 15c3-5, the FIA's automated-trading risk controls (price collars,
order size limits, message throttles, kill switch) and NautilusTrader's RiskEngine, except
that every check here fails closed: no price, no account value, no calendar answer, no
approval::

    from tradeguard.risk import AccountState, Quote, RiskEngine, RiskLimits

    engine = RiskEngine(RiskLimits.from_toml("risk.toml"), store="sqlite:///state.db")
    decision = engine.check(
        {"symbol": "AAPL", "side": "buy", "quantity": 10, "limit_price": "190.10"},
        AccountState(account_value=100_000, prices={"AAPL": Quote("190.00", now)}),
    )
    decision.raise_if_rejected()   # OrderRejected carries every Violation
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from tradeguard.errors import InvalidAccountState, InvalidOrder, RiskStateUnavailable
from tradeguard.risk.checks import Check
from tradeguard.risk.checks_flow import MarketCalendarProtocol
from tradeguard.risk.engine import RiskEngine
from tradeguard.risk.killswitch import KillSwitch, TradingStateStore, TradingStatus
from tradeguard.risk.limits import RateWindow, RiskLimits, parse_rates
from tradeguard.risk.orders import Order, OrderType, Side, TimeInForce
from tradeguard.risk.state import AccountState, Quote, RiskState, TradingState
from tradeguard.risk.surveillance import Surveillance, SurveillanceConfig
from tradeguard.risk.violations import Code, OrderDecision, Violation

__all__ = [
    "AccountState",
    "Check",
    "Code",
    "InvalidAccountState",
    "InvalidOrder",
    "KillSwitch",
    "MarketCalendarProtocol",
    "Order",
    "OrderDecision",
    "OrderType",
    "Quote",
    "RateWindow",
    "RiskEngine",
    "RiskLimits",
    "RiskState",
    "RiskStateUnavailable",
    "Side",
    "Surveillance",
    "SurveillanceConfig",
    "TimeInForce",
    "TradingState",
    "TradingStateStore",
    "TradingStatus",
    "Violation",
    "parse_rates",
    "validate_order",
]


def validate_order(
    order: Order | Mapping[str, object],
    *,
    account_value: object = None,
    account: AccountState | None = None,
    positions: Mapping[str, object] | None = None,
    prices: Mapping[str, object] | None = None,
    now: datetime | None = None,
    engine: RiskEngine | None = None,
) -> OrderDecision:
    """Check one order; returns the decision and never raises for malformed input.

    Give ``account`` (an :class:`AccountState`), or ``account_value`` with optional
    ``positions`` ({symbol: signed quantity}) and ``prices`` ({symbol: Quote, (price, time)
    or a bare price, taken as quoted at ``now``}). ``engine`` carries rate, duplicate, open
    order and kill-switch state from call to call; without one a fresh in-memory engine with
    default :class:`RiskLimits` judges this order alone.
    """
    engine = RiskEngine() if engine is None else engine
    if account is None:
        try:
            account = _account(account_value, positions, prices, now or engine.clock.now())
        except Exception as exc:  # never raise for caller-supplied content
            why = str(exc) if isinstance(exc, InvalidAccountState) else type(exc).__name__
            problem = Violation(
                Code.RISK_STATE_UNAVAILABLE,
                f"the account state is unusable: {why}",
                {"check": "ACCOUNT", "reason": why},
            )
            parsed = order if isinstance(order, Order) else _parse_quietly(order)
            return engine.refuse(parsed, (problem,))
    return engine.check(order, account, now=now)


def _account(
    account_value: object,
    positions: Mapping[str, object] | None,
    prices: Mapping[str, object] | None,
    now: datetime,
) -> AccountState:
    if account_value is None:
        raise InvalidAccountState("give account_value (or account=AccountState(...))")
    quotes: dict[str, Quote | tuple[object, datetime]] = {}
    for symbol, value in (prices or {}).items():
        if isinstance(value, Quote):
            quotes[symbol] = value
        elif isinstance(value, tuple):
            quotes[symbol] = Quote(*value)
        else:
            quotes[symbol] = Quote(value, now)
    return AccountState(account_value=account_value, positions=positions, prices=quotes)


def _parse_quietly(order: object) -> Order | object:
    try:
        return Order.parse(order)
    except Exception:
        return order
