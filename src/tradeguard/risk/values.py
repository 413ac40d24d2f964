"""The value types orders are made of: sides, order types, exact amounts, symbols.

Amounts are :class:`~decimal.Decimal`: ``int`` and numeric strings as they are, a ``float``
through its shortest repr (``Decimal(repr(0.1)) == Decimal("0.1")``), never its binary value.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from functools import lru_cache

_ZERO = Decimal(0)
MAX_AMOUNT = Decimal(10) ** 15
"""Quantities and prices must be below this (and above zero)."""

SYMBOL_PATTERN = re.compile(r"[A-Z0-9][A-Z0-9._/:\-]{0,31}")
VENUE_PATTERN = re.compile(r"[A-Z0-9_]{1,16}")
ID_MAX = 128
"""The longest client order, account or strategy id."""


class Side(StrEnum):
    """Which way the order trades."""

    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    """How the order is priced."""

    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"


class TimeInForce(StrEnum):
    """How long the order lives."""

    DAY = "day"
    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"
    OPG = "opg"
    CLS = "cls"


def to_decimal(value: object) -> Decimal:
    """``value`` as a finite Decimal: Decimal, int or numeric str as is, float via its repr.

    Raises :class:`ValueError` (never anything else) for bool, NaN, infinities and other types.
    """
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(repr(value))
    elif isinstance(value, str):
        text = value.strip().replace("_", "")
        if not text or len(text) > 64:
            raise ValueError("not a number")
        try:
            result = Decimal(text)
        except InvalidOperation:
            raise ValueError("not a number") from None
    else:
        raise ValueError(f"expected a number, got {type(value).__name__}")
    if not result.is_finite():
        raise ValueError("not a finite number")
    return result


def amount_problem(value: Decimal) -> str | None:
    """Why ``value`` is no valid quantity or price (``None`` when it is one)."""
    if value <= _ZERO:
        return "must be greater than zero"
    if value >= MAX_AMOUNT:
        return "must be below 10**15"
    return None


@lru_cache(maxsize=8192)
def symbol_ok(symbol: str) -> bool:
    """Whether ``symbol`` is a normalised symbol (memoised: symbols repeat)."""
    return SYMBOL_PATTERN.fullmatch(symbol) is not None


@lru_cache(maxsize=256)
def venue_ok(venue: str) -> bool:
    """Whether ``venue`` is a normalised venue code."""
    return VENUE_PATTERN.fullmatch(venue) is not None


def normalize_symbol(value: object) -> str:
    """A symbol upper-cased and checked; :class:`ValueError` if it is not one."""
    if not isinstance(value, str):
        raise ValueError("must be a string")
    symbol = value.strip().upper()
    if len(symbol) > 32 or not symbol_ok(symbol):
        raise ValueError("must be 1-32 of A-Z 0-9 . _ / : - (starting with a letter or digit)")
    return symbol


def positive_amount(name: str, value: object) -> Decimal:
    """``value`` as a valid quantity or price; :class:`ValueError` naming ``name`` otherwise."""
    try:
        amount = to_decimal(value)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None
    why = amount_problem(amount)
    if why is not None:
        raise ValueError(f"{name} {why}")
    return amount
