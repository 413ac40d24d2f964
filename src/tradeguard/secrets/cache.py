"""A bounded (LRU), time-limited cache of decrypted secret values, for one process."""

from __future__ import annotations

import random
import threading
from collections import OrderedDict

from tradeguard.clock import Clock

_Entry = tuple[float, int, dict[str, str]]


class SecretCache:
    """Maps (path, version-or-latest) to (expiry, version, value).

    ``jitter`` spreads expiries by up to that fraction of the TTL (so many processes do not
    all re-read Vault at once). Values are shared dicts: callers must copy before handing out.

    Every invalidation bumps an epoch; a value read from the backend is cached only if no
    invalidation happened since the read began (``epoch`` taken before it), so a slow reader
    cannot put back a value that a concurrent write of this process just replaced.
    """

    def __init__(
        self, clock: Clock, *, ttl: float = 300.0, max_entries: int = 1024, jitter: float = 0.0
    ) -> None:
        if ttl < 0 or max_entries < 0 or not 0 <= jitter < 1:
            raise ValueError("cache ttl and size must be >= 0, jitter in [0, 1)")
        self._clock = clock
        self._monotonic = clock.monotonic
        self._ttl = ttl
        self._max = max_entries
        self._jitter = jitter
        self._entries: OrderedDict[tuple[str, int | None], _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._random = random.Random()  # noqa: S311 - jitter, not security
        self._epoch = 0

    @property
    def enabled(self) -> bool:
        """False when the TTL or the size is zero."""
        return self._ttl > 0 and self._max > 0

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"SecretCache(entries={len(self._entries)}, ttl={self._ttl}, max={self._max})"

    def get(self, path: str, version: int | None) -> tuple[int, dict[str, str]] | None:
        """The cached (version, value), or None when absent or expired.

        Lock-free on purpose (this is the hot path): a dict lookup is atomic under the GIL,
        and a concurrent eviction only turns the LRU touch into a no-op.
        """
        key = (path, version)
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self._monotonic():
            with self._lock:
                if self._entries.get(key) is entry:
                    del self._entries[key]
            return None
        try:
            self._entries.move_to_end(key)
        except KeyError:
            pass
        return entry[1], entry[2]

    @property
    def epoch(self) -> int:
        """Take this before reading the backend; pass it to :meth:`put`."""
        return self._epoch

    def put(
        self,
        path: str,
        asked: int | None,
        version: int,
        value: dict[str, str],
        epoch: int | None = None,
    ) -> None:
        """Remember a value read as ``asked`` (None: latest) that turned out to be ``version``."""
        if not self.enabled:
            return
        ttl = self._ttl
        if self._jitter:
            ttl *= 1 - self._jitter * self._random.random()
        entry = (self._monotonic() + ttl, version, value)
        with self._lock:
            if epoch is not None and epoch != self._epoch:
                return
            for key in {(path, asked), (path, version)}:
                self._entries[key] = entry
                self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def invalidate(self, path: str) -> None:
        """Forget every cached version of ``path``."""
        with self._lock:
            self._epoch += 1
            for key in [k for k in self._entries if k[0] == path]:
                del self._entries[key]

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._epoch += 1
            self._entries.clear()
