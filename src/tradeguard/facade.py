"""Lazily built process-wide defaults behind the public functions; ``reset`` drops them."""

from __future__ import annotations

import threading
from collections.abc import Mapping

from tradeguard.clock import SYSTEM_CLOCK, Clock
from tradeguard.events import EventBus
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


_defaults = _Defaults()


def configure(*, settings: Settings | None = None, clock: Clock | None = None) -> None:
    """Replace the settings and/or clock the defaults are built from (drops built objects)."""
    with _defaults.lock:
        reset()
        _defaults.settings = settings
        if clock is not None:
            _defaults.clock = clock


def reset() -> None:
    """Drop every lazily built default; the next call rebuilds from the environment."""
    with _defaults.lock:
        secrets = _defaults.secrets
        _defaults.settings = None
        _defaults.clock = SYSTEM_CLOCK
        _defaults.bus = None
        _defaults.secrets = None
    if secrets is not None:
        secrets.close()


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
    """The default event bus every default component publishes on."""
    bus = _defaults.bus
    if bus is not None:
        return bus
    with _defaults.lock:
        if _defaults.bus is None:
            _defaults.bus = EventBus(clock=_defaults.clock)
        return _defaults.bus


def get_secrets_manager() -> SecretsManager:
    """The default SecretsManager, built from settings on first use."""
    manager = _defaults.secrets
    if manager is not None:
        return manager
    with _defaults.lock:
        if _defaults.secrets is None:
            _defaults.secrets = build_secrets_manager(
                get_settings(), bus=get_event_bus(), clock=_defaults.clock
            )
        return _defaults.secrets


def store_secret(path: str, data: Mapping[str, str], *, cas: int | None = None) -> int:
    """Store ``data`` as a new version of the secret at ``path``; returns the version."""
    return get_secrets_manager().store_secret(path, data, cas=cas)


def get_secret(path: str, *, version: int | None = None) -> dict[str, str]:
    """Read the secret at ``path`` (latest live version unless ``version`` is given)."""
    return get_secrets_manager().get_secret(path, version=version)
