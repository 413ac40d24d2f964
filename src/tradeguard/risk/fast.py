"""What :meth:`RiskEngine.check` derives once to approve the common order in one inline pass.

The engine's ``check`` is itself the fast path: it approves (and records) an order only when
every enabled check would pass, and otherwise hands the order to the pure checks, which decide
and word every violation (:mod:`~tradeguard.risk.full`). So the fast path never refuses and
never reports; it must only never approve what the checks refuse, and it must record exactly
what they record. ``tests/risk/test_fast.py`` pins both with a hypothesis property.

Per (account snapshot, symbol), :func:`entry` derives once the bounds an order is compared to:

* **order size**: the quantity cap, the notional cap (the order's ``quantity x price`` is the
  checks' own operation, in the caller's context, which the engine only fast-paths at 28
  digits or more);
* **price collar**: ``reference -/+ reference x collar``, exact. ``low <= price <= high`` is
  exactly ``|price - reference| <= band``; the checks compare the difference rounded at 28+
  digits to the same (exact) band, which rounding cannot push past it;
* **position-type caps** (MAX_POSITION, CONCENTRATION, GROSS_EXPOSURE): one "room" per side,
  the largest ``quantity + pending`` that passes them all. An order that does not grow the
  absolute position passes them whatever its size, so that region is in the room too. The
  checks compute the position after the fill and its value with up to four roundings at
  28+ digits (each moves a value by at most 1e-27 of it); the room keeps a margin of 1e-20
  of the caps and values involved, and is itself rounded down, so an order within it passes
  the checks too. An order within 1e-20 of a cap simply goes to the full checks;
* the quote's age window in microseconds, the account's open-order cap, the rate windows
  and the duplicate window.

An entry is ``None`` (full checks for every order on that symbol under that snapshot) when a
check would refuse whatever the order (account value not positive, daily loss over its cap,
the symbol restricted or not allowed, open orders at the cap, gross exposure not valuable),
when there is no quote, or when a value that must be exact would round at 28 digits.

Duplicates are keyed by :func:`duplicate_key`: one string of the ids and the amounts in a
canonical form (equal values give equal strings: ``1.50`` and ``1.5`` are the same order).
Hashing a new Decimal costs about 1 µs (a modular power); its string a tenth of that.

Market hours come from :meth:`MarketCalendar.open_span`: the answer holds until the next
session boundary, so it is asked again only then, or when the calendar rebuilds a venue.
Any other calendar is asked on every order, as the full path does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import ROUND_FLOOR, Context, Decimal, Inexact, Rounded
from typing import Any

from tradeguard.risk import checks, checks_flow
from tradeguard.risk.calendar import CRYPTO, MarketCalendar
from tradeguard.risk.checks import Check
from tradeguard.risk.checks_flow import MarketCalendarProtocol, market_status
from tradeguard.risk.limits import RiskLimits
from tradeguard.risk.orders import Order
from tradeguard.risk.state import ZERO, AccountState, micros

_EXACT28 = Context(prec=28, traps=[Inexact, Rounded])  # raises rather than round
_DOWN = Context(prec=60, rounding=ROUND_FLOOR)  # rooms: rounded towards refusing
_MARGIN = Decimal("1e-20")
_KEEP = 1 - _MARGIN
INFINITE = Decimal("Infinity")
"""An unset Decimal cap: nothing is above it."""
NO_CAP = 2**62
"""An unset count cap (and an age window that never closes, in microseconds)."""
NO_SPAN = (0, 0, -1)
"""An empty market-hours span: ask the calendar."""
Entry = tuple[Any, ...]
"""What :func:`entry` derives for one (snapshot, symbol); unpacked in ``RiskEngine.check``."""


COVERED: frozenset[Check] = frozenset(
    getattr(module, name)
    for module in (checks, checks_flow)
    for name in dir(module)
    if name.startswith("check_")
)
"""The checks the fast path does inline: a plan with any other check is not fast-pathed."""


def covers(plans: Iterable[tuple[Check, ...]]) -> bool:
    """Whether every check of every plan is one the fast path does inline."""
    return all(check in COVERED for plan in plans for check in plan)


def canonical(amount: Decimal) -> str:
    """``amount`` as a string equal amounts share (``1.50``, ``1.5`` and ``15E-1``: ``1.5``)."""
    text = str(amount)
    if "E" in text:
        text = format(amount, "f")  # fixed point, every digit (exact)
    if text[-1] == "0" and "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def duplicate_key(order: Order) -> str:
    """What makes two orders "the same" for DUPLICATE_ORDER: account, symbol, side and the
    canonical amounts, in one string (``\\x1f`` is in no id, symbol or amount)."""
    limit, stop = order.limit_price, order.stop_price
    key = (
        f"{order.account_id}\x1f{order.symbol}\x1f{order.side._value_}"
        f"\x1f{canonical(order.quantity)}\x1f{'-' if limit is None else canonical(limit)}"
    )
    return key if stop is None else f"{key}\x1f{canonical(stop)}"


def entry(account: AccountState, limits: RiskLimits, symbol: str) -> Entry | None:
    """The bounds one snapshot gives every order on ``symbol``, or None: full checks only.

    (age_from, age_to, q_priced, q_market, max_quantity, max_notional, mark, low, high,
    room_buy, room_sell, max_open, account_windows, symbol_windows, several, duplicate_us):
    an order of at most ``q_priced`` (``q_market`` for a market order) passes the size checks
    without multiplying; see the module for the rest.
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
    max_open = NO_CAP if limits.max_open_orders is None else limits.max_open_orders
    if account.open_orders >= max_open:
        return None
    mark, collar, age, notional = (
        quote.price,
        limits.price_collar,
        limits.quote_age_us,
        (limits.max_order_notional),
    )
    max_quantity = INFINITE if limits.max_order_quantity is None else limits.max_order_quantity
    position = account.positions.get(symbol, ZERO)
    try:
        held = _EXACT28.multiply(_EXACT28.abs(position), mark)
        low, high = -INFINITE, INFINITE
        if collar is not None:
            band = _EXACT28.multiply(mark, collar)
            low, high = _EXACT28.subtract(mark, band), _EXACT28.add(mark, band)
        bound = _position_bound(limits, account, mark, held)
    except ArithmeticError:
        return None
    q_priced = q_market = max_quantity
    if notional is not None:  # q x price <= notional x (1 - 1e-20): passes whatever rounds
        keep = _DOWN.multiply(notional, _KEEP)
        q_market = min(max_quantity, _DOWN.divide(keep, mark))
        q_priced = ZERO if collar is None else min(max_quantity, _DOWN.divide(keep, high))
    if bound is None:
        room_buy = room_sell = INFINITE
    else:
        room_buy = _DOWN.subtract(bound, position)  # quantity + pending that stays within
        room_sell = _DOWN.add(bound, position)
        if position < ZERO:  # buying back up to twice the short never grows it
            room_buy = max(room_buy, _DOWN.multiply(-2, position))
        elif position > ZERO:
            room_sell = max(room_sell, _DOWN.multiply(2, position))
    account_windows, symbol_windows = limits.order_rate, limits.symbol_order_rate
    at = quote.micros
    return (
        -NO_CAP if age is None else at - age, NO_CAP if age is None else at + age,
        q_priced, q_market, max_quantity, notional, mark, low, high, room_buy, room_sell,
        max_open, account_windows, symbol_windows,
        len(account_windows) > 1 or len(symbol_windows) > 1, limits.duplicate_window_us,
    )  # fmt: skip


