# mypy: disable-error-code="import-not-found"
"""Pre-trade risk benchmark: ``RiskEngine.check`` against NautilusTrader's RiskEngine.

Run: ``python bench/risk_bench.py [--quick] [--profile]`` (needs the benchmark-only
``pip install nautilus_trader==1.221.0``). Prints medians, p99, the ratio and PASS/FAIL.

Ours: 20,000 pre-built, distinct limit orders (5 symbols, buy and sell, within 1 % of the
quote) through an engine with every check on (``FULL``) and a real ``MarketCalendar``: venue
XNYS at a simulated Tuesday 09:45 New York, the clock advancing 1 ms per order. The account
snapshot (positions in all 5 symbols, quotes stamped "now") is rebuilt every simulated
second, as a bot refreshes it; approved orders are cancelled once 32 newer ones are open.
Snapshots, clock and cancels happen outside the timed call. "minimal": a second engine with
only the checks Nautilus runs here (order notional, order rate; plus our always-on ones).
Nautilus: set up as its ``TestRiskEngineWithCashAccount`` (TestClock, MessageBus, Cache,
Portfolio, ExecutionEngine, a CASH account from TestEventStubs, equities on venue SIM) with
max_notional_per_order and max_order_submit_rate set; ``RiskEngine.execute(SubmitOrder)`` on
the same orders, its clock advancing alike, the ExecEngine endpoints replaced by counters.
Rejections: ours refuses GME, restricted and 20 % off its quote (2 violations); Nautilus
denies an order over its notional cap (it stops at the first failed check).

Method: each call timed alone with ``time.perf_counter_ns`` (timer cost shown, not
subtracted); each round runs every contender's batch in a shuffled order, after a discarded
warm-up; median and p99 over all calls, the ratio also per round. Every round (and the
warm-up) checks order objects of its own, built before timing: nothing cached on an order
by an earlier round (such as a Decimal's hash) helps a later one. GC stays on. Memory:
1,000,000 more checks (200,000 with --quick) under tracemalloc, with ``engine.stats()``.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import platform
import pstats
import random
import statistics
import time
import timeit
import tracemalloc
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib.metadata import version as dist_version
from typing import Any

from benchlib import fmt
from tradeguard.clock import FixedClock
from tradeguard.risk import AccountState, Order, OrderType, Quote, RiskEngine, RiskLimits, Side
from tradeguard.risk.calendar import MarketCalendar
from tradeguard.risk.checks_flow import market_status, plan
from tradeguard.risk.state import RiskState, micros

T0 = datetime(2026, 11, 24, 14, 45, tzinfo=UTC)  # a Tuesday, 09:45 in New York
STEP = timedelta(milliseconds=1)  # per order: 1,000 orders per simulated second
REF = {"AAPL": "190.00", "MSFT": "420.00", "SPY": "590.00", "JPM": "240.00", "XOM": "110.00"}
HELD = {"AAPL": 400, "MSFT": 100, "SPY": -50, "JPM": 200, "XOM": 300}
OURS, THEIRS = "ours: every check, XNYS calendar", "nautilus: RiskEngine.execute(SubmitOrder)"
KEEP_OPEN, CAP, TARGET_P99_NS, CENT = 32, 100_000, 30_000.0, Decimal("0.01")
FULL = RiskLimits(
    max_order_quantity=10_000, max_order_notional=CAP, max_position_quantity=5_000,
    max_position_notional=400_000, max_concentration="0.25", max_gross_exposure="2.0",
    price_collar="0.05", max_quote_age=60, order_rate="100000/second",
    symbol_order_rate="100000/second", duplicate_window=2, max_open_orders=1_000,
    max_daily_loss=50_000, max_daily_loss_fraction="0.05", restricted_symbols=["GME", "AMC"],
)  # fmt: skip
MINIMAL = RiskLimits(
    max_order_quantity=None, max_order_notional=CAP, max_concentration=None,
    max_gross_exposure=None, price_collar=None, max_quote_age=None, order_rate="100000/second",
    symbol_order_rate=None, duplicate_window=None, max_open_orders=None,
    max_daily_loss_fraction=None,
)  # fmt: skip
Spec = tuple[str, Side, int, Decimal]  # symbol, side, quantity, limit price
EMPTY = "empty call"


def specs(n: int) -> list[Spec]:
    """Limit orders within 1 % of the quote, every check passing; the pattern repeats only
    after lcm(10, 53, 199) = 105,470 orders, so no two are alike."""
    out: list[Spec] = []
    for i in range(n):
        symbol = list(REF)[i % 5]
        price = (Decimal(REF[symbol]) * (1 + Decimal(i % 199 - 99) / 10_000)).quantize(CENT)
        out.append((symbol, Side.BUY if i // 5 % 2 else Side.SELL, 1 + i % 53, price))
    return out


def rejections(n: int) -> tuple[list[Spec], list[Spec]]:
    """Ours: GME (restricted) 20 % over its quote; Nautilus: AAPL over its notional cap."""
    ours = [("GME", Side.BUY, 1 + i % 50, Decimal("28.80") + i % 100 * CENT) for i in range(n)]
    return ours, [("AAPL", Side.BUY, 600 + i % 50, Decimal("190.00")) for i in range(n)]


def snapshot(at: datetime) -> AccountState:
    quotes = {s: Quote(p, at) for s, p in (*REF.items(), ("GME", "24.00"))}
    return AccountState(
        account_value=2_000_000, cash=900_000, positions=HELD, prices=quotes,
        realized_pnl_today=-1_000, unrealized_pnl=500,
    )  # fmt: skip


class Ours:
    """One tradeguard engine, its account snapshot and the order lifecycle around it."""

    def __init__(self, limits: RiskLimits, clock: FixedClock, calendar: Any) -> None:
        self.engine = RiskEngine(limits, calendar=calendar, clock=clock)
        self.clock, self.account, self.refresh = clock, snapshot(clock.now()), clock.now()
        self.opened: deque[str] = deque()
        self.codes: set[tuple[str, ...]] = set()

    def run(self, orders: list[Order]) -> list[int]:
        clock, check, clock_ns, times = self.clock, self.engine.check, time.perf_counter_ns, []
        for order in orders:
            clock.advance(STEP)
            now = clock.now()
            if now >= self.refresh:
                self.account, self.refresh = snapshot(now), now + timedelta(seconds=1)
            start = clock_ns()
            decision = check(order, self.account)
            times.append(clock_ns() - start)
            if not decision.approved:
                self.codes.add(decision.codes)
                continue
            self.opened.append(decision.client_order_id)
            if len(self.opened) > KEEP_OPEN:
                self.engine.on_cancel(self.opened.popleft())
        return times


def our_orders(batch: list[Spec], tag: str) -> list[Order]:
    return [
        Order(s, side, Decimal(q), OrderType.LIMIT, p, venue="XNYS", client_order_id=f"{tag}{i}")
        for i, (s, side, q, p) in enumerate(batch)
    ]


def nautilus(batches: list[list[Spec]]) -> tuple[Callable[[list[Any]], list[int]], list[Any]]:
    """Nautilus' RiskEngine, set up as in its unit tests; its runner and SubmitOrder batches."""
    from nautilus_trader.common.component import MessageBus, TestClock
    from nautilus_trader.common.factories import OrderFactory
    from nautilus_trader.config import ExecEngineConfig, RiskEngineConfig
    from nautilus_trader.core.uuid import UUID4
    from nautilus_trader.execution.engine import ExecutionEngine
    from nautilus_trader.execution.messages import SubmitOrder
    from nautilus_trader.model.enums import OrderSide
    from nautilus_trader.model.identifiers import StrategyId
    from nautilus_trader.model.objects import Price, Quantity
    from nautilus_trader.portfolio.portfolio import Portfolio
    from nautilus_trader.risk.engine import RiskEngine as NautilusRiskEngine
    from nautilus_trader.test_kit.providers import TestInstrumentProvider
    from nautilus_trader.test_kit.stubs import component, events, identifiers

    clock, trader = TestClock(), identifiers.TestIdStubs.trader_id()
    bus, cache = MessageBus(trader_id=trader, clock=clock), component.TestComponentStubs.cache()
    portfolio = Portfolio(msgbus=bus, cache=cache, clock=clock)
    executor = ExecutionEngine(msgbus=bus, cache=cache, clock=clock, config=ExecEngineConfig())
    instruments = {s: TestInstrumentProvider.equity(s, "SIM") for s in REF}
    for instrument in instruments.values():
        cache.add_instrument(instrument)
    caps = {str(i.id): CAP for i in instruments.values()}
    config = RiskEngineConfig(max_order_submit_rate="100000/00:00:01", max_notional_per_order=caps)
    risk = NautilusRiskEngine(portfolio, bus, cache, clock, config)
    portfolio.update_account(events.TestEventStubs.cash_account_state())  # else no notional
    assert cache.account_for_venue(instruments["AAPL"].id.venue) is not None
    sent: list[Any] = []
    denied: list[Any] = []
    for handler, counter in ((executor.execute, sent), (executor.process, denied)):
        endpoint = f"ExecEngine.{handler.__name__}"
        bus.deregister(endpoint, handler)
        bus.register(endpoint, counter.append)
    factory = OrderFactory(trader_id=trader, strategy_id=StrategyId("BENCH-001"), clock=clock)
    sides = {Side.BUY: OrderSide.BUY, Side.SELL: OrderSide.SELL}

    def submit(symbol: str, side: Side, quantity: int, price: Decimal) -> Any:
        amount, limit = Quantity.from_int(quantity), Price.from_str(str(price))
        order = factory.limit(instruments[symbol].id, sides[side], amount, limit)
        return SubmitOrder(trader, order.strategy_id, order, UUID4(), 0)

    commands = [[submit(*spec) for spec in batch] for batch in batches]
    ns, step = [int(T0.timestamp()) * 10**9], STEP // timedelta(microseconds=1) * 1_000

    def run(batch: list[Any]) -> list[int]:
        execute, clock_ns, times, before = risk.execute, time.perf_counter_ns, [], len(sent)
        for command in batch:
            ns[0] += step
            clock.set_time(ns[0])
            start = clock_ns()
            execute(command)
            times.append(clock_ns() - start)
        assert len(sent) - before in (0, len(batch)), "nautilus sent only part of a batch"
        return times

    return run, commands


