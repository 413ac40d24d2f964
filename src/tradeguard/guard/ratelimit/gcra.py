"""GCRA, the generic cell rate algorithm, in exact integer arithmetic.

A window of ``limit`` cells per ``period`` keeps one number per key, the theoretical
arrival time (TAT): when the bucket would be empty again if nothing else arrived. Each
cell moves it ``T = period / limit`` further. A request of ``cost`` cells at ``now`` is
allowed when ``max(TAT, now) + cost * T <= now + period``: a fresh key allows a burst of
``limit``, then one cell every ``T``; there is no window edge to game.

Time is integer microseconds (from :func:`now_us`). A window's TAT is kept in *ticks* of
``1 / limit`` microseconds, so ``T`` is exactly ``period_us`` ticks and nothing rounds:
``retry_after``, ``remaining`` and ``reset_after`` are the exact rationals, rounded once to
the nearest float.

A decision covers every window of the action at once: allowed only if all allow, and a
denial changes no window.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from tradeguard.guard.ratelimit.spec import RateLimitSpec

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

Reason = Literal["ok", "rate_limited", "backend_unavailable"]


def now_us(when: datetime) -> int:
    """Integer microseconds since the Unix epoch of an aware datetime (exact, no float)."""
    return (when - _EPOCH) // _MICROSECOND


@dataclass(frozen=True, slots=True)
class RateLimitDecision:
    """The answer for one request.

    ``remaining``: cells still allowed right now after this decision (the smallest over all
    windows). ``retry_after``: seconds until this same request would be allowed (0 when
    allowed). ``reset_after``: seconds until every window is full again. ``reason``: why,
    in one word: ``ok``, ``rate_limited``, or ``backend_unavailable`` (a
    :class:`BackendUnavailableDecision`: the store could not be asked and the action fails
    closed).
    """

    allowed: bool
    remaining: int
    retry_after: float
    reset_after: float

    @property
    def reason(self) -> Reason:
        """``ok`` or ``rate_limited``."""
        return "ok" if self.allowed else "rate_limited"


@dataclass(frozen=True, slots=True)
class BackendUnavailableDecision(RateLimitDecision):
    """A denial because the shared store was unreachable and the action fails closed."""

    @property
    def reason(self) -> Reason:
        """``backend_unavailable``."""
        return "backend_unavailable"


class _Draft:
    """Builds a RateLimitDecision about twice as fast as its constructor.

    A frozen dataclass's ``__init__`` must store each field through
    ``object.__setattr__``, which costs more than the whole GCRA step. This twin has the
    same slots, stores them plainly, then re-classes itself: CPython allows ``__class__``
    assignment only between identical layouts, and the import-time check below falls back
    to the dataclass constructor should that ever not hold.
    """

    __slots__ = ("allowed", "remaining", "reset_after", "retry_after")

    def __init__(self, allowed: bool, remaining: int, retry_after: float, reset_after: float):
        self.allowed = allowed
        self.remaining = remaining
        self.retry_after = retry_after
        self.reset_after = reset_after
        self.__class__ = RateLimitDecision  # type: ignore[assignment]


make_decision: Callable[[bool, int, float, float], RateLimitDecision]
"""``RateLimitDecision(allowed, remaining, retry_after, reset_after)``, for hot paths."""


def _pick_make_decision() -> Callable[[bool, int, float, float], RateLimitDecision]:
    try:
        made: object = _Draft(False, 1, 0.5, 2.0)
    except TypeError:  # pragma: no cover - a Python whose layouts differ
        return RateLimitDecision
    if type(made) is RateLimitDecision and made == RateLimitDecision(False, 1, 0.5, 2.0):
        return _Draft  # type: ignore[return-value]
    return RateLimitDecision  # pragma: no cover


make_decision = _pick_make_decision()


def check_cost(spec: RateLimitSpec, cost: int, action: str) -> int:
    """``cost`` if it is an int from 1 to the spec's burst; ValueError says why not."""
    if type(cost) is not int or cost < 1:
        raise ValueError(f"rate limit cost must be a positive int, not {cost!r}")
    if cost > spec.burst:
        raise ValueError(
            f"cost {cost} can never pass {action} ({spec}): the largest burst is {spec.burst}"
        )
    return cost


def decide(
    spec: RateLimitSpec, tats: Sequence[int] | None, now: int, cost: int
) -> tuple[RateLimitDecision, tuple[int, ...] | None]:
    """Decide one request against stored TATs (ticks; ``None``: a fresh key).

    Returns the decision and the TATs to store (``None`` when denied: store nothing).
    """
    single = spec.single
    if single is not None:  # the loop below, unrolled for one window
        limit, period, capacity, scale = single
        now_ticks = now * limit
        old = now_ticks if tats is None or tats[0] < now_ticks else tats[0]
        tat = old + cost * period
        over = tat - now_ticks - capacity
        if over > 0:
            ahead = old - now_ticks
            return make_decision(
                False, (capacity - ahead) // period, over / scale, ahead / scale
            ), None
        ahead = tat - now_ticks
        return make_decision(True, (capacity - ahead) // period, 0.0, ahead / scale), (tat,)
    windows = spec.windows
    allowed = True
    retry = 0.0
    news: list[int] = []
    olds: list[int] = []
    for i, window in enumerate(windows):
        now_ticks = now * window.limit
        old = tats[i] if tats is not None and tats[i] > now_ticks else now_ticks
        new = old + cost * window.period_us
        over = new - now_ticks - window.capacity
        if over > 0:
            allowed = False
            retry = max(retry, over / window.scale)
        olds.append(old)
        news.append(new)
    kept = news if allowed else olds
    remaining = spec.burst
    reset = 0.0
    for window, tat in zip(windows, kept, strict=True):
        ahead = tat - now * window.limit
        remaining = min(remaining, (window.capacity - ahead) // window.period_us)
        reset = max(reset, ahead / window.scale)
    decision = RateLimitDecision(allowed, remaining, retry, reset)
    return decision, (tuple(news) if allowed else None)
