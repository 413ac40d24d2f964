"""What a :class:`RiskEngine` tells and is told besides checks: fills, cancels, open orders,
counters and the trading state (kill switch, REDUCING). Mixed into the engine."""

from __future__ import annotations

import threading
from decimal import Decimal

from tradeguard.events import EventBus, SecurityEvent
from tradeguard.risk.killswitch import KillSwitch, TradingStatus
from tradeguard.risk.orders import Side
from tradeguard.risk.state import ZERO, TradingState
from tradeguard.risk.tracking import OrderTracker
from tradeguard.risk.values import positive_amount


class EngineState:
    """The engine's lifecycle and trading-state methods (the engine sets these attributes)."""

    _lock: threading.Lock
    _tracker: OrderTracker
    _switch: KillSwitch
    _bus: EventBus | None
    rejected_count: int
    rejections_by_code: dict[str, int]

    @property
    def approved_count(self) -> int:
        """Orders approved (and recorded) so far."""
        return self._tracker.approved

    # -- what happened downstream ------------------------------------------------------

    def on_fill(self, client_order_id: str, quantity: object, price: object) -> bool:
        """A (partial) fill of an approved order; False if the id is not open here.

        Raises :class:`ValueError` for a quantity or price that is not a positive number.
        """
        amount = positive_amount("fill quantity", quantity)
        fill_price = positive_amount("fill price", price)  # positions count quantity only
        with self._lock:
            entry = self._tracker.open.get(client_order_id)
            done = self._tracker.fill(client_order_id, amount)
        if done and entry is not None:
            self._announce("order.filled", client_order_id, entry, amount, fill_price)
        return done

    def on_cancel(self, client_order_id: str) -> bool:
        """An approved order was cancelled, expired or rejected downstream; False if unknown."""
        with self._lock:
            entry = self._tracker.open.get(client_order_id)
            done = self._tracker.cancel(client_order_id)
        if done and entry is not None:
            self._announce("order.cancelled", client_order_id, entry, entry[3], None)
        return done

    def _announce(
        self, kind: str, client_order_id: str, entry: tuple[str, str, Side, Decimal],
        quantity: Decimal, price: Decimal | None,
    ) -> None:  # fmt: skip
        bus = self._bus
        if bus is None or not bus.has_subscribers:
            return
        account, symbol, side, _ = entry
        bus.publish(SecurityEvent(kind, subject=account, details={
            "client_order_id": client_order_id, "symbol": symbol, "side": side.value,
            "quantity": str(quantity), "price": None if price is None else str(price),
            "account": account,
        }))  # fmt: skip

    def open_order_count(self, account_id: str = "default") -> int:
        """Orders approved for ``account_id`` and not yet filled or cancelled."""
        return self._tracker.open_count.get(account_id, 0)

    def open_quantity(self, account_id: str, symbol: str, side: Side | str) -> Decimal:
        """Remaining quantity of the account's open orders on one side of a symbol."""
        key = (account_id, symbol.upper(), Side(str(side).lower()))
        return self._tracker.pending.get(key, ZERO)

    def position(self, account_id: str, symbol: str) -> Decimal:
        """Net quantity filled through :meth:`on_fill` for the account and symbol."""
        return self._tracker.positions.get((account_id, symbol.upper()), ZERO)

    def stats(self) -> dict[str, object]:
        """Counters and tracked-structure sizes."""
        with self._lock:
            return {
                "approved": self.approved_count,
                "rejected": self.rejected_count,
                "rejections_by_code": dict(self.rejections_by_code),
                "trading_state": self._switch.state.value,
                **self._tracker.sizes(),
            }

    # -- the trading state -------------------------------------------------------------

    @property
    def trading_state(self) -> TradingState:
        """ACTIVE, REDUCING or HALTED."""
        return self._switch.state

    @property
    def trading_status(self) -> TradingStatus:
        """The trading state with its reason, actor and time."""
        return self._switch.status

    def engage_kill_switch(self, reason: str, actor: str) -> TradingStatus:
        """HALT all trading now (and persist it); emits ``killswitch.engaged``."""
        return self._switch.set(TradingState.HALTED, reason=reason, actor=actor)

    def release_kill_switch(
        self, actor: str, *, reason: str = "kill switch released"
    ) -> TradingStatus:
        """Leave HALTED for ACTIVE (a no-op otherwise); emits ``killswitch.released``."""
        if self._switch.state is not TradingState.HALTED:
            return self._switch.status
        return self._switch.set(TradingState.ACTIVE, reason=reason, actor=actor)

    def set_trading_state(
        self, state: TradingState | str, *, reason: str, actor: str
    ) -> TradingStatus:
        """Move to any trading state; emits a critical event naming the transition."""
        return self._switch.set(state, reason=reason, actor=actor)

    def refresh_trading_state(self) -> TradingStatus:
        """Re-read the stored trading state (set by another process)."""
        return self._switch.refresh()
