"""The checks on order flow and trading state (same shape as :mod:`tradeguard.risk.checks`).

Kill switch, reduce-only, restricted symbols, market hours, daily loss, open orders, order
rate and duplicates; and :func:`plan`, which picks the checks a set of limits enables.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from tradeguard.risk import checks
from tradeguard.risk.checks import Check
from tradeguard.risk.limits import RateWindow, RiskLimits
from tradeguard.risk.orders import Order, Side
from tradeguard.risk.state import ZERO, RiskState, TradingState
from tradeguard.risk.violations import Code, Violation

if TYPE_CHECKING:
    pass

_HALTED, _REDUCING, _SELL = TradingState.HALTED, TradingState.REDUCING, Side.SELL  # slow on 3.11


def check_kill_switch(
    order: Order, limits: RiskLimits, state: RiskState, now: datetime
) -> Violation | None:
    """KILL_SWITCH: trading is HALTED."""
    if state.trading_state is not _HALTED:
        return None
    return Violation(
        Code.KILL_SWITCH, "trading is halted: the kill switch is engaged", {"state": "HALTED"}
    )


def check_reduce_only(
    order: Order, limits: RiskLimits, state: RiskState, now: datetime
) -> Violation | None:
    """REDUCE_ONLY: trading is REDUCING, or the order is reduce-only, and it would not reduce.

    Reducing means trading against the position without crossing zero, counting the
    account's open orders on the same side.
    """
    forced = state.trading_state is _REDUCING
    if not (forced or order.reduce_only):
        return None
    position = state.position
    wanted = order.quantity + state.pending
    if order.side is _SELL:
        if position > ZERO and wanted <= position:
            return None
    elif position < ZERO and wanted <= -position:
        return None
    why = "trading is REDUCING" if forced else "the order is reduce-only"
    return Violation(
        Code.REDUCE_ONLY,
        f"{why} and the order would not reduce the {order.symbol} position of {position:,}",
        {
            "state": state.trading_state.value,
            "position": str(position),
            "quantity": str(order.quantity),
            "pending": str(state.pending),
            "side": order.side.value,
        },
    )


def check_restricted_symbol(
    order: Order, limits: RiskLimits, state: RiskState, now: datetime
) -> Violation | None:
    """RESTRICTED_SYMBOL: on ``restricted_symbols``, or missing from ``allowed_symbols``."""
    symbol = order.symbol
    if symbol in limits.restricted_symbols:
        return Violation(
            Code.RESTRICTED_SYMBOL,
            f"{symbol} is restricted",
            {"symbol": symbol, "list": "restricted_symbols"},
        )
    allowed = limits.allowed_symbols
    if allowed is not None and symbol not in allowed:
        return Violation(
            Code.RESTRICTED_SYMBOL,
            f"{symbol} is not on the allowed list",
            {"symbol": symbol, "list": "allowed_symbols"},
        )
    return None


@runtime_checkable
class MarketCalendarProtocol(Protocol):
    """Answers whether a venue trades at a moment; may raise when it cannot tell."""

    def is_open(self, venue: str, t: datetime) -> bool:
        """Whether ``venue`` (an ISO MIC) is open at ``t`` (timezone-aware)."""
        ...


def market_status(
    calendar: MarketCalendarProtocol, venue: str, now: datetime
) -> tuple[bool | None, str | None]:
    """(open, None), or (None, why not known): the input :func:`check_market_hours` reads.

    ``CRYPTO`` is always open. No venue, a calendar that raises, or an answer that is not a
    bool, all come back as a reason: the check then refuses as RISK_STATE_UNAVAILABLE.
    """
    if venue == "CRYPTO":
        return True, None
    if not venue:
        return None, "the order names no venue"
    try:
        answer = calendar.is_open(venue, now)
    except Exception as exc:
        return None, f"the calendar cannot answer ({type(exc).__name__}: {str(exc)[:200]})"
    if answer is True or answer is False:
        return answer, None
    return None, f"the calendar answered {type(answer).__name__}, not a bool"


def check_market_hours(
    order: Order, limits: RiskLimits, state: RiskState, now: datetime
) -> Violation | None:
    """MARKET_CLOSED when the calendar says closed, and also (failing closed, with the reason
    in the detail) when it cannot say: unknown venue, outside the calendar's range, no venue."""
    venue = order.venue or "(none)"
    if state.market_problem is not None:
        return Violation(
            Code.MARKET_CLOSED,
            f"market hours for {venue} cannot be established: {state.market_problem}",
            {"venue": venue, "reason": state.market_problem, "fail_closed": "yes"},
        )
    if state.market_open is False:
        return Violation(
            Code.MARKET_CLOSED,
            f"{venue} is closed at {now.isoformat()}",
            {"venue": venue, "time": now.isoformat()},
        )
    return None


