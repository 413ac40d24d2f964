"""The trading state (ACTIVE, REDUCING, HALTED): held in memory, kept in SQL, announced.

:class:`TradingStateStore` keeps one row per scope in ``tg_trading_state`` so that a halt
survives a restart. :class:`KillSwitch` owns the live state. Tightening (towards HALTED)
takes effect in memory first and is then written: a store that is down can delay the record,
never the halt (the call then raises :class:`RiskStateUnavailable` after halting). Loosening
is written first and takes effect only once stored. A store that cannot be read at start-up
leaves trading HALTED, with that as the reason. Every change publishes a critical event:
``killswitch.engaged`` (to HALTED), ``killswitch.released`` (from HALTED) or
``risk.trading_state_changed``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Column, Double, Engine, MetaData, String, Table, Text, insert, select
from sqlalchemy import update as sql_update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from tradeguard.clock import SYSTEM_CLOCK, Clock
from tradeguard.errors import ConfigurationError, RiskStateUnavailable
from tradeguard.events import EventBus, SecurityEvent
from tradeguard.risk.state import TradingState
from tradeguard.storage import begin_write, create_database_engine

metadata = MetaData()

trading_state_table = Table(
    "tg_trading_state",
    metadata,
    Column("scope", String(64), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("changed_at", Double, nullable=False),  # seconds since the epoch
)
_T = trading_state_table
_RANK = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}
_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TradingStatus:
    """The trading state, why, who set it, and when (``None`` for the initial state)."""

    state: TradingState
    reason: str
    actor: str
    changed_at: datetime | None = None


class TradingStateStore:
    """The trading state of one ``scope`` in SQL (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine, *, scope: str = "default") -> None:
        if not scope or len(scope) > 64:
            raise ValueError("scope must be 1-64 characters")
        self.engine = engine
        self.scope = scope
        try:
            metadata.create_all(engine, checkfirst=True)
        except SQLAlchemyError as exc:
            raise RiskStateUnavailable("the trading-state table cannot be created") from exc

    @classmethod
    def from_url(cls, url: str, *, scope: str = "default") -> TradingStateStore:
        """A store on ``sqlite:///PATH`` or ``postgresql://…``."""
        return cls(create_database_engine(url), scope=scope)

    def load(self) -> TradingStatus | None:
        """The stored status; ``None`` if never set. An unreadable state loads as HALTED."""
        try:
            with self.engine.connect() as conn:
                row = conn.execute(select(_T).where(_T.c.scope == self.scope)).first()
        except SQLAlchemyError as exc:
            raise RiskStateUnavailable("the trading state cannot be read") from exc
        if row is None:
            return None
        when = datetime.fromtimestamp(row.changed_at, UTC)
        try:
            state = TradingState(row.state)
        except ValueError:
            reason = f"stored trading state {row.state!r} is not one we know"
            return TradingStatus(TradingState.HALTED, reason, "trading-state-store", when)
        return TradingStatus(state, row.reason, row.actor, when)

    def save(self, status: TradingStatus) -> None:
        """Write ``status`` as the scope's state."""
        when = status.changed_at or datetime.now(UTC)
        values = {
            "state": status.state.value,
            "reason": status.reason,
            "actor": status.actor[:128],
            "changed_at": when.timestamp(),
        }
        try:
            for _attempt in range(2):
                try:
                    with begin_write(self.engine) as conn:
                        changed = conn.execute(
                            sql_update(_T).where(_T.c.scope == self.scope).values(**values)
                        ).rowcount
                        if not changed:
                            conn.execute(insert(_T).values(scope=self.scope, **values))
                    return
                except IntegrityError:  # a concurrent first insert: update it instead
                    continue
        except SQLAlchemyError as exc:
            raise RiskStateUnavailable("the trading state cannot be written") from exc
        raise RiskStateUnavailable("the trading state cannot be written (insert race)")


def open_store(store: TradingStateStore | Engine | str | None) -> TradingStateStore | None:
    """A store from a store, an SQLAlchemy engine or a database URL (``None`` stays None)."""
    if store is None or isinstance(store, TradingStateStore):
        return store
    if isinstance(store, Engine):
        return TradingStateStore(store)
    if isinstance(store, str):
        return TradingStateStore.from_url(store)
    raise ConfigurationError("store must be a TradingStateStore, an SQLAlchemy Engine or a URL")


class KillSwitch:
    """The live trading state, its store and its announcements (thread-safe)."""

    def __init__(
        self,
        store: TradingStateStore | None = None,
        *,
        bus: EventBus | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._store = store
        self._bus = bus
        self._clock = clock
        self._lock = threading.Lock()
        self.status = TradingStatus(TradingState.ACTIVE, "initial state", "system")
        self.state = TradingState.ACTIVE
        """The current state (a plain attribute)."""
        self.watchers: list[Callable[[], object]] = []
        """Called after every change of state (the engine drops what it derived from it)."""
        if store is not None:
            try:
                loaded = store.load()
            except RiskStateUnavailable:
                _log.exception("trading state store unreadable at start: trading HALTED")
                loaded = TradingStatus(
                    TradingState.HALTED,
                    "the trading-state store could not be read at start-up",
                    "system",
                    clock.now(),
                )
            if loaded is not None:
                self._apply(loaded)

    def _apply(self, status: TradingStatus) -> None:
        self.status = status
        self.state = status.state
        for watcher in self.watchers:
            watcher()

    def refresh(self) -> TradingStatus:
        """Re-read the stored state (another process may have changed it)."""
        if self._store is None:
            return self.status
        with self._lock:
            loaded = self._store.load()
            if loaded is not None and loaded != self.status:
                self._apply(loaded)
            return self.status

    def set(self, state: TradingState | str, *, reason: str, actor: str) -> TradingStatus:
        """Move to ``state``; a no-op when already there. See the module doc for ordering."""
        target = TradingState(state)
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError("a trading-state change needs a reason")
        if not isinstance(actor, str) or not actor.strip():
            raise ValueError("a trading-state change needs an actor")
        with self._lock:
            old = self.status
            if old.state is target:
                return old
            new = TradingStatus(target, reason, actor, self._clock.now())
            persisted, failure = True, None
            if _RANK[target] > _RANK[old.state]:
                self._apply(new)
                try:
                    self._save(new)
                except RiskStateUnavailable as exc:
                    persisted, failure = False, exc
            else:
                self._save(new)
                self._apply(new)
        self._announce(old, new, persisted)
        if failure is not None:
            raise failure
        return new

    def _save(self, status: TradingStatus) -> None:
        if self._store is not None:
            self._store.save(status)

    def _announce(self, old: TradingStatus, new: TradingStatus, persisted: bool) -> None:
        if self._bus is None:
            return
        if new.state is TradingState.HALTED:
            kind = "killswitch.engaged"
        elif old.state is TradingState.HALTED:
            kind = "killswitch.released"
        else:
            kind = "risk.trading_state_changed"
        self._bus.publish(
            SecurityEvent(
                kind,
                actor=new.actor,
                subject=self._store.scope if self._store is not None else "memory",
                outcome=new.state.value.lower(),
                severity="critical",
                details={
                    "from": old.state.value,
                    "to": new.state.value,
                    "reason": new.reason,
                    "persisted": persisted,
                },
                time=new.changed_at,
            )
        )
