"""Market hours: is a venue open at an instant? Answered by bisection, failing closed.

:class:`MarketCalendar` reads every calendar exchange_calendars ships (the ``calendars`` extra)
by ISO MIC or alias (``XNAS`` and ``NYSE`` share ``XNYS``): holidays, early closes, late opens,
lunch breaks, DST. ``CRYPTO`` is always open. A venue is built on first use into a sorted flat
list of UTC datetimes, ``[open, break_start, break_end, close, ...]``; ``t`` is open iff
``bisect_right`` (over the slice of ``t``'s UTC day) is odd: half-open ``[open, close)``, as
exchange_calendars' minutes with ``side="left"``. UTC input is compared as is; other zones convert.

Coverage runs from ``start`` (default a year before the clock's now) to a year after the
clock's now, or to the year exchange_calendars records a venue's holidays to. Outside
``[first open, last close)``, for an unknown venue or a failed build: CalendarUnavailable.
With under 30 days left by the injected clock, or for an instant past the range that a new
build would cover, the venue is rebuilt on use (once per day gained; a failed rebuild keeps
the old range).

Extended hours: ``extended_hours={"XNYS": (timedelta(hours=5, minutes=30), timedelta(hours=4))}``
opens each session 5 h 30 early and closes it 4 h late: 04:00-20:00 New York (17:00 after a
13:00 early close); lunch breaks stay closed; ``is_open(..., extended=False)`` ignores it.

Builds take 0.05-0.4 s (XKRX ~5 s) under a lock: call :meth:`~MarketCalendar.coverage` at
start-up. pandas' deprecation warnings inside exchange_calendars are ignored during a build
(``warnings.catch_warnings``: process-wide for that moment).
"""

from __future__ import annotations

import importlib
import threading
import warnings
import weakref
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from types import ModuleType
from typing import NamedTuple

from tradeguard.clock import SYSTEM_CLOCK, Clock
from tradeguard.errors import CalendarUnavailable

CRYPTO = "CRYPTO"  # the always-open venue
HORIZON = timedelta(days=365)  # built this far past the clock's now, as exchange_calendars does
LOOKBACK = timedelta(days=365)  # and from this far before it, unless ``start`` is given
REFRESH_MARGIN = timedelta(days=30)  # rebuilt once less coverage than this remains
_MIN, _MAX = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
_F = "%Y-%m-%d %H:%M %Z"  # how instants read in messages
_UNKNOWN = "unknown venue: neither CRYPTO nor an exchange_calendars name or alias"
_NAT = -(2**63)  # exchange_calendars' "no break" in its *_nanos arrays
_COLUMNS = ("opens", "closes", "break_starts", "break_ends")


class SessionBounds(NamedTuple):
    """One session in UTC; ``break_start``/``break_end`` are None without a lunch break."""

    open: datetime
    close: datetime
    break_start: datetime | None
    break_end: datetime | None


_Book = tuple[list[datetime], list[tuple[int, int]]]  # flat bounds; per UTC day, its slice


@dataclass(frozen=True, slots=True)
class _Venue:
    lo: datetime  # covered range [lo, hi), UTC
    hi: datetime
    refresh_at: datetime  # hi - REFRESH_MARGIN: past it, consult the clock
    tried_end: date  # last day asked of exchange_calendars (built or failed)
    bound_max: date | None  # exchange_calendars' own limit for this venue
    base: int  # ordinal of lo's UTC day: index 0 of each book's days
    regular: _Book
    extended: _Book
    sessions: dict[date, SessionBounds]
    failure: str | None = None


_ALWAYS = _Venue(_MAX, _MIN, _MIN, date.max, None, 0, ([_MIN], []), ([_MIN], []), {})


def _utc(t: datetime) -> datetime:
    """``t`` in UTC; ValueError if naive (or if its tzinfo gives no offset)."""
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"market hours need a timezone-aware datetime, not {t!r}")
    return t.astimezone(UTC)