def pct(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))])


def memory(ours: Ours, orders: list[Order], total: int) -> list[tuple[int, float, float, Any]]:
    """(checks done, tracemalloc current MB, peak MB, engine.stats()) at checkpoints."""
    rows: list[tuple[int, float, float, Any]] = []
    tracemalloc.start()
    done = 0
    for mark in (0, total // 10, total // 2, 3 * total // 4, total):
        while done < mark:
            done += len(ours.run(orders[: mark - done]))
        current, peak = tracemalloc.get_traced_memory()
        rows.append((done, current / 1e6, peak / 1e6, ours.engine.stats()))
    tracemalloc.stop()
    return rows


def profile(ours: Ours, orders: list[Order], calendar: MarketCalendar) -> None:
    """cProfile of one round; then each part of a check alone (median of 20 x 1,000 calls)."""
    profiler = cProfile.Profile()
    profiler.runcall(ours.run, orders)
    pstats.Stats(profiler).strip_dirs().sort_stats("tottime").print_stats(14)
    order, now = orders[0], ours.clock.now()
    account, now_us = snapshot(now), micros(now)
    state = RiskState.build(order, account, FULL, now_us)
    parts: dict[str, Callable[[], object]] = {
        EMPTY: lambda: None,
        "micros(now)": lambda: micros(now),
        "market_status -> MarketCalendar.is_open": lambda: market_status(calendar, "XNYS", now),
        "RiskState.build": lambda: RiskState.build(order, account, FULL, now_us),
    }
    for check in plan(FULL, market_hours=True):
        parts[check.__name__] = lambda c=check: c(order, FULL, state, now)  # type: ignore[misc]
    total = 0.0
    for name, call in parts.items():
        cost = statistics.median(timeit.repeat(call, number=1_000, repeat=20)) * 1e6
        total += cost if name != EMPTY else 0.0
        print(f"  {name:<44} {fmt(cost):>9}")
    print(f"  {'sum (empty call excluded)':<44} {fmt(total):>9}")


def main() -> int:
    parser = argparse.ArgumentParser(description="tradeguard pre-trade risk benchmark")
    parser.add_argument("--quick", action="store_true", help="2 rounds, 200,000 memory checks")
    parser.add_argument("--profile", action="store_true", help="then cProfile, per-part costs")
    args = parser.parse_args()
    rounds, memory_checks, n = (2, 200_000, 20_000) if args.quick else (5, 1_000_000, 20_000)
    clock = FixedClock(T0)
    calendar = MarketCalendar(clock=clock)
    assert calendar.is_open("XNYS", T0), "XNYS must be open at T0"
    full, minimal = Ours(FULL, clock, calendar), Ours(MINIMAL, clock, None)
    approve, (ours_reject, their_reject) = specs(n), rejections(n // 10)
    # fresh order objects for the warm-up and for every round, for every contender: a real
    # order is checked once (objects reused across rounds would carry cached hashes)
    batches = rounds + 1
    orders = [our_orders(approve, f"a{r}-") for r in range(batches)]
    alike = [our_orders(approve, f"m{r}-") for r in range(batches)]
    refused = [our_orders(ours_reject, f"r{r}-") for r in range(batches)]
    run_theirs, made = nautilus([approve] * batches + [their_reject] * batches)
    commands, denials = made[:batches], made[batches:]
    steps: dict[str, Callable[[int, int], list[int]]] = {
        OURS: lambda r, k: full.run(orders[r][:k]),
        "ours: minimal (Nautilus' checks + always-on)": lambda r, k: minimal.run(alike[r][:k]),
        THEIRS: lambda r, k: run_theirs(commands[r][:k]),
        "ours: rejection, 2 violations": lambda r, k: full.run(refused[r][: k // 10]),
        "nautilus: denial, notional over cap": lambda r, k: run_theirs(denials[r][: k // 10]),
    }
    for step in steps.values():
        step(rounds, 2_000)  # warm-up (the last batch), discarded
    samples: dict[str, list[list[int]]] = {name: [] for name in steps}
    names = list(steps)
    for r in range(rounds):
        random.shuffle(names)
        for name in names:
            samples[name].append(steps[name](r, n))
    timer = [-time.perf_counter_ns() + time.perf_counter_ns() for _ in range(100_000)]
    mem = memory(full, orders[0], memory_checks)
    assert full.codes == {("RESTRICTED_SYMBOL", "PRICE_COLLAR")} and not minimal.codes, full.codes

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    libs = ", ".join(f"{p} {dist_version(p)}" for p in ("nautilus_trader", "exchange_calendars"))
    print("tradeguard pre-trade risk benchmark" + ("  [--quick]" if args.quick else ""))
    print(f"  date {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; load average {load}")
    print(f"  {platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} cores, {platform.machine()}; {libs}")  # fmt: skip
    print(f"  {rounds} rounds x {n:,} orders ({n // 10:,} rejections), simulated time from "
          f"{T0:%Y-%m-%d %H:%M} UTC, +1 ms per order\n")  # fmt: skip
    print(f"{'contender':<46} {'median':>9} {'p99':>9}  {'per-round medians':>19}  calls")
    medians: dict[str, list[float]] = {}
    for name, runs in samples.items():
        flat = [t for run in runs for t in run]
        medians[name] = [statistics.median(run) for run in runs]
        spread = f"{fmt(min(medians[name]))}-{fmt(max(medians[name]))}"
        print(f"{name:<46} {fmt(statistics.median(flat)):>9} {fmt(pct(flat, 0.99)):>9}  "
              f"{spread:>19}  {len(flat):,}")  # fmt: skip
    empty = "timer: an empty perf_counter_ns pair"
    print(f"{empty:<46} {fmt(statistics.median(timer)):>9} {fmt(pct(timer, 0.99)):>9}")

    ours_flat, their_flat = ([t for run in samples[k] for t in run] for k in (OURS, THEIRS))
    ratio = statistics.median(ours_flat) / statistics.median(their_flat)
    per_round = sorted(a / b for a, b in zip(medians[OURS], medians[THEIRS], strict=True))
    p99 = pct(ours_flat, 0.99)
    print("\nmemory over more checks ('every check' engine; tracemalloc from the first row)")
    print(f"  {'checks':>9} {'current':>10} {'peak':>10} {'rate entries':>13} {'duplicates':>11} "
          f"{'open':>5} {'rate keys':>10}")  # fmt: skip
    for done, current, peak, stats in mem:
        keys = stats["account_rate_keys"] + stats["symbol_rate_keys"]
        print(f"  {done:>9,} {current:>7.2f} MB {peak:>7.2f} MB {stats['rate_entries']:>13,} "
              f"{stats['duplicates']:>11,} {stats['open_orders']:>5} {keys:>10}")  # fmt: skip
    grew = mem[-1][1] - mem[-2][1]
    flat_tail = mem[-1][3]["rate_entries"] == mem[-2][3]["rate_entries"]
    ok = {"median": ratio < 1.0, "p99": p99 <= TARGET_P99_NS, "memory": flat_tail and grew < 1}
    verdict = {k: "PASS" if v else "FAIL" for k, v in ok.items()}
    if args.quick:
        verdict["memory"] = "not judged (--quick: the rate windows are still filling)"
    print("\ntargets")
    print(f"  ours / nautilus median  {ratio:6.2f}  per round {per_round[0]:.2f}-"
          f"{per_round[-1]:.2f}; target < 1 (aim 0.5)   {verdict['median']}")  # fmt: skip
    print(f"  ours p99             {fmt(p99):>9}  target <= {fmt(TARGET_P99_NS)}"
          f"                  {verdict['p99']}")  # fmt: skip
    print(f"  memory, last quarter  {grew:+6.2f} MB, rate entries flat: {flat_tail}"
          f"          {verdict['memory']}")  # fmt: skip
    if args.profile:
        print("\ncProfile of one round of 'every check' (top 14 by own time)")
        profile(full, orders[0], calendar)
    return 0 if all(ok.values()) or args.quick else 1


if __name__ == "__main__":
    raise SystemExit(main())