def _position_bound(
    limits: RiskLimits, account: AccountState, mark: Decimal, held: Decimal
) -> Decimal | None:
    """The largest |position after the fill| every position-type cap lets through (with the
    margin, rounded down), or None when none is set."""
    caps = account.caps(limits)
    bounds: list[Decimal] = []
    if limits.max_position_quantity is not None:
        bounds.append(_DOWN.multiply(limits.max_position_quantity, _KEEP))
    for value_cap in (limits.max_position_notional, caps.concentration):
        if value_cap is not None:
            bounds.append(_DOWN.divide(_DOWN.multiply(value_cap, _KEEP), mark))
    if caps.gross is not None:
        now = account.gross_exposure
        slack = _DOWN.multiply(_MARGIN, caps.gross + now + held + 1)
        room = _DOWN.subtract(_DOWN.add(_DOWN.subtract(caps.gross, now), held), slack)
        bounds.append(_DOWN.divide(room, mark))
    return min(bounds) if bounds else None


class Hours:
    """Market-hours spans per venue for one engine (asked again at each session boundary)."""

    def __init__(self, calendar: MarketCalendarProtocol | None) -> None:
        self.calendar = calendar
        self.spans: Any = calendar if isinstance(calendar, MarketCalendar) else None
        self.known: dict[str, tuple[int, int, int]] = {}  # venue -> since, until, generation

    def span(self, venue: str, now: datetime, now_us: int) -> tuple[int, int] | None:
        """(since, until) in microseconds around ``now_us`` during which ``venue`` is surely
        open, or None (closed, or cannot tell: ask the checks)."""
        calendar = self.calendar
        if calendar is None or venue == CRYPTO:
            return -NO_CAP, NO_CAP
        if not venue:
            return None
        spans = self.spans
        if spans is None:  # a calendar that only answers is_open: asked again every order
            surely = market_status(calendar, venue, now) == (True, None)
            return (now_us, now_us + 1) if surely else None
        span = self.known.get(venue)
        if span is not None and span[0] <= now_us < span[1] and span[2] == spans.generation:
            return span[0], span[1]
        generation = spans.generation
        try:
            answer, since, until = spans.open_span(venue, now)
        except Exception:
            return None
        if answer is not True or not since <= now < until:
            return None
        found = (micros(since), micros(until), generation)
        self.known[venue] = found
        return found[0], found[1]


