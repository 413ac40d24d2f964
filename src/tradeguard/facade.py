"""Lazily built process-wide defaults behind the public functions; ``reset`` drops them.

Building the default event bus also subscribes the default metrics (``tradeguard.metrics``),
the alert engine (``tradeguard.alerts``, rules and webhook from settings), and builds and
subscribes the audit log, so every event published on the default bus is
counted and recorded (``TRADEGUARD_AUDIT_ENABLED=false`` turns recording off).
Events published while the audit log itself is being built (reading or creating its key)
are buffered and recorded once it exists. At interpreter exit the audit queue is flushed.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TypeVar

from tradeguard.alerts import AlertEngine
from tradeguard.alerts.factory import build_alert_engine
from tradeguard.audit import AuditLog, build_audit_log
from tradeguard.auth import AuthHandler, Claims, TokenPair, build_auth_handler
from tradeguard.clock import SYSTEM_CLOCK, Clock
from tradeguard.events import EventBus, SecurityEvent
from tradeguard.guard.factory import build_validator
from tradeguard.guard.validator import SecurityValidator
from tradeguard.metrics import default_metrics, reset_default_metrics
from tradeguard.risk import AccountState, OrderDecision, RiskEngine
from tradeguard.risk import validate_order as _validate_order
from tradeguard.risk.factory import build_risk_engine
from tradeguard.secrets import SecretsManager, build_secrets_manager
from tradeguard.settings import Settings


class _Defaults:
    """The only mutable module state in tradeguard: what the facade built so far."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.settings: Settings | None = None
        self.clock: Clock = SYSTEM_CLOCK
        self.bus: EventBus | None = None
        self.secrets: SecretsManager | None = None
        self.audit: AuditLog | None = None
        self.alerts: AlertEngine | None = None
        self.auth: AuthHandler | None = None
        self.risk: RiskEngine | None = None
        self.validator: SecurityValidator | None = None


_defaults = _Defaults()
T = TypeVar("T")


def configure(*, settings: Settings | None = None, clock: Clock | None = None) -> None:
    """Replace the settings and/or clock the defaults are built from (drops built objects)."""
    with _defaults.lock:
        reset()
        _defaults.settings = settings
        if clock is not None:
            _defaults.clock = clock


def reset() -> None:
    """Flush and drop every lazily built default; the next call rebuilds from the environment."""
    with _defaults.lock:
        audit, secrets, alerts = _defaults.audit, _defaults.secrets, _defaults.alerts
        auth = _defaults.auth
        _defaults.settings = None
        _defaults.clock = SYSTEM_CLOCK
        _defaults.bus = None
        _defaults.secrets = None
        _defaults.audit = None
        _defaults.alerts = None
        _defaults.auth = None
        _defaults.risk = None
        _defaults.validator = None
    if auth is not None:
        auth.close()
    if alerts is not None:
        alerts.close()
    if audit is not None:
        audit.close()
    if secrets is not None:
        secrets.close()
    reset_default_metrics()


atexit.register(reset)


def get_settings() -> Settings:
    """The settings in use (read from TRADEGUARD_* on first use)."""
    with _defaults.lock:
        if _defaults.settings is None:
            _defaults.settings = Settings()
        return _defaults.settings


def get_clock() -> Clock:
    """The clock in use."""
    return _defaults.clock


def get_event_bus() -> EventBus:
    """The default event bus; the audit log is subscribed to it unless disabled."""
    bus = _defaults.bus
    if bus is not None:
        return bus
    with _defaults.lock:
        if _defaults.bus is None:
            _defaults.bus = EventBus(clock=_defaults.clock)
            _defaults.bus.subscribe(default_metrics())
            _defaults.alerts = build_alert_engine(get_settings(), clock=_defaults.clock)
            _defaults.bus.subscribe(_defaults.alerts)
            if get_settings().audit_enabled:
                try:
                    _attach_audit(_defaults.bus)
                except BaseException:
                    _defaults.bus = None
                    _defaults.alerts.close()
                    _defaults.alerts = None
                    raise
        return _defaults.bus


