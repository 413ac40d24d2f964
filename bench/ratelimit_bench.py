"""Rate limiting benchmark: in-process decisions/s against the ``limits`` library, and Redis.

Run: ``python bench/ratelimit_bench.py [--quick]`` (needs ``pip install limits``, which is
benchmark-only, and ``redis-server`` on PATH for the Redis part; ``--no-redis`` skips it).

In process, one window of ``100/second`` two ways:

- **allow-heavy**: the limit is raised to ``1000000000/second`` (same single-window shape),
  so every decision is an allow that writes state;
- **mixed**: ``100/second`` hammered by one identity: a burst of 100, then mostly denials
  with one allow every 10 ms.

Contenders, all on one identity, all with the library's default clock: tradeguard's
``RateLimiter.rate_limit`` on a ``MemoryStore`` (no event bus), and ``limits``'
``SlidingWindowCounterRateLimiter`` and ``MovingWindowRateLimiter`` on
``limits.storage.MemoryStorage()`` calling ``hit(item, "alice")``. Target: tradeguard
>= 3x the sliding-window counter in both scenarios.

Over Redis (a private ``redis-server`` from ``tests/servers.py``, loopback TCP): decisions/s
for ``100/second`` and for the two-window ``order_submissions`` default, next to ``limits``'
Redis sliding-window counter for context; and the round trips per decision, counted with
MONITOR (commands sent by the client, excluding those the script runs inside Redis).

Method: each round runs one batch of every contender in a shuffled order; a contender's
rate is the median over rounds of its per-batch rate, and each ratio is computed per round
(paired batches) and reported as its median, which is the judged number. In-process
batches are timed in CPU time of the benchmark thread (``time.thread_time_ns``), so time
the VM spends running other processes is not charged to whichever contender it hit;
Redis batches, which wait on the network, in wall time (``time.perf_counter_ns``). GC
stays on.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import Any

import limits
import limits.storage
import limits.strategies

from tradeguard.guard.ratelimit import MemoryStore, RateLimiter, RedisStore
from tradeguard.storage.redis_client import create_redis_client

TARGET = 3.0
median = statistics.median


def batch_rate(op: Callable[[], object], calls: int, clock: Callable[[], int]) -> float:
    """Decisions per second over ``calls`` back-to-back calls, timed on ``clock``."""
    start = clock()
    for _ in range(calls):
        op()
    return calls * 1e9 / (clock() - start)


def measure(
    ops: dict[str, Callable[[], object]],
    rounds: int,
    calls: int,
    clock: Callable[[], int] = time.thread_time_ns,
) -> dict[str, list[float]]:
    """Per-round rates of every op, run in a shuffled order each round (one warm-up round)."""
    rates: dict[str, list[float]] = {name: [] for name in ops}
    names = list(ops)
    for round_no in range(rounds + 1):
        random.shuffle(names)
        for name in names:
            rate = batch_rate(ops[name], calls, clock)
            if round_no:
                rates[name].append(rate)
    return rates


def in_process(spec: str) -> dict[str, Callable[[], object]]:
    ours = RateLimiter({"x": spec}, store=MemoryStore())
    item = limits.parse(spec)
    counter = limits.strategies.SlidingWindowCounterRateLimiter(limits.storage.MemoryStorage())
    moving = limits.strategies.MovingWindowRateLimiter(limits.storage.MemoryStorage())
    return {
        "tradeguard RateLimiter (MemoryStore)": lambda: ours.rate_limit("alice", "x"),
        "limits SlidingWindowCounter": lambda: counter.hit(item, "alice"),
        "limits MovingWindow": lambda: moving.hit(item, "alice"),
    }


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    return ordered[round(q * (len(ordered) - 1))]


def report(title: str, rates: dict[str, list[float]], judged: bool) -> bool:
    """Print rates and the per-round ratios of the first contender to each ``limits`` one."""
    print(f"\n{title}")
    print(f"  {'contender':<44} {'median/s':>12} {'p5/s':>12} {'p95/s':>12}")
    for name, values in rates.items():
        print(f"  {name:<44} {median(values):>12,.0f} {pct(values, 0.05):>12,.0f} "
              f"{pct(values, 0.95):>12,.0f}")  # fmt: skip
    ours, *others = rates
    ok = True
    for other in (name for name in others if name.startswith("limits")):
        pairs = [a / b for a, b in zip(rates[ours], rates[other], strict=True)]
        ratio = median(pairs)
        spread = f"per-round p5 {pct(pairs, 0.05):.2f}, p95 {pct(pairs, 0.95):.2f}"
        verdict = "info"
        if judged and "SlidingWindowCounter" in other:
            verdict = f"target >= {TARGET:.0f}x  {'PASS' if ratio >= TARGET else 'FAIL'}"
            ok = ok and ratio >= TARGET
        print(f"  ours / {other:<36} {ratio:6.2f}x  {verdict}  ({spread})")
    return ok


def round_trips(client: Any, url: str, decisions: int) -> tuple[int, dict[str, int]]:
    """Client commands seen by MONITOR while ``decisions`` two-window decisions run."""
    limiter = RateLimiter(store=RedisStore(client, "bench-rt:"))
    limiter.rate_limit("warm", "order_submissions")
    watcher = create_redis_client(url)
    seen: dict[str, int] = {}
    with watcher.monitor() as monitor:
        for i in range(decisions):
            limiter.rate_limit(f"user{i % 50}", "order_submissions")
        client.echo("bench-done")
        while (entry := monitor.next_command())["command"] != "ECHO bench-done":
            if entry["client_type"] != "lua":
                name = entry["command"].split()[0]
                seen[name] = seen.get(name, 0) + 1
    watcher.close()
    return decisions, seen


def over_redis(rounds: int, calls: int) -> bool:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from servers import start_redis  # the test suite's throwaway server

    server = start_redis()
    try:
        client = create_redis_client(server.url)
        single = RateLimiter({"x": "1000000000/second"}, store=RedisStore(client, "bench-1:"))
        double = RateLimiter(store=RedisStore(client, "bench-2:"))
        counter = limits.strategies.SlidingWindowCounterRateLimiter(
            limits.storage.RedisStorage(server.url)
        )
        item = limits.parse("1000000000/second")
        ops: dict[str, Callable[[], object]] = {
            "tradeguard RedisStore, 1 window": lambda: single.rate_limit("alice", "x"),
            "tradeguard RedisStore, 2 windows (orders)": lambda: double.rate_limit(
                "alice", "order_submissions"
            ),
            "limits SlidingWindowCounter (Redis)": lambda: counter.hit(item, "alice"),
        }
        report(
            f"over Redis (allow-heavy; {rounds} rounds x {calls})",
            measure(ops, rounds, calls, time.perf_counter_ns),
            False,
        )
        decisions, seen = round_trips(client, server.url, 1000)
        one = seen == {"EVALSHA": decisions}
        print(
            f"\n  round trips: {decisions} two-window decisions sent {sum(seen.values())} "
            f"commands {seen}  -> {'PASS' if one else 'FAIL'} (target: exactly one EVALSHA each)"
        )
        client.close()
        return one
    finally:
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description="tradeguard rate limiting benchmark")
    parser.add_argument("--quick", action="store_true", help="fewer rounds (not judged)")
    parser.add_argument("--no-redis", action="store_true", help="skip the Redis part")
    args = parser.parse_args()
    rounds, calls = (7, 5_000) if args.quick else (31, 20_000)
    print("tradeguard rate limiting benchmark" + ("  [--quick]" if args.quick else ""))
    print(
        f"  {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.python_implementation()} "
        f"{platform.python_version()}, {platform.machine()}, limits {dist_version('limits')}, "
        f"redis-py {dist_version('redis')}"
    )
    ok = report(
        f"in process, allow-heavy (1000000000/second; {rounds} rounds x {calls} calls)",
        measure(in_process("1000000000/second"), rounds, calls),
        True,
    )
    ok = (
        report(
            f"in process, mixed (100/second; {rounds} rounds x {calls} calls)",
            measure(in_process("100/second"), rounds, calls),
            True,
        )
        and ok
    )
    if not args.no_redis:
        ok = over_redis(max(5, rounds // 3), max(500, calls // 20)) and ok
    print("\nverdict:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
