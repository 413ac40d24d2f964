"""The rate limiter: named actions, several windows each, one atomic GCRA decision per call."""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Mapping
from types import MappingProxyType

from tradeguard.clock import SYSTEM_CLOCK, Clock, SystemClock
from tradeguard.errors import BackendUnavailable, ConfigurationError, RateLimitExceeded
from tradeguard.events import EventBus, SecurityEvent, Severity
from tradeguard.guard.ratelimit.gcra import (
    BackendUnavailableDecision,
    RateLimitDecision,
    check_cost,
    now_us,
)
from tradeguard.guard.ratelimit.memory import MemoryStore, RateLimitStore
from tradeguard.guard.ratelimit.redis_store import identity_key
from tradeguard.guard.ratelimit.spec import (
    DEFAULT_FAIL_MODES,
    DEFAULT_LIMITS,
    FailMode,
    RateLimitConfig,
    RateLimitSpec,
    as_spec,
    check_action,
    check_fail_mode,
)
from tradeguard.guard.ratelimit.throttle import EventThrottle

_COUNTERS = ("allowed", "denied", "backend_errors", "failed_closed", "failed_open")
_MAX_IDENTITY = 128
_time_ns = time.time_ns


def _read(counter: itertools.count[int]) -> int:
    """An ``itertools.count``'s next value, untaken (its repr is ``count(N)``): ``next()``
    on one is atomic, so the hot path counts without a lock."""
    return int(repr(counter)[6:-1])


def _seconds(value: float) -> str:
    """``value`` rounded *up* to a tenth, so "retry in 0.1 s" is never too early."""
    return f"{math.ceil(value * 10 - 1e-9) / 10:.1f}"


