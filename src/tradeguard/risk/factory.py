"""Build the default RiskEngine from settings: limits, persisted trading state, calendar."""

from __future__ import annotations

from tradeguard.clock import SYSTEM_CLOCK, Clock
from tradeguard.events import EventBus
from tradeguard.risk.calendar import MarketCalendar
from tradeguard.risk.engine import RiskEngine
from tradeguard.risk.killswitch import TradingStateStore
from tradeguard.risk.limits import RiskLimits
from tradeguard.risk.surveillance import Surveillance
from tradeguard.settings import Settings
from tradeguard.storage import create_database_engine


def build_risk_engine(
    settings: Settings, *, bus: EventBus | None = None, clock: Clock = SYSTEM_CLOCK
) -> RiskEngine:
    """Limits from ``TRADEGUARD_RISK_CONFIG`` (TOML) or the documented safe defaults; the
    trading state (kill switch) in the database so it survives a restart; market hours from
    exchange_calendars when the ``calendars`` extra is installed (else orders for venues other
    than ``CRYPTO`` fail closed as MARKET_CLOSED, saying why); with a bus, a
    :class:`Surveillance` subscriber that alerts on suspicious patterns (and blocks nothing
    by default)."""
    limits = RiskLimits.from_toml(settings.risk_config) if settings.risk_config else RiskLimits()
    store = TradingStateStore(create_database_engine(settings.resolved_database_url()))
    engine = RiskEngine(
        limits, calendar=MarketCalendar(clock=clock), clock=clock, bus=bus, store=store
    )
    if bus is not None:
        bus.subscribe(Surveillance(bus=bus, clock=clock, engine=engine))
    return engine
