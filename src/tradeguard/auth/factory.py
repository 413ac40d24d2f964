"""Build the AuthHandler from settings."""

from __future__ import annotations

from tradeguard.auth.handler import AuthHandler
from tradeguard.auth.keys import KeyRingStore
from tradeguard.auth.shared_state import RedisAuthState
from tradeguard.auth.store import AuthStore
from tradeguard.auth.tokens import TokenService
from tradeguard.clock import SYSTEM_CLOCK, Clock
from tradeguard.events import EventBus
from tradeguard.secrets import SecretsManager
from tradeguard.settings import Settings
from tradeguard.storage import create_database_engine
from tradeguard.storage.redis_client import create_redis_client


def build_auth_handler(
    settings: Settings,
    secrets: SecretsManager,
    *,
    bus: EventBus | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> AuthHandler:
    """An AuthHandler over ``TRADEGUARD_DATABASE_URL`` with keys in ``secrets``."""
    hs256 = settings.jwt_secret.get_secret_value().encode() if settings.jwt_secret else None
    keys = KeyRingStore(secrets, algorithm=settings.jwt_algorithm, hs256_secret=hs256, clock=clock)
    tokens = TokenService(
        keys,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        access_ttl=settings.access_ttl_seconds,
        refresh_ttl=settings.refresh_ttl_seconds,
        clock=clock,
    )
    store = AuthStore(create_database_engine(settings.resolved_database_url()))
    shared = None
    if settings.redis_url is not None:
        shared = RedisAuthState(create_redis_client(settings.redis_url.get_secret_value()))
    return AuthHandler(
        store, tokens, secrets, bus=bus, clock=clock,
        refresh_ttl=settings.refresh_ttl_seconds, session_max=settings.session_max_seconds,
        state_ttl=settings.auth_state_ttl, shared=shared,
    )  # fmt: skip
