"""Rate limiting: GCRA per action over several windows, in process or shared through Redis.

::

    limiter = RateLimiter({"order_submissions": "10/second;300/minute"}, clock=clock)
    decision = limiter.rate_limit("alice", "order_submissions")
    if not decision.allowed:
        ...  # decision.retry_after seconds

``RedisStore`` needs the ``redis`` extra only when constructed.
"""

from __future__ import annotations

from tradeguard.guard.ratelimit.gcra import (
    BackendUnavailableDecision,
    RateLimitDecision,
    now_us,
)
from tradeguard.guard.ratelimit.limiter import RateLimiter
from tradeguard.guard.ratelimit.memory import MemoryStore, RateLimitStore
from tradeguard.guard.ratelimit.redis_store import RedisStore
from tradeguard.guard.ratelimit.spec import (
    DEFAULT_FAIL_MODES,
    DEFAULT_LIMITS,
    FailMode,
    RateLimitConfig,
    RateLimitSpec,
    Window,
    config_from_mapping,
    load_config,
    parse_rate_limit,
)

__all__ = [
    "DEFAULT_FAIL_MODES",
    "DEFAULT_LIMITS",
    "BackendUnavailableDecision",
    "FailMode",
    "MemoryStore",
    "RateLimitConfig",
    "RateLimitDecision",
    "RateLimitSpec",
    "RateLimitStore",
    "RateLimiter",
    "RedisStore",
    "Window",
    "config_from_mapping",
    "load_config",
    "now_us",
    "parse_rate_limit",
]