class Entries:
    """The entries of the latest account snapshot seen (call under the engine lock).

    Entries are dropped (:meth:`invalidate`) when the trading state changes, when tracking
    reaches a cap, and when the calendar publishes a (re)build; while trading is not ACTIVE
    or tracking is full, none is made: every order goes to the full checks.
    """

    def __init__(
        self,
        limits: RiskLimits,
        calendar: MarketCalendarProtocol | None,
        ready: Callable[[], bool],
        *,
        enabled: bool,
    ) -> None:
        self.limits = limits
        self.enabled = enabled
        self.ready = ready
        self.hours = Hours(calendar)
        self.snapshot: tuple[object, dict[str, Entry]] = (None, {})
        """(account, {symbol: entry}): what ``RiskEngine.check`` reads first."""
        self._bases: tuple[object, dict[str, Entry | None]] = (None, {})
        if isinstance(calendar, MarketCalendar):
            calendar.watch(self.invalidate)

    def invalidate(self) -> None:
        """Forget every entry made (the next order on each symbol makes it again)."""
        self.snapshot = (None, {})

    def get(
        self, account: object, symbol: str, venue: str, now: datetime, now_us: int
    ) -> Entry | None:
        """The entry for ``symbol`` on ``venue`` valid at ``now_us``, or None: full checks.

        (venue, since, until, *what :func:`entry` gives after its age window): valid while
        ``since <= now_us <= until`` (the quote fresh and the market surely open).
        """
        if not self.enabled or not isinstance(account, AccountState) or not self.ready():
            return None
        known, bases = self._bases
        if known is not account:
            bases = {}
            self._bases = (account, bases)
        if symbol in bases:
            base = bases[symbol]
        else:
            try:
                base = entry(account, self.limits.for_symbol(symbol), symbol)
            except Exception:
                base = None
            if len(bases) < 4096:
                bases[symbol] = base
        if base is None:
            return None
        span = self.hours.span(venue, now, now_us)
        if span is None:
            return None
        since, until = max(base[0], span[0]), min(base[1], span[1] - 1)
        if not since <= now_us <= until:
            return None
        found = (venue, since, until, *base[2:])
        entries = self.snapshot[1] if self.snapshot[0] is account else {}
        if len(entries) < 4096:
            entries[symbol] = found
        self.snapshot = (account, entries)
        return found
