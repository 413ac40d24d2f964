"""Security events and the bus that carries them: the only wire from domains to audit/metrics.

Domains publish :class:`SecurityEvent` objects; subscribers (the audit log, metrics, alerts)
receive them synchronously. A subscriber that raises is logged and skipped: it never breaks
the publisher or the other subscribers. Values under keys that look like credentials are
redacted before any subscriber sees them.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal

from tradeguard.clock import SYSTEM_CLOCK, Clock

Severity = Literal["info", "warning", "critical"]
Subscriber = Callable[["SecurityEvent"], None]

REDACTED = "[redacted]"
_SENSITIVE_KEY = re.compile(
    r"pass(word|wd|phrase)?|secret|token|api[-_]?key|mfa[-_]?code|authori[sz]ation|"
    r"private[-_]?key|master[-_]?key|credential",
    re.IGNORECASE,
)
_EMPTY: Mapping[str, Any] = MappingProxyType({})
_log = logging.getLogger(__name__)


_SCALARS = frozenset({str, int, float, bool, type(None)})
_sensitive_cache: dict[str, bool] = {}
_harmless_shapes: dict[tuple[object, ...], bool] = {}  # key tuples with no sensitive key


def _is_sensitive(key: str) -> bool:
    known = _sensitive_cache.get(key)
    if known is None:
        if len(_sensitive_cache) > 4096:  # keys are code-defined; bound it anyway
            _sensitive_cache.clear()
        known = _sensitive_cache[key] = _SENSITIVE_KEY.search(key) is not None
    return known


def redact(value: Any) -> Any:
    """Copy ``value`` with every entry whose key looks sensitive replaced by ``[redacted]``.

    Mappings are walked recursively, as are lists and tuples inside them.
    """
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is dict or kind is MappingProxyType or isinstance(value, Mapping):
        cleaned: dict[str, Any] = {}
        for key, item in value.items():
            name = key if type(key) is str else str(key)
            if _is_sensitive(name):
                cleaned[name] = REDACTED
            else:
                cleaned[name] = item if type(item) in _SCALARS else redact(item)
        return cleaned
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def _redacted_details(details: Mapping[str, Any]) -> Mapping[str, Any]:
    """A read-only redacted copy of event details.

    Fast path: a flat mapping of known-harmless keys to scalars (or lists of scalars) is
    copied as it is;
    anything else (a sensitive or unseen key, a nested value) goes through :func:`redact`.
    """
    copied = dict(details)
    shape = tuple(copied)
    harmless = _harmless_shapes.get(shape)
    if harmless is None:  # a publisher sends the same keys every time: decide once per set
        harmless = all(type(key) is str and not _is_sensitive(key) for key in shape)
        if len(_harmless_shapes) > 4096:
            _harmless_shapes.clear()
        _harmless_shapes[shape] = harmless
    if not harmless:
        return MappingProxyType(redact(details))
    scalars = _SCALARS
    for key, item in copied.items():
        kind = type(item)
        if kind not in scalars:
            # a list of scalars (an order's violation codes) is copied, not walked
            if kind is not list or (item and not all(type(x) in scalars for x in item)):
                return MappingProxyType(redact(details))
            copied[key] = list(item)
    return MappingProxyType(copied)


@dataclass(frozen=True, slots=True, init=False)
class SecurityEvent:
    """One security decision: what happened, to whom, by whom, and how it ended."""

    type: str
    actor: str | None
    subject: str | None
    ip: str | None
    outcome: str | None
    severity: Severity
    details: Mapping[str, Any]
    time: datetime | None

    # Written out rather than generated: a frozen dataclass's __init__ sets each field
    # through object.__setattr__, and an event is built for every order check.
    def __init__(
        self,
        type: str,
        actor: str | None = None,
        subject: str | None = None,
        ip: str | None = None,
        outcome: str | None = None,
        severity: Severity = "info",
        details: Mapping[str, Any] | None = None,
        time: datetime | None = None,
    ) -> None:
        if not type or not isinstance(type, str):
            raise ValueError("a SecurityEvent needs a dotted type such as 'secret.read'")
        if severity not in _SEVERITIES:
            raise ValueError(f"unknown severity {severity!r}")
        _set_type(self, type)
        _set_actor(self, actor)
        _set_subject(self, subject)
        _set_ip(self, ip)
        _set_outcome(self, outcome)
        _set_severity(self, severity)
        _set_details(self, _EMPTY if details is None else details)
        _set_time(self, time)


_SEVERITIES = frozenset(("info", "warning", "critical"))


# The slots' own setters: a stamped copy is built without __init__ (and its validation,
# already done when the original was made) and without frozen-dataclass setattr.
_new = object.__new__
_set_type, _set_actor, _set_subject, _set_ip, _set_outcome, _set_severity, _set_details, \
    _set_time = (vars(SecurityEvent)[name].__set__ for name in (
        "type", "actor", "subject", "ip", "outcome", "severity", "details", "time"))  # fmt: skip


class EventBus:
    """Synchronous publish/subscribe for :class:`SecurityEvent`.

    Events published without a time get one from the bus's clock. ``has_subscribers`` lets
    hot paths skip building an event nobody will read.
    """

    def __init__(self, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock
        self._subscribers: tuple[Subscriber, ...] = ()
        self._lock = threading.Lock()

    @property
    def has_subscribers(self) -> bool:
        """Whether anyone listens."""
        return bool(self._subscribers)

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Add a subscriber; returns a function that removes it again."""
        with self._lock:
            self._subscribers = (*self._subscribers, subscriber)

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = tuple(s for s in self._subscribers if s is not subscriber)

        return unsubscribe

    def publish(self, event: SecurityEvent) -> SecurityEvent:
        """Stamp, redact and deliver ``event`` to every subscriber; returns what they saw."""
        subscribers = self._subscribers
        if not subscribers:
            return event
        stamped = _new(SecurityEvent)
        _set_type(stamped, event.type)
        _set_actor(stamped, event.actor)
        _set_subject(stamped, event.subject)
        _set_ip(stamped, event.ip)
        _set_outcome(stamped, event.outcome)
        _set_severity(stamped, event.severity)
        details = event.details
        _set_details(stamped, _redacted_details(details) if details else _EMPTY)
        when = event.time
        _set_time(stamped, self._clock.now() if when is None else when)
        event = stamped
        for subscriber in subscribers:
            try:
                subscriber(event)
            except Exception:
                _log.exception("event subscriber %r failed on %s", subscriber, event.type)
        return event
