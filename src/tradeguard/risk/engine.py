"""The RiskEngine: runs every enabled check on an order and remembers what it approved.

The checks are pure (:mod:`~tradeguard.risk.checks`, :mod:`~tradeguard.risk.checks_flow`);
the engine owns the state they read: the trading state (:class:`KillSwitch`, persisted when
given a store), and what it approved (:class:`OrderTracker`: rate windows, duplicates, open
orders). ``check`` never raises: a malformed order is INVALID_ORDER, a check that raises is
RISK_STATE_UNAVAILABLE naming it, and every violation found is reported.

Market hours: with a ``calendar``, an order's venue must be open now. ``CRYPTO`` is always
open; an order without a venue, or a calendar that raises (out of range, unknown venue) or
answers anything but a bool, is refused as MARKET_CLOSED with ``fail_closed=yes`` and the
reason in the detail: the market may be open, but we cannot tell. Without a calendar market hours
are not checked at all.

Speed: :mod:`~tradeguard.risk.fast` approves the common order in one inline pass with the
same arithmetic, and hands anything else to the pure checks (``fast_path=False``: always).

``store=None`` keeps the trading state in memory only (tests, benchmarks): a halt then does
not survive a restart. Production passes a :class:`TradingStateStore`, an SQLAlchemy engine
or a database URL.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Context, Decimal, getcontext, localcontext

from sqlalchemy import Engine

from tradeguard.clock import SYSTEM_CLOCK, Clock
from tradeguard.errors import ConfigurationError
from tradeguard.events import EventBus, SecurityEvent
from tradeguard.risk.checks_flow import MarketCalendarProtocol, market_status, plan
from tradeguard.risk.fast import FastPath, covers
from tradeguard.risk.killswitch import KillSwitch, TradingStateStore, TradingStatus, open_store
from tradeguard.risk.limits import RiskLimits
from tradeguard.risk.orders import Order, Side, parse_order
from tradeguard.risk.state import ZERO, AccountState, RiskState, TradingState, micros
from tradeguard.risk.tracking import OrderTracker
from tradeguard.risk.values import positive_amount
from tradeguard.risk.violations import Code, OrderDecision, Violation

_log = logging.getLogger(__name__)
_new = tuple.__new__  # builds a named tuple without its Python-level __new__
_ENGINE_ACTOR = "risk-engine"
_DAILY_LOSS = Code.DAILY_LOSS_LIMIT
_MIN_PRECISION = 28
_EXACT = Context(prec=_MIN_PRECISION + 6)
_getcontext = getcontext


def _unavailable(check: str, message: str, **detail: str) -> Violation:
    return Violation(Code.RISK_STATE_UNAVAILABLE, message, {"check": check, **detail})


class RiskEngine:
    """Pre-trade risk checks over one set of limits; thread-safe."""

    def __init__(
        self,
        limits: RiskLimits | None = None,
        *,
        calendar: MarketCalendarProtocol | None = None,
        clock: Clock | None = None,
        bus: EventBus | None = None,
        store: TradingStateStore | Engine | str | None = None,
        max_tracked: int = 100_000,
        fast_path: bool = True,
    ) -> None:
        limits = RiskLimits() if limits is None else limits
        if not isinstance(limits, RiskLimits):
            raise ConfigurationError("RiskEngine needs RiskLimits (RiskLimits.from_toml(...))")
        if calendar is not None and not isinstance(calendar, MarketCalendarProtocol):
            raise ConfigurationError("calendar must have is_open(venue, t) -> bool")
        self.limits = limits
        self.clock: Clock = clock or SYSTEM_CLOCK
        self._calendar = calendar
        self._bus = bus
        plans = {s: limits.for_symbol(s) for s in limits.symbol_overrides}
        hours = calendar is not None
        self._default = (limits, plan(limits, market_hours=hours))
        self._plans = {s: (v, plan(v, market_hours=hours)) for s, v in plans.items()}
        self._account_windows = limits.order_rate
        self._tracker = OrderTracker(
            limits, max_keys=max_tracked, max_open_orders=max_tracked, max_duplicates=max_tracked
        )
        self._switch = KillSwitch(open_store(store), bus=bus, clock=self.clock)
        self._lock = threading.Lock()
        self._now_cache: tuple[object, int] = (None, 0)
        plans_used = (self._default[1], *(p for _, p in self._plans.values()))
        self._fast = (
            FastPath(limits, self._tracker, self._switch, calendar, self._lock)
            if fast_path and covers(plans_used)
            else None
        )
        self.rejected_count = 0
        self.rejections_by_code: dict[str, int] = {}

    # -- the hot path ------------------------------------------------------------------

    def check(
        self,
        order: Order | Mapping[str, object],
        account: AccountState | None,
        *,
        now: datetime | None = None,
    ) -> OrderDecision:
        """Run every enabled check; approve only if none objects. Never raises.

        The checks run with at least 28 significant digits: a thread whose decimal context
        is coarser gets an exact one for the call (rounding could otherwise pass a breach).
        The common approvable order is decided by :class:`FastPath` (the same checks inline);
        anything else by the pure check functions, which word every violation.
        """
        if now is None:
            now = self.clock.now()
        if not isinstance(order, Order):
            parsed = parse_order(order)
            if not isinstance(parsed, Order):
                return self.refuse(order, tuple(_invalid(f, why) for f, why in parsed))
            order = parsed
        fast = self._fast
        if fast is not None:
            decision = fast.check(order, account, now)
            if decision is not None:
                bus = self._bus
                if bus is not None and bus.has_subscribers:
                    self._publish(decision, order, _reference(account, decision))
                return decision
        if _getcontext().prec < _MIN_PRECISION:
            with localcontext(_EXACT):
                return self.check(order, account, now=now)
        cached = self._now_cache
        if cached[0] is now:
            now_us = cached[1]
        else:
            try:
                now_us = micros(now)
            except Exception:
                why = "now must be a timezone-aware datetime"
                return self.refuse(order, (_unavailable("CLOCK", why),))
            self._now_cache = (now, now_us)
        if not isinstance(account, AccountState):
            why = "no account state: pass an AccountState"
            return self.refuse(order, (_unavailable("ACCOUNT", why),))
        limits, checks = self._plans.get(order.symbol, self._default)
        calendar = self._calendar
        market_open, market_problem = (
            (None, None) if calendar is None else market_status(calendar, order.venue, now)
        )
        tracker = self._tracker
        account_id, symbol, side = order.account_id, order.symbol, order.side
        same = (account_id, symbol, side, order.quantity, order.limit_price, order.stop_price)
        client_order_id = order.client_order_id
        violations: list[Violation] | None = None
        lock = self._lock
        lock.acquire()  # cheaper than `with` on the hot path
        try:
            if tracker.full is not None:
                tracker.prune(now_us)
            try:
                state = RiskState.build(
                    order,
                    account,
                    limits,
                    now_us,
                    self._switch.state,
                    tracker.pending.get((account_id, symbol, side), ZERO),
                    tracker.open_count.get(account_id, 0),
                    tracker.account_rates.get(account_id, ()),
                    tracker.symbol_rates.get(symbol, ()),
                    tracker.duplicates.get(same),
                    client_order_id in tracker.open,
                    market_open,
                    market_problem,
                    tracker.full,
                )
            except Exception as exc:  # e.g. a snapshot whose values overflow when combined
                violations = [_failed(RiskState.build, exc)]
                checks = ()
            for check in checks:
                try:
                    found = check(order, limits, state, now)
                except Exception as exc:
                    found = _failed(check, exc)
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
                    self._account_windows, limits.symbol_order_rate,
                )  # fmt: skip
        finally:
            lock.release()
        if violations is not None:
            return self.refuse(order, tuple(violations))
        decision = _new(OrderDecision, (True, (), order, client_order_id))
        bus = self._bus
        if bus is not None and bus.has_subscribers:
            self._publish(decision, order, _reference(account, decision))
        return decision

    @property
    def approved_count(self) -> int:
        """Orders approved (and recorded) so far."""
        return self._tracker.approved

    # -- refusals and events -------------------------------------------------------------

    def refuse(
        self, order: Order | Mapping[str, object] | object, violations: tuple[Violation, ...]
    ) -> OrderDecision:
        """Record and announce a rejection decided here or by the caller (e.g. a facade)."""
        if not violations:
            violations = (_unavailable("REFUSE", "refused without a stated reason"),)
        with self._lock:
            self.rejected_count += 1
            by_code = self.rejections_by_code
            for violation in violations:
                by_code[violation.code.value] = by_code.get(violation.code.value, 0) + 1
        parsed = order if isinstance(order, Order) else None
        client_order_id = parsed.client_order_id if parsed is not None else _raw_id(order)
        decision = _new(OrderDecision, (False, violations, parsed, client_order_id))
        bus = self._bus
        if bus is not None and bus.has_subscribers:
            self._publish(decision, parsed)
        if parsed is not None:
            for violation in violations:
                if violation.code is _DAILY_LOSS:
                    self._halt_for_loss(violation)
                    break
        return decision

    def _halt_for_loss(self, loss: Violation) -> None:
        if self._switch.state is TradingState.HALTED:
            return
        try:
            self._switch.set(TradingState.HALTED, reason=loss.message, actor=_ENGINE_ACTOR)
        except Exception:
            _log.exception("daily loss halt could not be stored (trading is halted in memory)")

    def _publish(
        self, decision: OrderDecision, order: Order | None, reference: object = None
    ) -> None:
        if self._bus is None:
            return
        account = None if order is None else order.account_id
        details: dict[str, object] = {
            "codes": list(decision.codes),
            "symbol": None if order is None else order.symbol,
            "side": None if order is None else order.side.value,
            "quantity": None if order is None else str(order.quantity),
            "account": account,
            "client_order_id": decision.client_order_id,
            "limit_price": None if order is None or order.limit_price is None
            else str(order.limit_price),
            "reference_price": None if reference is None else str(reference),
        }  # fmt: skip
        approved = decision.approved
        self._bus.publish(
            SecurityEvent(
                "order.approved" if approved else "order.rejected",
                subject=account,
                outcome="approved" if approved else "rejected",
                severity="info" if approved else "warning",
                details=details,
            )
        )

    # -- what happened downstream ------------------------------------------------------

    def on_fill(self, client_order_id: str, quantity: object, price: object) -> bool:
        """A (partial) fill of an approved order; False if the id is not open here.

        Raises :class:`ValueError` for a quantity or price that is not a positive number.
        """
        amount = positive_amount("fill quantity", quantity)
        fill_price = positive_amount("fill price", price)  # positions count quantity only
        with self._lock:
            entry = self._tracker.open.get(client_order_id)
            done = self._tracker.fill(client_order_id, amount)
        if done and entry is not None:
            self._announce("order.filled", client_order_id, entry, amount, fill_price)
        return done

    def on_cancel(self, client_order_id: str) -> bool:
        """An approved order was cancelled, expired or rejected downstream; False if unknown."""
        with self._lock:
            entry = self._tracker.open.get(client_order_id)
            done = self._tracker.cancel(client_order_id)
        if done and entry is not None:
            self._announce("order.cancelled", client_order_id, entry, entry[3], None)
        return done

    def _announce(
        self, kind: str, client_order_id: str, entry: tuple[str, str, Side, Decimal],
        quantity: Decimal, price: Decimal | None,
    ) -> None:  # fmt: skip
        bus = self._bus
        if bus is None or not bus.has_subscribers:
            return
        account, symbol, side, _ = entry
        bus.publish(SecurityEvent(kind, subject=account, details={
            "client_order_id": client_order_id, "symbol": symbol, "side": side.value,
            "quantity": str(quantity), "price": None if price is None else str(price),
            "account": account,
        }))  # fmt: skip

    def open_order_count(self, account_id: str = "default") -> int:
        """Orders approved for ``account_id`` and not yet filled or cancelled."""
        return self._tracker.open_count.get(account_id, 0)

    def open_quantity(self, account_id: str, symbol: str, side: Side | str) -> Decimal:
        """Remaining quantity of the account's open orders on one side of a symbol."""
        key = (account_id, symbol.upper(), Side(str(side).lower()))
        return self._tracker.pending.get(key, ZERO)

    def position(self, account_id: str, symbol: str) -> Decimal:
        """Net quantity filled through :meth:`on_fill` for the account and symbol."""
        return self._tracker.positions.get((account_id, symbol.upper()), ZERO)

    def stats(self) -> dict[str, object]:
        """Counters and tracked-structure sizes."""
        with self._lock:
            return {
                "approved": self.approved_count,
                "rejected": self.rejected_count,
                "rejections_by_code": dict(self.rejections_by_code),
                "trading_state": self._switch.state.value,
                **self._tracker.sizes(),
            }

    # -- the trading state -------------------------------------------------------------

    @property
    def trading_state(self) -> TradingState:
        """ACTIVE, REDUCING or HALTED."""
        return self._switch.state

    @property
    def trading_status(self) -> TradingStatus:
        """The trading state with its reason, actor and time."""
        return self._switch.status

    def engage_kill_switch(self, reason: str, actor: str) -> TradingStatus:
        """HALT all trading now (and persist it); emits ``killswitch.engaged``."""
        return self._switch.set(TradingState.HALTED, reason=reason, actor=actor)

    def release_kill_switch(
        self, actor: str, *, reason: str = "kill switch released"
    ) -> TradingStatus:
        """Leave HALTED for ACTIVE (a no-op otherwise); emits ``killswitch.released``."""
        if self._switch.state is not TradingState.HALTED:
            return self._switch.status
        return self._switch.set(TradingState.ACTIVE, reason=reason, actor=actor)

    def set_trading_state(
        self, state: TradingState | str, *, reason: str, actor: str
    ) -> TradingStatus:
        """Move to any trading state; emits a critical event naming the transition."""
        return self._switch.set(state, reason=reason, actor=actor)

    def refresh_trading_state(self) -> TradingStatus:
        """Re-read the stored trading state (set by another process)."""
        return self._switch.refresh()


def _reference(account: AccountState | None, decision: OrderDecision) -> Decimal | None:
    order = decision.order
    quote = None if order is None or account is None else account.prices.get(order.symbol)
    return None if quote is None else quote.price


def _invalid(field: str, why: str) -> Violation:
    return Violation(Code.INVALID_ORDER, f"{field} {why}", {"field": field, "reason": why})


def _failed(check: Callable[..., object], exc: Exception) -> Violation:
    name = getattr(check, "__name__", "check")
    _log.warning("risk check %s raised %s: refusing the order", name, type(exc).__name__)
    return _unavailable(name, f"{name} could not be evaluated ({type(exc).__name__})")


def _raw_id(order: object) -> str:
    if isinstance(order, Mapping):
        try:
            value = order.get("client_order_id")
        except Exception:
            return ""
        if isinstance(value, str) and len(value) <= 128:
            return value
    return ""
