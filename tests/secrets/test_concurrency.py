"""Concurrency and crash safety of the SQL secrets store (SQLite and PostgreSQL).

Check-and-set across processes loses no update, a SIGKILLed writer loses no acknowledged
write, KEK rotation never fails a concurrent reader or writer, and nothing under
TRADEGUARD_HOME ever holds a plaintext value.
"""

from __future__ import annotations

import base64
import json
import multiprocessing
import queue
import random
import secrets
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import helpers_proc
import pytest
from helpers_proc import COUNTER_PATH, open_manager
from sqlalchemy import Engine, select

import tradeguard
from tradeguard.secrets import SecretsManager
from tradeguard.secrets.sql_schema import key_encryption_keys as kek_table
from tradeguard.secrets.sql_schema import secret_versions as versions_table
from tradeguard.storage import create_database_engine


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store.db"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def opened(db_url: str, master_key: bytes) -> Iterator[Callable[[], SecretsManager]]:
    """Open managers over ``db_url`` (cache off); every engine is disposed afterwards."""
    engines: list[Engine] = []

    def open_one() -> SecretsManager:
        manager, engine = open_manager(db_url, master_key)
        engines.append(engine)
        return manager

    yield open_one
    for engine in engines:
        engine.dispose()


def kek_state(url: str) -> tuple[list[int], set[int | None]]:
    """(KEK versions in the table, kek_version values the version rows reference)."""
    engine = create_database_engine(url)
    try:
        with engine.connect() as conn:
            keks = list(
                conn.execute(select(kek_table.c.version).order_by(kek_table.c.version)).scalars()
            )
            used = set(conn.execute(select(versions_table.c.kek_version)).scalars())
    finally:
        engine.dispose()
    return keks, used


# -- a. check-and-set from four processes ----------------------------------------------


@pytest.mark.slow
def test_cas_increments_from_four_processes_lose_no_update(
    db_url: str, master_key: bytes, opened: Callable[[], SecretsManager]
) -> None:
    workers, increments = 4, 50
    manager = opened()
    assert manager.store_secret(COUNTER_PATH, {"n": "0"}, cas=0) == 1
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    results = ctx.Queue()
    procs = [
        ctx.Process(
            target=helpers_proc.cas_increment_worker,
            daemon=True,
            args=(db_url, master_key, increments, start, results),
        )
        for _ in range(workers)
    ]
    try:
        for proc in procs:
            proc.start()
        start.set()
        outcomes = [results.get(timeout=300) for _ in procs]
        for proc in procs:
            proc.join(timeout=60)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=30)
        results.close()
        results.join_thread()
    assert [o for o in outcomes if o[0] != "ok"] == []
    assert [proc.exitcode for proc in procs] == [0] * workers

    total = workers * increments
    meta = manager.secret_metadata(COUNTER_PATH)
    assert meta.current_version == total + 1
    assert [v.version for v in meta.versions] == list(range(1, total + 2))
    assert manager.get_secret(COUNTER_PATH) == {"n": str(total)}
    # version v was written with cas=v-1 from v-1's value: each step added exactly one
    for version in range(1, total + 2):
        assert manager.get_secret(COUNTER_PATH, version=version) == {"n": str(version - 1)}


# -- b. SIGKILL at random moments ------------------------------------------------------


def _run_and_kill(url: str, key: bytes, tag: str, delay: float) -> list[str]:
    """Start a crash writer, SIGKILL it ``delay`` s after its first ACK; its complete lines."""
    command = [sys.executable, helpers_proc.__file__, "crash-writer", url, key.hex(), tag]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        lines: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.put(line)
            lines.put(None)

        reader = threading.Thread(target=pump, daemon=True)
        try:
            reader.start()
            first = lines.get(timeout=120)
            assert first is not None and first.startswith("ACK "), proc.stderr.read()  # type: ignore[union-attr]
            time.sleep(delay)  # crash injection, not a timing assertion
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(timeout=60) == -signal.SIGKILL
            reader.join(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=60)
    out = [first]
    while (line := lines.get(timeout=10)) is not None:
        out.append(line)
    return [line for line in out if line.endswith("\n")]  # a torn last line was not acked


def _check(manager: SecretsManager, engine: Engine, acked: dict[tuple[str, int], str]) -> None:
    """Every acknowledged version reads back exactly; the database file is sound."""
    for (path, version), value in acked.items():
        assert manager.get_secret(path, version=version) == {"v": value}
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"


@pytest.mark.slow
def test_sigkilled_writer_loses_no_acknowledged_write(tmp_path: Path, master_key: bytes) -> None:
    url = f"sqlite:///{tmp_path}/crash.db"
    rng = random.Random(0x7D6_2024)
    acked: dict[tuple[str, int], str] = {}
    rotations = 0
    for run in range(20):
        new: dict[tuple[str, int], str] = {}
        for line in _run_and_kill(url, master_key, f"r{run}", rng.uniform(0.05, 0.5)):
            kind, *rest = line.split()
            if kind == "ROT":
                rotations += 1
                continue
            assert kind == "ACK", line
            path, number, value = rest
            key = (path, int(number))
            assert key not in acked and key not in new, f"{key} was acknowledged twice"
            new[key] = value
        assert new, f"run {run} acknowledged nothing"
        acked.update(new)
        manager, engine = open_manager(url, master_key)
        try:
            _check(manager, engine, new)
        finally:
            engine.dispose()

    manager, engine = open_manager(url, master_key)
    try:
        _check(manager, engine, acked)
        for path in manager.list_secrets("crash/"):
            meta = manager.secret_metadata(path)
            assert [v.version for v in meta.versions] == list(range(1, meta.current_version + 1))
        assert manager.store_secret("crash/after", {"v": "ok"}) == 1
        newest = manager.rotate_key()
        assert kek_state(url) == ([newest], {newest})
        assert manager.get_secret("crash/after") == {"v": "ok"}
        _check(manager, engine, acked)
    finally:
        engine.dispose()
    assert rotations > 0  # some kills could land during or after a rotation


