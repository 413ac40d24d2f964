"""Bans shared through Redis: one Lua script per violation, so counting and banning is atomic.

Per ban key (an IPv4 address or an IPv6 /64), with one hash tag for Redis Cluster:

- ``<prefix>{key}:v``: sorted set of violations (score: time in µs, member:
  ``time:kind:nonce``), trimmed to the window on every write, PEXPIRE = the window;
- ``<prefix>{key}:b``: the ban's end in µs, PX = the ban;
- ``<prefix>{key}:s``: ``strikes:forget_at`` (µs), PX = the ban plus ``forget_after``.

As for rate limits, time is the caller's clock, passed in; expiries are relative.
"""

from __future__ import annotations

import os
from typing import Any

from tradeguard.errors import BackendUnavailable, ConfigurationError
from tradeguard.guard.bans import BanPolicy

# KEYS: v, b, s. ARGV: now, window, threshold, member, first, max, forget (µs / counts)
_RECORD = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local banned = tonumber(redis.call('GET', KEYS[2]) or '0')
if banned > now then
  return {0}
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now - window))
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
local count = redis.call('ZCARD', KEYS[1])
if count < tonumber(ARGV[3]) then
  redis.call('PEXPIRE', KEYS[1], string.format('%d', math.ceil(window / 1000)))
  return {1}
end
local strikes = 0
local s = redis.call('GET', KEYS[3])
if s then
  local count, forget_at = string.match(s, '^(%d+):(%-?%d+)$')
  if count and tonumber(forget_at) > now then strikes = tonumber(count) end
end
local duration = tonumber(ARGV[5]) * 2 ^ math.min(strikes, 40)
if duration > tonumber(ARGV[6]) then duration = tonumber(ARGV[6]) end
local ms = math.ceil(duration / 1000)
redis.call('SET', KEYS[2], string.format('%d', now + duration), 'PX', string.format('%d', ms))
local forget = duration + tonumber(ARGV[7])
redis.call('SET', KEYS[3], string.format('%d:%d', strikes + 1, now + forget),
  'PX', string.format('%d', math.ceil(forget / 1000)))
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
return {2, now + duration, strikes + 1, members}
"""


class RedisBanStore:
    """:class:`~tradeguard.guard.bans.BanStore` on Redis; errors become BackendUnavailable
    (an unreachable ban list should refuse requests: fail closed at the caller)."""

    def __init__(self, client: Any, prefix: str = "tg:ban:") -> None:
        import redis

        if "{" in prefix or "}" in prefix:
            raise ConfigurationError("the Redis ban prefix may not contain '{' or '}'")
        self._client = client
        self._prefix = prefix
        self._record = client.register_script(_RECORD)
        self._errors: type[Exception] = redis.RedisError

    def __repr__(self) -> str:
        return f"RedisBanStore(prefix={self._prefix!r})"

    def _keys(self, key: str) -> list[str]:
        base = f"{self._prefix}{{{key}}}:"
        return [base + "v", base + "b", base + "s"]

    def _call(self, operation: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return operation(*args, **kwargs)
        except self._errors as exc:
            raise BackendUnavailable(f"Redis ban store unavailable ({type(exc).__name__})") from exc

    def record(
        self, key: str, kind: str, now: int, policy: BanPolicy
    ) -> tuple[int, int, tuple[str, ...]] | None:
        """One EVALSHA: trim, count, maybe ban."""
        member = f"{now}:{kind}:{os.urandom(6).hex()}"
        args = [now, policy.window_us, policy.threshold, member]
        args += [policy.first_us, policy.max_us, policy.forget_us]
        reply = self._call(self._record, keys=self._keys(key), args=args)
        if int(reply[0]) != 2:
            return None
        members = [m.decode() if isinstance(m, bytes) else str(m) for m in reply[3]]
        kinds = tuple(m.split(":", 1)[1].rsplit(":", 1)[0] for m in members)
        return int(reply[1]), int(reply[2]), kinds

    def banned_until(self, key: str, now: int) -> int | None:
        """GET the ban's end."""
        value = self._call(self._client.get, self._keys(key)[1])
        until = int(value) if value is not None else 0
        return until if until > now else None

    def ban(self, key: str, until: int, now: int) -> None:
        """SET the ban's end with its expiry."""
        ms = max(1, -(-(until - now) // 1000))
        self._call(self._client.set, self._keys(key)[1], str(until), px=ms)

    def unban(self, key: str, now: int) -> bool:
        """Delete the ban and the pending violations (the strikes stay)."""
        violations, ban, _ = self._keys(key)
        pipe = self._client.pipeline(transaction=True)
        pipe.get(ban)
        pipe.delete(ban, violations)
        value, _ = self._call(pipe.execute)
        return value is not None and int(value) > now

    def close(self) -> None:
        """Close the client's connections."""
        self._client.close()
