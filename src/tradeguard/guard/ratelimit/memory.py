"""The in-process rate limit store: a bounded LRU of GCRA states under one lock."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Protocol

from tradeguard.guard.ratelimit.gcra import RateLimitDecision, decide, make_decision
from tradeguard.guard.ratelimit.spec import RateLimitSpec


class RateLimitStore(Protocol):
    """Where GCRA state lives. ``acquire`` decides and records atomically.

    A store that cannot reach its backend raises
    :class:`~tradeguard.errors.BackendUnavailable`; the limiter applies the fail mode.
    """

    def acquire(
        self, action: str, identity: str, spec: RateLimitSpec, now: int, cost: int
    ) -> RateLimitDecision:
        """Decide ``cost`` cells for ``identity`` on ``action`` at ``now`` (microseconds)."""
        ...


class MemoryStore:
    """GCRA state for one process; thread-safe and bounded.

    Optimistic concurrency: a decision is computed from a lock-free read of the key's
    entry (an immutable tuple). A denial writes nothing, so it is returned as is: the
    entry read was the key's state at that instant. An allow is committed under the lock
    only if the entry is still the one read (compare-and-set by identity); otherwise it
    is decided again, under the lock, on the entry that won. Every write happens under
    the lock; denials write nothing at all.

    Every entry can tell when it expires (its latest TAT: from then on it equals a fresh
    key). Every 32nd commit drops up to 64 expired entries from the least recently
    committed end (two per commit on average, which outpaces any stream of new keys).
    Beyond ``max_keys`` the least recently committed entry is evicted even if still live
    (counted in ``evictions``): size ``max_keys`` above the number of identities allowed
    within one window. (Denials do not refresh an entry's place: a throttled key's entry
    dates from its last allow, less than one window before its TAT runs out, so evicting
    it early takes ``max_keys`` other commits within that window.)
    """

    def __init__(self, max_keys: int = 100_000) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self._max_keys = max_keys
        # key -> (the spec the TATs belong to, TATs in ticks); entries are never mutated
        self._entries: OrderedDict[tuple[str, str], tuple[RateLimitSpec, tuple[int, ...]]]
        self._entries = OrderedDict()
        self._lock = threading.Lock()
        self._commits = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"MemoryStore(keys={len(self._entries)}, max_keys={self._max_keys})"

    def acquire(
        self, action: str, identity: str, spec: RateLimitSpec, now: int, cost: int
    ) -> RateLimitDecision:
        """Decide from a lock-free read; commit an allow by compare-and-set."""
        key = (action, identity)
        entries = self._entries
        seen = entries.get(key)
        tats = (
            seen[1]
            if seen is not None and (seen[0] is spec or seen[0].signature == spec.signature)
            else None  # no entry, or one from before the action was reconfigured
        )
        single = spec.single
        if single is None:
            decision, new = decide(spec, tats, now, cost)
        else:  # decide()'s single-window path, inlined: the hot path
            limit, period, capacity, scale = single
            now_ticks = now * limit
            old = now_ticks if tats is None or tats[0] < now_ticks else tats[0]
            tat = old + cost * period
            over = tat - now_ticks - capacity
            if over > 0:
                ahead = old - now_ticks
                decision = make_decision(
                    False, (capacity - ahead) // period, over / scale, ahead / scale
                )
                new = None
            else:
                ahead = tat - now_ticks
                decision = make_decision(True, (capacity - ahead) // period, 0.0, ahead / scale)
                new = (tat,)
        if new is None:  # denied: nothing to write, not even the LRU order
            return decision
        lock = self._lock
        lock.acquire()
        try:
            current = entries.get(key)
            if current is not seen:  # another thread committed first: decide on its state
                if current is not None and current[0].signature == spec.signature:
                    decision, new = decide(spec, current[1], now, cost)
                else:
                    decision, new = decide(spec, None, now, cost)
                if new is None:
                    return decision
            entries[key] = (spec, new)
            if current is not None:
                entries.move_to_end(key)
            self._commits += 1
            if not self._commits & 31:
                self._sweep(now, 64)
            if len(entries) > self._max_keys:
                while len(entries) > self._max_keys:
                    entries.popitem(last=False)
                    self.evictions += 1
        finally:
            lock.release()
        return decision

    @staticmethod
    def _expiry(entry: tuple[RateLimitSpec, tuple[int, ...]]) -> int:
        """When an entry equals a fresh key: its latest TAT, in microseconds."""
        spec, tats = entry
        return max(-(-t // w.limit) for t, w in zip(tats, spec.windows, strict=True))

    def _sweep(self, now: int, most: int) -> None:
        entries = self._entries
        for _ in range(most):
            oldest = next(iter(entries), None)
            if oldest is None or self._expiry(entries[oldest]) > now:
                return
            del entries[oldest]

    def purge(self, now: int) -> int:
        """Drop every expired entry now; returns how many."""
        with self._lock:
            dead = [key for key, entry in self._entries.items() if self._expiry(entry) <= now]
            for key in dead:
                del self._entries[key]
        return len(dead)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._entries.clear()