# -- c. rotation under concurrent readers and writers ----------------------------------


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


@pytest.mark.parametrize("shared", [True, False], ids=["shared-manager", "own-managers"])
def test_rotation_never_fails_a_concurrent_reader(
    db_url: str, opened: Callable[[], SecretsManager], shared: bool
) -> None:
    manager = opened()
    values = {f"rot/s{i:03d}": {"v": secrets.token_hex(12)} for i in range(300)}
    for path, data in values.items():
        manager.store_secret(path, data)
    readers = [manager if shared else opened() for _ in range(4)]
    stop = threading.Event()
    counts = [0] * len(readers)
    failures: list[str] = []

    def read_loop(index: int) -> None:
        rng, paths = random.Random(index), sorted(values)
        while not stop.is_set():
            path = rng.choice(paths)
            try:
                got = readers[index].get_secret(path)
            except Exception as exc:
                failures.append(f"{path}: {exc!r}")
                continue
            if got != values[path]:
                failures.append(f"{path}: wrong value")
            counts[index] += 1

    threads = [
        threading.Thread(target=read_loop, args=(i,), daemon=True) for i in range(len(readers))
    ]
    try:
        for thread in threads:
            thread.start()
        _wait_for(lambda: all(counts), "every reader to read")
        during = 0
        rotated = []
        for _ in range(3):
            before = sum(counts)
            rotated.append(manager.rotate_key())
            during += sum(counts) - before
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert failures == []
    assert during > 0  # readers really ran while the key rotated
    assert rotated == [2, 3, 4]
    assert kek_state(db_url) == ([4], {4})
    fresh = opened()
    assert {path: fresh.get_secret(path) for path in values} == values


@pytest.mark.parametrize("shared", [True, False], ids=["shared-manager", "own-manager"])
def test_rotation_keeps_concurrent_writes_readable(
    db_url: str, opened: Callable[[], SecretsManager], shared: bool
) -> None:
    manager = opened()
    for i in range(100):
        manager.store_secret(f"seed/s{i:03d}", {"v": f"seed-{i}"})
    writer = manager if shared else opened()
    stop = threading.Event()
    written: dict[str, str] = {}
    failures: list[str] = []

    def write_loop() -> None:
        i = 0
        while not stop.is_set():
            path, value = f"new/w{i:05d}", secrets.token_hex(10)
            try:
                writer.store_secret(path, {"v": value})
            except Exception as exc:
                failures.append(f"{path}: {exc!r}")
                return
            written[path] = value
            i += 1

    thread = threading.Thread(target=write_loop, daemon=True)
    try:
        thread.start()
        _wait_for(lambda: len(written) > 0 or bool(failures), "the first write")
        during = 0
        for _ in range(3):
            before = len(written)
            manager.rotate_key()
            during += len(written) - before
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not thread.is_alive()
    assert failures == []
    assert during > 0  # writes really landed while the key rotated
    fresh = opened()
    assert {p: fresh.get_secret(p)["v"] for p in written} == written
    assert all(fresh.get_secret(f"seed/s{i:03d}") == {"v": f"seed-{i}"} for i in range(100))
    newest = manager.rotate_key()  # a quiet rotation retires every older KEK
    assert kek_state(db_url) == ([newest], {newest})
    assert {p: fresh.get_secret(p)["v"] for p in written} == written


# -- d. no plaintext at rest -----------------------------------------------------------


def _encodings(value: str) -> list[bytes]:
    return [value.encode(), value.encode("utf-16-le"), json.dumps(value).encode()[1:-1]]


def test_no_plaintext_under_home(isolated_home: Path) -> None:
    values = [secrets.token_hex(40) for _ in range(8)] + ["пароль-秘密-🔑-" + secrets.token_hex(16)]
    paths = [f"bots/b{i}" for i in range(len(values))]
    for path, value in zip(paths, values, strict=True):
        assert tradeguard.store_secret(path, {"api_key": value}) == 1
    more = [secrets.token_hex(32) for _ in range(3)]
    for path, value in zip(paths, more, strict=False):
        assert tradeguard.store_secret(path, {"api_key": value, "note": "v2"}) == 2
    manager = tradeguard.get_secrets_manager()
    manager.rotate_key()
    manager.delete_secret(paths[4])
    manager.destroy_secret(paths[5])
    manager.destroy_secret(paths[0], versions=[1])
    late = "after-rotation-" + secrets.token_hex(24)
    tradeguard.store_secret("bots/late", {"api_key": late})
    assert tradeguard.get_secret(paths[8]) == {"api_key": values[8]}
    assert tradeguard.get_secret(paths[1]) == {"api_key": more[1], "note": "v2"}

    key_file = isolated_home / "master.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    master = base64.urlsafe_b64decode(key_file.read_text().strip() + "==")
    files = [p for p in isolated_home.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"master.key", "tradeguard.db"} <= names
    for file in files:
        content = file.read_bytes()
        for value in [*values, *more, late]:
            for encoded in _encodings(value):
                assert encoded not in content, f"a plaintext value is in {file.name}"
        if file != key_file:
            assert master not in content and master.hex().encode() not in content
            assert key_file.read_bytes().strip() not in content
        mode = stat.S_IMODE(file.stat().st_mode)
        assert mode & 0o077 == 0, f"{file.name} is readable by others (mode {mode:o})"
