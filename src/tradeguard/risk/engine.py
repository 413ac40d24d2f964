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

Speed: ``check`` approves the common order itself, in one inline pass against bounds derived
once per account snapshot and symbol (:mod:`~tradeguard.risk.fast` says why each bound
approves only what the checks approve), and hands anything else to the pure checks
(:mod:`~tradeguard.risk.full`; ``fast_path=False``: always). The fast path computes in its own
exact 28-digit context, so a caller's decimal context does not change what it approves; in a
context that traps Inexact or Rounded, the full checks may refuse (RISK_STATE_UNAVAILABLE) an
order whose notional or position arithmetic would round there, while the fast path approves
it from its exact values.

``store=None`` keeps the trading state in memory only (tests, benchmarks): a halt then does
not survive a restart. Production passes a :class:`TradingStateStore`, an SQLAlchemy engine
or a database URL.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from datetime import datetime
from decimal import Context, Decimal, Inexact, Rounded
from typing import Any

from sqlalchemy import Engine

from tradeguard.clock import SYSTEM_CLOCK, Clock
from tradeguard.errors import ConfigurationError
from tradeguard.events import EventBus, SecurityEvent
from tradeguard.risk.checks_flow import MarketCalendarProtocol, plan
from tradeguard.risk.fast import Entries, canonical, covers, duplicate_key
from tradeguard.risk.full import MIN_PRECISION, check_full, raw_id, unavailable
from tradeguard.risk.killswitch import KillSwitch, TradingStateStore, open_store
from tradeguard.risk.lifecycle import EngineState
from tradeguard.risk.limits import RiskLimits
from tradeguard.risk.orders import Order, Side
from tradeguard.risk.state import EPOCH, ZERO, AccountState, TradingState, micros
from tradeguard.risk.tracking import TRIM_EVERY, TRIM_MAX, OrderTracker, Rates
from tradeguard.risk.violations import Code, OrderDecision, Violation

_log = logging.getLogger(__name__)
_new = tuple.__new__  # builds a named tuple without its Python-level __new__
_ENGINE_ACTOR = "risk-engine"
_DAILY_LOSS = Code.DAILY_LOSS_LIMIT
_ACTIVE, _BUY = TradingState.ACTIVE, Side.BUY  # enum attribute lookups are slow on 3.11
_EXACT28 = Context(prec=MIN_PRECISION, traps=[Inexact, Rounded])  # raises rather than round
_add, _mul = _EXACT28.add, _EXACT28.multiply


class _Full(Exception):
    """Raised inside the hot path: leave this order to the full checks."""


_FULL = _Full()
_STALE: tuple[Any, ...] = ("", 1, 0)  # an entry no order matches: look the symbol up


