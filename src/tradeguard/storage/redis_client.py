"""Redis URL -> client (the ``redis`` extra), refusing unknown schemes without echoing the URL."""

from __future__ import annotations

from typing import Any

from tradeguard.errors import ConfigurationError
from tradeguard.storage.database import scheme_of

REDIS_SCHEMES = ("redis", "rediss", "unix")


def create_redis_client(url: str, *, timeout: float = 2.0) -> Any:
    """A ``redis.Redis`` for ``redis://``, ``rediss://`` (TLS) or ``unix://`` URLs."""
    scheme = scheme_of(url)
    if scheme not in REDIS_SCHEMES:
        raise ConfigurationError(
            f"unsupported Redis URL scheme {scheme!r}: use redis://, rediss:// or unix://"
        )
    try:
        import redis
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigurationError(
            "Redis needs the redis package: pip install 'tradeguard[redis]'"
        ) from exc
    try:
        return redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, decode_responses=True
        )
    except ValueError as exc:
        raise ConfigurationError("malformed Redis URL (check TRADEGUARD_REDIS_URL)") from exc
