"""The alert engine: counts security events against rules and sends deduplicated alerts.

Subscribe it to the bus::

    engine = AlertEngine(DEFAULT_RULES, [LogSink(), WebhookSink(url, secret)], clock=clock)
    bus.subscribe(engine)

For every rule an event matches, the engine records the event's time under the rule's key
(the ``group_by`` value). When ``threshold`` recorded times lie within ``window`` of the
newest (inclusive), it fires an :class:`Alert` and then stays quiet for that (rule, key) for
the rule's cooldown; events in the quiet time are counted and reported as ``suppressed`` in
the next alert. Time is the event's own ``time``, or the injected clock for events without
one.

Memory is bounded: each rule tracks at most ``max_keys_per_rule`` keys (least recently seen
are forgotten first, counted in :attr:`AlertEngine.evicted_keys`) and each key at most
``threshold`` times. The engine is thread-safe. Sinks are called outside the lock; a sink
that raises is logged and counted, and never breaks the engine or the other sinks; an alert
no sink accepted is logged at CRITICAL so that it is not lost.
"""

from __future__ import annotations

import bisect
import logging
import threading
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from typing import Final

from tradeguard.alerts.rules import MAX_KEY_LENGTH, AlertRule
from tradeguard.alerts.sinks import Alert, AlertSink
from tradeguard.clock import SYSTEM_CLOCK, Clock
from tradeguard.errors import AlertConfigError
from tradeguard.events import SecurityEvent

SAMPLE_SIZE: Final = 5
_log = logging.getLogger(__name__)
_MAX_TYPES: Final = 4096  # event types whose matching rules are remembered


@dataclass(slots=True)
class _KeyState:
    times: deque[datetime] = field(default_factory=deque)
    types: list[str] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)
    quiet_until: datetime | None = None
    suppressed: int = 0


def _remember(sample: list[str], value: str) -> None:
    if value in sample:
        sample.remove(value)
    sample.append(value[:MAX_KEY_LENGTH])
    if len(sample) > SAMPLE_SIZE:
        del sample[0]