def check_daily_loss(
    order: Order, limits: RiskLimits, state: RiskState, now: datetime
) -> Violation | None:
    """DAILY_LOSS_LIMIT: realized + unrealized P&L today below minus the loss cap.

    The cap is the smaller of ``max_daily_loss`` and ``max_daily_loss_fraction`` x the
    start-of-day equity (account value minus today's P&L).
    """
    cap, account = state.caps.daily_loss, state.account
    loss = account.loss_today
    if cap is None or loss <= cap:
        return None
    return Violation(
        Code.DAILY_LOSS_LIMIT,
        f"loss today {loss:,} exceeds max {cap:,}",
        {
            "loss": str(loss),
            "max": str(cap),
            "realized": str(account.realized_pnl_today),
            "unrealized": str(account.unrealized_pnl),
        },
    )


def check_open_orders(
    order: Order, limits: RiskLimits, state: RiskState, now: datetime
) -> Violation | None:
    """MAX_OPEN_ORDERS: the account already has ``max_open_orders`` open."""
    cap = limits.max_open_orders
    if cap is None or state.open_orders < cap:
        return None
    return Violation(
        Code.MAX_OPEN_ORDERS,
        f"account {order.account_id} has {state.open_orders} open orders (max {cap})",
        {"account": order.account_id, "open_orders": str(state.open_orders), "max": str(cap)},
    )


def _rate(scope: str, key: str, window: RateWindow) -> Violation:
    return Violation(
        Code.ORDER_RATE,
        f"{scope} {key} reached {window.limit} orders per {window.window.total_seconds():g} s",
        {"scope": scope, "key": key, "limit": str(window), "count": str(window.limit)},
    )


def _full_window(
    windows: tuple[RateWindow, ...], recent: Sequence[deque[int]], now_us: int
) -> RateWindow | None:
    """The first window already holding ``limit`` approvals younger than its length."""
    for window, times in zip(windows, recent, strict=False):
        limit = window.limit
        if len(times) >= limit and times[-limit] > now_us - window.micros:
            return window
    return None


def check_account_order_rate(
    order: Order, limits: RiskLimits, state: RiskState, now: datetime
) -> Violation | None:
    """ORDER_RATE: the account's approved orders in any ``order_rate`` window at the limit.

    ``state.account_rates`` holds, per window, the latest approval times (at most ``limit``).
    """
    full = _full_window(limits.order_rate, state.account_rates, state.now_us)
    return None if full is None else _rate("account", order.account_id, full)


def check_symbol_order_rate(
    order: Order, limits: RiskLimits, state: RiskState, now: datetime
) -> Violation | None:
    """ORDER_RATE: the symbol's approved orders in any ``symbol_order_rate`` window."""
    full = _full_window(limits.symbol_order_rate, state.symbol_rates, state.now_us)
    return None if full is None else _rate("symbol", order.symbol, full)


def check_duplicate(
    order: Order, limits: RiskLimits, state: RiskState, now: datetime
) -> Violation | None:
    """DUPLICATE_ORDER: its client order id is open, or the same order came within the window.

    The same order: account, symbol, side, quantity and prices all equal. One exactly
    ``duplicate_window`` later passes.
    """
    if state.client_id_open:
        return Violation(
            Code.DUPLICATE_ORDER,
            f"client order id {order.client_order_id!r} is already open",
            {"client_order_id": order.client_order_id},
        )
    window, last = limits.duplicate_window_us, state.last_same_at_us
    if window is None or last is None:
        return None
    elapsed = state.now_us - last
    if elapsed >= window or elapsed <= -window:
        return None
    return Violation(
        Code.DUPLICATE_ORDER,
        f"the same {order.side} {order.quantity} {order.symbol} was approved "
        f"{elapsed / 1e6:g} s ago (window {window / 1e6:g} s)",
        {
            "symbol": order.symbol,
            "side": order.side.value,
            "quantity": str(order.quantity),
            "elapsed_seconds": f"{elapsed / 1e6:g}",
            "window_seconds": f"{window / 1e6:g}",
        },
    )


def plan(limits: RiskLimits, *, market_hours: bool) -> tuple[Check, ...]:
    """The checks ``limits`` enable, cheapest first; the always-on ones are always there."""
    chosen: list[Check] = [
        checks.check_risk_state,
        check_kill_switch,
        check_reduce_only,
        checks.check_reference_price,
        check_duplicate,
    ]
    optional: list[tuple[object, Check]] = [
        (limits.restricted_symbols or limits.allowed_symbols is not None, check_restricted_symbol),
        (market_hours, check_market_hours),
        (limits.max_order_quantity, checks.check_order_quantity),
        (limits.max_order_notional, checks.check_order_notional),
        (limits.max_quote_age, checks.check_quote_age),
        (limits.price_collar, checks.check_price_collar),
        (limits.max_position_quantity, checks.check_position_quantity),
        (limits.max_position_notional, checks.check_position_notional),
        (limits.max_concentration, checks.check_concentration),
        (limits.max_gross_exposure, checks.check_gross_exposure),
        (limits.max_daily_loss or limits.max_daily_loss_fraction, check_daily_loss),
        (limits.max_open_orders, check_open_orders),
        (limits.order_rate, check_account_order_rate),
        (limits.symbol_order_rate, check_symbol_order_rate),
    ]
    chosen.extend(check for enabled, check in optional if enabled)
    return tuple(chosen)
