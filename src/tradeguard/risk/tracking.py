"""What the engine remembers of the orders it approved, in bounded memory.

* Rate windows: per key (account, or symbol) one deque per window holding at most
  ``limit`` approval times, so a key costs O(sum of limits) at most. Keys idle longer than
  the longest window are dropped: each trim looks at the 4 oldest-inserted keys, drops the
  idle ones and moves the others to the back (no reordering on every approval).
* Duplicates: the last approval time of each (account, symbol, side, quantity, prices),
  in two generations: the current one, and the one before it. Every ``H`` (the longest
  duplicate window) the current generation becomes the older one and the older one is
  dropped, 64 entries per trim (no call stalls on freeing a generation), so an approval
  younger than ``H`` is always in one of the two, and nothing older than ``3 H`` is kept.
* Open orders: approved and neither filled nor cancelled, with their remaining quantity,
  a count per account and the pending quantity per (account, symbol, side).
* A positions view: net filled quantity per (account, symbol), from ``fill``.

Every structure has a cap. Every 16 approvals a trim drops at most 64 expired entries from
each table (in steady state a handful: no call stalls on a long prune) and re-checks the caps,
so a cap may be overshot by at most 16 entries. A cap reached is reported as ``full``; the
engine then prunes everything expired and, if still full, refuses new orders
(RISK_STATE_UNAVAILABLE) rather than forget what it approved.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from decimal import Decimal
from itertools import islice

from tradeguard.risk.limits import RateWindow, RiskLimits
from tradeguard.risk.orders import Side
from tradeguard.risk.state import ZERO

Rates = tuple["_Times", ...]
OpenOrder = tuple[str, str, Side, Decimal]
"""(account, symbol, side, remaining quantity) of an open order."""
TRIM_EVERY = 15  # a trim when approved & TRIM_EVERY == 0: every 16 approvals
TRIM_MAX = 64  # expired entries one trim drops per table at most (the rest go next time)
_ROTATE = 4  # rate keys one trim looks at, per table


class OrderTracker:
    """Rate windows, duplicates, open orders and filled positions of one engine."""

    def __init__(
        self,
        limits: RiskLimits,
        *,
        max_keys: int = 100_000,
        max_open_orders: int = 100_000,
        max_duplicates: int = 100_000,
    ) -> None:
        variants = limits.all_variants()
        windows = [w.micros for v in variants for w in (*v.order_rate, *v.symbol_order_rate)]
        self.rate_horizon_us = max(windows, default=0)
        self.duplicate_horizon_us = max((v.duplicate_window_us or 0 for v in variants), default=0)
        self.max_keys = max_keys
        self.max_open_orders = max_open_orders
        self.max_duplicates = max_duplicates
        self.account_rates: OrderedDict[str, Rates] = OrderedDict()
        self.symbol_rates: OrderedDict[str, Rates] = OrderedDict()
        self.duplicates: dict[Hashable, int] = {}
        """The current generation of duplicates: key -> last approval time (microseconds)."""
        self.older: dict[Hashable, int] = {}
        """The generation before it (keys approved again since are in both; look here second)."""
        self._dying: dict[Hashable, int] = {}  # the generation before that, being dropped
        self.rotate_at: int | None = None  # when the current generation becomes the older
        self.open: dict[str, OpenOrder] = {}
        self.open_count: dict[str, int] = {}
        self.pending: dict[tuple[str, str, Side], Decimal] = {}
        self.positions: dict[tuple[str, str], Decimal] = {}
        self.approved = 0
        self.full: str | None = None
        """Why new orders cannot be tracked, or None."""
        self.on_full: Callable[[], object] | None = None
        """Called whenever a prune finds a cap reached (the engine's fast path stands down)."""
        self._sequence = 0

    def next_id(self) -> str:
        """A client order id for an order that came without one."""
        self._sequence += 1
        return f"tg-{self._sequence}"

    def record(
        self,
        client_order_id: str,
        account: str,
        symbol: str,
        side: Side,
        quantity: Decimal,
        now_us: int,
        duplicate_key: Hashable,
        account_windows: tuple[RateWindow, ...],
        symbol_windows: tuple[RateWindow, ...],
    ) -> None:
        """Remember an approved order (called under the engine's lock)."""
        self.approved += 1
        self.open[client_order_id] = (account, symbol, side, quantity)
        open_count = self.open_count
        open_count[account] = open_count.get(account, 0) + 1
        key = (account, symbol, side)
        self.pending[key] = self.pending.get(key, ZERO) + quantity
        if account_windows:
            rates = self.account_rates.get(account)
            if rates is None:
                rates = self.new_rates(True, account, account_windows)
            for times in rates:
                times.append(now_us)
        if symbol_windows:
            rates = self.symbol_rates.get(symbol)
            if rates is None:
                rates = self.new_rates(False, symbol, symbol_windows)
            for times in rates:
                times.append(now_us)
        if self.duplicate_horizon_us:
            self.duplicates[duplicate_key] = now_us
        if not self.approved & TRIM_EVERY:
            self.prune(now_us, TRIM_MAX)

    def new_rates(self, accounts: bool, key: str, windows: tuple[RateWindow, ...]) -> Rates:
        """Empty windows for a key first seen (per account, else per symbol)."""
        rates = tuple(_Times(w) for w in windows)
        (self.account_rates if accounts else self.symbol_rates)[key] = rates
        return rates

    def last_seen(self, duplicate_key: Hashable) -> int | None:
        """When the same order was last approved (if within the horizon kept)."""
        seen = self.duplicates.get(duplicate_key)
        return self.older.get(duplicate_key) if seen is None else seen

    def prune(self, now_us: int, at_most: int | None = None) -> None:
        """Drop what no window can see any more (``at_most`` entries per table, oldest
        first, if given); set or clear ``full``."""
        horizon = now_us - self.rate_horizon_us
        for table in (self.account_rates, self.symbol_rates):
            # oldest-created first: an idle key is dropped, a key still in use goes to the
            # back; a full prune looks at every key, a trim at a few (in turn, over trims)
            left = len(table) if at_most is None else min(len(table), _ROTATE)
            while left:
                key, rates = table.popitem(last=False)
                if rates[0] and rates[0][-1] > horizon:
                    table[key] = rates  # still in use
                left -= 1
        self._rotate(now_us, at_most)
        self.full = self._full_reason()
        if self.full is not None and self.on_full is not None:
            self.on_full()

    def _rotate(self, now_us: int, at_most: int | None) -> None:
        """Start a new generation of duplicates when the current one is ``H`` old."""
        window = self.duplicate_horizon_us
        if self.rotate_at is None:
            self.rotate_at = now_us + window
        elif now_us >= self.rotate_at:
            expired = [self.older]
            if now_us >= self.rotate_at + window:  # idle that long: the current one expired too
                expired.append(self.duplicates)
                self.duplicates = {}
            self.older, self.duplicates = self.duplicates, {}
            for generation in expired:
                if self._dying:
                    self._dying.update(generation)
                else:
                    self._dying = generation
            self.rotate_at = now_us + window
        dying = self._dying
        if dying:
            if at_most is None or len(dying) <= at_most:
                dying.clear()
            else:  # drop a slice of it, in C (no Python loop per entry)
                deque(map(dying.__delitem__, list(islice(dying, at_most))), 0)

    def _full_reason(self) -> str | None:
        if len(self.open) >= self.max_open_orders:
            return f"{len(self.open)} open orders tracked (cap {self.max_open_orders})"
        if len(self.account_rates) >= self.max_keys or len(self.symbol_rates) >= self.max_keys:
            return f"rate windows for {self.max_keys} keys are all in use"
        duplicates = len(self.duplicates) + len(self.older)
        if duplicates >= self.max_duplicates:
            return f"{duplicates} recent orders tracked for duplicates (cap)"
        return None

    def fill(self, client_order_id: str, quantity: Decimal) -> bool:
        """Apply a fill: less open, more position. False for an unknown order id."""
        entry = self.open.get(client_order_id)
        if entry is None:
            return False
        account, symbol, side, remaining = entry
        done = min(quantity, remaining)
        self._reduce_pending(account, symbol, side, done)
        if done == remaining:
            self._close(client_order_id, account)
        else:
            self.open[client_order_id] = (account, symbol, side, remaining - done)
        key = (account, symbol)
        net = self.positions.get(key, ZERO) + (quantity if side is Side.BUY else -quantity)
        if net:
            self.positions[key] = net
        else:
            self.positions.pop(key, None)
        return True

    def cancel(self, client_order_id: str) -> bool:
        """Forget an open order (cancelled, expired or rejected downstream)."""
        entry = self.open.get(client_order_id)
        if entry is None:
            return False
        account, symbol, side, remaining = entry
        self._reduce_pending(account, symbol, side, remaining)
        self._close(client_order_id, account)
        return True

    def _reduce_pending(self, account: str, symbol: str, side: Side, quantity: Decimal) -> None:
        key = (account, symbol, side)
        left = self.pending.get(key, ZERO) - quantity
        if left > ZERO:
            self.pending[key] = left
        else:
            self.pending.pop(key, None)

    def _close(self, client_order_id: str, account: str) -> None:
        del self.open[client_order_id]
        count = self.open_count.get(account, 1) - 1
        if count > 0:
            self.open_count[account] = count
        else:
            self.open_count.pop(account, None)
        if self.full is not None:
            self.full = self._full_reason()

    def sizes(self) -> dict[str, int]:
        """How many entries each structure holds (for monitoring and tests)."""
        return {
            "account_rate_keys": len(self.account_rates),
            "symbol_rate_keys": len(self.symbol_rates),
            "rate_entries": sum(
                len(d)
                for t in (self.account_rates, self.symbol_rates)
                for r in t.values()
                for d in r
            ),
            "duplicates": len(self.duplicates) + len(self.older),
            "open_orders": len(self.open),
            "pending_keys": len(self.pending),
            "positions": len(self.positions),
        }


class _Times(deque[int]):
    """The latest approval times for one rate window: at most ``limit`` (also its
    ``maxlen``), and the window's length in microseconds (``span``)."""

    __slots__ = ("limit", "span")

    def __init__(self, window: RateWindow) -> None:
        super().__init__((), window.limit)
        self.limit = window.limit
        self.span = window.micros
