"""What a risk decision says: stable violation codes, :class:`Violation`, :class:`OrderDecision`."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple

from tradeguard.errors import OrderRejected

if TYPE_CHECKING:
    from tradeguard.risk.orders import Order


class Code(StrEnum):
    """Stable reason codes; each compares equal to its own name as a string."""

    INVALID_ORDER = "INVALID_ORDER"
    """The order is malformed (detail names the field)."""
    MAX_ORDER_QUANTITY = "MAX_ORDER_QUANTITY"
    """The order's quantity is above max_order_quantity."""
    MAX_ORDER_NOTIONAL = "MAX_ORDER_NOTIONAL"
    """quantity x price is above max_order_notional."""
    MAX_POSITION = "MAX_POSITION"
    """The position after the fill is above max_position_quantity or max_position_notional."""
    CONCENTRATION = "CONCENTRATION"
    """The position's value after the fill is above max_concentration x account value."""
    GROSS_EXPOSURE = "GROSS_EXPOSURE"
    """The sum of |position values| after the fill is above max_gross_exposure x account value."""
    PRICE_COLLAR = "PRICE_COLLAR"
    """A limit or stop price is further than price_collar from the reference price."""
    STALE_REFERENCE_PRICE = "STALE_REFERENCE_PRICE"
    """The reference quote is older than max_quote_age (or dated too far ahead)."""
    NO_REFERENCE_PRICE = "NO_REFERENCE_PRICE"
    """A market order, or a collared price, has no reference quote to go by."""
    ORDER_RATE = "ORDER_RATE"
    """Too many approved orders in a window, per account or per symbol."""
    DUPLICATE_ORDER = "DUPLICATE_ORDER"
    """The same order within duplicate_window, or a client order id still open."""
    RESTRICTED_SYMBOL = "RESTRICTED_SYMBOL"
    """The symbol is restricted, or not on the allow-list."""
    DAILY_LOSS_LIMIT = "DAILY_LOSS_LIMIT"
    """Realized plus unrealized P&L today is below -max_daily_loss; the kill switch engages."""
    MAX_OPEN_ORDERS = "MAX_OPEN_ORDERS"
    """The account already has max_open_orders open orders."""
    KILL_SWITCH = "KILL_SWITCH"
    """Trading is HALTED."""
    REDUCE_ONLY = "REDUCE_ONLY"
    """Trading is REDUCING (or the order is reduce-only) and the order would not reduce."""
    MARKET_CLOSED = "MARKET_CLOSED"
    """The venue is closed now."""
    RISK_STATE_UNAVAILABLE = "RISK_STATE_UNAVAILABLE"
    """A check could not be evaluated (account value <= 0, no price, calendar down, ...)."""


_NO_DETAIL: Mapping[str, str] = MappingProxyType({})


class Violation(NamedTuple):
    """One reason to refuse an order: a stable ``code``, a sentence, and ``key=value`` detail.

    Immutable (a named tuple: rejections stay cheap).
    """

    code: Code
    message: str
    detail: Mapping[str, str] = _NO_DETAIL

    def __str__(self) -> str:
        pairs = ", ".join(f"{k}={v}" for k, v in self.detail.items())
        return f"{self.code}: {self.message}" + (f" ({pairs})" if pairs else "")


class OrderDecision(NamedTuple):
    """The engine's answer: ``approved``, and every :class:`Violation` when it is not.

    Immutable (a named tuple, so it is also cheap to build on the hot path). Truthy exactly
    when approved. ``order`` is the order as checked (``None`` when a mapping could not be
    parsed); ``client_order_id`` is the order's own id or the one the engine assigned.
    """

    approved: bool
    violations: tuple[Violation, ...] = ()
    order: Order | None = None
    client_order_id: str = ""

    def __bool__(self) -> bool:
        return self.approved

    def __repr__(self) -> str:
        verdict = "approved" if self.approved else f"rejected {list(self.codes)}"
        return f"<OrderDecision {verdict} client_order_id={self.client_order_id!r}>"

    @property
    def codes(self) -> tuple[str, ...]:
        """The codes of every violation, in the order found."""
        return tuple(v.code.value for v in self.violations)

    def violation(self, code: str) -> Violation | None:
        """The first violation with ``code``, if any."""
        return next((v for v in self.violations if v.code == code), None)

    def raise_if_rejected(self) -> None:
        """Raise :class:`~tradeguard.errors.OrderRejected` (with every violation) if rejected."""
        if not self.approved:
            reasons = "; ".join(str(v) for v in self.violations)
            raise OrderRejected(f"order rejected: {reasons}", violations=self.violations)