def _attach_audit(bus: EventBus) -> AuditLog:
    pending: list[SecurityEvent] = []
    unsubscribe = bus.subscribe(pending.append)
    try:
        audit = build_audit_log(
            get_settings(), get_secrets_manager(), bus=bus, clock=_defaults.clock
        )
    finally:
        unsubscribe()
    for event in pending:
        audit.record(event)
    bus.subscribe(audit)
    _defaults.audit = audit
    return audit


def _lazy(name: str, build: Callable[[Settings, EventBus, Clock], T]) -> T:
    """The default held in ``_defaults.<name>``, built once under the lock on first use."""
    built: T | None = getattr(_defaults, name)
    if built is not None:
        return built
    with _defaults.lock:
        built = getattr(_defaults, name)
        if built is None:
            built = build(get_settings(), get_event_bus(), _defaults.clock)
            setattr(_defaults, name, built)
        return built


def get_secrets_manager() -> SecretsManager:
    """The default SecretsManager, built from settings on first use."""
    return _lazy("secrets", lambda s, bus, clock: build_secrets_manager(s, bus=bus, clock=clock))


def get_alert_engine() -> AlertEngine:
    """The default AlertEngine subscribed to the default bus."""
    get_event_bus()
    with _defaults.lock:
        if _defaults.alerts is None:
            _defaults.alerts = build_alert_engine(get_settings(), clock=_defaults.clock)
            get_event_bus().subscribe(_defaults.alerts)
        return _defaults.alerts


def get_audit_log() -> AuditLog:
    """The default AuditLog (recording every event on the default bus)."""
    bus = get_event_bus()
    with _defaults.lock:
        if _defaults.audit is None:
            return _attach_audit(bus)
        return _defaults.audit


def get_auth_handler() -> AuthHandler:
    """The default AuthHandler, built from settings on first use."""
    return _lazy(
        "auth",
        lambda s, bus, clock: build_auth_handler(s, get_secrets_manager(), bus=bus, clock=clock),
    )


def authenticate(
    username: str,
    password: str,
    mfa_code: str | None = None,
    *,
    ip: str | None = None,
    user_agent: str | None = None,
) -> TokenPair:
    """Log in; returns the access and refresh tokens of a new session."""
    return get_auth_handler().authenticate(
        username, password, mfa_code, ip=ip, user_agent=user_agent
    )


def validate_token(token: str) -> Claims:
    """The claims of a valid access token (raises a ``TokenError`` otherwise)."""
    return get_auth_handler().validate_token(token)


def get_validator() -> SecurityValidator:
    """The default SecurityValidator (inspection, rate limits, IP bans)."""
    return _lazy("validator", lambda s, bus, clock: build_validator(s, bus=bus, clock=clock))


def check_rate_limit(identity: str, action: str) -> tuple[bool, str]:
    """The seed's ``allowed, msg = check_rate_limit("user123", "order_submissions")``."""
    return get_validator().check_rate_limit(identity, action)


def get_risk_engine() -> RiskEngine:
    """The default RiskEngine (its rate, duplicate and kill-switch state carry over calls)."""
    return _lazy("risk", lambda s, bus, clock: build_risk_engine(s, bus=bus, clock=clock))


def validate_order(
    order: object,
    account_value: object = None,
    *,
    account: AccountState | None = None,
    positions: Mapping[str, object] | None = None,
    prices: Mapping[str, object] | None = None,
    now: datetime | None = None,
) -> OrderDecision:
    """Check an order against the default engine; never raises for malformed order content.

    The seed's ``validate_order(order_dict, account_value=10000)`` works as written.
    """
    return _validate_order(
        order,  # type: ignore[arg-type]
        account_value=account_value, account=account, positions=positions, prices=prices,
        now=now, engine=get_risk_engine(),
    )  # fmt: skip


def store_secret(path: str, data: Mapping[str, str], *, cas: int | None = None) -> int:
    """Store ``data`` as a new version of the secret at ``path``; returns the version."""
    return get_secrets_manager().store_secret(path, data, cas=cas)


def get_secret(path: str, *, version: int | None = None) -> dict[str, str]:
    """Read the secret at ``path`` (latest live version unless ``version`` is given)."""
    return get_secrets_manager().get_secret(path, version=version)
