"""Database URL -> SQLAlchemy engine.

SQLite (the embedded default) runs in WAL mode with ``synchronous=FULL``, foreign keys and
``secure_delete`` on; write transactions start with ``BEGIN IMMEDIATE`` so two writers never
deadlock on a lock upgrade. PostgreSQL goes through psycopg 3 (the ``postgres`` extra).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from tradeguard.errors import ConfigurationError

SQLITE_BUSY_TIMEOUT_MS = 30_000


def scheme_of(url: str) -> str:
    """The scheme of ``url`` alone (safe to put in an error message)."""
    return urlsplit(url).scheme.lower() if "://" in url else "(none)"


def is_sqlite(engine: Engine) -> bool:
    """Whether ``engine`` talks to SQLite."""
    return engine.dialect.name == "sqlite"


def create_database_engine(url: str) -> Engine:
    """Build an engine for ``sqlite:///path``, ``postgresql://…`` or ``postgresql+psycopg://…``.

    An unknown scheme raises :class:`ConfigurationError` naming the scheme, never the URL.
    """
    scheme = scheme_of(url)
    base = scheme.split("+", 1)[0]
    if base == "sqlite":
        return _sqlite_engine(url)
    if base in ("postgresql", "postgres"):
        return _postgres_engine(url, scheme)
    raise ConfigurationError(
        f"unsupported database URL scheme {scheme!r}: use sqlite:///PATH or postgresql://…"
    )


def _sqlite_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigurationError("malformed sqlite database URL") from exc
    database = parsed.database
    if database and database != ":memory:":
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    engine = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA secure_delete = ON")  # destroyed secrets leave no bytes
        finally:
            cursor.close()

    if database and database != ":memory:":
        path = Path(database).expanduser()
        with engine.connect():
            pass
        for candidate in (
            path,
            path.with_name(path.name + "-wal"),
            path.with_name(path.name + "-shm"),
        ):
            if candidate.exists():
                os.chmod(candidate, 0o600)
    return engine


def _postgres_engine(url: str, scheme: str) -> Engine:
    if scheme in ("postgresql", "postgres"):
        url = "postgresql+psycopg" + url[len(scheme) :]
    try:
        return create_engine(url, pool_pre_ping=True)
    except NoSuchModuleError as exc:
        raise ConfigurationError(
            f"database scheme {scheme!r} needs a driver: pip install 'tradeguard[postgres]'"
        ) from exc
    except (ArgumentError, ImportError) as exc:
        raise ConfigurationError(
            "cannot use the PostgreSQL URL: pip install 'tradeguard[postgres]' and check it"
        ) from exc


@contextmanager
def begin_write(engine: Engine) -> Iterator[Connection]:
    """A write transaction: ``BEGIN IMMEDIATE`` on SQLite, a plain transaction elsewhere.

    SQLite connections run in driver autocommit mode, so a lone statement is its own
    transaction and costs no BEGIN; transactions are opened explicitly, here and in
    :func:`begin_read`.
    """
    with _transaction(engine, "BEGIN IMMEDIATE") as connection:
        yield connection


@contextmanager
def begin_read(engine: Engine) -> Iterator[Connection]:
    """A read transaction that sees one snapshot (REPEATABLE READ on PostgreSQL)."""
    with _transaction(engine, "BEGIN") as connection:
        yield connection


@contextmanager
def _transaction(engine: Engine, sqlite_begin: str) -> Iterator[Connection]:
    with engine.connect() as connection:
        if is_sqlite(engine):
            connection.exec_driver_sql(sqlite_begin)
        elif sqlite_begin == "BEGIN":
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
        try:
            yield connection
        except BaseException:
            connection.rollback()
            raise
        connection.commit()
