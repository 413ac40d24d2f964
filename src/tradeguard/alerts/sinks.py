"""What an alert is, and the simple places it can go: the log and a callback.

The webhook sink lives in :mod:`tradeguard.alerts.webhook`. A sink is anything with
``send(alert)``; it should return quickly, because the engine calls it on the thread that
published the event. A sink that raises is logged by the engine and never stops other sinks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from tradeguard.events import Severity


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    """One alert: ``count`` events matched ``rule`` for ``key`` between first and last seen.

    ``suppressed`` counts the matching events for the same rule and key that were swallowed
    by deduplication since the previous alert. ``event_types`` and ``subjects`` are a small
    sample (at most five distinct values each, most recent last); the events' ``details`` are
    never copied in. Everything is JSON-serialisable through :meth:`to_dict`.
    """

    rule: str
    key: str
    severity: Severity
    count: int
    threshold: int
    window_seconds: float
    first_seen: datetime
    last_seen: datetime
    description: str = ""
    group_by: str | None = None
    event_types: tuple[str, ...] = ()
    subjects: tuple[str, ...] = ()
    suppressed: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: datetimes as ISO 8601 strings, tuples as lists."""
        return {
            "rule": self.rule,
            "key": self.key,
            "group_by": self.group_by,
            "severity": self.severity,
            "count": self.count,
            "threshold": self.threshold,
            "window_seconds": self.window_seconds,
            "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat(),
            "description": self.description,
            "event_types": list(self.event_types),
            "subjects": list(self.subjects),
            "suppressed": self.suppressed,
        }

    def summary(self) -> str:
        """One line for humans and logs."""
        grouped = f" {self.group_by}={self.key!r}" if self.group_by else ""
        window = f" within {self.window_seconds:g}s" if self.window_seconds else ""
        extra = f" (+{self.suppressed} suppressed since the last alert)" if self.suppressed else ""
        text = f": {self.description}" if self.description else ""
        return (
            f"ALERT [{self.severity}] {self.rule}{grouped}: {self.count} event(s){window}, "
            f"{self.first_seen.isoformat()} .. {self.last_seen.isoformat()}{extra}{text}"
        )


@runtime_checkable
class AlertSink(Protocol):
    """Somewhere alerts go. ``send`` must not block for long; raising is logged by the engine."""

    def send(self, alert: Alert) -> None:
        """Deliver (or enqueue) one alert."""
        ...


class _Logger(Protocol):
    def warning(self, msg: str, /) -> Any: ...

    def critical(self, msg: str, /) -> Any: ...


class LogSink:
    """Write each alert as one log line: CRITICAL for critical alerts, WARNING otherwise.

    ``logger`` is a stdlib :class:`logging.Logger` (default ``tradeguard.alerts``) or anything
    with ``warning(msg)`` and ``critical(msg)``, such as a structlog logger.
    """

    def __init__(self, logger: _Logger | None = None) -> None:
        self._logger: _Logger = logger or logging.getLogger("tradeguard.alerts")

    def send(self, alert: Alert) -> None:
        """Log the alert's summary line."""
        if alert.severity == "critical":
            self._logger.critical(alert.summary())
        else:
            self._logger.warning(alert.summary())

    def __repr__(self) -> str:
        return "LogSink()"


class CallbackSink:
    """Call ``fn(alert)`` for every alert, on the publishing thread."""

    def __init__(self, fn: Callable[[Alert], object]) -> None:
        if not callable(fn):
            raise TypeError("CallbackSink needs a callable taking an Alert")
        self._fn = fn

    def send(self, alert: Alert) -> None:
        """Call the callback."""
        self._fn(alert)

    def __repr__(self) -> str:
        return f"CallbackSink({getattr(self._fn, '__qualname__', type(self._fn).__name__)})"
