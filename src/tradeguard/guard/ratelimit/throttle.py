"""At most one event per key per interval, counting the ones held back."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable


class EventThrottle:
    """Lets one event per key through every ``interval`` seconds (0: every event).

    Remembers the last ``max_keys`` keys (least recently published forgotten first), so a
    flood of denials for many identities costs bounded memory and a bounded event rate
    per identity, while the first denial of each still gets through.
    """

    def __init__(self, interval: float, max_keys: int = 10_000) -> None:
        self._interval = interval
        self._max_keys = max_keys
        self._last: OrderedDict[Hashable, tuple[float, int]] = OrderedDict()
        self._lock = threading.Lock()

    def admit(self, key: Hashable, now: float) -> int | None:
        """None to hold this event back; else how many were held back since the last one."""
        if self._interval <= 0:
            return 0
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last[0] < self._interval:
                self._last[key] = (last[0], last[1] + 1)
                return None
            self._last[key] = (now, 0)
            self._last.move_to_end(key)
            while len(self._last) > self._max_keys:
                self._last.popitem(last=False)
        return 0 if last is None else last[1]
