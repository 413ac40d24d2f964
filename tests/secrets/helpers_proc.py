"""Top-level process targets for the concurrency and crash tests.

Importable as ``helpers_proc`` (pytest puts this directory on ``sys.path``, and a spawned
child inherits the parent's path), and runnable as a script for the crash harness::

    python helpers_proc.py crash-writer DB_URL MASTER_KEY_HEX RUN_TAG
"""

from __future__ import annotations

import sys
import traceback
from typing import Any

from sqlalchemy import Engine

from tradeguard.errors import VersionConflict
from tradeguard.secrets import SecretsManager, SqlSecretsBackend
from tradeguard.storage import create_database_engine

COUNTER_PATH = "counter/n"
CRASH_PATHS = 5
CRASH_ROTATE_EVERY = 12


def open_manager(url: str, key: bytes) -> tuple[SecretsManager, Engine]:
    """A manager over ``url`` with the cache off (every read goes to the database).

    The caller disposes the engine (an open psycopg connection left to the garbage
    collector warns, and the test suite turns warnings into errors).
    """
    engine = create_database_engine(url)
    return SecretsManager(SqlSecretsBackend(engine, key), cache_ttl=0), engine


def cas_increment_worker(url: str, key: bytes, increments: int, start: Any, results: Any) -> None:
    """Do ``increments`` successful check-and-set increments of ``COUNTER_PATH``.

    Each attempt reads the current version number first, then exactly that version's value,
    so the pair is consistent; a lost race shows up as VersionConflict and is retried.
    Puts ("ok", conflicts) or ("error", traceback) on ``results``.
    """
    try:
        manager, engine = open_manager(url, key)
        start.wait(60)
        conflicts = 0
        done = 0
        while done < increments:
            current = manager.secret_metadata(COUNTER_PATH).current_version
            value = manager.get_secret(COUNTER_PATH, version=current)
            try:
                manager.store_secret(COUNTER_PATH, {"n": str(int(value["n"]) + 1)}, cas=current)
            except VersionConflict:
                conflicts += 1
                continue
            done += 1
        engine.dispose()
        results.put(("ok", conflicts))
    except BaseException:
        results.put(("error", traceback.format_exc()))
        raise


def crash_value(tag: str, i: int) -> str:
    """The value the crash writer stores on its ``i``-th write of run ``tag``."""
    return f"{tag}-{i}-" + "x" * (i % 37)


def crash_writer(url: str, key_hex: str, tag: str) -> None:
    """Write forever, printing ``ACK path version value`` after each write returns.

    Every ``CRASH_ROTATE_EVERY`` writes it also rotates the KEK (printing ``ROT version``),
    so a kill can land in the middle of a rotation as well as of a write.
    """
    manager, _engine = open_manager(url, bytes.fromhex(key_hex))
    out = sys.stdout
    i = 0
    while True:
        path = f"crash/k{i % CRASH_PATHS}"
        value = crash_value(tag, i)
        version = manager.store_secret(path, {"v": value})
        out.write(f"ACK {path} {version} {value}\n")
        out.flush()
        i += 1
        if i % CRASH_ROTATE_EVERY == 0:
            out.write(f"ROT {manager.rotate_key()}\n")
            out.flush()


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "crash-writer":
        crash_writer(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit("usage: helpers_proc.py crash-writer DB_URL MASTER_KEY_HEX RUN_TAG")
