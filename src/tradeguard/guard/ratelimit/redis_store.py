"""GCRA on Redis: one Lua script per decision, atomic over every window of the action.

Each window of each (action, identity) is one Redis string ``"<µs>:<rem>"``: the TAT as
whole microseconds plus a remainder in ticks of ``1 / limit`` µs (Lua numbers are doubles,
exact only to 2**53, so the product ``µs * limit`` is never formed in Lua). The script
reads every window, decides, and writes all of them only when every window allows; each
key gets an expiry (``SET ... PX``) at its TAT plus ``expiry_grace`` (below), so idle keys
disappear by themselves. All keys of one decision share a hash tag, so the script also
works on a Redis Cluster.

Time is the *caller's* clock, passed as an argument (never Redis ``TIME``): tests inject
a :class:`~tradeguard.clock.FixedClock`, and every process should run NTP-synchronised
clocks. The expiry is relative (``PX``), so it is measured on Redis's clock: a caller's
clock must run at real speed for keys not to expire early. Each key therefore lives
``expiry_grace`` seconds (default 1) past its TAT: a process whose clock lags the writer's
by less than that still finds the key while, to it, the TAT is ahead. A key past its TAT
is harmless (it reads as fresh). Tests that hold a FixedClock still while real time
passes set a long grace.

The script returns the verdict and the (clamped) TATs it read; Python recomputes the
decision from them with :func:`~tradeguard.guard.ratelimit.gcra.decide`, so both stores
answer identically, and a disagreement (which would be a bug) is a denial.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

from tradeguard.errors import BackendUnavailable, ConfigurationError
from tradeguard.guard.ratelimit.gcra import RateLimitDecision, decide
from tradeguard.guard.ratelimit.spec import RateLimitSpec

# KEYS[i]: window i. ARGV[1]: now (µs); ARGV[2]: expiry grace (ms).
# Then per window: limit, cost * period / limit as whole µs and remainder, period (µs).
_GCRA = """
local now = tonumber(ARGV[1])
local grace = tonumber(ARGV[2])
local n = #KEYS
local news = {}
local out = {1}
for i = 1, n do
  local a = 3 + (i - 1) * 4
  local lim = tonumber(ARGV[a])
  local iq = tonumber(ARGV[a + 1])
  local ir = tonumber(ARGV[a + 2])
  local period = tonumber(ARGV[a + 3])
  local q, r = now, 0
  local v = redis.call('GET', KEYS[i])
  if v then
    local sq, sr = string.match(v, '^(%-?%d+):(%d+)$')
    sq = tonumber(sq)
    sr = tonumber(sr)
    if sq == nil or sr == nil or sr >= lim then
      return redis.error_reply('tradeguard: corrupt rate limit state in ' .. KEYS[i])
    end
    if sq > now or (sq == now and sr > 0) then
      q, r = sq, sr
    end
  end
  out[2 * i] = q
  out[2 * i + 1] = r
  local nq, nr = q + iq, r + ir
  if nr >= lim then
    nq, nr = nq + 1, nr - lim
  end
  local cap = now + period
  if nq > cap or (nq == cap and nr > 0) then
    out[1] = 0
  end
  news[i] = {nq, nr}
end
if out[1] == 1 then
  for i = 1, n do
    local nq, nr = news[i][1], news[i][2]
    local ahead = nq - now
    if nr > 0 then ahead = ahead + 1 end
    local ms = math.ceil(ahead / 1000) + grace
    redis.call('SET', KEYS[i], string.format('%d:%d', nq, nr), 'PX', string.format('%d', ms))
  end
end
return out
"""


def identity_key(identity: str) -> str:
    """``identity``, or a SHA-256 of it when longer than 128 characters (bounded keys)."""
    if len(identity) <= 128:
        return identity
    return "sha256:" + hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()


class RedisStore:
    """GCRA state shared by every process through one Redis (``EVALSHA``, one round trip).

    ``client`` is a ``redis.Redis`` (see
    :func:`~tradeguard.storage.redis_client.create_redis_client`; its socket timeouts bound
    how long a decision can wait on a sick Redis). Errors become
    :class:`~tradeguard.errors.BackendUnavailable`.
    """

    def __init__(self, client: Any, prefix: str = "tg:rl:", *, expiry_grace: float = 1.0) -> None:
        import redis

        if "{" in prefix or "}" in prefix:
            raise ConfigurationError("the Redis rate limit prefix may not contain '{' or '}'")
        if not 0 <= expiry_grace <= 86_400:
            raise ConfigurationError("expiry_grace must be between 0 and 86400 seconds")
        self._grace_ms = math.ceil(expiry_grace * 1000)
        self._client = client
        self._prefix = prefix
        self._script = client.register_script(_GCRA)  # EVALSHA, loading it on NOSCRIPT
        self._errors: type[Exception] = redis.RedisError
        # (spec signature, cost) -> (key suffixes, script arguments after now and grace)
        self._plans: dict[tuple[str, int], tuple[list[str], list[int]]] = {}

    def __repr__(self) -> str:
        return f"RedisStore(prefix={self._prefix!r})"

    def keys_for(self, action: str, identity: str, spec: RateLimitSpec) -> list[str]:
        """The Redis keys of one (action, identity): one per window, one hash slot."""
        base = f"{self._prefix}{{{action}:{identity_key(identity)}}}:"
        return [f"{base}{w.limit}/{w.period_us}" for w in spec.windows]

    def _plan(self, spec: RateLimitSpec, cost: int) -> tuple[list[str], list[int]]:
        plan = self._plans.get((spec.signature, cost))
        if plan is None:
            suffixes: list[str] = []
            args: list[int] = []
            for window in spec.windows:
                whole, rest = divmod(cost * window.period_us, window.limit)
                suffixes.append(f"{window.limit}/{window.period_us}")
                args += (window.limit, whole, rest, window.period_us)
            plan = (suffixes, args)
            if len(self._plans) < 1024:
                self._plans[(spec.signature, cost)] = plan
        return plan

    def acquire(
        self, action: str, identity: str, spec: RateLimitSpec, now: int, cost: int
    ) -> RateLimitDecision:
        """One EVALSHA: decide and record atomically across all windows."""
        suffixes, tail = self._plan(spec, cost)
        base = f"{self._prefix}{{{action}:{identity_key(identity)}}}:"
        try:
            reply = self._script(
                keys=[base + suffix for suffix in suffixes], args=[now, self._grace_ms, *tail]
            )
        except self._errors as exc:
            raise BackendUnavailable(
                f"Redis rate limit store unavailable ({type(exc).__name__})"
            ) from exc
        tats = [
            int(reply[1 + 2 * i]) * w.limit + int(reply[2 + 2 * i])
            for i, w in enumerate(spec.windows)
        ]
        decision, _ = decide(spec, tats, now, cost)
        if decision.allowed and int(reply[0]) != 1:  # pragma: no cover - would be a bug
            return RateLimitDecision(False, 0, 1.0, decision.reset_after)
        return decision

    def close(self) -> None:
        """Close the client's connections."""
        self._client.close()