def _exchange_calendars(venue: str) -> ModuleType:
    """The package, imported on first need (importlib: it ships no type information)."""
    try:
        return importlib.import_module("exchange_calendars")
    except ImportError as exc:
        raise CalendarUnavailable(
            venue, "exchange_calendars is not installed: pip install 'tradeguard[calendars]'"
        ) from exc


def _flatten(intervals: list[tuple[datetime, datetime]]) -> list[datetime]:
    """Sorted, merged ``[start, end, start, end, ...]`` of non-empty intervals."""
    flat: list[datetime] = []
    for start, end in sorted(intervals):
        if flat and start <= flat[-1]:
            flat[-1] = max(flat[-1], end)
        elif start < end:
            flat += (start, end)
    return flat


class MarketCalendar:
    """Whether a venue is open at an instant, from precomputed session bounds. Thread-safe.

    ``clock`` drives the covered range (default: the system clock); ``extended_hours`` maps a
    venue to ``(before_open, after_close)``; ``start`` is the first day (default: a year ago).
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        extended_hours: Mapping[str, tuple[timedelta, timedelta]] | None = None,
        start: date | None = None,
    ) -> None:
        self._clock = clock or SYSTEM_CLOCK
        self._start = start.date() if isinstance(start, datetime) else start
        self._lock = threading.Lock()
        self._venues: dict[str, _Venue] = {CRYPTO: _ALWAYS}  # by the name asked for
        self.generation = 0
        """Counts venue (re)builds published: a span from :meth:`open_span` holds while the
        generation it was given under is current."""
        self._watchers: list[weakref.WeakMethod[Callable[[], object]]] = []
        self._names: dict[str, str] = {}  # name asked for -> calendar name
        self._extended: dict[str, tuple[timedelta, timedelta]] = {}
        for venue, window in (extended_hours or {}).items():
            if venue == CRYPTO or not all(timedelta(0) <= d < timedelta(1) for d in window):
                raise ValueError(f"extended hours for {venue!r}: need two timedeltas in [0, 24h)")
            name = self._resolve(venue)
            if self._extended.setdefault(name, window) != window:
                raise ValueError(f"conflicting extended hours for {venue!r} (calendar {name})")

    def is_open(self, venue: str, t: datetime, *, extended: bool = True) -> bool:
        """True iff ``venue`` trades at ``t`` (aware); raises CalendarUnavailable if unsure."""
        if t.tzinfo is not UTC:
            t = _utc(t)
        v = self._venues.get(venue)
        if v is None or not v.lo <= t < v.refresh_at:
            v = self._venue(venue, t)
            if v is _ALWAYS:
                return True
        flat, days = v.extended if extended else v.regular
        i, j = days[t.toordinal() - v.base]
        return bisect_right(flat, t, i, j) & 1 == 1

    def open_span(
        self, venue: str, t: datetime, *, extended: bool = True
    ) -> tuple[bool, datetime, datetime]:
        """``is_open(venue, t)`` and a span ``[since, until)`` around ``t`` over which that
        answer holds while :attr:`generation` is unchanged (read it before calling):
        ``since == until`` when ``t`` is outside the build's ``[lo, refresh_at)``, where
        is_open may consult the clock and rebuild. Raises as :meth:`is_open` does."""
        if t.tzinfo is not UTC:
            t = _utc(t)
        v = self._venues.get(venue)
        if v is None or not v.lo <= t < v.refresh_at:
            answer = self.is_open(venue, t, extended=extended)
            return answer, t, t
        flat, days = v.extended if extended else v.regular
        i, j = days[t.toordinal() - v.base]
        k = bisect_right(flat, t, i, j)  # = bisect_right(flat, t): see _book
        since = flat[k - 1] if k and flat[k - 1] > v.lo else v.lo
        until = flat[k] if k < len(flat) and flat[k] < v.refresh_at else v.refresh_at
        return k & 1 == 1, since, until

    def next_open(self, venue: str, t: datetime, *, extended: bool = True) -> datetime | None:
        """First instant after ``t`` when ``venue`` opens (a break's end counts); None: never."""
        return self._next(venue, _utc(t), extended, want_open=True)

    def next_close(self, venue: str, t: datetime, *, extended: bool = True) -> datetime | None:
        """First instant after ``t`` when ``venue`` closes (a break's start counts); None: never."""
        return self._next(venue, _utc(t), extended, want_open=False)

    def session_bounds(self, venue: str, day: date) -> SessionBounds | None:
        """The regular session labelled ``day`` in UTC, or None if ``day`` is no session."""
        if self._venue(venue, None) is _ALWAYS:
            start = datetime.combine(day, time(), UTC)
            return SessionBounds(start, start + timedelta(days=1), None, None)
        return self._venue(venue, datetime.combine(day, time(12), UTC)).sessions.get(day)

    def coverage(self, venue: str) -> tuple[datetime, datetime] | None:
        """Covered range ``[first open, last close)`` in UTC (None: CRYPTO); builds if needed."""
        v = self._venue(venue, None)
        return None if v is _ALWAYS else (v.lo, v.hi)

    def _next(self, venue: str, t: datetime, extended: bool, *, want_open: bool) -> datetime | None:
        v = self._venue(venue, t)
        flat = (v.extended if extended else v.regular)[0]
        i = bisect_right(flat, t)
        j = i if (i % 2 == 0) == want_open else i + 1
        if j < len(flat):
            return flat[j]
        if v is _ALWAYS:
            return None
        what = "open" if want_open else "close"
        raise CalendarUnavailable(venue, f"the next {what} is past the covered {v.hi:{_F}}")

    def _venue(self, venue: str, t: datetime | None) -> _Venue:
        """The venue's current build, rebuilding if due; check ``t`` (UTC) is covered."""
        v = self._venues.get(venue)
        if v is None or self._due(v, t):
            with self._lock:
                v = self._venues.get(venue)
                if v is None or self._due(v, t):
                    v = self._load(venue, t)
        if v.failure is not None:
            raise CalendarUnavailable(venue, v.failure)
        if t is not None and not v.lo <= t < v.hi and v is not _ALWAYS:
            limit = f", holidays known to {v.bound_max}" if v.bound_max else ""
            raise CalendarUnavailable(
                venue,
                f"{t:{_F}} is outside the covered range {v.lo:{_F}} to {v.hi:{_F}} "
                f"(built a year ahead of the clock{limit})",
            )
        return v

    def _due(self, v: _Venue, t: datetime | None) -> bool:
        """Would a build from the clock's now help: coverage running out, or ``t`` past it?"""
        if v is _ALWAYS or (t is not None and v.lo <= t < v.refresh_at):
            return False
        now = self._clock.now()
        wanted = v.failure is not None or now >= v.refresh_at or (t is not None and t >= v.hi)
        return wanted and _end(now, v.bound_max) > v.tried_end  # a build would reach further

    def _load(self, venue: str, t: datetime | None) -> _Venue:
        """Under the lock: resolve ``venue``, (re)build its calendar if due, publish it."""
        name = self._names.get(venue) or self._resolve(venue)
        self._names[venue] = self._names[name] = name
        v = self._venues.get(name)
        if v is None or self._due(v, t):
            v = self._build(name, v)
        for asked, resolved in self._names.items():
            if resolved == name:
                self._venues[asked] = v
        self.generation += 1  # spans handed out before may no longer hold
        for ref in self._watchers:
            watcher = ref()
            if watcher is not None:
                watcher()
        return v

    def watch(self, method: Callable[[], object]) -> None:
        """Call the bound ``method`` after each (re)build is published, while its object
        lives (a fast path that keeps spans drops them then)."""
        with self._lock:
            self._watchers = [r for r in self._watchers if r() is not None]
            self._watchers.append(weakref.WeakMethod(method))

    def _resolve(self, venue: str) -> str:
        xc = _exchange_calendars(venue)
        if not isinstance(venue, str) or venue not in xc.get_calendar_names(include_aliases=True):
            raise CalendarUnavailable(venue, _UNKNOWN)
        return str(xc.resolve_alias(venue))

    def _build(self, name: str, old: _Venue | None) -> _Venue:
        """Ask exchange_calendars for ``name``; on failure keep ``old`` until the next day."""
        xc = _exchange_calendars(name)
        now = self._clock.now()
        factories = getattr(xc.calendar_utils.global_calendar_dispatcher, "_calendar_factories", {})
        bound = getattr(factories.get(name), "bound_max", lambda: None)()  # XBOM, XSES, XSHG...
        bound_max = None if bound is None else bound.date()
        end = _end(now, bound_max)
        start = self._start or (now - LOOKBACK).date()
        reason = f"exchange_calendars has no session from {start} to {end}"
        try:
            with warnings.catch_warnings():  # pandas' own deprecations, raised inside the package
                pandas = importlib.import_module("pandas.errors")
                category = getattr(pandas, "PandasChangeWarning", FutureWarning)  # pandas < 3
                warnings.filterwarnings("ignore", category=category)
                cal = xc.get_calendar(name, start=start.isoformat(), end=end.isoformat())
                days = list(cal.sessions.date)
                cols = (getattr(cal, f"{k}_nanos").tolist() for k in _COLUMNS)
                rows = list(zip(*cols, strict=True))
        except Exception as exc:
            if old is not None and old.failure is None:
                return replace(old, tried_end=end)  # keep answering inside the old range
            days, rows = [], []
            reason = f"exchange_calendars cannot build it for {start} to {end}: {exc}"
        before, after = self._extended.get(name, (timedelta(0), timedelta(0)))
        regular: list[tuple[datetime, datetime]] = []
        extended: list[tuple[datetime, datetime]] = []
        sessions: dict[date, SessionBounds] = {}
        for day, row in zip(days, rows, strict=True):
            o, c, bs, be = map(_at, row)
            if o is None or c is None:
                continue
            sessions[day] = SessionBounds(o, c, bs, be)
            if bs is None or be is None:
                regular.append((o, c))
                extended.append((o - before, c + after))
            else:
                regular += [(o, min(bs, c)), (be, c)]
                extended += [(o - before, min(bs, c)), (be, c + after)]
        flat = _flatten(regular)
        if not flat:
            return _Venue(_MAX, _MIN, _MIN, end, bound_max, 0, ([], []), ([], []), {}, reason)
        ext = _flatten(extended) if before or after else flat
        lo, hi = flat[0], flat[-1]
        base, last = lo.toordinal(), hi.toordinal()
        books = _book(flat, base, last), _book(ext, base, last)
        return _Venue(lo, hi, hi - REFRESH_MARGIN, end, bound_max, base, *books, sessions)


def _book(flat: list[datetime], base: int, last: int) -> _Book:
    """``flat`` and, per UTC day ``base..last`` (ordinals), the slice of it to bisect."""
    starts = [datetime.combine(date.fromordinal(k), time(), UTC) for k in range(base, last + 2)]
    return flat, [(bisect_right(flat, a), bisect_left(flat, b)) for a, b in pairwise(starts)]


def _at(nanos: int) -> datetime | None:
    """An exchange_calendars ``*_nanos`` value as a UTC datetime (None for NaT)."""
    return None if nanos == _NAT else datetime.fromtimestamp(nanos / 1e9, UTC)


def _end(now: datetime, bound_max: date | None) -> date:
    """The last day to build: a year after ``now``, capped at exchange_calendars' limit."""
    end = (now + HORIZON).date()
    return min(end, bound_max) if bound_max else end
