"""What the engine remembers of the orders it approved, in bounded memory.

* Rate windows: per key (account, or symbol) one deque per window holding at most
  ``limit`` approval times, so a key costs O(sum of limits) at most. Keys sit in an
  OrderedDict in order of last use; keys idle longer than the longest window are dropped.
* Duplicates: the last approval time of each (account, symbol, side, quantity, prices),
  dropped once older than the longest duplicate window.
* Open orders: approved and neither filled nor cancelled, with their remaining quantity,
  a count per account and the pending quantity per (account, symbol, side).
* A positions view: net filled quantity per (account, symbol), from ``fill``.

Every structure has a cap. Pruning runs every 256 approvals (so a cap may be overshot by at
most that many entries); a cap still reached after pruning is reported as ``full`` and the
engine refuses new orders (RISK_STATE_UNAVAILABLE) rather than forget what it approved.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Hashable
from decimal import Decimal

from tradeguard.risk.limits import RateWindow, RiskLimits
from tradeguard.risk.orders import Side
from tradeguard.risk.state import ZERO

Rates = tuple[deque[int], ...]
OpenOrder = tuple[str, str, Side, Decimal]
"""(account, symbol, side, remaining quantity) of an open order."""
_PRUNE_EVERY = 256


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
        self.duplicates: OrderedDict[Hashable, int] = OrderedDict()
        self.open: dict[str, OpenOrder] = {}
        self.open_count: dict[str, int] = {}
        self.pending: dict[tuple[str, str, Side], Decimal] = {}
        self.positions: dict[tuple[str, str], Decimal] = {}
        self.full: str | None = None
        """Why new orders cannot be tracked, or None."""
        self._until_prune = _PRUNE_EVERY
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
        self.open[client_order_id] = (account, symbol, side, quantity)
        self.open_count[account] = self.open_count.get(account, 0) + 1
        key = (account, symbol, side)
        self.pending[key] = self.pending.get(key, ZERO) + quantity
        if account_windows:
            rates = self.account_rates.get(account)
            if rates is None:
                rates = self.account_rates[account] = _new_rates(account_windows)
            else:
                self.account_rates.move_to_end(account)
            for times in rates:
                times.append(now_us)
        if symbol_windows:
            rates = self.symbol_rates.get(symbol)
            if rates is None:
                rates = self.symbol_rates[symbol] = _new_rates(symbol_windows)
            else:
                self.symbol_rates.move_to_end(symbol)
            for times in rates:
                times.append(now_us)
        if self.duplicate_horizon_us:
            duplicates = self.duplicates
            duplicates[duplicate_key] = now_us
            duplicates.move_to_end(duplicate_key)
        self._until_prune -= 1
        if self._until_prune <= 0:
            self.prune(now_us)

    def prune(self, now_us: int) -> None:
        """Drop what no window can see any more; set or clear ``full``."""
        self._until_prune = _PRUNE_EVERY
        horizon = now_us - self.rate_horizon_us
        for table in (self.account_rates, self.symbol_rates):
            while table:
                first = next(iter(table.values()))
                if first and first[0] and first[0][-1] > horizon:
                    break
                table.popitem(last=False)
        cutoff = now_us - self.duplicate_horizon_us
        duplicates = self.duplicates
        while duplicates and next(iter(duplicates.values())) <= cutoff:
            duplicates.popitem(last=False)
        self.full = self._full_reason()

    def _full_reason(self) -> str | None:
        if len(self.open) >= self.max_open_orders:
            return f"{len(self.open)} open orders tracked (cap {self.max_open_orders})"
        if len(self.account_rates) >= self.max_keys or len(self.symbol_rates) >= self.max_keys:
            return f"rate windows for {self.max_keys} keys are all in use"
        if len(self.duplicates) >= self.max_duplicates:
            return f"{len(self.duplicates)} recent orders tracked for duplicates (cap)"
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
            "duplicates": len(self.duplicates),
            "open_orders": len(self.open),
            "pending_keys": len(self.pending),
            "positions": len(self.positions),
        }


def _new_rates(windows: tuple[RateWindow, ...]) -> Rates:
    return tuple(deque(maxlen=w.limit) for w in windows)
