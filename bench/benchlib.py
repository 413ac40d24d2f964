"""What every benchmark script shares: timing loops, percentiles, formatting, machine lines."""

from __future__ import annotations

import os
import platform
import sqlite3
import statistics
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from importlib.metadata import version as dist_version

median = statistics.median


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))])


def p95(values: list[float]) -> float:
    """The 95th percentile."""
    return percentile(values, 0.95)


def batch_mean(op: Callable[[], object], calls: int) -> float:
    """Mean ns per call over ``calls`` back-to-back calls."""
    clock = time.perf_counter_ns
    start = clock()
    for _ in range(calls):
        op()
    return (clock() - start) / calls


def single_calls(op: Callable[[], object], calls: int) -> list[float]:
    """ns of each call, timed on its own."""
    clock = time.perf_counter_ns
    times: list[float] = []
    for _ in range(calls):
        start = clock()
        op()
        times.append(float(clock() - start))
    return times


def fmt(ns: float) -> str:
    """Nanoseconds in the largest unit that keeps the number at least 1."""
    for scale, unit in ((1e9, "s"), (1e6, "ms"), (1e3, "us")):
        if abs(ns) >= scale:
            return f"{ns / scale:.2f} {unit}"
    return f"{ns:.0f} ns"


def verdict(ok: bool) -> str:
    """PASS or FAIL."""
    return "PASS" if ok else "FAIL"


def per_round(
    samples: dict[str, list[float]], rounds: int, top: str, bottom: str, *, digits: int = 2
) -> str:
    """The ratio ``top / bottom`` computed round by round (paired samples): p5, median, p95."""

    def by_round(name: str) -> list[float]:
        size = len(samples[name]) // rounds
        return [median(samples[name][i * size : (i + 1) * size]) for i in range(rounds)]

    pairs = sorted(a / b for a, b in zip(by_round(top), by_round(bottom), strict=True))
    low, mid, high = percentile(pairs, 0.05), median(pairs), p95(pairs)
    d = 1 if mid >= 2 else digits
    return f"per-round ratio: p5 {low:.{d}f}, median {mid:.{d}f}, p95 {high:.{d}f}"


def machine_lines(packages: Iterable[str], extra: str = "") -> list[str]:
    """Date, Python, machine, library versions (and load average) for a report's head."""
    libs = ", ".join(f"{name} {dist_version(name)}" for name in packages)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"date     {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"python   {platform.python_version()} ({platform.python_implementation()})",
        f"machine  {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        f"libs     {libs}, SQLite {sqlite3.sqlite_version}{extra}; load average {load}",
    ]
