"""The world as the checks see it: quotes, the account snapshot, the trading state.

:class:`AccountState` is the caller's snapshot of one account, taken as the truth for
positions and P&L (the engine does not add its own fills to it: pass a fresh snapshot).
:class:`RiskState` is what one check call sees: the snapshot plus what the engine tracks
(open orders, rate windows, duplicates, trading state) and the values derived from them once
per order (the order's price, the valuation mark, the position after the fill).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple

from tradeguard.errors import InvalidAccountState
from tradeguard.risk.limits import RiskLimits
from tradeguard.risk.orders import Order
from tradeguard.risk.values import OrderType, Side, normalize_symbol, to_decimal

if TYPE_CHECKING:
    from collections import deque

ZERO = Decimal(0)
_BUY, _MARKET = Side.BUY, OrderType.MARKET  # enum attribute lookups are slow on 3.11
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def micros(when: datetime) -> int:
    """Microseconds since the epoch of an aware datetime (exact, unlike ``timestamp()``)."""
    return (when - EPOCH) // MICROSECOND


class TradingState(StrEnum):
    """Whether orders may flow: all, only position-reducing ones, or none."""

    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"


@dataclass(frozen=True, slots=True, init=False)
class Quote:
    """A reference price and when it was observed (timezone-aware)."""

    price: Decimal
    time: datetime
    micros: int = field(init=False, repr=False, compare=False)

    def __init__(self, price: object, time: datetime) -> None:
        try:
            value = to_decimal(price)
        except ValueError as exc:
            raise InvalidAccountState(f"quote price: {exc}") from None
        if value <= 0:
            raise InvalidAccountState("quote price: must be greater than zero")
        if not isinstance(time, datetime) or time.utcoffset() is None:
            raise InvalidAccountState("quote time: must be a timezone-aware datetime")
        object.__setattr__(self, "price", value)
        object.__setattr__(self, "time", time)
        object.__setattr__(self, "micros", micros(time))


def _number(name: str, value: object) -> Decimal:
    try:
        return to_decimal(value)
    except ValueError as exc:
        raise InvalidAccountState(f"{name}: {exc}") from None


@dataclass(frozen=True, slots=True, init=False)
class AccountState:
    """One account's snapshot: equity, cash, signed positions, quotes and P&L today.

    ``prices`` maps symbols to :class:`Quote` (or ``(price, time)`` pairs). ``unrealized_pnl``
    is the caller's figure for open positions (the engine has no cost basis). ``open_orders``
    counts orders open at the broker; the engine uses the larger of it and its own count.
    Symbols are upper-cased. Derived once here: ``pnl_today``, ``start_equity`` (equity
    before today's P&L), ``gross_exposure`` (sum of |quantity x quote| over priced
    positions) and ``unpriced`` (held symbols without a quote).
    """

    account_value: Decimal
    cash: Decimal | None
    positions: Mapping[str, Decimal]
    prices: Mapping[str, Quote]
    realized_pnl_today: Decimal
    unrealized_pnl: Decimal
    open_orders: int
    pnl_today: Decimal = field(init=False, repr=False, compare=False)
    start_equity: Decimal = field(init=False, repr=False, compare=False)
    loss_today: Decimal = field(init=False, repr=False, compare=False)
    gross_exposure: Decimal = field(init=False, repr=False, compare=False)
    unpriced: frozenset[str] = field(init=False, repr=False, compare=False)
    _caps: dict[int, tuple[RiskLimits, AccountCaps]] = field(init=False, repr=False, compare=False)

    def __init__(
        self,
        *,
        account_value: object,
        cash: object = None,
        positions: Mapping[str, object] | None = None,
        prices: Mapping[str, Quote | tuple[object, datetime]] | None = None,
        realized_pnl_today: object = 0,
        unrealized_pnl: object = 0,
        open_orders: int = 0,
    ) -> None:
        value = _number("account_value", account_value)
        held: dict[str, Decimal] = {}
        seen: set[str] = set()
        for raw, quantity in (positions or {}).items():
            amount = _number(f"positions[{raw!r}]", quantity)
            symbol = _symbol("positions", raw, seen)
            if amount:
                held[symbol] = amount
        quotes: dict[str, Quote] = {}
        seen = set()
        for raw, quote in (prices or {}).items():
            if not isinstance(quote, Quote):
                if not isinstance(quote, Sequence) or len(quote) != 2:
                    raise InvalidAccountState(f"prices[{raw!r}]: give a Quote(price, time)")
                quote = Quote(quote[0], quote[1])
            quotes[_symbol("prices", raw, seen)] = quote
        if isinstance(open_orders, bool) or not isinstance(open_orders, int) or open_orders < 0:
            raise InvalidAccountState("open_orders: must be a whole number >= 0")
        realized = _number("realized_pnl_today", realized_pnl_today)
        unrealized = _number("unrealized_pnl", unrealized_pnl)
        setattr_ = object.__setattr__
        setattr_(self, "account_value", value)
        setattr_(self, "cash", None if cash is None else _number("cash", cash))
        setattr_(self, "positions", MappingProxyType(held))
        setattr_(self, "prices", MappingProxyType(quotes))
        setattr_(self, "realized_pnl_today", realized)
        setattr_(self, "unrealized_pnl", unrealized)
        setattr_(self, "open_orders", open_orders)
        setattr_(self, "pnl_today", realized + unrealized)
        setattr_(self, "start_equity", value - (realized + unrealized))
        gross = ZERO
        unpriced = set()
        for symbol, quantity in held.items():
            priced = quotes.get(symbol)
            if priced is None:
                unpriced.add(symbol)
            else:
                gross += abs(quantity * priced.price)
        setattr_(self, "gross_exposure", gross)
        setattr_(self, "unpriced", frozenset(unpriced))
        pnl = realized + unrealized
        setattr_(self, "loss_today", -pnl if pnl < ZERO else ZERO)
        setattr_(self, "_caps", {})

    def caps(self, limits: RiskLimits) -> AccountCaps:
        """``limits`` sized to this account (computed once per limits object)."""
        known = self._caps.get(id(limits))
        if known is not None and known[0] is limits:
            return known[1]
        caps = AccountCaps.of(self, limits)
        self._caps[id(limits)] = (limits, caps)
        return caps


@dataclass(frozen=True, slots=True)
class AccountCaps:
    """Money caps from fractional limits: ``None`` when the limit is off.

    ``concentration`` and ``gross`` are None too when the account value is not positive
    (the RISK_STATE_UNAVAILABLE check refuses those orders). ``daily_loss`` is the smaller
    of max_daily_loss and max_daily_loss_fraction x start-of-day equity (0 if that is <= 0).
    """

    concentration: Decimal | None
    gross: Decimal | None
    daily_loss: Decimal | None

    @classmethod
    def of(cls, account: AccountState, limits: RiskLimits) -> AccountCaps:
        """The caps for one account under one set of limits."""
        equity = account.account_value
        concentration, gross = limits.max_concentration, limits.max_gross_exposure
        loss, fraction = limits.max_daily_loss, limits.max_daily_loss_fraction
        if fraction is not None:
            share = fraction * max(account.start_equity, ZERO)
            loss = share if loss is None or share < loss else loss
        return cls(
            None if concentration is None or equity <= ZERO else concentration * equity,
            None if gross is None or equity <= ZERO else gross * equity,
            loss,
        )


def _symbol(where: str, raw: object, seen: set[str]) -> str:
    try:
        symbol = normalize_symbol(raw)
    except ValueError as exc:
        raise InvalidAccountState(f"{where}: symbol {raw!r} {exc}") from None
    if symbol in seen:
        raise InvalidAccountState(f"{where}: {symbol} appears twice (symbols are upper-cased)")
    seen.add(symbol)
    return symbol


class RiskState(NamedTuple):
    """Everything one check call reads besides the order, the limits and ``now``.

    Build it with :meth:`build` (the engine does, once per order; tests do by hand) from the
    same ``limits`` the checks get. Derived there once: ``quote`` (the reference for the
    order's symbol, if any), ``price`` (the order's limit price, else its stop price, else
    the reference for a market order), ``mark`` (the reference, else the order's own price:
    how positions are valued), ``position`` (signed, from the snapshot), ``position_after``
    (signed, if this order and the account's open orders on its side of the symbol all
    fill), ``grows`` (whether |position| grows), ``value_after`` (|position_after| x mark,
    only when it grows and there is a mark) and ``caps`` (limits sized to the account).
    """

    account: AccountState
    caps: AccountCaps
    trading_state: TradingState
    now_us: int
    quote: Quote | None
    price: Decimal | None
    mark: Decimal | None
    position: Decimal
    pending: Decimal
    position_after: Decimal
    before_abs: Decimal
    after_abs: Decimal
    grows: bool
    value_after: Decimal | None
    open_orders: int
    account_rates: Sequence[deque[int]]
    symbol_rates: Sequence[deque[int]]
    last_same_at_us: int | None
    client_id_open: bool
    market_open: bool | None
    market_problem: str | None
    tracking_problem: str | None

    @classmethod
    def build(
        cls,
        order: Order,
        account: AccountState,
        limits: RiskLimits,
        now_us: int,
        trading_state: TradingState = TradingState.ACTIVE,
        pending: Decimal = ZERO,
        open_orders: int = 0,
        account_rates: Sequence[deque[int]] = (),
        symbol_rates: Sequence[deque[int]] = (),
        last_same_at_us: int | None = None,
        client_id_open: bool = False,
        market_open: bool | None = None,
        market_problem: str | None = None,
        tracking_problem: str | None = None,
    ) -> RiskState:
        """The state for ``order``: the inputs as given plus the values derived from them."""
        symbol = order.symbol
        quote = account.prices.get(symbol)
        price = order.limit_price if order.limit_price is not None else order.stop_price
        if quote is None:
            mark = price
        else:
            mark = quote.price
            if order.order_type is _MARKET:
                price = mark
        position = account.positions.get(symbol, ZERO)
        if order.side is _BUY:
            after = position + (order.quantity + pending)
        else:
            after = position - (order.quantity + pending)
        before_abs = abs(position)
        after_abs = abs(after)
        grows = after_abs > before_abs
        known = account._caps.get(id(limits))
        caps = known[1] if known is not None and known[0] is limits else account.caps(limits)
        return _new(
            cls,
            (
                account, caps, trading_state, now_us, quote, price, mark,
                position, pending, after, before_abs, after_abs, grows,
                after_abs * mark if grows and mark is not None else None,
                open_orders if open_orders > account.open_orders else account.open_orders,
                account_rates, symbol_rates, last_same_at_us, client_id_open, market_open,
                market_problem, tracking_problem,
            ),
        )  # fmt: skip


_new = tuple.__new__
