"""Time, injected: every time-dependent call in tradeguard takes a :class:`Clock`."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """A source of wall time (for records) and monotonic time (for durations)."""

    def now(self) -> datetime:
        """The current wall-clock time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""
        ...


class SystemClock:
    """The real clock."""

    __slots__ = ()

    def now(self) -> datetime:
        """The current UTC time."""
        return datetime.now(UTC)

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()


class FixedClock:
    """A clock that moves only when told to; for tests and simulations."""

    def __init__(self, start: datetime | None = None) -> None:
        start = start or datetime(2026, 1, 5, 14, 30, tzinfo=UTC)
        if start.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware start time")
        self._now = start
        self._monotonic = 1_000.0
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The current simulated time."""
        return self._now

    def monotonic(self) -> float:
        """Simulated monotonic seconds."""
        return self._monotonic

    def advance(self, seconds: float | timedelta) -> None:
        """Move both clocks forward."""
        delta = seconds if isinstance(seconds, timedelta) else timedelta(seconds=seconds)
        if delta < timedelta(0):
            raise ValueError("a clock cannot go backwards")
        with self._lock:
            self._now += delta
            self._monotonic += delta.total_seconds()

    def set(self, when: datetime) -> None:
        """Jump the wall clock to ``when`` (forward only), moving monotonic time alike."""
        self.advance(when - self._now)


SYSTEM_CLOCK = SystemClock()