class RiskEngine(EngineState):
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
        self._tracker = OrderTracker(
            limits, max_keys=max_tracked, max_open_orders=max_tracked, max_duplicates=max_tracked
        )
        self._switch = KillSwitch(open_store(store), bus=bus, clock=self.clock)
        self._lock = threading.Lock()
        plans_used = (self._default[1], *(p for _, p in self._plans.values()))
        self._fast = fast_path and covers(plans_used)
        self._entries = Entries(limits, calendar, self._ready, enabled=self._fast)
        self._switch.watchers.append(self._entries.invalidate)
        self._tracker.on_full = self._entries.invalidate
        self._start = (EPOCH, 0)  # a recent time and its micros(): now_us is counted from it
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
        The common approvable order is approved right here, in one pass against bounds
        derived once per account snapshot and symbol (:mod:`~tradeguard.risk.fast`), and
        recorded as :meth:`OrderTracker.record` would. Any other order is decided by the
        pure check functions, which word every violation (:func:`~.full.check_full`).
        """
        if now is None:
            now = self.clock.now()
        if type(order) is not Order:
            return check_full(self, order, account, now)
        start, start_us = self._start
        try:
            delta = now - start  # microseconds since `start`: cheaper than micros(now)
            if delta.days:  # a day or more from `start` (or before it): start again from now
                now_us = micros(now)
                self._start = (now, now_us)
            else:
                now_us = start_us + delta.seconds * 1_000_000 + delta.microseconds
        except TypeError:  # naive, or not a datetime: the full path says why it cannot check
            return check_full(self, order, account, now)
        (
            symbol, side, quantity, _kind, limit, stop, _tif, venue, client_order_id,
            account_id, _strategy, reduce_only,
        ) = order  # fmt: skip
        tracker = self._tracker
        decision = None
        lock = self._lock
        lock.acquire()  # cheaper than `with` on the hot path
        try:
            try:  # any exception: the full checks decide, and say what happened
                known, entries = self._entries.snapshot
                found = entries.get(symbol, _STALE) if known is account else _STALE
                if found[0] != venue or not found[1] <= now_us <= found[2]:
                    fresh = self._entries.get(account, symbol, venue, now, now_us)
                    if fresh is None:
                        raise _FULL
                    found = fresh
                (
                    _venue, _since, _until, q_priced, q_market, max_quantity, max_notional,
                    mark, low, high, room_buy, room_sell, max_open, account_windows,
                    symbol_windows, several, duplicate_us,
                ) = found  # fmt: skip
                open_orders = tracker.open
                if reduce_only or client_order_id in open_orders:
                    raise _FULL
                price: Decimal | None = limit
                if limit is None:
                    price = stop
                elif stop is not None and not low <= stop <= high:
                    raise _FULL
                if price is None:  # a market order, valued at the reference
                    if quantity > q_market and (
                        quantity > max_quantity
                        or (max_notional is not None and _mul(quantity, mark) > max_notional)
                    ):
                        raise _FULL
                elif not low <= price <= high:
                    raise _FULL
                elif quantity > q_priced and (
                    quantity > max_quantity
                    or (max_notional is not None and _mul(quantity, price) > max_notional)
                ):
                    raise _FULL
                open_count = tracker.open_count
                count = open_count.get(account_id, 0)
                if count >= max_open:
                    raise _FULL
                side_key = (account_id, symbol, side)
                pending = tracker.pending
                wanted = _add(quantity, pending.get(side_key, ZERO))
                if wanted > (room_buy if side is _BUY else room_sell):
                    raise _FULL
                # a rate window is full when it holds its limit of times, all younger than it
                account_rates = tracker.account_rates.get(account_id) if account_windows else None
                if account_rates is not None:
                    times = account_rates[0]
                    if len(times) == times.limit and times[0] > now_us - times.span:
                        raise _FULL
                    if several and _any_full(account_rates, now_us):
                        raise _FULL
                symbol_rates = tracker.symbol_rates.get(symbol) if symbol_windows else None
                if symbol_rates is not None:
                    times = symbol_rates[0]
                    if len(times) == times.limit and times[0] > now_us - times.span:
                        raise _FULL
                    if several and _any_full(symbol_rates, now_us):
                        raise _FULL
                # the duplicate key, as fast.duplicate_key makes it (inline: the hot path)
                text = str(quantity)
                if text[-1] == "0" or "E" in text:
                    text = canonical(quantity)
                if limit is None:
                    price_text = "-"
                else:
                    price_text = str(limit)
                    if price_text[-1] == "0" or "E" in price_text:
                        price_text = canonical(limit)
                same = f"{account_id}\x1f{symbol}\x1f{side._value_}\x1f{text}\x1f{price_text}"
                if stop is not None:
                    same = duplicate_key(order)
                duplicates = tracker.duplicates
                seen = duplicates.get(same)
                if seen is None:
                    seen = tracker.older.get(same)
                if seen is not None and duplicate_us is not None:
                    if -duplicate_us < now_us - seen < duplicate_us:
                        raise _FULL
            except Exception:  # noqa: S110  (the full checks decide it, and say why)
                pass
            else:  # approved: record it, exactly as OrderTracker.record does
                if not client_order_id:
                    client_order_id = tracker.next_id()
                approved = tracker.approved + 1
                tracker.approved = approved
                open_orders[client_order_id] = (account_id, symbol, side, quantity)
                open_count[account_id] = count + 1
                pending[side_key] = wanted
                if account_windows:
                    if account_rates is None:
                        account_rates = tracker.new_rates(True, account_id, account_windows)
                    account_rates[0].append(now_us)
                    if several:
                        for times in account_rates[1:]:
                            times.append(now_us)
                if symbol_windows:
                    if symbol_rates is None:
                        symbol_rates = tracker.new_rates(False, symbol, symbol_windows)
                    symbol_rates[0].append(now_us)
                    if several:
                        for times in symbol_rates[1:]:
                            times.append(now_us)
                if tracker.duplicate_horizon_us:
                    duplicates[same] = now_us
                if not approved & TRIM_EVERY:
                    tracker.prune(now_us, TRIM_MAX)
                decision = _new(OrderDecision, (True, (), order, client_order_id))
        finally:
            lock.release()
        if decision is None:
            return check_full(self, order, account, now)
        bus = self._bus
        if bus is not None and bus.has_subscribers:
            self._publish(decision, order, _reference(account, decision))
        return decision

    def _ready(self) -> bool:
        """Whether the fast path may approve at all (ACTIVE, tracking not full)."""
        return self._switch.state is _ACTIVE and self._tracker.full is None

    # -- refusals and events -------------------------------------------------------------

    def refuse(
        self, order: Order | Mapping[str, object] | object, violations: tuple[Violation, ...]
    ) -> OrderDecision:
        """Record and announce a rejection decided here or by the caller (e.g. a facade)."""
        if not violations:
            violations = (unavailable("REFUSE", "refused without a stated reason"),)
        with self._lock:
            self.rejected_count += 1
            by_code = self.rejections_by_code
            for violation in violations:
                by_code[violation.code.value] = by_code.get(violation.code.value, 0) + 1
        parsed = order if isinstance(order, Order) else None
        client_order_id = parsed.client_order_id if parsed is not None else raw_id(order)
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

    def announce(self, decision: OrderDecision, order: Order, account: AccountState | None) -> None:
        """Publish an approval, if anyone listens."""
        bus = self._bus
        if bus is not None and bus.has_subscribers:
            self._publish(decision, order, _reference(account, decision))


def _reference(account: AccountState | None, decision: OrderDecision) -> Decimal | None:
    order = decision.order
    quote = None if order is None or account is None else account.prices.get(order.symbol)
    return None if quote is None else quote.price


def _any_full(rates: Rates, now_us: int) -> bool:
    """Whether any of ``rates`` holds its limit of times, all younger than its length."""
    return any(len(t) == t.maxlen and t[0] > now_us - t.span for t in rates)