class RateLimiter:
    """Rate limits per action, each a set of windows decided together (GCRA).

    ``store``: where state lives (default: a fresh :class:`MemoryStore`; share a
    :class:`RedisStore` across processes). When the store raises BackendUnavailable the
    action's fail mode applies: ``fail_closed`` denies with ``retry_after`` = the time until
    the store is tried again; ``fail_open`` decides on a local :class:`MemoryStore`
    (per-process limits) instead. After a failure the store is not tried for ``backoff``
    seconds, so an outage costs one timeout per ``backoff``, not one per request. Each
    failed attempt publishes ``ratelimit.backend_unavailable`` (critical when failing
    closed, warning when open); the first success after it ``ratelimit.backend_recovered``.

    Denials publish ``ratelimit.exceeded`` (warning; actor = identity, subject = action),
    at most one per (action, identity) every ``event_interval`` seconds of monotonic time,
    counting the ones held back in ``details["suppressed"]``. Allowed decisions publish
    nothing; :attr:`stats` counts both.

    Time is ``clock.now()`` in integer microseconds for every store, so one injected clock
    drives memory and Redis alike (for the :class:`SystemClock`, ``time.time_ns()``: the
    same time, without building a datetime on the hot path).
    """

    def __init__(
        self,
        limits: Mapping[str, str | RateLimitSpec] = DEFAULT_LIMITS,
        *,
        store: RateLimitStore | None = None,
        clock: Clock = SYSTEM_CLOCK,
        bus: EventBus | None = None,
        fail_modes: Mapping[str, FailMode] | None = None,
        fallback: MemoryStore | None = None,
        backoff: float = 1.0,
        event_interval: float = 1.0,
    ) -> None:
        if not backoff > 0 or not event_interval >= 0:
            raise ConfigurationError("rate limiter backoff must be > 0 and event_interval >= 0")
        self._limits: dict[str, RateLimitSpec] = {
            check_action(action): as_spec(spec) for action, spec in limits.items()
        }
        self._modes: dict[str, FailMode] = {
            a: m for a, m in DEFAULT_FAIL_MODES.items() if a in self._limits
        }
        for action, mode in (fail_modes or {}).items():
            if action not in self._limits:
                raise ConfigurationError(f"fail mode given for {action!r}, which has no limit")
            self._modes[action] = check_fail_mode(action, mode)
        self._store: RateLimitStore = store if store is not None else MemoryStore()
        self._acquire = self._store.acquire
        self._fallback = fallback if fallback is not None else MemoryStore()
        self._clock = clock
        self._system_clock = type(clock) is SystemClock  # time_ns(): no datetime per call
        self._bus = bus
        self._backoff = backoff
        self._throttle = EventThrottle(event_interval)
        self._counts = {name: itertools.count() for name in _COUNTERS}
        self._allowed = self._counts["allowed"]
        self._denied = self._counts["denied"]
        self._down_until: float | None = None

    @classmethod
    def from_config(
        cls,
        config: RateLimitConfig,
        *,
        store: RateLimitStore | None = None,
        clock: Clock = SYSTEM_CLOCK,
        bus: EventBus | None = None,
    ) -> RateLimiter:
        """A limiter for a parsed :class:`RateLimitConfig` (see ``load_config``)."""
        return cls(config.limits, store=store, clock=clock, bus=bus, fail_modes=config.fail_modes)

    def __repr__(self) -> str:
        return f"RateLimiter(actions={sorted(self._limits)}, store={self._store!r})"

    @property
    def limits(self) -> Mapping[str, RateLimitSpec]:
        """The configured actions and their specs (read-only)."""
        return MappingProxyType(self._limits)

    def fail_mode(self, action: str) -> FailMode:
        """What happens to ``action`` when the store is unreachable."""
        return self._modes.get(action, "fail_closed")

    @property
    def stats(self) -> Mapping[str, int]:
        """Counters: allowed, denied, backend_errors, failed_closed, failed_open."""
        return {name: _read(counter) for name, counter in self._counts.items()}

    @property
    def allowed(self) -> int:
        """Allowed decisions so far."""
        return _read(self._allowed)

    @property
    def denied(self) -> int:
        """Denied decisions so far (rate limited or failed closed)."""
        return _read(self._denied)

    def configure_rate_limit(
        self, action: str, spec: str | RateLimitSpec, fail_mode: FailMode | None = None
    ) -> RateLimitSpec:
        """Add or replace ``action``'s limit; a changed spec starts from fresh state."""
        action = check_action(action)
        parsed = as_spec(spec)
        limits = dict(self._limits)
        limits[action] = parsed
        if fail_mode is not None:
            self._modes[action] = check_fail_mode(action, fail_mode)
        self._limits = limits
        return parsed

    def rate_limit(self, identity: str, action: str, cost: int = 1) -> RateLimitDecision:
        """Decide one request of ``cost`` cells by ``identity`` (a user name or an IP).

        An unknown action raises ConfigurationError (no silent default); a cost above
        the action's burst raises ValueError.
        """
        try:
            spec = self._limits[action]
        except (KeyError, TypeError):
            raise ConfigurationError(
                f"no rate limit configured for action {str(action)[:64]!r}: "
                "add it under [limits] or call configure_rate_limit()"
            ) from None
        if cost.__class__ is not int or not 0 < cost <= spec.burst:
            check_cost(spec, cost, action)  # raises, saying why
        key = identity
        if identity.__class__ is not str or len(identity) > _MAX_IDENTITY:
            if not isinstance(identity, str):
                raise TypeError("rate limit identity must be a str")
            key = identity_key(identity)
        now = _time_ns() // 1000 if self._system_clock else now_us(self._clock.now())
        if self._down_until is None:
            try:
                decision = self._acquire(action, key, spec, now, cost)
            except BackendUnavailable as exc:
                decision = self._degraded(action, key, spec, now, cost, exc)
        else:
            decision = self._after_failure(action, key, spec, now, cost)
        if decision.allowed:
            next(self._allowed)
            return decision
        next(self._denied)
        if self._bus is not None and decision.__class__ is RateLimitDecision:
            self._exceeded(identity, action, spec, cost, decision)
        return decision

    def check_rate_limit(self, identity: str, action: str, cost: int = 1) -> tuple[bool, str]:
        """``(True, "ok")`` or ``(False, "rate limit exceeded for login: retry in 12.0 s")``."""
        decision = self.rate_limit(identity, action, cost)
        return decision.allowed, self.explain(action, decision)

    def enforce(self, identity: str, action: str, cost: int = 1) -> RateLimitDecision:
        """The decision if allowed; otherwise raise RateLimitExceeded with ``retry_after``."""
        decision = self.rate_limit(identity, action, cost)
        if not decision.allowed:
            raise RateLimitExceeded(
                self.explain(action, decision), retry_after=decision.retry_after
            )
        return decision

    @staticmethod
    def explain(action: str, decision: RateLimitDecision) -> str:
        """A one-line reason for ``decision``."""
        if decision.allowed:
            return "ok"
        wait = _seconds(decision.retry_after)
        if decision.reason == "backend_unavailable":
            return f"rate limiting unavailable for {action} (fails closed): retry in {wait} s"
        return f"rate limit exceeded for {action}: retry in {wait} s"

    def _after_failure(
        self, action: str, key: str, spec: RateLimitSpec, now: int, cost: int
    ) -> RateLimitDecision:
        """The store failed recently: degrade until the backoff ends, then try it again."""
        down_until = self._down_until
        if down_until is not None and self._clock.monotonic() < down_until:
            return self._degraded(action, key, spec, now, cost, None)
        try:
            decision = self._acquire(action, key, spec, now, cost)
        except BackendUnavailable as exc:
            return self._degraded(action, key, spec, now, cost, exc)
        self._recovered()
        return decision

    def _degraded(
        self,
        action: str,
        key: str,
        spec: RateLimitSpec,
        now: int,
        cost: int,
        error: BackendUnavailable | None,
    ) -> RateLimitDecision:
        mode = self.fail_mode(action)
        mono = self._clock.monotonic()
        next(self._counts["failed_open" if mode == "fail_open" else "failed_closed"])
        if error is not None:
            self._down_until = mono + self._backoff
            next(self._counts["backend_errors"])
            severity: Severity = "warning" if mode == "fail_open" else "critical"
            self._publish(
                SecurityEvent(
                    "ratelimit.backend_unavailable",
                    subject=action,
                    outcome="fallback_local" if mode == "fail_open" else "denied",
                    severity=severity,
                    details={"action": action, "fail_mode": mode, "error": str(error)},
                )
            )
        if mode == "fail_open":
            return self._fallback.acquire(action, key, spec, now, cost)
        wait = max((self._down_until or mono) - mono, 0.0)
        return BackendUnavailableDecision(False, 0, wait, wait)

    def _recovered(self) -> None:
        self._down_until = None
        self._publish(
            SecurityEvent("ratelimit.backend_recovered", outcome="recovered", severity="info")
        )

    def _exceeded(
        self, identity: str, action: str, spec: RateLimitSpec, cost: int, d: RateLimitDecision
    ) -> None:
        bus = self._bus
        if bus is None or not bus.has_subscribers:
            return
        suppressed = self._throttle.admit((action, identity_key(identity)), self._clock.monotonic())
        if suppressed is None:
            return
        bus.publish(
            SecurityEvent(
                "ratelimit.exceeded",
                actor=identity[:128],
                subject=action,
                outcome="denied",
                severity="warning",
                details={
                    "action": action,
                    "limit": spec.signature,
                    "cost": cost,
                    "retry_after": round(d.retry_after, 6),
                    "suppressed": suppressed,
                },
            )
        )

    def _publish(self, event: SecurityEvent) -> None:
        if self._bus is not None:
            self._bus.publish(event)
