"""What the service works with: the facade's defaults, plus the little state of its own.

One :class:`Service` per process, built from the facade (so the CLI, the library and the
service share one audit chain, one secrets store and one set of users). The risk engine is
held here because ``PUT /v1/risk/limits`` replaces it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar

import anyio
from fastapi import Depends, Request

from tradeguard.audit import AuditLog
from tradeguard.auth import AuthHandler, Claims, Role
from tradeguard.clock import Clock
from tradeguard.events import EventBus, SecurityEvent
from tradeguard.facade import (
    get_audit_log,
    get_auth_handler,
    get_clock,
    get_event_bus,
    get_risk_engine,
    get_secrets_manager,
    get_settings,
    get_validator,
)
from tradeguard.guard.validator import SecurityValidator
from tradeguard.risk import RiskEngine, RiskLimits
from tradeguard.risk.calendar import MarketCalendar
from tradeguard.risk.killswitch import TradingStateStore
from tradeguard.secrets import SecretsManager
from tradeguard.server.snapshots import SnapshotCache
from tradeguard.settings import Settings
from tradeguard.storage import create_database_engine


@dataclass(frozen=True, slots=True)
class AccountGate:
    """What a user must do before anything else: change the password, enrol MFA."""

    must_change_password: bool
    must_enroll_mfa: bool

    @property
    def open(self) -> bool:
        """Nothing outstanding."""
        return not (self.must_change_password or self.must_enroll_mfa)


STATE_REFRESH_SECONDS = 0.1
T = TypeVar("T")


class Service:
    """The objects every route uses; thread-safe."""

    def __init__(self) -> None:
        self.settings: Settings = get_settings()
        self.clock: Clock = get_clock()
        self.bus: EventBus = get_event_bus()
        self.secrets: SecretsManager = get_secrets_manager()
        self.audit: AuditLog | None = get_audit_log() if self.settings.audit_enabled else None
        self.auth: AuthHandler = get_auth_handler()
        self.validator: SecurityValidator = get_validator()
        self._risk: RiskEngine = get_risk_engine()
        self.snapshots = SnapshotCache(self.clock)  # identical account documents, 50 ms
        self._lock = threading.Lock()
        self._gates: dict[str, tuple[float, AccountGate]] = {}
        self._state_read_at = -STATE_REFRESH_SECONDS
        self._replacement_parts: tuple[TradingStateStore, MarketCalendar] | None = None
        self._gate_ttl = max(self.settings.auth_state_ttl, 0.0)
        # Reads on the hot path (token status, account gate, trading state) are microsecond
        # WAL reads on SQLite and run on the event loop; over a network (PostgreSQL, Redis)
        # they go to the thread pool.
        self.inline = (
            self.settings.redis_url is None
            and self.settings.resolved_database_url().startswith("sqlite")
        )

    async def run(self, function: Callable[..., T], *args: object) -> T:
        """``function(*args)`` on the event loop when ``inline``, else in a worker thread."""
        if self.inline:
            return function(*args)
        return await anyio.to_thread.run_sync(function, *args)

    @property
    def risk(self) -> RiskEngine:
        """The risk engine in use now."""
        return self._risk

    def current_risk(self) -> tuple[RiskEngine, str | None]:
        """The engine, with the trading state re-read from the database at most every
        :data:`STATE_REFRESH_SECONDS` (another worker or the CLI may have halted trading);
        the second item says why the state could not be read (then refuse the order)."""
        engine = self._risk
        now = time.monotonic()
        if now - self._state_read_at >= STATE_REFRESH_SECONDS:
            try:
                engine.refresh_trading_state()
            except Exception as exc:
                return engine, f"the trading state could not be read ({type(exc).__name__})"
            self._state_read_at = now
        return engine, None

    def replace_limits(self, limits: RiskLimits, *, actor: str) -> RiskEngine:
        """Swap in an engine with ``limits``; the trading state carries over (it is stored).

        Approved-order tracking (rate windows, duplicates, open orders) starts afresh.
        """
        with self._lock:
            if self._replacement_parts is None:  # one store and calendar for every swap
                database = create_database_engine(self.settings.resolved_database_url())
                self._replacement_parts = (
                    TradingStateStore(database),
                    MarketCalendar(clock=self.clock),
                )
            store, calendar = self._replacement_parts
            engine = RiskEngine(limits, calendar=calendar, clock=self.clock, bus=self.bus,
                                store=store)  # fmt: skip
            self._risk = engine
        self.bus.publish(SecurityEvent("risk.limits_changed", actor=actor, severity="warning",
                                       outcome="success"))  # fmt: skip
        return engine

    # -- the first-run gate ------------------------------------------------------------

    def gate(self, claims: Claims) -> AccountGate:
        """What ``claims``' user must do first (cached for ``auth_state_ttl`` seconds)."""
        now = time.monotonic()
        cached = self._gates.get(claims.subject)
        if cached is not None and cached[0] > now:
            return cached[1]
        if claims.get("typ") == "api_key":
            gate = AccountGate(False, False)
        else:
            user = self.auth.get_user(claims.username)
            gate = AccountGate(
                must_change_password=user.must_change_password,
                must_enroll_mfa=user.role is Role.ADMIN and not user.mfa_enabled,
            )
        with self._lock:
            if len(self._gates) > 10_000:
                self._gates.clear()
            self._gates[claims.subject] = (now + self._gate_ttl, gate)
        return gate

    def forget_gate(self, user_id: str) -> None:
        """Drop the cached gate of one user (after a password change or MFA enrolment)."""
        with self._lock:
            self._gates.pop(user_id, None)


async def service(request: Request) -> Service:
    """The service the app was built over."""
    found = request.app.state.service
    if not isinstance(found, Service):
        raise TypeError("app.state.service is not a tradeguard Service")
    return found


ServiceDep = Annotated[Service, Depends(service)]
