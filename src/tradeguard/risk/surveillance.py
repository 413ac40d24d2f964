"""Trade surveillance: order patterns that per-order risk checks cannot see.

:class:`Surveillance` follows approved orders, fills and cancels (``on_*`` or as a bus subscriber)
and publishes ``surveillance.<pattern>`` events. A pattern's action is ``"alert"`` (warning),
``"reduce"`` (engine to REDUCING unless stricter), ``"halt"`` (kill switch; both critical) or
``"off"``. Alerts carry account, symbol, counts and thresholds (no order ids), once per (pattern,
account[, symbol]) per ``cooldown``. Windows use monotonic seconds and include their edge; memory
is bounded by the ``max_*`` settings (LRU). Thread-safe; publishing and engine calls are unlocked.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Final, Literal, TypeVar, cast, get_args

from tradeguard.clock import SYSTEM_CLOCK, Clock
from tradeguard.errors import ConfigurationError
from tradeguard.events import EventBus, SecurityEvent
from tradeguard.risk.engine import RiskEngine
from tradeguard.risk.fast import canonical
from tradeguard.risk.state import TradingState
from tradeguard.risk.values import ID_MAX, Side, normalize_symbol, positive_amount

Action = Literal["off", "alert", "reduce", "halt"]
Alerts = tuple[SecurityEvent, ...]
PATTERNS: Final = ("burst", "cancel_ratio", "wash", "layering", "unusual_hours")
ACTOR: Final = "surveillance"
_ANY: Final = ""  # the book's entry for all accounts (no account is empty)
_OTHER: Final = {Side.BUY: Side.SELL, Side.SELL: Side.BUY}
_SIDES: Final = {"buy": Side.BUY, "sell": Side.SELL}
_MAX_AMOUNTS: Final = 4096
_log = logging.getLogger(__name__)
_Finding = tuple[str, str, str | None, dict[str, object]]  # pattern, account, dedup symbol, ...
_TABLES: Final = ("accounts", "open", "book", "layers", "quiet")
_K = TypeVar("_K")
_V = TypeVar("_V")


@dataclass(frozen=True, slots=True, kw_only=True)
class SurveillanceConfig:
    """Per-pattern thresholds, windows (seconds) and actions; invalid values raise."""

    # burst: orders in the window >= min_orders and > factor x EWMA of orders per window
    burst_window: float = 10.0
    burst_baseline_window: float = 600.0
    burst_factor: float = 5.0
    burst_min_orders: int = 50
    burst_action: Action = "alert"
    # cancel_ratio: cancels in the window >= min_cancels and > ratio x fills there
    cancel_window: float = 300.0
    cancel_ratio: float = 20.0
    cancel_min_cancels: int = 50
    cancel_ratio_action: Action = "alert"
    # wash: an opposite order at the same symbol and price, open or closed within the window
    wash_window: float = 5.0
    wash_any_account: bool = False
    wash_action: Action = "alert"
    # layering: orders priced > distance_pct % passive of the reference, cancelled in the window
    layering_window: float = 30.0
    layering_distance_pct: float = 2.0
    layering_min_orders: int = 5
    layering_action: Action = "alert"
    # unusual_hours: after learning_orders, an hour of the week (UTC) with < min_prior orders
    hours_learning_orders: int = 1000
    hours_min_prior: int = 3
    unusual_hours_action: Action = "alert"
    cooldown: float = 300.0
    max_accounts: int = 10_000
    max_orders: int = 100_000
    max_events_per_account: int = 10_000

    def __post_init__(self) -> None:
        for f in fields(self):
            name, value = f.name, getattr(self, f.name)
            if name.endswith("_action"):
                ok = value in get_args(Action)
            elif f.type == "bool":
                ok = isinstance(value, bool)
            else:  # finite and > 0 (>= 0 for cooldown and cancel_ratio), int fields int
                ok = type(value) in (int, float)[: 1 if f.type == "int" else 2] and value < 1e300
                ok = ok and (value > 0 or (value == 0 and name in ("cooldown", "cancel_ratio")))
            if not ok:
                raise ConfigurationError(f"SurveillanceConfig.{name} cannot be {value!r}")

    def action(self, pattern: str) -> Action:
        """The configured action of ``pattern``."""
        return cast(Action, getattr(self, f"{pattern}_action"))


@dataclass(slots=True, eq=False)
class _Order:
    key: str
    account: str
    symbol: str
    side: Side
    price: Decimal | None
    remaining: Decimal | None
    away_since: float | None  # when placed, if priced away from the reference
    level: str | None = None  # the price as canonical text for keys (a Decimal's hash is dear)


@dataclass(slots=True, eq=False)
class _Account:
    orders: deque[float]
    cancels: deque[float]
    fills: deque[float]
    slot_start: float
    slot_count: int = 0
    baseline: float = 0.0
    hours: dict[int, int] = field(default_factory=dict)
    hours_total: int = 0  # sum(hours.values())


class Surveillance:
    """Watch orders, fills and cancels for abusive patterns; an :class:`EventBus` subscriber."""

    def __init__(
        self, config: SurveillanceConfig | None = None, *, bus: EventBus,
        clock: Clock | None = None, engine: RiskEngine | None = None,
    ) -> None:  # fmt: skip
        config = SurveillanceConfig() if config is None else config
        if engine is None and any(config.action(p) in ("reduce", "halt") for p in PATTERNS):
            raise ConfigurationError("a 'reduce' or 'halt' action needs engine=RiskEngine(...)")
        self.config, self._bus, self._engine = config, bus, engine
        self._actions = {pattern: config.action(pattern) for pattern in PATTERNS}  # frozen
        self._amounts: dict[str, Decimal] = {}
        self._clock: Clock = clock or (engine.clock if engine is not None else SYSTEM_CLOCK)
        self._away = Decimal(repr(float(config.layering_distance_pct))) / 100
        self._accounts: OrderedDict[str, _Account] = OrderedDict()
        self._open: OrderedDict[str, _Order] = OrderedDict()
        # (symbol, price, side, account or _ANY) -> [open orders, last placed or closed]
        self._book: OrderedDict[tuple[str, str | None, Side, str], list[float]] = OrderedDict()
        self._layers: OrderedDict[tuple[str, str], deque[float]] = OrderedDict()
        self._quiet: OrderedDict[tuple[str, str, str | None], float] = OrderedDict()
        self._lock, self._act_lock = threading.Lock(), threading.Lock()
        self._ids = itertools.count(1)
        self.alerts = self.suppressed = self.evicted = self.malformed_events = 0

    def on_order(
        self, symbol: str, side: Side | str, *, account: str = "default", client_order_id: str = "",
        price: object = None, reference_price: object = None, quantity: object = None,
    ) -> Alerts:  # fmt: skip
        """An approved order (``price``: its limit; ``reference_price``: the market's); returns
        the alerts raised. :class:`ValueError` if malformed."""
        known = _SIDES.get(side) if type(side) is str else None
        side = known if known is not None else Side(str(side).lower())
        symbol = normalize_symbol(symbol)
        for name, text in (("account", account), ("client_order_id", client_order_id or "-")):
            if not isinstance(text, str) or not 0 < len(text) <= ID_MAX:
                raise ValueError(f"{name} must be a string of 1 to {ID_MAX} characters")
        px = None if price is None else self._amount("price", price)
        ref = None if reference_price is None else self._amount("reference", reference_price)
        qty = None if quantity is None else self._amount("quantity", quantity)
        away = bool(px and ref and (ref - px if side is Side.BUY else px - ref) > ref * self._away)
        hour = int(self._clock.now().timestamp() // 3600 + 72) % 168  # 0 = Monday 00h UTC
        with self._lock:
            now = self._clock.monotonic()
            key = client_order_id or f"\x00{next(self._ids)}"  # internal: cannot be cancelled
            order = _Order(key, account, symbol, side, px, qty, now if away else None,
                           None if px is None else canonical(px))  # fmt: skip
            acct = self._account(account, now)
            found = [self._burst(acct, order, now), self._wash(order, now)]
            self._track(order, now)
            admitted = self._admit([*found, self._hours(acct, order, hour)], now)
        return self._emit(admitted)

    def on_fill(self, client_order_id: str, *, quantity: object = None,
                account: str | None = None) -> None:  # fmt: skip
        """A fill, partial if ``quantity`` leaves some of the order; ``account`` if not open."""
        qty = None if quantity is None else positive_amount("fill quantity", quantity)
        with self._lock:
            now, order = self._clock.monotonic(), self._open.get(client_order_id)
            self._account(order.account if order else account or "default", now).fills.append(now)
            if order is not None and qty is not None and order.remaining is not None:
                order.remaining -= qty
            if order is not None and (order.remaining is None or order.remaining <= 0 or not qty):
                self._close(order, now)

    def on_cancel(self, client_order_id: str, *, account: str | None = None) -> Alerts:
        """A cancel or expiry (report each once); ``account`` if not open. Returns alerts."""
        c = self.config
        with self._lock:
            now, order = self._clock.monotonic(), self._open.get(client_order_id)
            acct_id = order.account if order else account or "default"
            (acct := self._account(acct_id, now)).cancels.append(now)
            found: list[_Finding | None] = []
            if order is not None:
                self._close(order, now)
                if order.away_since is not None and now - order.away_since <= c.layering_window:
                    found.append(self._layering(order, now))
            cancels = self._trim(acct.cancels, now - c.cancel_window)
            fills = self._trim(acct.fills, now - c.cancel_window)
            if cancels >= c.cancel_min_cancels and cancels > c.cancel_ratio * fills:
                found.append(("cancel_ratio", acct_id, None, {"symbol": None, "cancels": cancels,
                    "fills": fills, "ratio": c.cancel_ratio, "min_cancels": c.cancel_min_cancels,
                    "window_seconds": c.cancel_window}))  # fmt: skip
            admitted = self._admit(found, now)
        return self._emit(admitted)

    def __call__(self, event: SecurityEvent) -> None:
        """Consume ``order.approved`` (with ``limit_price``, ``reference_price`` if known),
        ``order.filled`` and ``order.cancelled`` events; malformed ones are logged, skipped."""
        kind, d = event.type, event.details
        if kind not in ("order.approved", "order.filled", "order.cancelled"):
            return
        try:
            cid, account = d.get("client_order_id") or "", d.get("account")
            if kind == "order.approved":
                self.on_order(d["symbol"], d["side"], account=account or "default",
                    client_order_id=cid, price=d.get("limit_price"), quantity=d.get("quantity"),
                    reference_price=d.get("reference_price"))  # fmt: skip
            elif kind == "order.filled":
                self.on_fill(cid, quantity=d.get("quantity"), account=account)
            else:
                self.on_cancel(cid, account=account)
        except (KeyError, TypeError, ValueError) as exc:
            with self._lock:
                self.malformed_events += 1
            _log.warning("surveillance skipped a malformed %s event (%s)", kind, type(exc).__name__)

    def _amount(self, name: str, value: object) -> Decimal:
        """``positive_amount``; the texts of events repeat (a quantity, a reference price),
        so parsed ones are remembered (bounded; failures are not)."""
        if type(value) is not str:
            return positive_amount(name, value)
        amounts = self._amounts
        found = amounts.get(value)
        if found is None:
            found = positive_amount(name, value)
            if len(amounts) >= _MAX_AMOUNTS:
                amounts.clear()
            amounts[value] = found
        return found

    def sizes(self) -> dict[str, int]:
        """Entries held: accounts, open orders, book levels, layering keys, cooldowns."""
        return {name: len(getattr(self, f"_{name}")) for name in _TABLES}

    def _burst(self, acct: _Account, order: _Order, now: float) -> _Finding | None:
        c, w = self.config, self.config.burst_window
        elapsed = now - acct.slot_start
        if elapsed >= w:  # fold the finished slot into the EWMA; empty slots since decay it
            alpha, slots = min(1.0, w / c.burst_baseline_window), int(elapsed // w)
            acct.baseline += alpha * (acct.slot_count - acct.baseline)
            acct.baseline *= (1 - alpha) ** (slots - 1)
            acct.slot_start, acct.slot_count = acct.slot_start + slots * w, 0
        acct.slot_count += 1
        acct.orders.append(now)
        count = self._trim(acct.orders, now - w)
        if count < c.burst_min_orders or count <= c.burst_factor * acct.baseline:
            return None
        if self._quieted("burst", order.account, None, now):
            return None
        return "burst", order.account, None, {"symbol": order.symbol, "orders": count,
            "min_orders": c.burst_min_orders, "factor": c.burst_factor,
            "baseline": round(acct.baseline, 3), "window_seconds": w}  # fmt: skip

    def _wash(self, order: _Order, now: float) -> _Finding | None:
        if order.price is None:
            return None
        c, book, other = self.config, self._book, _OTHER[order.side]
        since = now - c.wash_window
        own = book.get((order.symbol, order.level, other, order.account))
        live = own is not None and (own[0] > 0 or own[1] >= since)
        if not live and c.wash_any_account:
            anyone = book.get((order.symbol, order.level, other, _ANY))
            if anyone is None or not (anyone[0] > 0 or anyone[1] >= since):
                return None
        elif not live:
            return None
        return "wash", order.account, order.symbol, {"symbol": order.symbol,
            "side": order.side.value, "price": str(order.price), "cross_account": not live,
            "window_seconds": c.wash_window}  # fmt: skip

    def _layering(self, order: _Order, now: float) -> _Finding | None:
        c, key = self.config, (order.account, order.symbol)
        times = self._lru(self._layers, key, lambda: deque(maxlen=c.max_events_per_account))
        times.append(now)
        if (count := self._trim(times, now - c.layering_window)) < c.layering_min_orders:
            return None
        return "layering", order.account, order.symbol, {"symbol": order.symbol, "orders": count,
            "min_orders": c.layering_min_orders, "distance_pct": c.layering_distance_pct,
            "window_seconds": c.layering_window}  # fmt: skip

    def _hours(self, acct: _Account, order: _Order, hour: int) -> _Finding | None:
        c, prior, learned = self.config, acct.hours.get(hour, 0), acct.hours_total
        acct.hours[hour] = prior + 1
        acct.hours_total = learned + 1
        if learned < c.hours_learning_orders or prior >= c.hours_min_prior:
            return None
        return "unusual_hours", order.account, None, {"symbol": order.symbol,
            "hour_of_week": hour, "prior_orders": prior, "min_prior": c.hours_min_prior,
            "learned_orders": learned}  # fmt: skip

    @staticmethod
    def _trim(times: deque[float], horizon: float) -> int:
        while times and times[0] < horizon:
            times.popleft()
        return len(times)

    def _account(self, account: str, now: float) -> _Account:
        n = self.config.max_events_per_account
        make = lambda: _Account(deque(maxlen=n), deque(maxlen=n), deque(maxlen=n), now)  # noqa: E731
        return self._lru(self._accounts, account, make)

    def _lru(self, table: OrderedDict[_K, _V], key: _K, make: Callable[[], _V], cap: int = 0) -> _V:
        value = table.pop(key, None)
        table[key] = value = make() if value is None else value
        if len(table) > (cap or self.config.max_accounts):
            table.popitem(last=False)
            self.evicted += 1
        return value

    def _track(self, order: _Order, now: float) -> None:
        if (old := self._open.get(order.key)) is not None:  # a reused client order id
            self._close(old, now)
        self._open[order.key] = order
        self._mark(order, 1, now)
        if len(self._open) > self.config.max_orders:
            self._close(next(iter(self._open.values())), now)
            self.evicted += 1

    def _close(self, order: _Order, now: float) -> None:
        del self._open[order.key]
        self._mark(order, -1, now)

    def _mark(self, order: _Order, change: int, now: float) -> None:
        if order.price is None:
            return
        # the all-accounts entry is read only by cross-account wash detection
        for account in (order.account, _ANY) if self.config.wash_any_account else (order.account,):
            key = (order.symbol, order.level, order.side, account)
            entry = self._lru(self._book, key, lambda: [0, now], self.config.max_orders)
            entry[0], entry[1] = max(0, entry[0] + change), now

    def _quieted(self, pattern: str, account: str, symbol: str | None, now: float) -> bool:
        """A finding that :meth:`_admit` would drop (action off, or within its cooldown),
        counted as ``_admit`` counts it: checked before its details are built."""
        if self._actions[pattern] == "off":
            return True
        if now < self._quiet.get((pattern, account, symbol), now):
            self.suppressed += 1
            return True
        return False

    def _admit(self, found: list[_Finding | None], now: float) -> list[_Finding]:
        admitted: list[_Finding] = []
        if not any(found):
            return admitted
        for finding in found:
            if finding is None or self._actions[finding[0]] == "off":
                continue
            key: tuple[str, str, str | None] = finding[:3]
            if now < self._quiet.get(key, now):
                self.suppressed += 1
                continue
            self._lru(self._quiet, key, lambda: 0.0)
            self._quiet[key] = now + self.config.cooldown
            admitted.append(finding)
        self.alerts += len(admitted)
        return admitted

    def _emit(self, findings: list[_Finding]) -> Alerts:
        published = []
        for pattern, account, _, details in findings:
            action = self.config.action(pattern)
            details = {"pattern": pattern, "account": account, "action": action, **details}
            event = SecurityEvent(f"surveillance.{pattern}", actor=ACTOR, subject=account,
                severity="warning" if action == "alert" else "critical",
                outcome=self._act(action, pattern, account), details=details)  # fmt: skip
            published.append(self._bus.publish(event))
        return tuple(published)

    def _act(self, action: Action, pattern: str, account: str) -> str:
        engine, reason = self._engine, f"surveillance: {pattern} pattern on account {account}"
        if engine is None or action == "alert":
            return "alerted"
        try:
            with self._act_lock:
                if action == "halt":
                    engine.engage_kill_switch(reason, actor=ACTOR)
                elif engine.trading_state is TradingState.ACTIVE:  # never loosen a HALT
                    engine.set_trading_state(TradingState.REDUCING, reason=reason, actor=ACTOR)
        except Exception:
            _log.exception("surveillance could not %s trading after %s", action, pattern)
            return "action_failed"
        return "halted" if action == "halt" else "reduced"


__all__ = ["ACTOR", "PATTERNS", "Action", "Alerts", "Surveillance", "SurveillanceConfig"]
