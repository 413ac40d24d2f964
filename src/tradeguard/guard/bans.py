"""IP bans: violations in a sliding window ban an address for escalating periods.

Every violation (``ratelimit``, ``injection``, ``login_failure``, ...) is logged against
the address with its time; only those of the last ``window`` seconds count (an exact
sliding window, so violations spread wider than the window never add up). Reaching
``threshold`` bans the address for ``first_ban`` seconds, doubling with each further ban
up to ``max_ban``. The strike count behind the doubling is forgotten ``forget_after``
seconds after the last ban ends. While an address is banned its violations are ignored
(the requests are refused anyway), so a ban is not lengthened by the traffic it blocks.

IPv6 addresses are banned by their /64 (one subscriber's allocation: a single host can
rotate through 2**64 addresses); IPv4-mapped IPv6 counts as IPv4. Addresses in ``allow``
(default: loopback) are never counted, never banned. A string that is not an IP address
raises ValueError: refuse the request.

State lives in a :class:`MemoryBanStore` (this process; bounded LRU) or a
:class:`~tradeguard.guard.bans_redis.RedisBanStore` (shared; one Lua script per
violation). Time is ``clock.now()`` in integer microseconds.
"""

from __future__ import annotations

import ipaddress
import threading
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from tradeguard.clock import SYSTEM_CLOCK, Clock
from tradeguard.errors import ConfigurationError, IPBlocked
from tradeguard.events import EventBus, SecurityEvent, Severity
from tradeguard.guard.client_ip import in_networks, parse_ip, parse_networks
from tradeguard.guard.ratelimit.gcra import now_us

_US = 1_000_000
_KEY_CACHE = 4096  # addresses whose ban key is remembered


def ban_key(ip: str) -> str:
    """The key an address is counted and banned under: IPv4 itself, IPv6 its /64."""
    address = parse_ip(ip)
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((int(address) >> 64 << 64, 64)))
    return str(address)


@dataclass(frozen=True, slots=True)
class BanPolicy:
    """Thresholds in integer microseconds (see :class:`BanList` for the seconds form)."""

    threshold: int
    window_us: int
    first_us: int
    max_us: int
    forget_us: int

    def duration(self, strikes: int) -> int:
        """The length of the ban after ``strikes`` earlier ones."""
        return min(self.first_us << min(strikes, 40), self.max_us)


@dataclass(frozen=True, slots=True)
class BanDecision:
    """A ban: the key banned, for how long, the how-many-th, and the violations behind it."""

    ip: str
    duration: float
    strikes: int
    kinds: tuple[str, ...] = ()


class BanStore(Protocol):
    """Where violations and bans live; every method is atomic per key."""

    def record(
        self, key: str, kind: str, now: int, policy: BanPolicy
    ) -> tuple[int, int, tuple[str, ...]] | None:
        """Log a violation; ``(until, strikes, kinds)`` if it started a ban, else None."""
        ...

    def banned_until(self, key: str, now: int) -> int | None:
        """The end (µs) of the key's active ban, or None."""
        ...

    def ban(self, key: str, until: int, now: int) -> None:
        """Ban ``key`` until ``until`` (µs), replacing any active ban."""
        ...

    def unban(self, key: str, now: int) -> bool:
        """Lift a ban and drop pending violations (strikes stay); whether a ban was active."""
        ...


@dataclass(slots=True)
class _State:
    violations: deque[tuple[int, str]] = field(default_factory=deque)
    until: int = 0
    strikes: int = 0
    forget_at: int = 0

    def dead(self, now: int, window: int) -> bool:
        recent = bool(self.violations) and self.violations[-1][0] > now - window
        return not recent and self.until <= now and self.forget_at <= now


class MemoryBanStore:
    """Ban state for one process: thread-safe, an LRU bounded by ``max_keys``.

    Reads and writes refresh an entry, so an address that keeps knocking while banned
    stays at the safe end; past ``max_keys`` the least recently seen entry is dropped.
    """

    def __init__(self, max_keys: int = 100_000) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self._max_keys = max_keys
        self._states: OrderedDict[str, _State] = OrderedDict()
        self._lock = threading.Lock()
        self._window = 0  # the policy's window, learnt from record(): for sweeping

    def __len__(self) -> int:
        return len(self._states)

    def _get(self, key: str, now: int) -> _State:
        state = self._states.get(key)
        if state is None:
            state = self._states[key] = _State()
        self._states.move_to_end(key)
        for _ in range(2):
            oldest = next(iter(self._states))
            if oldest == key or not self._states[oldest].dead(now, self._window):
                break
            del self._states[oldest]
        while len(self._states) > self._max_keys:
            self._states.popitem(last=False)
        return state

    def record(
        self, key: str, kind: str, now: int, policy: BanPolicy
    ) -> tuple[int, int, tuple[str, ...]] | None:
        """Log a violation under the lock; start a ban at the threshold."""
        with self._lock:
            self._window = policy.window_us
            state = self._get(key, now)
            if state.until > now:
                return None
            violations = state.violations
            while violations and violations[0][0] <= now - policy.window_us:
                violations.popleft()
            violations.append((now, kind))
            if len(violations) < policy.threshold:
                return None
            strikes = state.strikes if state.forget_at > now else 0
            state.until = now + policy.duration(strikes)
            state.strikes = strikes + 1
            state.forget_at = state.until + policy.forget_us
            kinds = tuple(k for _, k in violations)
            violations.clear()
            return state.until, state.strikes, kinds

    def banned_until(self, key: str, now: int) -> int | None:
        """The end of an active ban."""
        with self._lock:
            state = self._states.get(key)
            if state is None or state.until <= now:
                return None
            self._states.move_to_end(key)
            return state.until

    def ban(self, key: str, until: int, now: int) -> None:
        """Set a ban."""
        with self._lock:
            self._get(key, now).until = until

    def unban(self, key: str, now: int) -> bool:
        """Lift a ban."""
        with self._lock:
            state = self._states.get(key)
            if state is None:
                return False
            active = state.until > now
            state.until = 0
            state.violations.clear()
            return active


