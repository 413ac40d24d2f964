"""Account snapshots from order-check documents; identical documents share one for a moment.

A bot checking a burst of orders sends the same account document with each. Building an
:class:`~tradeguard.risk.AccountState` costs more than the risk checks themselves, and the
engine derives its per-symbol bounds once per snapshot *object*; so identical plain
documents (amounts as strings or ints, untimed prices) within ``ttl`` seconds of the first
share the snapshot built for it. Nothing can loosen: the content is the same, and untimed
prices are stamped when the snapshot is built, so a shared snapshot's quotes look up to
``ttl`` older than they are (a quote-age check can only get stricter). A document that
differs in anything, even key order or ``"1"`` against ``1``, builds its own.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any, Final

from tradeguard.clock import Clock
from tradeguard.risk import AccountState, Quote

DEFAULT_TTL: Final = 0.05
MAX_SNAPSHOTS: Final = 1024


def plain_account(account: dict[str, Any], now: datetime) -> AccountState:
    """The account state of a plain document (prices stamped ``now``)."""
    prices = account.get("prices")
    return AccountState(
        account_value=account["account_value"], cash=account.get("cash"),
        positions=account.get("positions") or {},
        prices={symbol: Quote(price, now) for symbol, price in prices.items()} if prices else {},
        realized_pnl_today=account.get("realized_pnl_today", 0),
        unrealized_pnl=account.get("unrealized_pnl", 0),
        open_orders=account.get("open_orders", 0),
    )  # fmt: skip


class SnapshotCache:
    """Recently built snapshots by document content; thread-safe, bounded."""

    def __init__(
        self, clock: Clock, *, ttl: float = DEFAULT_TTL, max_entries: int = MAX_SNAPSHOTS
    ) -> None:
        if not ttl >= 0 or max_entries < 1:
            raise ValueError("ttl must be >= 0 and max_entries >= 1")
        self._clock = clock
        self.ttl = ttl
        self._max = max_entries
        self._entries: dict[tuple[Any, ...], tuple[float, AccountState]] = {}
        self._lock = threading.Lock()

    def get(self, account: dict[str, Any], now: datetime) -> AccountState:
        """The snapshot of ``account`` (a plain document): shared if an identical one was
        built within ``ttl`` seconds, else built now (errors propagate, nothing is kept)."""
        try:
            key = tuple(
                (name, tuple(value.items()) if type(value) is dict else value)
                for name, value in account.items()
            )
            hash(key)
        except TypeError:  # an ignored extra field holding a list or object
            return plain_account(account, now)
        at = self._clock.monotonic()
        found = self._entries.get(key)
        if found is not None and 0 <= at - found[0] <= self.ttl:
            return found[1]
        state = plain_account(account, now)
        with self._lock:
            if len(self._entries) >= self._max:
                self._entries.clear()
            self._entries[key] = (at, state)
        return state
