"""Market-hours benchmark: ``MarketCalendar.is_open`` vs exchange_calendars' own lookups.

Run: ``python bench/calendar_bench.py [--quick]``. One run prints, per lookup, the median
over rounds of the mean ns per call, the ratio to ours, and PASS/FAIL for ours < 1 us.

Method: one set of random whole-minute UTC instants inside the covered range of XNYS
(built from the system clock: a year back to a year ahead), the same instants for every
lookup. Ours gets ``datetime`` objects in UTC, as a bot's clock gives them;
exchange_calendars gets ``pandas.Timestamp`` objects made before timing (its best case:
no parsing of a datetime). Rounds interleave the lookups in a shuffled order so load from
other processes hits all alike; each batch is a loop over the instants timed with
``time.perf_counter_ns`` (loop overhead included, for all; the empty loop is shown). Before
timing, the three lookups are checked to agree on every instant. The garbage collector
stays on. About 4 % of the instants fall in the last 30 days of coverage, where ``is_open``
also reads the clock to see whether a rebuild is due (a bot asking about "now" never does:
by then the venue has been rebuilt); a separate row times the other 96 %.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib.metadata import version as dist_version
from zoneinfo import ZoneInfo

import exchange_calendars as xc
import pandas as pd

from benchlib import fmt
from tradeguard.risk.calendar import REFRESH_MARGIN, MarketCalendar

VENUE = "XNYS"
TARGET_NS = 1_000.0
# exchange_calendars 4.13 on pandas 3 raises pandas' own deprecation warnings inside its
# lookups; they are not ours to fix and would otherwise print once.
warnings.filterwarnings("ignore", category=pd.errors.PandasChangeWarning)

Batch = Callable[[], None]


def batch_ns(run: Batch, calls: int) -> float:
    """Mean ns per call for one batch of ``calls`` lookups."""
    start = time.perf_counter_ns()
    run()
    return (time.perf_counter_ns() - start) / calls


def main() -> int:
    parser = argparse.ArgumentParser(description="tradeguard market-hours benchmark")
    parser.add_argument("--quick", action="store_true", help="fewer rounds (not judged)")
    args = parser.parse_args()
    rounds = 7 if args.quick else 31
    rng = random.Random(20251120)

    began = time.perf_counter()
    ours = MarketCalendar()
    coverage = ours.coverage(VENUE)
    assert coverage is not None
    ours_build = time.perf_counter() - began
    lo, hi = coverage
    began = time.perf_counter()
    theirs = xc.get_calendar(VENUE, start=lo.date().isoformat(), end=hi.date().isoformat())
    their_build = time.perf_counter() - began

    minutes = int((hi - lo).total_seconds() // 60) - 1  # their last minute is hi - 1 min
    instants = [lo + timedelta(minutes=rng.randrange(minutes)) for _ in range(2_000)]
    stamps = [pd.Timestamp(t) for t in instants]
    new_york = [t.astimezone(ZoneInfo("America/New_York")) for t in instants]
    early = [t for t in instants if t < hi - REFRESH_MARGIN]  # no clock read on these
    slow = 50  # is_open_at_time scans sessions: ~100x slower, so fewer calls per batch

    answers = [ours.is_open(VENUE, t) for t in instants]
    assert answers == [theirs.is_open_on_minute(s) for s in stamps], "is_open_on_minute differs"
    assert answers[:slow] == [theirs.is_open_at_time(s) for s in stamps[:slow]], "at_time differs"
    assert answers == [ours.is_open(VENUE, t) for t in new_york], "zoneinfo input differs"

    def ours_utc() -> None:
        is_open = ours.is_open
        for t in instants:
            is_open(VENUE, t)

    def ours_early() -> None:
        is_open = ours.is_open
        for t in early:
            is_open(VENUE, t)

    def ours_zoneinfo() -> None:
        is_open = ours.is_open
        for t in new_york:
            is_open(VENUE, t)

    def minute() -> None:
        is_open_on_minute = theirs.is_open_on_minute
        for s in stamps:
            is_open_on_minute(s)

    def at_time() -> None:
        is_open_at_time = theirs.is_open_at_time
        for s in stamps[:slow]:
            is_open_at_time(s)

    def empty_loop() -> None:
        for _t in instants:
            pass

    ours_name = "ours: MarketCalendar.is_open (UTC datetime)"
    cases: dict[str, tuple[Batch, int]] = {
        ours_name: (ours_utc, len(instants)),
        "ours: is_open, America/New_York datetime": (ours_zoneinfo, len(instants)),
        "ours: is_open, UTC, not in the last 30 days": (ours_early, len(early)),
        "exchange_calendars is_open_on_minute": (minute, len(stamps)),
        "exchange_calendars is_open_at_time": (at_time, slow),
        "empty loop (overhead in every row)": (empty_loop, len(instants)),
    }
    samples: dict[str, list[float]] = {name: [] for name in cases}
    order = list(cases)
    for _ in range(rounds):
        rng.shuffle(order)
        for name in order:
            run, calls = cases[name]
            samples[name].append(batch_ns(run, calls))

    medians = {name: statistics.median(values) for name, values in samples.items()}
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print("tradeguard market-hours benchmark" + ("  [--quick]" if args.quick else ""))
    print(f"  date {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; load average {load}")
    print(
        f"  {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} cores, {platform.machine()}; exchange_calendars "
        f"{dist_version('exchange_calendars')}, pandas {dist_version('pandas')}"
    )
    print(f"  {VENUE} covered {lo:%Y-%m-%d %H:%M} to {hi:%Y-%m-%d %H:%M} UTC;")
    print(f"  build: ours {ours_build:.2f} s (lazy, once), get_calendar {their_build:.2f} s")
    print(f"  {len(instants)} random minutes, {sum(answers)} of them open, {len(early)} before")
    days = REFRESH_MARGIN.days
    print(f"  the last {days} days (where is_open also reads the clock); {rounds} rounds\n")
    print(f"{'lookup':<46} {'median':>10} {'p5':>10} {'p95':>10} {'vs ours':>9}")
    for name, values in samples.items():
        ordered = sorted(values)
        p5 = ordered[round(0.05 * (len(ordered) - 1))]
        p95 = ordered[round(0.95 * (len(ordered) - 1))]
        ratio = medians[name] / medians[ours_name]
        print(f"{name:<46} {fmt(medians[name]):>10} {fmt(p5):>10} {fmt(p95):>10} {ratio:8.1f}x")
    ok = medians[ours_name] < TARGET_NS
    verdict = "PASS" if ok else "FAIL"
    print(f"\nours < {fmt(TARGET_NS)} per call (median): {fmt(medians[ours_name])} -> {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