class BanList:
    """Bans addresses that keep violating; see the module docstring for the rules.

    ``threshold`` violations within ``window`` seconds ban for ``first_ban`` seconds, then
    twice as long each time up to ``max_ban``; strikes are forgotten ``forget_after``
    seconds after a ban ends. ``allow``: CIDRs never banned. Publishes ``ip.banned``
    (warning) and ``ip.unbanned`` (info).
    """

    def __init__(
        self,
        *,
        store: BanStore | None = None,
        clock: Clock = SYSTEM_CLOCK,
        bus: EventBus | None = None,
        threshold: int = 10,
        window: float = 600.0,
        first_ban: float = 900.0,
        max_ban: float = 86_400.0,
        forget_after: float = 86_400.0,
        allow: Sequence[str] = ("127.0.0.1/32", "::1/128"),
    ) -> None:
        if threshold < 1 or not (window > 0 and 0 < first_ban <= max_ban and forget_after >= 0):
            raise ConfigurationError(
                "ban settings need threshold >= 1, window > 0, 0 < first_ban <= max_ban, "
                "forget_after >= 0"
            )
        self.policy = BanPolicy(
            threshold,
            round(window * _US),
            round(first_ban * _US),
            round(max_ban * _US),
            round(forget_after * _US),
        )
        self._allow = parse_networks(allow, "the ban allow-list")
        self._keys: dict[str, str | None] = {}
        self._store: BanStore = store if store is not None else MemoryBanStore()
        self._clock = clock
        self._bus = bus

    def __repr__(self) -> str:
        return f"BanList(store={self._store!r}, policy={self.policy})"

    def _key(self, ip: str) -> str | None:
        """The ban key, or None for an allow-listed address (remembered per address text)."""
        keys = self._keys
        if ip in keys:
            return keys[ip]
        address = parse_ip(ip)
        key = None if in_networks(address, self._allow) else ban_key(str(address))
        if len(keys) >= _KEY_CACHE:
            keys.clear()
        keys[ip] = key
        return key

    def record_violation(self, ip: str, kind: str) -> BanDecision | None:
        """Count one violation of ``kind``; the ban it started, if it started one."""
        if not isinstance(kind, str) or not kind or len(kind) > 64:
            raise ValueError("a violation kind is a non-empty string of up to 64 characters")
        key = self._key(ip)
        if key is None:
            return None
        now = now_us(self._clock.now())
        result = self._store.record(key, kind, now, self.policy)
        if result is None:
            return None
        until, strikes, kinds = result
        decision = BanDecision(key, (until - now) / _US, strikes, kinds)
        details = {
            "duration": decision.duration,
            "strikes": strikes,
            "reason": "violations",
            "kinds": {k: kinds.count(k) for k in dict.fromkeys(kinds)},
        }
        self._publish("ip.banned", key, "warning", details)
        return decision

    def is_blocked(self, ip: str) -> float | None:
        """Seconds left on the address's ban, or None when it may pass."""
        key = self._key(ip)
        if key is None:
            return None
        now = now_us(self._clock.now())
        until = self._store.banned_until(key, now)
        return None if until is None else (until - now) / _US

    def enforce(self, ip: str) -> None:
        """Raise IPBlocked (saying for how long) if the address is banned."""
        left = self.is_blocked(ip)
        if left is not None:
            raise IPBlocked(f"{ban_key(ip)} is banned for another {left:.0f} s")

    def ban(self, ip: str, duration: float) -> BanDecision:
        """Ban the address (its /64 for IPv6) for ``duration`` seconds, replacing any ban."""
        key = self._key(ip)
        if key is None:
            raise ValueError(f"{str(ip)[:64]} is on the ban allow-list and cannot be banned")
        if not 0 < duration <= 366 * 86_400:
            raise ValueError("a ban lasts more than 0 seconds and at most 366 days")
        now = now_us(self._clock.now())
        self._store.ban(key, now + round(duration * _US), now)
        self._publish("ip.banned", key, "warning", {"duration": duration, "reason": "manual"})
        return BanDecision(key, float(duration), 0, ("manual",))

    def unban(self, ip: str) -> bool:
        """Lift the address's ban and pending violations; whether a ban was active."""
        key = ban_key(ip)
        active = self._store.unban(key, now_us(self._clock.now()))
        self._publish("ip.unbanned", key, "info", {"was_active": active})
        return active

    def _publish(self, kind: str, key: str, severity: Severity, details: dict[str, object]) -> None:
        if self._bus is not None:
            outcome = kind.partition(".")[2]
            event = SecurityEvent(kind, ip=key, outcome=outcome, severity=severity, details=details)
            self._bus.publish(event)
