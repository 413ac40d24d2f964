"""Audit benchmark: sustained appends, publish cost, durable appends, 4 processes, verify.

Run: ``python bench/audit_bench.py [--quick]``. One run prints every number and PASS/FAIL
against the targets. Everything runs on SQLite (WAL, ``synchronous=FULL``) in a temporary
directory, with an AuditLog built directly: ``SqlAuditStore(create_database_engine(url),
key)`` + ``AuditLog(store, bus=None)``, subscribed to its own ``EventBus``; key = 32
random bytes. Times are ``time.perf_counter_ns``; the garbage collector stays on.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

from sqlalchemy import event, text

from benchlib import machine_lines, verdict
from tradeguard.audit import AuditLog, SqlAuditStore, verify_chain
from tradeguard.audit.chain import Row
from tradeguard.events import EventBus, SecurityEvent
from tradeguard.storage import create_database_engine

EVENT = SecurityEvent(
    "order.approved", actor="bot-1", subject="AAPL", details={"qty": 100, "price": "187.20"}
)
TARGET_SUSTAINED = 50_000.0  # events/s
TARGET_DURABLE = 2_000.0  # appends/s
TARGET_PUBLISH_NS = 5_000.0  # median ns per bus.publish
TARGET_VERIFY = 100_000.0  # records/s
BATCH = 1_000
PROCESSES = 4


class CountingStore(SqlAuditStore):
    """A SqlAuditStore that counts its append transactions (for the mean batch size)."""

    appends = 0

    def append_rows(self, events: Sequence[SecurityEvent]) -> list[Row]:
        """Append and count the transaction (the AuditLog's writer calls this)."""
        self.appends += 1
        return super().append_rows(events)


def open_log(
    path: Path, key: bytes, *, max_queue: int = 100_000, synchronous: str = "FULL"
) -> tuple[AuditLog, CountingStore]:
    """The AuditLog under test (no bus of its own: verify publishes nothing).

    ``synchronous`` other than FULL (the engine's setting) is only for the reference row
    that shows how much of a durable append is the fsync.
    """
    engine = create_database_engine(f"sqlite:///{path}")
    if synchronous != "FULL":

        @event.listens_for(engine, "connect")
        def _relax(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute(f"PRAGMA synchronous = {synchronous}")

        engine.dispose()  # drop the connection opened (with FULL) while building the engine

    store = CountingStore(engine, key)
    return AuditLog(store, bus=None, max_queue=max_queue), store


def subscribed(log: AuditLog) -> EventBus:
    """A bus with ``log`` as its only subscriber."""
    bus = EventBus()
    bus.subscribe(log)
    return bus


def rate(count: int, ns: int) -> float:
    return count / (ns / 1e9)


def bench_sustained(path: Path, key: bytes, n: int) -> tuple[float, float, float]:
    """(a) events/s from the first publish until flush() returns; also the publish-loop
    share and the mean batch size."""
    log, store = open_log(path, key)
    publish = subscribed(log).publish
    clock = time.perf_counter_ns
    start = clock()
    for _ in range(n):
        publish(EVENT)
    published = clock()
    assert log.flush(timeout=None)
    end = clock()
    log.close()
    return rate(n, end - start), (published - start) / (end - start), n / store.appends


def timed_batches(
    op: Callable[[], object], rounds: int, between: Callable[[], object]
) -> list[float]:
    """Mean ns per call of ``BATCH`` calls, ``rounds`` times; ``between`` runs untimed."""
    clock = time.perf_counter_ns
    means = []
    for _ in range(rounds):
        between()
        start = clock()
        for _ in range(BATCH):
            op()
        means.append((clock() - start) / BATCH)
    return means


def bench_publish(path: Path, key: bytes, rounds: int) -> dict[str, list[float]]:
    """(b) ns per call on the caller's thread: publish with the audit log subscribed, and
    two references (a no-op subscriber; ``AuditLog.record`` without the bus)."""
    log, _ = open_log(path, key, max_queue=10 * BATCH * rounds)
    audited, noop = subscribed(log), EventBus()
    noop.subscribe(lambda event: None)
    stamped = replace(EVENT, time=datetime.now(UTC))
    flush = log.flush
    ops: dict[str, Callable[[], object]] = {
        "bus.publish, audit subscribed": lambda: audited.publish(EVENT),
        "bus.publish, no-op subscriber": lambda: noop.publish(EVENT),
        "AuditLog.record (no bus)": lambda: log.record(stamped),
    }
    results: dict[str, list[float]] = {name: [] for name in ops}
    timed_batches(ops["bus.publish, audit subscribed"], 3, flush)  # warm-up
    for _ in range(rounds):  # interleaved, so load on the machine hits all alike
        for name, op in ops.items():
            results[name] += timed_batches(op, 1, flush)
    flush()
    log.close()
    return results


def bench_durable(
    path: Path, key: bytes, threads: int, per_thread: int, synchronous: str = "FULL"
) -> tuple[float, float]:
    """(c) durable appends/s: ``threads`` threads each doing ``per_thread`` sequential
    ``record(event, wait=True)``; also the mean batch (transaction) size."""
    log, store = open_log(path, key, synchronous=synchronous)
    stamped = replace(EVENT, time=datetime.now(UTC))
    log.record(stamped, wait=True)  # warm-up: connection and statement caches
    store.appends = 0
    gate = threading.Barrier(threads + 1)

    def work() -> None:
        gate.wait()
        for _ in range(per_thread):
            log.record(stamped, wait=True)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    gate.wait()
    start = time.perf_counter_ns()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter_ns() - start
    log.close()
    total = threads * per_thread
    return rate(total, elapsed), total / store.appends


def _process_worker(path: str, key: bytes, n: int, index: int, barrier: Barrier) -> None:
    log, _ = open_log(Path(path), key)
    event = replace(EVENT, actor=f"bot-{index + 1}")
    publish = subscribed(log).publish
    barrier.wait(timeout=300)  # a worker that dies before the start breaks it
    for _ in range(n):
        publish(event)
    assert log.flush(timeout=None)
    log.close()


def bench_processes(path: Path, key: bytes, n: int) -> tuple[float, bool, str]:
    """(d) 4 processes, each its own AuditLog on the same file: total events/s, then the
    whole chain verified (ok, 4 x N records, N per process, no gaps)."""
    SqlAuditStore(create_database_engine(f"sqlite:///{path}"), key).close()  # schema + head
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES + 1)
    procs = [
        ctx.Process(target=_process_worker, args=(str(path), key, n, i, barrier))
        for i in range(PROCESSES)
    ]
    for proc in procs:
        proc.start()
    barrier.wait(timeout=300)  # a worker that dies before the start breaks it
    start = time.perf_counter_ns()
    for proc in procs:
        proc.join()
    elapsed = time.perf_counter_ns() - start
    engine = create_database_engine(f"sqlite:///{path}")
    store = SqlAuditStore(engine, key)
    result = store.verify()
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT actor, COUNT(*) FROM tg_audit_record GROUP BY actor"))
        counts = {str(actor): int(count) for actor, count in rows}
        top = conn.execute(text("SELECT MIN(seq), MAX(seq), COUNT(*) FROM tg_audit_record")).one()
    store.close()
    total = PROCESSES * n
    ok = (
        all(p.exitcode == 0 for p in procs)
        and result.ok
        and result.checked == total
        and tuple(top) == (1, total, total)
        and sorted(counts.values()) == [n] * PROCESSES
    )
    detail = f"verify {result}, seq {top[0]}..{top[1]} ({top[2]} rows), per process {counts}"
    return rate(total, elapsed), ok, detail


def bench_verify(path: Path, key: bytes) -> tuple[float, float, int]:
    """(e) records/s of ``SqlAuditStore.verify()`` on the chain from (a); also of
    ``verify_chain`` alone over the records already in memory."""
    store = SqlAuditStore(create_database_engine(f"sqlite:///{path}"), key)
    start = time.perf_counter_ns()
    result = store.verify()
    full = time.perf_counter_ns() - start
    assert result.ok, result
    with store.snapshot() as conn:
        records = list(store.iter_records(conn))
        head = store.head(conn)
    start = time.perf_counter_ns()
    assert verify_chain(key, records, head=head).ok
    pure = time.perf_counter_ns() - start
    store.close()
    return rate(result.checked, full), rate(len(records), pure), result.checked


def machine_info() -> list[str]:
    return machine_lines(("SQLAlchemy", "typer"))


def main() -> int:
    """Run every section once and print the results and verdicts."""
    parser = argparse.ArgumentParser(description="tradeguard audit benchmark")
    parser.add_argument("--quick", action="store_true", help="about a quarter of the work")
    quick: bool = parser.parse_args().quick
    n = 50_000 if quick else 200_000
    rounds = 50 if quick else 200
    sequential, per_thread = (200, 100) if quick else (1_000, 500)
    per_process = 12_500 if quick else 50_000
    key = os.urandom(32)
    home = Path(tempfile.mkdtemp(prefix="tg-audit-bench-"))
    print("\n".join(machine_info()))
    print(f"mode     {'quick' if quick else 'full'}; temp home {home}\n")
    try:
        sustained, share, batch = bench_sustained(home / "a.db", key, n)
        ok_sustained = sustained >= TARGET_SUSTAINED
        print(
            f"(a) sustained: {n:,} events published -> flush() returned: {sustained:,.0f} "
            f"events/s  [{verdict(ok_sustained)} target >= {TARGET_SUSTAINED:,.0f}]"
        )
        print(f"    publish loop {share:.0%} of the wall time; mean batch {batch:,.0f} events")
        per_publish = share / sustained * 1e6  # publish-loop time / n
        print(
            f"    (info) publish loop {per_publish:.2f} us per event, the writer working "
            "alongside (and, once the queue is full, the waits for room)"
        )

        publish = bench_publish(home / "b.db", key, rounds)
        print(f"(b) per-call cost on the caller's thread, {rounds} batches x {BATCH:,}:")
        for name, means in publish.items():
            med, p95 = statistics.median(means), statistics.quantiles(means, n=20)[-1]
            print(f"    {name:32} median {med / 1e3:6.2f} us  p95 {p95 / 1e3:6.2f} us")
        median_publish = statistics.median(publish["bus.publish, audit subscribed"])
        ok_publish = median_publish <= TARGET_PUBLISH_NS
        print(
            f"    publish with audit: {median_publish / 1e3:.2f} us  "
            f"[{verdict(ok_publish)} target <= {TARGET_PUBLISH_NS / 1e3:.0f} us]"
        )

        print("(c) durable appends, record(event, wait=True):")
        durable: dict[int, float] = {}
        for threads, each in ((1, sequential), (8, per_thread), (32, per_thread // 2)):
            durable[threads], batch = bench_durable(home / f"c{threads}.db", key, threads, each)
            print(
                f"    {threads:2} thread(s) x {each:,}: {durable[threads]:8,.0f} appends/s, "
                f"mean batch {batch:.1f}  [{verdict(durable[threads] >= TARGET_DURABLE)}]"
            )
        off, _ = bench_durable(home / "c-off.db", key, 1, sequential, synchronous="OFF")
        print(f"    reference, 1 thread, synchronous=OFF (no fsync, not durable): {off:,.0f}/s")
        passing = [t for t in (1, 8) if durable[t] >= TARGET_DURABLE]
        ok_durable = bool(passing)
        print(
            f"    target >= {TARGET_DURABLE:,.0f}/s: {verdict(ok_durable)} "
            f"(reached with {' and '.join(map(str, passing)) or 'neither 1 nor 8'} thread(s))"
        )

        total_rate, ok_chain, detail = bench_processes(home / "d.db", key, per_process)
        print(
            f"(d) {PROCESSES} processes x {per_process:,}: {total_rate:,.0f} events/s total; "
            f"chain {verdict(ok_chain)}"
        )
        print(f"    {detail}")

        full, pure, checked = bench_verify(home / "a.db", key)
        ok_verify = full >= TARGET_VERIFY
        print(
            f"(e) verify {checked:,} records: {full:,.0f} records/s = "
            f"{1e5 / full:.2f} s per 100,000  [{verdict(ok_verify)} target >= "
            f"{TARGET_VERIFY:,.0f}/s]"
        )
        print(f"    verify_chain alone (records in memory): {pure:,.0f} records/s")
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return 0 if all((ok_sustained, ok_publish, ok_durable, ok_chain, ok_verify)) else 1


if __name__ == "__main__":
    raise SystemExit(main())
