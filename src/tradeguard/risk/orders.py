"""Orders as the risk engine sees them: a frozen :class:`Order`, parsed strictly from a mapping.

Quantities and prices are :class:`~decimal.Decimal` (see :mod:`tradeguard.risk.values`).
NaN, infinities, ``bool`` and values outside ``(0, 10**15)`` are malformed. Checks multiply
with at least 28 significant digits (the engine raises a lower thread precision to that),
exact for any realistic quantity x price.

An :class:`Order` is an immutable named tuple (cheap to build: orders are built per trade),
validated on construction, so an invalid Order cannot exist.

:meth:`Order.parse` is strict because a lenient parser fails open: an unknown key (a misspelt
``limit_prce``) is an error, not something to drop on the floor while a limit order turns into
a market order. The order type is inferred only from what is present: ``limit_price`` (or its
alias ``price``) makes a limit order, ``stop_price`` a stop, both a stop-limit, neither a
market order.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum
from typing import Any, NamedTuple

from tradeguard.errors import InvalidOrder
from tradeguard.risk.values import (
    ID_MAX,
    MAX_AMOUNT,
    SYMBOL_PATTERN,
    VENUE_PATTERN,
    OrderType,
    Side,
    TimeInForce,
    amount_problem,
    normalize_symbol,
    symbol_ok,
    to_decimal,
    venue_ok,
)

__all__ = [
    "MAX_AMOUNT",
    "InvalidOrder",
    "Order",
    "OrderType",
    "Side",
    "TimeInForce",
    "amount_problem",
    "normalize_symbol",
    "parse_order",
    "to_decimal",
]


class _OrderFields(NamedTuple):
    symbol: str
    side: Side
    quantity: Decimal
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.DAY
    venue: str = ""
    client_order_id: str = ""
    account_id: str = "default"
    strategy_id: str = ""
    reduce_only: bool = False


class Order(_OrderFields):
    """One order: immutable, validated on construction (:class:`InvalidOrder` otherwise).

    ``symbol`` is upper-case (:meth:`parse` normalises). ``venue`` is an ISO MIC such as
    ``XNYS``, ``CRYPTO`` for 24/7 markets, or ``""`` when not given (with a calendar
    configured, such an order cannot be checked for market hours and is refused).
    ``account_id`` defaults to ``"default"``. An empty ``client_order_id`` lets the engine
    assign one (reported on the decision). Change a field with :meth:`replace`.
    """

    __slots__ = ()

    def __new__(
        cls,
        symbol: str,
        side: Side,
        quantity: Decimal,
        order_type: OrderType = OrderType.MARKET,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
        time_in_force: TimeInForce = TimeInForce.DAY,
        venue: str = "",
        client_order_id: str = "",
        account_id: str = "default",
        strategy_id: str = "",
        reduce_only: bool = False,
    ) -> Order:
        self = _new(
            cls,
            (
                symbol, side, quantity, order_type, limit_price, stop_price, time_in_force,
                venue, client_order_id, account_id, strategy_id, reduce_only,
            ),
        )  # fmt: skip
        if not _looks_valid(self):
            problems = _structural_problems(self)
            if problems:
                raise InvalidOrder(problems)
        return self

    def replace(self, **changes: Any) -> Order:
        """A copy with ``changes`` applied (validated like any new Order)."""
        return Order(**{**self._asdict(), **changes})

    def _replace(self, **changes: Any) -> Order:
        return self.replace(**changes)

    @property
    def price(self) -> Decimal | None:
        """The price the order names: its limit price, else its stop price, else None."""
        return self.limit_price if self.limit_price is not None else self.stop_price

    @classmethod
    def parse(cls, mapping: object) -> Order:
        """Build an Order from a mapping; :class:`InvalidOrder` lists every fault found."""
        result = parse_order(mapping)
        if isinstance(result, Order):
            return result
        raise InvalidOrder(result)


_new = tuple.__new__
_ZERO = Decimal(0)
_LIMIT, _STOP, _STOP_LIMIT = OrderType.LIMIT, OrderType.STOP, OrderType.STOP_LIMIT


def _amount_ok(value: object) -> bool:
    return type(value) is Decimal and value.is_finite() and _ZERO < value < MAX_AMOUNT


def _id_ok(value: object) -> bool:
    return type(value) is str and len(value) <= ID_MAX and value.isprintable()


def _looks_valid(order: Order) -> bool:
    """The common case, quickly; anything else goes to the full, slower diagnosis."""
    kind, limit, stop, venue = order.order_type, order.limit_price, order.stop_price, order.venue
    return (
        type(order.symbol) is str
        and symbol_ok(order.symbol)
        and type(order.side) is Side
        and type(kind) is OrderType
        and type(order.time_in_force) is TimeInForce
        and _amount_ok(order.quantity)
        and ((kind is _LIMIT or kind is _STOP_LIMIT) is (limit is not None))
        and (limit is None or _amount_ok(limit))
        and ((kind is _STOP or kind is _STOP_LIMIT) is (stop is not None))
        and (stop is None or _amount_ok(stop))
        and type(venue) is str
        and (not venue or venue_ok(venue))
        and _id_ok(order.client_order_id)
        and _id_ok(order.strategy_id)
        and _id_ok(order.account_id)
        and order.account_id != ""
        and type(order.reduce_only) is bool
    )


def _structural_problems(order: Order) -> tuple[tuple[str, str], ...]:
    problems: list[tuple[str, str]] = []
    if not isinstance(order.symbol, str) or SYMBOL_PATTERN.fullmatch(order.symbol) is None:
        problems.append(("symbol", "must be an upper-case symbol (use Order.parse to normalise)"))
    if not isinstance(order.side, Side):
        problems.append(("side", "must be a Side"))
    if not isinstance(order.order_type, OrderType):
        problems.append(("order_type", "must be an OrderType"))
    if not isinstance(order.time_in_force, TimeInForce):
        problems.append(("time_in_force", "must be a TimeInForce"))
    for name, value in (
        ("quantity", order.quantity),
        ("limit_price", order.limit_price),
        ("stop_price", order.stop_price),
    ):
        if value is None and name != "quantity":
            continue
        if not isinstance(value, Decimal) or not value.is_finite():
            problems.append((name, "must be a finite Decimal"))
        elif (why := amount_problem(value)) is not None:
            problems.append((name, why))
    kind = order.order_type
    wants_limit = kind in (OrderType.LIMIT, OrderType.STOP_LIMIT)
    wants_stop = kind in (OrderType.STOP, OrderType.STOP_LIMIT)
    if wants_limit and order.limit_price is None:
        problems.append(("limit_price", f"a {kind} order needs a limit price"))
    if not wants_limit and order.limit_price is not None:
        problems.append(("limit_price", f"a {kind} order takes no limit price"))
    if wants_stop and order.stop_price is None:
        problems.append(("stop_price", f"a {kind} order needs a stop price"))
    if not wants_stop and order.stop_price is not None:
        problems.append(("stop_price", f"a {kind} order takes no stop price"))
    if not isinstance(order.venue, str) or (
        order.venue and not VENUE_PATTERN.fullmatch(order.venue)
    ):
        problems.append(("venue", "must be an upper-case MIC such as XNYS, or CRYPTO"))
    for name, text in (
        ("client_order_id", order.client_order_id),
        ("account_id", order.account_id),
        ("strategy_id", order.strategy_id),
    ):
        if not isinstance(text, str) or len(text) > ID_MAX or not text.isprintable():
            problems.append((name, f"must be a printable string of at most {ID_MAX} characters"))
    if not order.account_id:
        problems.append(("account_id", "must not be empty"))
    if not isinstance(order.reduce_only, bool):
        problems.append(("reduce_only", "must be true or false"))
    return tuple(problems)


_FIELDS = frozenset(_OrderFields._fields)
_ALIASES = {"price": "limit_price", "type": "order_type", "tif": "time_in_force", "qty": "quantity"}


def _lookup(kind: type[StrEnum]) -> Any:
    names: dict[object, Any] = {m.value: m for m in kind}
    names.update({m: m for m in kind})  # members hash by name, so they need keys of their own
    allowed = ", ".join(m.value for m in kind)

    def convert(value: object) -> Any:
        try:
            return names[value]
        except (KeyError, TypeError):
            pass
        if isinstance(value, str):
            found = names.get(value.strip().lower().replace("-", "_"))
            if found is not None:
                return found
        raise ValueError(f"must be one of {allowed}")

    return convert


def _amount(value: object) -> Decimal:
    number = to_decimal(value)
    why = amount_problem(number)
    if why is not None:
        raise ValueError(why)
    return number


def _bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError("must be true or false")


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return value.strip()


def parse_order(mapping: object) -> Order | tuple[tuple[str, str], ...]:
    """An Order from ``mapping``, or every ``(field, reason)`` that stops one being built.

    Never raises: this is the path the engine takes for untrusted input.
    """
    try:
        return _parse(mapping)
    except InvalidOrder as exc:
        return exc.problems
    except Exception as exc:  # a hostile mapping (raising __getitem__, odd keys) fails closed
        return (("order", f"could not be read ({type(exc).__name__})"),)


def _parse(mapping: object) -> Order | tuple[tuple[str, str], ...]:
    if not isinstance(mapping, Mapping):
        return (("order", f"must be a mapping, got {type(mapping).__name__}"),)
    problems: list[tuple[str, str]] = []
    raw: dict[str, object] = {}
    for key, value in mapping.items():
        name = _ALIASES.get(key, key) if isinstance(key, str) else None
        if name not in _FIELDS:
            shown = key[:40] if isinstance(key, str) else type(key).__name__
            problems.append((str(shown), "unknown field"))
        elif name in raw and raw[name] != value:
            problems.append((name, f"given twice with different values (as {key!r})"))
        else:
            raw[name] = value
    values: dict[str, Any] = {}
    for name in ("symbol", "side", "quantity"):
        if raw.get(name) is None:
            problems.append((name, "is required"))
    for name, value in raw.items():
        if value is None:
            continue
        try:
            values[name] = _CONVERTERS.get(name, _text)(value)
        except ValueError as exc:
            problems.append((name, str(exc)))
    if "venue" in values:
        values["venue"] = values["venue"].upper()
    if problems:
        return tuple(problems)
    if "order_type" not in values:
        has_limit, has_stop = "limit_price" in values, "stop_price" in values
        values["order_type"] = (
            (_STOP_LIMIT if has_stop else _LIMIT) if has_limit else (_STOP if has_stop else _MARKET)
        )
    return Order(**values)


_MARKET = OrderType.MARKET
_CONVERTERS: dict[str, Any] = {
    "symbol": normalize_symbol,
    "side": _lookup(Side),
    "quantity": _amount,
    "order_type": _lookup(OrderType),
    "limit_price": _amount,
    "stop_price": _amount,
    "time_in_force": _lookup(TimeInForce),
    "reduce_only": _bool,
}
