"""Risk limits: frozen, keyword-only, validated once; per-symbol overrides; TOML loading.

Safe defaults (every one can be changed; ``None`` or ``"off"`` disables a check)::

    max_order_quantity       10,000          max_order_notional     100,000
    max_position_quantity    off             max_position_notional  off
    max_concentration        0.25            max_gross_exposure     2.0
    price_collar             0.10            max_quote_age          60 s
    order_rate               10/second;300/minute   (per account)
    symbol_order_rate        10/second;300/minute   (per symbol, across accounts)
    duplicate_window         2 s             max_open_orders        100
    max_daily_loss           off             max_daily_loss_fraction 0.05 (of start-of-day equity)
    restricted_symbols       none            allowed_symbols        any

Position limits are off by default because their scale depends on the book; the
concentration and gross-exposure caps bound positions relative to the account meanwhile.
A limit exactly reached passes; one unit over fails. Every string (rates, amounts) is parsed
here, at configuration time, never in the engine's hot path.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

from tradeguard.errors import ConfigurationError
from tradeguard.risk.values import normalize_symbol, to_decimal

_UNITS = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600),
    **dict.fromkeys(("d", "day", "days"), 86400),
}
_RATE = re.compile(r"\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)?\s*([a-z]+)\s*")
_US = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class RateWindow:
    """At most ``limit`` approved orders in any ``window``."""

    limit: int
    window: timedelta
    micros: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        limit = self.limit
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1_000_000:
            raise ValueError("a rate limit must be a whole number of orders from 1 to 1,000,000")
        if not isinstance(self.window, timedelta) or self.window < _US:
            raise ValueError("a rate window must be a positive duration")
        object.__setattr__(self, "micros", self.window // _US)

    def __str__(self) -> str:
        seconds = self.window.total_seconds()
        for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
            if seconds == size:
                return f"{self.limit}/{unit}"
        return f"{self.limit}/{seconds:g}s"


def parse_rates(spec: object) -> tuple[RateWindow, ...]:
    """``"10/second;200/minute"`` (also ``"100/10s"``, ``"5/2 minutes"``) as windows.

    Also takes RateWindow objects or spec strings in any iterable. ``None``, ``""`` or
    ``"off"`` disable the limit. :class:`ValueError` says what is wrong.
    """
    if spec is None or (isinstance(spec, str) and spec.strip().lower() in ("", "off")):
        return ()
    if isinstance(spec, RateWindow):
        return (spec,)
    parts: list[object]
    if isinstance(spec, str):
        parts = [p for p in re.split(r"[;,]", spec) if p.strip()]
    elif isinstance(spec, Iterable):
        parts = list(spec)
    else:
        raise ValueError("expected a spec such as '10/second;200/minute'")
    windows: list[RateWindow] = []
    for part in parts:
        if isinstance(part, RateWindow):
            windows.append(part)
            continue
        match = _RATE.fullmatch(part.lower()) if isinstance(part, str) else None
        if match is None or match.group(3) not in _UNITS:
            raise ValueError(f"cannot read {part!r}: write COUNT/UNIT such as '10/second'")
        count, size, unit = match.groups()
        seconds = Decimal(size or 1) * _UNITS[unit]
        windows.append(RateWindow(int(count), timedelta(seconds=float(seconds))))
    if len(windows) > 8:
        raise ValueError("at most 8 windows")
    return tuple(sorted(windows, key=lambda w: w.window))


def _amount(value: object, *, fraction: bool = False) -> Decimal | None:
    if value is None or (isinstance(value, str) and value.strip().lower() == "off"):
        return None
    number = to_decimal(value)
    if number <= 0:
        raise ValueError("must be greater than zero (use None or 'off' to disable)")
    if number.adjusted() > 14 or (fraction and number > 100):
        raise ValueError("is implausibly large")
    return number


def _duration(value: object) -> timedelta | None:
    if value is None or (isinstance(value, str) and value.strip().lower() == "off"):
        return None
    if isinstance(value, timedelta):
        span = value
    else:
        seconds = to_decimal(value)
        if seconds > 10**7:
            raise ValueError("is implausibly long")
        span = timedelta(seconds=float(seconds))
    if span < _US:
        raise ValueError("must be a positive duration (seconds or a timedelta)")
    return span


def _count(value: object) -> int | None:
    if value is None or (isinstance(value, str) and value.strip().lower() == "off"):
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError("must be a whole number >= 1")
    return value


def _symbols(value: object) -> frozenset[str]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ValueError("must be a list of symbols (any iterable), not a single string")
    return frozenset(normalize_symbol(s) for s in value)


def _allowed(value: object) -> frozenset[str] | None:
    return None if value is None else _symbols(value)


_CONVERT: dict[str, Any] = {
    "max_order_quantity": _amount,
    "max_order_notional": _amount,
    "max_position_quantity": _amount,
    "max_position_notional": _amount,
    "max_concentration": lambda v: _amount(v, fraction=True),
    "max_gross_exposure": lambda v: _amount(v, fraction=True),
    "price_collar": lambda v: _amount(v, fraction=True),
    "max_quote_age": _duration,
    "order_rate": parse_rates,
    "symbol_order_rate": parse_rates,
    "duplicate_window": _duration,
    "max_open_orders": _count,
    "max_daily_loss": _amount,
    "max_daily_loss_fraction": lambda v: _amount(v, fraction=True),
    "restricted_symbols": _symbols,
    "allowed_symbols": _allowed,
}
OVERRIDABLE = frozenset(
    {
        "max_order_quantity", "max_order_notional", "max_position_quantity",
        "max_position_notional", "max_concentration", "price_collar", "max_quote_age",
        "symbol_order_rate", "duplicate_window",
    }
)  # fmt: skip
"""The limits a ``[symbols.X]`` table may override; the rest are per account."""


def _convert(name: str, value: object, where: str = "") -> Any:
    try:
        return _CONVERT[name](value)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(f"risk limit {where}{name}: {exc}") from None


@dataclass(frozen=True, slots=True, init=False)
class RiskLimits:
    """Every pre-trade limit, validated at construction (see the module doc for defaults).

    Amounts take int, str or Decimal (a float goes through its repr); durations take seconds
    or a timedelta; rates take a spec string such as ``"10/second;200/minute"``; symbol lists
    take any iterable. ``symbol_overrides`` maps a symbol to a mapping of overridable limits.
    A bad value raises :class:`~tradeguard.errors.ConfigurationError` naming the field.
    """

    max_order_quantity: Decimal | None
    max_order_notional: Decimal | None
    max_position_quantity: Decimal | None
    max_position_notional: Decimal | None
    max_concentration: Decimal | None
    max_gross_exposure: Decimal | None
    price_collar: Decimal | None
    max_quote_age: timedelta | None
    order_rate: tuple[RateWindow, ...]
    symbol_order_rate: tuple[RateWindow, ...]
    duplicate_window: timedelta | None
    max_open_orders: int | None
    max_daily_loss: Decimal | None
    max_daily_loss_fraction: Decimal | None
    restricted_symbols: frozenset[str]
    allowed_symbols: frozenset[str] | None
    symbol_overrides: Mapping[str, Mapping[str, Any]] = field(hash=False)
    quote_age_us: int | None = field(init=False, repr=False, compare=False)
    duplicate_window_us: int | None = field(init=False, repr=False, compare=False)
    _by_symbol: Mapping[str, RiskLimits] = field(init=False, repr=False, compare=False)

    def __init__(
        self,
        *,
        max_order_quantity: object = 10_000,
        max_order_notional: object = 100_000,
        max_position_quantity: object = None,
        max_position_notional: object = None,
        max_concentration: object = "0.25",
        max_gross_exposure: object = "2.0",
        price_collar: object = "0.10",
        max_quote_age: object = 60,
        order_rate: object = "10/second;300/minute",
        symbol_order_rate: object = "10/second;300/minute",
        duplicate_window: object = 2,
        max_open_orders: object = 100,
        max_daily_loss: object = None,
        max_daily_loss_fraction: object = "0.05",
        restricted_symbols: Iterable[str] = (),
        allowed_symbols: Iterable[str] | None = None,
        symbol_overrides: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        given = dict(locals())
        for name in _CONVERT:
            object.__setattr__(self, name, _convert(name, given[name]))
        overrides = _overrides(symbol_overrides)
        object.__setattr__(self, "symbol_overrides", overrides)
        self._derive()
        by_symbol = {s: self._variant(o) for s, o in overrides.items()}
        object.__setattr__(self, "_by_symbol", MappingProxyType(by_symbol))

    def _variant(self, changes: Mapping[str, Any]) -> RiskLimits:
        values = {name: getattr(self, name) for name in _CONVERT}
        values.update(changes)
        return RiskLimits(**values)

    def _derive(self) -> None:
        age, window = self.max_quote_age, self.duplicate_window
        object.__setattr__(self, "quote_age_us", None if age is None else age // _US)
        object.__setattr__(self, "duplicate_window_us", None if window is None else window // _US)

    def for_symbol(self, symbol: str) -> RiskLimits:
        """The limits in force for ``symbol`` (itself when the symbol has no overrides)."""
        return self._by_symbol.get(symbol, self)

    def all_variants(self) -> tuple[RiskLimits, ...]:
        """These limits and every per-symbol variant (for sizing trackers)."""
        return (self, *self._by_symbol.values())

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> RiskLimits:
        """Limits from a mapping of field names; per-symbol tables under ``symbols``."""
        if not isinstance(mapping, Mapping):
            raise ConfigurationError("risk limits must be a mapping of limit names to values")
        values = dict(mapping)
        overrides = values.pop("symbols", None)
        if overrides is not None and "symbol_overrides" in values:
            raise ConfigurationError("risk limits: give 'symbols' or 'symbol_overrides', not both")
        if overrides is not None:
            values["symbol_overrides"] = overrides
        unknown = sorted(str(k) for k in values if k not in _CONVERT and k != "symbol_overrides")
        if unknown:
            raise ConfigurationError(f"unknown risk limit {unknown[0]!r}")
        return cls(**values)

    @classmethod
    def from_toml(cls, path: str | Path) -> RiskLimits:
        """Limits from a TOML file: the whole file, or its ``[risk]`` table if it has one.

        Per-symbol overrides go in ``[symbols.AAPL]`` tables (``[risk.symbols.AAPL]``).
        TOML has no null: write ``"off"`` to disable a limit.
        """
        try:
            document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigurationError(f"cannot read risk limits file ({exc.strerror})") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"risk limits file is not valid TOML: {exc}") from None
        table = document.get("risk", document)
        if not isinstance(table, Mapping):
            raise ConfigurationError("risk limits: [risk] must be a table")
        return cls.from_mapping(table)


def _overrides(value: object) -> Mapping[str, Mapping[str, Any]]:
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, Mapping):
        raise ConfigurationError("risk limit symbol_overrides: must map symbols to tables")
    result: dict[str, Mapping[str, Any]] = {}
    for raw_symbol, table in value.items():
        try:
            symbol = normalize_symbol(raw_symbol)
        except ValueError as exc:
            raise ConfigurationError(f"risk limit symbol_overrides: symbol {exc}") from None
        if not isinstance(table, Mapping):
            raise ConfigurationError(f"risk limit symbols.{symbol}: must be a table")
        converted: dict[str, Any] = {}
        for name, raw in table.items():
            if name not in OVERRIDABLE:
                raise ConfigurationError(
                    f"risk limit symbols.{symbol}.{name}: not a per-symbol limit "
                    f"(one of {', '.join(sorted(OVERRIDABLE))})"
                )
            converted[name] = _convert(name, raw, f"symbols.{symbol}.")
        result[symbol] = MappingProxyType(converted)
    return MappingProxyType(result)
