"""Auth state shared through Redis by every process: revocations, replay guard, invalidations.

Each process keeps a short-lived cache of token status. With Redis configured, any change
that can invalidate a token (revocation, session end, role change, disable, delete) is
published on a channel; every process clears its cache on the message, so the change
applies everywhere within the delivery time of a Redis message, not the cache TTL.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from tradeguard.errors import BackendUnavailable

_log = logging.getLogger(__name__)

# KEYS[1] = last used step of a user; ARGV[1] = step; ARGV[2] = ttl seconds
_CLAIM_STEP = """
local last = tonumber(redis.call('GET', KEYS[1]) or '-1')
local step = tonumber(ARGV[1])
if step <= last then return 0 end
redis.call('SET', KEYS[1], step, 'EX', tonumber(ARGV[2]))
return 1
"""


class RedisAuthState:
    """Revocations, TOTP replay guard and cache invalidation on one Redis."""

    def __init__(self, client: Any, *, prefix: str = "tg:auth:") -> None:
        self._client = client
        self._prefix = prefix
        self._channel = prefix + "invalidate"
        self._claim = client.register_script(_CLAIM_STEP)
        self._listener: Any = None
        self._pubsub: Any = None

    def __repr__(self) -> str:
        return f"RedisAuthState(prefix={self._prefix!r})"

    def _call(self, operation: Callable[[], Any]) -> Any:
        import redis

        try:
            return operation()
        except redis.RedisError as exc:
            raise BackendUnavailable(f"Redis is unavailable ({type(exc).__name__})") from exc

    def revoke(self, jti: str, ttl_seconds: int) -> None:
        """Revoke ``jti`` everywhere until it would expire anyway."""
        key = f"{self._prefix}revoked:{jti}"
        self._call(lambda: self._client.set(key, "1", ex=max(1, ttl_seconds)))
        self.announce()

    def is_revoked(self, jti: str) -> bool:
        """Whether any process revoked ``jti``."""
        return bool(self._call(lambda: self._client.exists(f"{self._prefix}revoked:{jti}")))

    def claim_mfa_step(self, user_id: str, step: int) -> bool:
        """Atomically accept a TOTP step newer than the last one used (False: replay)."""
        key = f"{self._prefix}mfa-step:{user_id}"
        return bool(self._call(lambda: self._claim(keys=[key], args=[step, 3600])))

    def announce(self) -> None:
        """Tell every process to drop its cached token status."""
        self._call(lambda: self._client.publish(self._channel, "1"))

    def listen(self, on_change: Callable[[], None]) -> None:
        """Call ``on_change`` (in a background thread) whenever any process announces."""
        if self._listener is not None:
            return
        self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(**{self._channel: lambda _message: on_change()})
        self._listener = self._pubsub.run_in_thread(sleep_time=0.5, daemon=True)

    def close(self) -> None:
        """Stop listening and close connections."""
        if self._listener is not None:
            self._listener.stop()
            self._listener.join(timeout=5)
            self._listener = None
        if self._pubsub is not None:
            self._pubsub.close()
            self._pubsub = None
        self._client.close()
