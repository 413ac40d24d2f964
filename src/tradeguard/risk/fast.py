"""The engine's fast path: every check of a plainly approvable order, inline, in one pass.

:meth:`FastPath.approve` either approves an order (and records it, as the engine would) or
answers ``None``, and then the engine runs the full set of pure checks, which decide and
word every violation. It answers ``None`` for anything unusual (a trading state other than
ACTIVE, a reduce-only order, no quote, a restricted symbol, a closed or unknown market,
tracking at a cap, an account snapshot that is not sized, ...) and whenever a comparison
falls on the refusing side. So it never refuses and never reports: it approves only what
the checks approve, and everything else is decided exactly as before.

Sameness, not approximation: the arithmetic on the order (quantity x price, the position
after the fill, its value, the gross exposure, the distance from the reference) is the very
operations the checks do, on the same operands, in the caller's decimal context. Values that
depend only on the account snapshot and the limits (the collar band, |position|, the held
value) are computed once per snapshot and symbol in a 28-digit context that traps rounding,
so they equal what any context of 28 digits or more computes (the engine never checks with
fewer); a value that would round leaves that symbol to the full checks. An exception in here
also leaves the order to the full checks.

Market hours come from :meth:`MarketCalendar.open_span`: the answer holds until the next
session boundary, so it is asked again only then, or when the calendar rebuilds a venue.
Any other calendar is asked on every order, as the full path does.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Context, Inexact, Rounded, getcontext
from typing import TYPE_CHECKING, Any

from tradeguard.risk import checks, checks_flow
from tradeguard.risk.calendar import CRYPTO, MarketCalendar
from tradeguard.risk.checks import Check
from tradeguard.risk.checks_flow import MarketCalendarProtocol, market_status
from tradeguard.risk.limits import RiskLimits
from tradeguard.risk.orders import Order, OrderType, Side
from tradeguard.risk.state import EPOCH, ZERO, AccountState, TradingState, micros
from tradeguard.risk.tracking import TRIM_MAX
from tradeguard.risk.violations import OrderDecision

if TYPE_CHECKING:
    from threading import Lock

    from tradeguard.risk.killswitch import KillSwitch
    from tradeguard.risk.tracking import OrderTracker, Rates

_EXACT28 = Context(prec=28, traps=[Inexact, Rounded])  # raises rather than round
_ACTIVE, _BUY, _MARKET = TradingState.ACTIVE, Side.BUY, OrderType.MARKET
_FAR = 2**62  # an age window that never closes (microseconds)
_NO_SPAN = (0, 0, -1)  # an empty span: ask the calendar
_new = tuple.__new__
_getcontext, _MIN_PRECISION = getcontext, 28
Entry = tuple[Any, ...]
"""What :func:`entry` derives for one (snapshot, symbol); see there."""


COVERED: frozenset[Check] = frozenset(
    getattr(module, name)
    for module in (checks, checks_flow)
    for name in dir(module)
    if name.startswith("check_")
)
"""The checks this module does inline: a plan with any other check is not fast-pathed."""


def covers(plans: Iterable[tuple[Check, ...]]) -> bool:
    """Whether every check of every plan is one the fast path does inline."""
    return all(check in COVERED for plan in plans for check in plan)


def entry(account: AccountState, limits: RiskLimits, symbol: str) -> Entry | None:
    """The values one snapshot gives every order on ``symbol``, or None: full checks only.

    None when a check would refuse whatever the order (account value not positive, daily
    loss over its cap, the symbol restricted or not allowed, gross exposure not valuable),
    when there is no quote, or when a derived value would round at 28 digits.
    """
    quote = account.prices.get(symbol)
    if quote is None or account.account_value <= ZERO:
        return None
    if symbol in limits.restricted_symbols:
        return None
    if limits.allowed_symbols is not None and symbol not in limits.allowed_symbols:
        return None
    caps = account.caps(limits)
    if caps.daily_loss is not None and account.loss_today > caps.daily_loss:
        return None
    if caps.gross is not None and account.unpriced:
        return None
    mark, collar, age = quote.price, limits.price_collar, limits.quote_age_us
    position = account.positions.get(symbol, ZERO)
    try:
        before_abs = _EXACT28.abs(position)
        band = None if collar is None else _EXACT28.multiply(mark, collar)
        held = _EXACT28.multiply(before_abs, mark)
    except ArithmeticError:
        return None
    return (
        mark, band, position, before_abs, held,
        -_FAR if age is None else quote.micros - age, _FAR if age is None else quote.micros + age,
        limits.max_order_quantity, limits.max_order_notional, limits.max_position_quantity,
        limits.max_position_notional, caps.concentration, caps.gross, account.gross_exposure,
        limits.max_open_orders, account.open_orders, limits.order_rate,
        limits.symbol_order_rate, limits.duplicate_window_us,
        len(limits.order_rate) > 1 or len(limits.symbol_order_rate) > 1,
    )  # fmt: skip


class FastPath:
    """The fast path of one engine: its per-snapshot entries and market-hours spans."""

    def __init__(
        self,
        limits: RiskLimits,
        tracker: OrderTracker,
        switch: KillSwitch,
        calendar: MarketCalendarProtocol | None,
        lock: Lock,
    ) -> None:
        self._limits = limits
        self._account_windows = limits.order_rate
        self._tracker = tracker
        self._switch = switch
        self._lock = lock
        self._calendar = calendar
        self._spans: Any = calendar if isinstance(calendar, MarketCalendar) else None
        self._hours: dict[str, tuple[int, int, int]] = {}  # venue -> since, until, generation
        self._snapshot: tuple[object, dict[str, Entry | None]] = (None, {})

    def market_open(self, venue: str, now: datetime, now_us: int) -> bool:
        """True only if the venue is surely open at ``now`` (anything else: ask the checks)."""
        calendar = self._calendar
        if calendar is None or venue == CRYPTO:
            return True
        if not venue:
            return False
        spans = self._spans
        if spans is None:
            return market_status(calendar, venue, now) == (True, None)
        span = self._hours.get(venue)
        if span is not None and span[0] <= now_us < span[1] and span[2] == spans.generation:
            return True
        generation = spans.generation
        try:
            answer, since, until = spans.open_span(venue, now)
        except Exception:
            return False
        if answer is not True:
            return False
        if since < until:
            self._hours[venue] = (micros(since), micros(until), generation)
        return True

    def entry_for(self, account: AccountState, symbol: str) -> Entry | None:
        """The (snapshot, symbol) entry, derived on first use (call under the engine lock)."""
        known, entries = self._snapshot
        if known is not account:
            entries = {}
            self._snapshot = (account, entries)
        elif symbol in entries:
            return entries[symbol]
        try:
            found = entry(account, self._limits.for_symbol(symbol), symbol)
        except Exception:
            found = None
        if len(entries) < 4096:
            entries[symbol] = found
        return found

    def check(self, order: Order, account: object, now: datetime) -> OrderDecision | None:
        """The approval, recorded, if every check passes; else None: run the full checks.

        Records as :meth:`OrderTracker.record` does (inline: this is the hot path).
        """
        if type(account) is not AccountState:  # (the engine passes only an Order)
            return None
        if _getcontext().prec < _MIN_PRECISION:
            return None  # the engine raises the precision, then comes back here
        if type(now) is not datetime:
            return None
        try:
            delta = now - EPOCH  # micros(now), without dividing timedeltas
        except Exception:  # not an aware datetime: the full path refuses it, saying why
            return None
        now_us = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        (
            symbol, side, quantity, kind, limit, stop, _tif, venue, client_order_id,
            account_id, _strategy, reduce_only,
        ) = order  # fmt: skip
        if self._calendar is not None and venue != CRYPTO:
            span = self._hours.get(venue, _NO_SPAN)  # only ever set for a MarketCalendar
            if not span[0] <= now_us < span[1] or span[2] != self._spans.generation:
                if not self.market_open(venue, now, now_us):
                    return None
        tracker = self._tracker
        lock = self._lock
        lock.acquire()  # cheaper than `with` on the hot path
        try:
            if self._switch.state is not _ACTIVE or reduce_only or tracker.full is not None:
                return None
            known, entries = self._snapshot
            found = entries.get(symbol) if known is account else None
            if found is None:
                found = self.entry_for(account, symbol)
                if found is None:
                    return None
            (
                mark, band, position, before_abs, held, age_from, age_to, max_quantity,
                max_notional, max_position, max_value, max_share, max_gross, gross_now,
                max_open, open_elsewhere, account_windows, symbol_windows, duplicate_us, several,
            ) = found  # fmt: skip
            open_orders = tracker.open
            open_count = tracker.open_count
            try:  # an exception (a context that traps, say): the full checks say what happened
                if client_order_id in open_orders or not age_from <= now_us <= age_to:
                    return None
                if max_quantity is not None and quantity > max_quantity:
                    return None
                price = mark if kind is _MARKET else limit if limit is not None else stop
                if max_notional is not None and price is not None:
                    if quantity * price > max_notional:
                        return None
                if band is not None and kind is not _MARKET:
                    if limit is not None and abs(limit - mark) > band:
                        return None
                    if stop is not None and abs(stop - mark) > band:
                        return None
                count = open_count.get(account_id, 0)
                if max_open is not None:
                    if (count if count > open_elsewhere else open_elsewhere) >= max_open:
                        return None
                side_key = (account_id, symbol, side)
                wanted = quantity + tracker.pending.get(side_key, ZERO)
                after = position + wanted if side is _BUY else position - wanted
                after_abs = abs(after)
                if after_abs > before_abs:  # it grows: the position-type checks apply
                    if max_position is not None and after_abs > max_position:
                        return None
                    value = after_abs * mark
                    if max_value is not None and value > max_value:
                        return None
                    if max_share is not None and value > max_share:
                        return None
                    if max_gross is not None:
                        gross = gross_now + value
                        if before_abs:
                            gross -= held
                        if gross > max_gross:
                            return None
                # a rate window is full when it holds its limit of times, all younger than it
                account_rates = tracker.account_rates.get(account_id) if account_windows else None
                if account_rates is not None:
                    times = account_rates[0]
                    if len(times) == times.maxlen and times[0] > now_us - times.span:
                        return None
                    if several and _any_full(account_rates, now_us):
                        return None
                symbol_rates = tracker.symbol_rates.get(symbol) if symbol_windows else None
                if symbol_rates is not None:
                    times = symbol_rates[0]
                    if len(times) == times.maxlen and times[0] > now_us - times.span:
                        return None
                    if several and _any_full(symbol_rates, now_us):
                        return None
                same = (account_id, symbol, side, quantity, limit, stop)
                duplicates = tracker.duplicates
                seen = duplicates.get(same)
                if seen is not None and duplicate_us is not None:
                    elapsed = now_us - seen
                    if -duplicate_us < elapsed < duplicate_us:
                        return None
            except Exception:
                return None
            # approved: record it, exactly as OrderTracker.record does
            if not client_order_id:
                client_order_id = tracker.next_id()
            tracker.approved += 1
            open_orders[client_order_id] = (account_id, symbol, side, quantity)
            open_count[account_id] = count + 1
            tracker.pending[side_key] = wanted
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
                tracker.expiry.append((now_us, same))
            tracker.until_trim -= 1
            if tracker.until_trim <= 0:
                tracker.prune(now_us, TRIM_MAX)
        finally:
            lock.release()
        return _new(OrderDecision, (True, (), order, client_order_id))


def _any_full(rates: Rates, now_us: int) -> bool:
    """Whether any of ``rates`` holds its limit of times, all younger than its length."""
    return any(len(t) == t.maxlen and t[0] > now_us - t.span for t in rates)
