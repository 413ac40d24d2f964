"""Rate limit specifications: ``"10/second;300/minute"`` parsed once into exact windows.

Grammar (case-insensitive, whitespace around tokens ignored)::

    spec    = window *( ";" window )
    window  = count "/" [ k ] unit          e.g. 5/minute, 100/1s, 10/2s, 20/5 minutes
    count   = 1..1_000_000_000
    k       = 1..  (the window may not exceed 366 days)
    unit    = s | sec | second(s) | m | min | minute(s) | h | hr | hour(s) | d | day(s)

Anything else, an empty window (``"5/minute;"``) or two windows of the same length, raises
:class:`~tradeguard.errors.ConfigurationError` naming the spec. Periods are held in integer
microseconds, so every later computation is exact.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tradeguard.errors import ConfigurationError

FailMode = Literal["fail_closed", "fail_open"]
FAIL_MODES: tuple[FailMode, ...] = ("fail_closed", "fail_open")

MAX_COUNT = 1_000_000_000
MAX_PERIOD_US = 366 * 86_400 * 1_000_000
_US = {"s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000, "d": 86_400_000_000}
_UNITS = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), "s"),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), "m"),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), "h"),
    **dict.fromkeys(("d", "day", "days"), "d"),
}
_WINDOW = re.compile(r"\s*([0-9]{1,10})\s*/\s*([0-9]{1,6})?\s*([a-z]{1,7})\s*", re.ASCII)
_ACTION = re.compile(r"[A-Za-z0-9_.-]{1,64}", re.ASCII)

DEFAULT_LIMITS: Mapping[str, str] = {
    "order_submissions": "10/second;300/minute",
    "login": "5/minute",
    "api_requests": "100/second",
}
"""The limits a :class:`~tradeguard.guard.ratelimit.RateLimiter` starts with."""

DEFAULT_FAIL_MODES: Mapping[str, FailMode] = {
    "order_submissions": "fail_closed",
    "login": "fail_closed",
    "api_requests": "fail_open",
}
"""What to do when the shared store is down; any action not named here fails closed."""


@dataclass(frozen=True, slots=True)
class Window:
    """``limit`` cells per ``period_us`` microseconds: a burst of ``limit``, then one every
    ``period_us / limit``. GCRA state is counted in ticks of ``1 / limit`` microseconds, so
    the emission interval is exactly ``period_us`` ticks."""

    limit: int
    period_us: int
    capacity: int = field(init=False, repr=False, compare=False)
    """How far (in ticks) the theoretical arrival time may run ahead of now."""
    scale: int = field(init=False, repr=False, compare=False)
    """Ticks per second."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "capacity", self.period_us * self.limit)
        object.__setattr__(self, "scale", self.limit * 1_000_000)

    @property
    def period(self) -> float:
        """The window length in seconds."""
        return self.period_us / 1_000_000

    def __str__(self) -> str:
        for unit, size in (("day", "d"), ("hour", "h"), ("minute", "m"), ("second", "s")):
            whole, rest = divmod(self.period_us, _US[size])
            if rest == 0:
                return f"{self.limit}/{unit}" if whole == 1 else f"{self.limit}/{whole}{size}"
        raise AssertionError("periods are whole seconds")  # pragma: no cover


@dataclass(frozen=True, slots=True)
class RateLimitSpec:
    """All windows of one action; a decision must pass every one of them."""

    windows: tuple[Window, ...]
    signature: str = field(init=False, compare=False)
    burst: int = field(init=False, repr=False, compare=False)
    """The largest cost one decision can ever be granted (the smallest window limit)."""
    single: tuple[int, int, int, int] | None = field(init=False, repr=False, compare=False)
    """``(limit, period_us, capacity, scale)`` of the only window, when there is just one
    (stores take a faster path)."""

    def __post_init__(self) -> None:
        if not self.windows:
            raise ConfigurationError("a rate limit needs at least one window")
        object.__setattr__(self, "signature", ";".join(str(w) for w in self.windows))
        object.__setattr__(self, "burst", min(w.limit for w in self.windows))
        only = self.windows[0] if len(self.windows) == 1 else None
        single = None if only is None else (only.limit, only.period_us, only.capacity, only.scale)
        object.__setattr__(self, "single", single)

    def __str__(self) -> str:
        return self.signature