class AlertEngine:
    """Evaluate ``rules`` over events (call it with each event) and send alerts to ``sinks``."""

    def __init__(
        self,
        rules: Iterable[AlertRule],
        sinks: Iterable[AlertSink],
        *,
        clock: Clock = SYSTEM_CLOCK,
        max_keys_per_rule: int = 10_000,
    ) -> None:
        self._rules = tuple(rules)
        self._by_type: dict[str, tuple[AlertRule, ...]] = {}
        self._sinks = tuple(sinks)
        if not self._rules:
            raise AlertConfigError("AlertEngine needs at least one rule; try DEFAULT_RULES")
        names: set[str] = set()
        for rule in self._rules:
            if not isinstance(rule, AlertRule):
                raise AlertConfigError(f"AlertEngine rules must be AlertRule objects, got {rule!r}")
            if rule.name in names:
                raise AlertConfigError(
                    f"two alert rules are named {rule.name!r}; names must differ"
                )
            names.add(rule.name)
        if not self._sinks:
            raise AlertConfigError(
                "AlertEngine needs at least one sink, or every alert would be dropped; "
                "pass LogSink() at least"
            )
        for sink in self._sinks:
            if not callable(getattr(sink, "send", None)):
                raise AlertConfigError(f"alert sink {sink!r} has no send(alert) method")
        if max_keys_per_rule < 1:
            raise AlertConfigError("max_keys_per_rule must be >= 1")
        self._clock = clock
        self._max_keys = max_keys_per_rule
        self._state: dict[str, OrderedDict[str, _KeyState]] = {
            rule.name: OrderedDict() for rule in self._rules
        }
        self._lock = threading.Lock()
        self._fired = 0
        self._suppressed = 0
        self._evicted = 0
        self._sink_errors = 0
        self._warned_eviction: set[str] = set()

    @property
    def rules(self) -> tuple[AlertRule, ...]:
        """The rules, in evaluation order."""
        return self._rules

    @property
    def sinks(self) -> tuple[AlertSink, ...]:
        """Where alerts go."""
        return self._sinks

    @property
    def alerts_fired(self) -> int:
        """Alerts produced so far."""
        return self._fired

    @property
    def suppressed(self) -> int:
        """Matching events swallowed by deduplication so far."""
        return self._suppressed

    @property
    def evicted_keys(self) -> int:
        """Keys forgotten because a rule tracked more than ``max_keys_per_rule``."""
        return self._evicted

    @property
    def sink_errors(self) -> int:
        """Times a sink raised."""
        return self._sink_errors

    def __call__(self, event: SecurityEvent) -> None:
        """Process ``event``; this is what makes the engine an :class:`EventBus` subscriber."""
        self.process(event)

    def process(self, event: SecurityEvent) -> tuple[Alert, ...]:
        """Count ``event`` against every rule, send the alerts it triggers and return them."""
        when = event.time or self._clock.now()
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        candidates = self._by_type.get(event.type)
        if candidates is None:  # which rules' type patterns match: event types are few
            candidates = tuple(r for r in self._rules if fnmatchcase(event.type, r.event_type))
            if len(self._by_type) < _MAX_TYPES:
                self._by_type[event.type] = candidates
        fired: list[Alert] = []
        if not candidates:
            return ()
        with self._lock:
            for rule in candidates:
                if rule.matches(event):
                    alert = self._count(rule, event, when)
                    if alert is not None:
                        fired.append(alert)
            self._fired += len(fired)
        for alert in fired:
            self._dispatch(alert)
        return tuple(fired)

    def _key_state(self, rule: AlertRule, key: str) -> _KeyState:
        states = self._state[rule.name]
        state = states.get(key)
        if state is not None:
            states.move_to_end(key)
            return state
        state = states[key] = _KeyState()
        if len(states) > self._max_keys:
            states.popitem(last=False)
            self._evicted += 1
            if rule.name not in self._warned_eviction:
                self._warned_eviction.add(rule.name)
                _log.warning(
                    "alert rule %s tracks more than %d keys; the least recently seen are "
                    "forgotten (see AlertEngine.evicted_keys)",
                    rule.name,
                    self._max_keys,
                )
        return state

    def _count(self, rule: AlertRule, event: SecurityEvent, when: datetime) -> Alert | None:
        key = rule.key_for(event)
        state = self._key_state(rule, key)
        times = state.times
        if not times or when >= times[-1]:
            times.append(when)
        else:  # an event stamped earlier than one already seen: keep the times ordered
            bisect.insort(times, when)
        newest = times[-1]
        horizon = newest - timedelta(seconds=rule.window_seconds)
        while times[0] < horizon:
            times.popleft()
        while len(times) > rule.threshold:
            times.popleft()
        _remember(state.types, event.type)
        if event.subject is not None:
            _remember(state.subjects, event.subject)
        if state.quiet_until is not None and newest < state.quiet_until:
            state.suppressed += 1
            self._suppressed += 1
            return None
        if len(times) < rule.threshold:
            return None
        alert = Alert(
            rule=rule.name,
            key=key,
            severity=rule.severity,
            count=len(times),
            threshold=rule.threshold,
            window_seconds=rule.window_seconds,
            first_seen=times[0],
            last_seen=newest,
            description=rule.description,
            group_by=rule.group_by,
            event_types=tuple(state.types),
            subjects=tuple(state.subjects),
            suppressed=state.suppressed,
        )
        state.suppressed = 0
        state.quiet_until = newest + timedelta(seconds=rule.cooldown_seconds)
        return alert

    def _dispatch(self, alert: Alert) -> None:
        accepted = False
        for sink in self._sinks:
            try:
                sink.send(alert)
            except Exception:
                with self._lock:
                    self._sink_errors += 1
                _log.exception("alert sink %r failed on alert %s/%s", sink, alert.rule, alert.key)
            else:
                accepted = True
        if not accepted:
            _log.critical("no alert sink accepted this alert: %s", alert.summary())

    def close(self, timeout: float = 5.0) -> None:
        """Close every sink that has a ``close(timeout)`` (webhooks drain their queue)."""
        for sink in self._sinks:
            close = getattr(sink, "close", None)
            if callable(close):
                try:
                    close(timeout)
                except Exception:
                    _log.exception("alert sink %r failed to close", sink)

    def __enter__(self) -> AlertEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
