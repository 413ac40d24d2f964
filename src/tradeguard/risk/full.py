"""The engine's full path: every enabled pure check, each violation worded.

:func:`check_full` decides every order :meth:`RiskEngine.check` does not approve inline (and
every order, with ``fast_path=False``): it builds the :class:`RiskState` the checks read, runs
the plan for the symbol, records an approval, and hands a rejection to ``engine.refuse``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Context, getcontext, localcontext
from typing import TYPE_CHECKING

from tradeguard.risk.checks_flow import market_status
from tradeguard.risk.fast import duplicate_key
from tradeguard.risk.orders import Order, parse_order
from tradeguard.risk.state import ZERO, AccountState, RiskState, micros
from tradeguard.risk.violations import Code, OrderDecision, Violation

if TYPE_CHECKING:
    from tradeguard.risk.engine import RiskEngine

_log = logging.getLogger(__name__)
_new = tuple.__new__  # builds a named tuple without its Python-level __new__
MIN_PRECISION = 28
"""The fewest significant digits the checks run with."""
_EXACT = Context(prec=MIN_PRECISION + 6)


def check_full(
    engine: RiskEngine, order: Order | Mapping[str, object], account: object, now: datetime
) -> OrderDecision:
    """Decide ``order`` with the pure checks (see :meth:`RiskEngine.check`)."""
    if not isinstance(order, Order):
        parsed = parse_order(order)
        if not isinstance(parsed, Order):
            return engine.refuse(order, tuple(invalid(f, why) for f, why in parsed))
        return engine.check(parsed, account, now=now)  # type: ignore[arg-type]
    if getcontext().prec < MIN_PRECISION:
        with localcontext(_EXACT):
            return check_full(engine, order, account, now)
    try:
        now_us = micros(now)
    except Exception:
        why = "now must be a timezone-aware datetime"
        return engine.refuse(order, (unavailable("CLOCK", why),))
    if not isinstance(account, AccountState):
        why = "no account state: pass an AccountState"
        return engine.refuse(order, (unavailable("ACCOUNT", why),))
    limits, checks = engine._plans.get(order.symbol, engine._default)
    calendar = engine._calendar
    market_open, market_problem = (
        (None, None) if calendar is None else market_status(calendar, order.venue, now)
    )
    tracker = engine._tracker
    account_id, symbol, side = order.account_id, order.symbol, order.side
    same = duplicate_key(order)
    client_order_id = order.client_order_id
    violations: list[Violation] | None = None
    with engine._lock:
        if tracker.full is not None:
            tracker.prune(now_us)
        try:
            state = RiskState.build(
                order,
                account,
                limits,
                now_us,
                engine._switch.state,
                tracker.pending.get((account_id, symbol, side), ZERO),
                tracker.open_count.get(account_id, 0),
                tracker.account_rates.get(account_id, ()),
                tracker.symbol_rates.get(symbol, ()),
                tracker.last_seen(same),
                client_order_id in tracker.open,
                market_open,
                market_problem,
                tracker.full,
            )
        except Exception as exc:  # e.g. a snapshot whose values overflow when combined
            violations = [failed(RiskState.build, exc)]
            checks = ()
        for check in checks:
            try:
                found = check(order, limits, state, now)
            except Exception as exc:
                found = failed(check, exc)
            if found is not None:
                if violations is None:
                    violations = [found]
                else:
                    violations.append(found)
        if violations is None:
            if not client_order_id:
                client_order_id = tracker.next_id()
            tracker.record(
                client_order_id, account_id, symbol, side, order.quantity, now_us, same,
                limits.order_rate, limits.symbol_order_rate,
            )  # fmt: skip
    if violations is not None:
        return engine.refuse(order, tuple(violations))
    decision = _new(OrderDecision, (True, (), order, client_order_id))
    engine.announce(decision, order, account)
    return decision


def unavailable(check: str, message: str, **detail: str) -> Violation:
    """A RISK_STATE_UNAVAILABLE violation naming ``check``."""
    return Violation(Code.RISK_STATE_UNAVAILABLE, message, {"check": check, **detail})


def invalid(field: str, why: str) -> Violation:
    """An INVALID_ORDER violation naming the field."""
    return Violation(Code.INVALID_ORDER, f"{field} {why}", {"field": field, "reason": why})


def failed(check: Callable[..., object], exc: Exception) -> Violation:
    """The violation for a check that raised: RISK_STATE_UNAVAILABLE naming it."""
    name = getattr(check, "__name__", "check")
    _log.warning("risk check %s raised %s: refusing the order", name, type(exc).__name__)
    return unavailable(name, f"{name} could not be evaluated ({type(exc).__name__})")


def raw_id(order: object) -> str:
    """The client order id of an order that could not be parsed, if it has a usable one."""
    if isinstance(order, Mapping):
        try:
            value = order.get("client_order_id")
        except Exception:
            return ""
        if isinstance(value, str) and len(value) <= 128:
            return value
    return ""