def parse_rate_limit(text: str) -> RateLimitSpec:
    """Parse ``text`` such as ``"10/second;300/minute"``; ConfigurationError names the spec."""
    if not isinstance(text, str):
        raise ConfigurationError(f"rate limit spec must be a string, not {type(text).__name__}")
    shown = repr(text[:80])
    windows: list[Window] = []
    for part in text.split(";"):
        match = _WINDOW.fullmatch(part.lower())
        if match is None:
            why = "empty window" if not part.strip() else f"cannot read {part.strip()[:40]!r}"
            raise ConfigurationError(
                f"malformed rate limit {shown}: {why}; use e.g. '10/second;300/minute' or '100/1s'"
            )
        count_text, multiple_text, unit_text = match.groups()
        unit = _UNITS.get(unit_text)
        if unit is None:
            raise ConfigurationError(
                f"malformed rate limit {shown}: unknown unit {unit_text!r} "
                "(use second, minute, hour or day)"
            )
        count, multiple = int(count_text), int(multiple_text or "1")
        if not 1 <= count <= MAX_COUNT:
            raise ConfigurationError(
                f"malformed rate limit {shown}: the count must be between 1 and {MAX_COUNT:,}"
            )
        period_us = multiple * _US[unit]
        if not 0 < period_us <= MAX_PERIOD_US:
            raise ConfigurationError(
                f"malformed rate limit {shown}: a window must last between 1 second and 366 days"
            )
        if any(w.period_us == period_us for w in windows):
            raise ConfigurationError(
                f"malformed rate limit {shown}: two windows of the same length"
            )
        windows.append(Window(count, period_us))
    return RateLimitSpec(tuple(sorted(windows, key=lambda w: w.period_us)))


def as_spec(value: str | RateLimitSpec) -> RateLimitSpec:
    """A spec from its text, or the spec itself."""
    return value if isinstance(value, RateLimitSpec) else parse_rate_limit(value)


def check_action(action: str) -> str:
    """``action`` if it is a valid action name (letters, digits, ``_.-``; up to 64)."""
    if not isinstance(action, str) or _ACTION.fullmatch(action) is None:
        raise ConfigurationError(
            f"invalid rate limit action {str(action)[:80]!r}: use letters, digits, '_', '.', '-'"
        )
    return action


def check_fail_mode(action: str, mode: object) -> FailMode:
    """``mode`` if it is ``fail_closed`` or ``fail_open``."""
    for known in FAIL_MODES:
        if mode == known:
            return known
    raise ConfigurationError(
        f"invalid fail mode {str(mode)[:40]!r} for {action}: use 'fail_closed' or 'fail_open'"
    )


@dataclass(frozen=True, slots=True)
class RateLimitConfig:
    """Parsed limits and fail modes, ready for a :class:`RateLimiter`."""

    limits: Mapping[str, RateLimitSpec]
    fail_modes: Mapping[str, FailMode]


def config_from_mapping(data: Mapping[str, Any]) -> RateLimitConfig:
    """Defaults overlaid with ``data["limits"]`` and ``data["fail_mode"]`` (TOML tables).

    Other top-level tables are left to their own readers. A fail mode for an action
    without a limit is an error: it is almost certainly a typo.
    """
    limits = {name: parse_rate_limit(text) for name, text in DEFAULT_LIMITS.items()}
    modes: dict[str, FailMode] = dict(DEFAULT_FAIL_MODES)
    table = data.get("limits", {})
    if not isinstance(table, Mapping):
        raise ConfigurationError('[limits] must be a table of action = "N/period;..."')
    for action, text in table.items():
        limits[check_action(action)] = parse_rate_limit(text)
    table = data.get("fail_mode", {})
    if not isinstance(table, Mapping):
        raise ConfigurationError('[fail_mode] must be a table of action = "fail_closed"')
    for action, mode in table.items():
        if action not in limits:
            raise ConfigurationError(f"[fail_mode] names {str(action)[:64]!r}, which has no limit")
        modes[action] = check_fail_mode(action, mode)
    return RateLimitConfig(limits, modes)


def load_config(path: str | Path) -> RateLimitConfig:
    """Read ``[limits]`` and ``[fail_mode]`` from a TOML file (missing file: an error)."""
    try:
        with Path(path).open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigurationError(f"cannot read rate limit file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"rate limit file {path} is not valid TOML: {exc}") from exc
    return config_from_mapping(data)
