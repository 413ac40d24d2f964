"""Build the default SecurityValidator from settings (memory stores, or Redis when set)."""

from __future__ import annotations

from tradeguard.clock import SYSTEM_CLOCK, Clock
from tradeguard.events import EventBus
from tradeguard.guard.bans import BanList
from tradeguard.guard.bans_redis import RedisBanStore
from tradeguard.guard.ratelimit import RateLimiter, RedisStore, config_from_mapping, load_config
from tradeguard.guard.validator import SecurityValidator
from tradeguard.settings import Settings
from tradeguard.storage.redis_client import create_redis_client


def build_validator(
    settings: Settings, *, bus: EventBus | None = None, clock: Clock = SYSTEM_CLOCK
) -> SecurityValidator:
    """Limits from ``TRADEGUARD_RATE_LIMITS`` (TOML) or the defaults; counters and bans in
    process, or in Redis (``TRADEGUARD_REDIS_URL``) so every process shares them."""
    config = load_config(settings.rate_limits) if settings.rate_limits else config_from_mapping({})
    if settings.redis_url is not None:
        # a short timeout: a fail-closed decision should not wait long on a dead Redis
        client = create_redis_client(settings.redis_url.get_secret_value(), timeout=0.25)
        limiter = RateLimiter.from_config(config, store=RedisStore(client), clock=clock, bus=bus)
        bans = BanList(store=RedisBanStore(client), clock=clock, bus=bus)
    else:
        limiter = RateLimiter.from_config(config, clock=clock, bus=bus)
        bans = BanList(clock=clock, bus=bus)
    return SecurityValidator(limiter, bans, bus=bus, trusted_proxies=settings.trusted_proxies)
