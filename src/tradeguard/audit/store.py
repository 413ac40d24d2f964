"""SQL storage of the chain (SQLite by default, PostgreSQL): append, read, verify, prune."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, suppress
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.pool import PoolProxiedConnection

from tradeguard.audit import schema
from tradeguard.audit.chain import (
    GENESIS,
    AuditRecord,
    KeyedMac,
    Row,
    check_rows,
    checkpoint_mac,
    format_time,
    seal_rows,
)
from tradeguard.audit.verify import Checkpoint, VerifyResult, verify_chain
from tradeguard.clock import SYSTEM_CLOCK, Clock
from tradeguard.errors import BackendUnavailable
from tradeguard.events import SecurityEvent
from tradeguard.storage import begin_read, begin_write, is_sqlite

_R = schema.records
_COLUMNS = (
    _R.c.seq, _R.c.time, _R.c.type, _R.c.actor, _R.c.subject, _R.c.ip, _R.c.outcome,
    _R.c.severity, _R.c.details, _R.c.prev_hash, _R.c.hash,
)  # fmt: skip
_NAMES = tuple(c.name for c in _COLUMNS)
_H = schema.head
_READ_HEAD = select(_H.c.seq, _H.c.hash).where(_H.c.id == 1).with_for_update()
_WRITE_HEAD = (
    update(_H)
    .where(_H.c.id == 1)
    .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"), mac=bindparam("new_mac"))
)
_FAST_SCAN = select(*_COLUMNS).where(_R.c.seq >= bindparam("start")).order_by(_R.c.seq)
PAGE = 5000
_NULLABLE = frozenset({"actor", "subject", "ip", "outcome"})
_HEAD_SQL = f"SELECT seq, hash FROM {_H.name} WHERE id = 1"  # noqa: S608 - constants
_HEAD_UPDATE_SQL = f"UPDATE {_H.name} SET seq = ?, hash = ?, mac = ? WHERE id = 1"  # noqa: S608
_MAX_CHUNK = 4096  # rows per INSERT statement
_CACHE_KIB = 16384  # page cache of the writer's connection (SQLite's default is 2 MiB)


def _sqlite_inserts(max_rows: int) -> dict[int, str]:
    """Multi-row INSERTs of 1, 2, 4, … ``max_rows`` rows.

    One statement per chunk is one ``sqlite3_step`` with the GIL released, where
    ``executemany`` steps (and gives the GIL up and waits for it again) once per row.
    ``actor, subject, ip, outcome`` are bound as 0 for NULL (``nullif(?, 0)``; stored
    values are always text): sqlite3 binds None through its adaptation lookup, about
    0.8 µs a value, against 0.05 µs for an int.
    """
    one = "({})".format(", ".join("nullif(?, 0)" if n in _NULLABLE else "?" for n in _NAMES))
    head = f"INSERT INTO {_R.name} ({', '.join(_NAMES)}) VALUES "  # noqa: S608 - constants
    sizes = [1 << bit for bit in range(max_rows.bit_length())]
    return {size: head + ", ".join([one] * size) for size in sizes}


class SealedBatch(list[SecurityEvent]):
    """Events already sealed after a predicted head (see :meth:`SqlAuditStore.prepare`).

    The append transaction stores these rows only if the head it reads under its lock is
    still ``base``; otherwise it seals the events again after the actual head.
    """

    __slots__ = ("base", "params", "rows")

    def __init__(
        self, events: Sequence[SecurityEvent], base: tuple[int, str], rows: list[Row],
        params: list[Any],
    ) -> None:  # fmt: skip
        super().__init__(events)
        self.base, self.rows, self.params = base, rows, params


class _SqliteAppender:
    """The append transaction on SQLite, on one connection the store keeps.

    Plain ``sqlite3`` calls: ``BEGIN IMMEDIATE``, read the head, seal, multi-row INSERTs,
    update the head, ``COMMIT`` (one WAL fsync under ``synchronous=FULL``). The
    statements stay prepared in the connection's statement cache. The connection comes
    from the engine's pool (so it has the engine's PRAGMAs) and is dropped after any
    error, so a broken one is never reused.
    """

    def __init__(self, engine: Engine, mac: KeyedMac, clock: Clock) -> None:
        self._engine = engine
        self._mac = mac
        self._clock = clock
        self._lock = threading.Lock()
        self._pooled: PoolProxiedConnection | None = None
        self._conn: sqlite3.Connection | None = None
        self._inserts: dict[int, str] = {}
        self._chunk = 1

    def _connect(self) -> sqlite3.Connection:
        pooled = self._engine.raw_connection()
        conn = pooled.driver_connection
        if not isinstance(conn, sqlite3.Connection):  # pragma: no cover - sqlite dialect
            pooled.close()
            raise BackendUnavailable("the audit database is not a sqlite3 connection")
        conn.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")
        limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        chunk = min(_MAX_CHUNK, limit // len(_NAMES))
        self._chunk = 1 << (chunk.bit_length() - 1)
        self._inserts = _sqlite_inserts(self._chunk)
        self._pooled, self._conn = pooled, conn
        return conn

    def _discard(self) -> None:
        pooled, self._pooled, self._conn = self._pooled, None, None
        if pooled is not None:
            with suppress(Exception):
                pooled.invalidate()  # closes it; the pool opens a fresh one when asked

    def close(self) -> None:
        with self._lock:
            self._discard()

    def append(self, events: Sequence[SecurityEvent]) -> list[Row]:
        with self._lock:
            conn = self._conn or self._connect()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    rows = self._append(conn, events)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                self._discard()
                if isinstance(exc, sqlite3.OperationalError):
                    raise BackendUnavailable(
                        f"the audit database is unavailable ({type(exc).__name__})"
                    ) from exc
                raise
            return rows

    def _append(self, conn: sqlite3.Connection, events: Sequence[SecurityEvent]) -> list[Row]:
        seq, prev = conn.execute(_HEAD_SQL).fetchone()
        if type(events) is SealedBatch and events.base == (seq, prev):
            rows, params = events.rows, events.params
        else:  # not prepared, or another writer moved the head since: seal it here
            params = []
            rows = seal_rows(self._mac, seq, prev, events, self._clock.now, params=params)
        if not rows:
            return rows
        statements, width = self._inserts, len(_NAMES)
        done, left = 0, len(rows)
        while left:  # the largest power-of-two chunk that fits, until none are left
            size = min(self._chunk, 1 << (left.bit_length() - 1))
            conn.execute(statements[size], params[done * width : (done + size) * width])
            done += size
            left -= size
        seq, prev = rows[-1][0], rows[-1][10]
        conn.execute(_HEAD_UPDATE_SQL, (seq, prev, checkpoint_mac(self._mac, "head", seq, prev)))
        return rows


class SqlAuditStore:
    """The chain in three tables; every append updates the signed head in the same txn."""

    def __init__(self, engine: Engine, key: bytes, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self._engine = engine
        self._key = KeyedMac(key)
        self._clock = clock
        self._sqlite = _SqliteAppender(engine, self._key, clock) if is_sqlite(engine) else None
        self._tail: tuple[int, str] | None = None  # the head after the last sealed batch
        self._sqlite_scan = f"SELECT {', '.join(_NAMES)} FROM {_R.name} WHERE seq >= ? ORDER BY seq"  # noqa: S608
        schema.metadata.create_all(engine, checkfirst=True)
        try:
            with begin_write(engine) as conn:
                if conn.execute(select(schema.head.c.id)).first() is None:
                    conn.execute(
                        insert(schema.head).values(
                            id=1,
                            seq=0,
                            hash=GENESIS,
                            mac=checkpoint_mac(self._key, "head", 0, GENESIS),
                        )
                    )
        except IntegrityError:
            pass  # another process created it first

    def __repr__(self) -> str:
        return f"SqlAuditStore(dialect={self._engine.dialect.name!r})"

    def close(self) -> None:
        """Release pooled connections."""
        if self._sqlite is not None:
            self._sqlite.close()
        self._engine.dispose()

    def append(self, events: Sequence[SecurityEvent]) -> list[AuditRecord]:
        """Chain and commit ``events`` in one transaction; returns the stored records."""
        return [AuditRecord(*row) for row in self.append_rows(events)]

    def prepare(self, events: Sequence[SecurityEvent]) -> Sequence[SecurityEvent]:
        """Seal ``events`` ahead of their transaction, after the head this store expects.

        For a pipelined writer: the CPU work of a batch is done while the previous batch
        is still being written. Nothing is trusted from it: :meth:`append_rows` compares
        the head under its lock and seals again if another writer moved it. Returns the
        events as a :class:`SealedBatch`, or unchanged while no head is known yet.
        """
        tail = self._tail
        if tail is None or not events:
            return events
        params: list[Any] | None = [] if self._sqlite is not None else None
        rows = seal_rows(self._key, tail[0], tail[1], events, self._clock.now, params=params)
        self._tail = (rows[-1][0], rows[-1][10])
        return SealedBatch(events, tail, rows, params or [])

    def append_rows(self, events: Sequence[SecurityEvent]) -> list[Row]:
        """:meth:`append`, returning the stored rows as tuples in column order."""
        rows = self._append_rows(events)
        if rows and (type(events) is not SealedBatch or events.rows is not rows):
            self._tail = (rows[-1][0], rows[-1][10])  # sealed here: later batches follow it
        return rows

    def _append_rows(self, events: Sequence[SecurityEvent]) -> list[Row]:
        if self._sqlite is not None:
            return self._sqlite.append(events)
        try:
            with begin_write(self._engine) as conn:
                seq, prev = conn.execute(_READ_HEAD).one()
                seq, prev = int(seq), str(prev)
                if type(events) is SealedBatch and events.base == (seq, prev):
                    rows = events.rows
                else:  # not prepared, or another writer moved the head since
                    rows = seal_rows(self._key, seq, prev, events, self._clock.now)
                if not rows:
                    return rows
                conn.execute(insert(_R), [dict(zip(_NAMES, row, strict=True)) for row in rows])
                seq, prev = rows[-1][0], rows[-1][10]
                conn.execute(
                    _WRITE_HEAD,
                    {"new_seq": seq, "new_hash": prev,
                     "new_mac": checkpoint_mac(self._key, "head", seq, prev)},
                )  # fmt: skip
        except OperationalError as exc:
            raise BackendUnavailable(
                f"the audit database is unavailable ({type(exc.orig).__name__})"
            ) from exc
        return rows

    def snapshot(self) -> AbstractContextManager[Connection]:
        """A read transaction that sees one consistent state of the chain."""
        return begin_read(self._engine)

    def head(self, conn: Connection) -> Checkpoint | None:
        """The signed head."""
        row = conn.execute(select(schema.head).where(schema.head.c.id == 1)).first()
        return None if row is None else Checkpoint("head", int(row.seq), row.hash, row.mac)

    def anchor(self, conn: Connection) -> Checkpoint | None:
        """The newest prune anchor, if the log was ever pruned."""
        row = conn.execute(
            select(schema.checkpoints).order_by(schema.checkpoints.c.seq.desc()).limit(1)
        ).first()
        return None if row is None else Checkpoint(row.kind, int(row.seq), row.hash, row.mac)

    def iter_records(self, conn: Connection, after: int = 0) -> Iterator[AuditRecord]:
        """Every record with seq > ``after``, ascending, read page by page."""
        while True:
            rows = conn.execute(
                select(*_COLUMNS).where(_R.c.seq > after).order_by(_R.c.seq).limit(PAGE)
            ).all()
            for row in rows:
                yield AuditRecord(*row)
            if len(rows) < PAGE:
                return
            after = rows[-1][0]

    def verify(self) -> VerifyResult:
        """Verify the whole stored chain against the signed head and any prune anchor.

        A fast pass MACs the raw rows (their columns are in MAC order); only when it finds
        something wrong does the full walk run, to name the first bad record and why.
        """
        with self.snapshot() as conn:
            head, anchor = self.head(conn), self.anchor(conn)
            checked = self._fast_verify(conn, head, anchor)
            if checked is not None:
                return VerifyResult(True, checked)
            return verify_chain(self._key, self.iter_records(conn), head=head, anchor=anchor)

    def _scan(self, conn: Connection, start: int) -> Iterator[Sequence[Sequence[Any]]]:
        """Raw rows from seq ``start`` up, in column order, a page at a time."""
        if self._sqlite is None:
            result = conn.execute(_FAST_SCAN, {"start": start})
            while page := result.fetchmany(PAGE):
                yield page
            return
        raw = conn.connection.dbapi_connection  # same transaction; plain tuples, no Row
        if raw is None:  # pragma: no cover - an open Connection always has one
            raise BackendUnavailable("the audit database connection is closed")
        cursor = raw.cursor()
        try:
            cursor.execute(self._sqlite_scan, (start,))
            while page := cursor.fetchmany(PAGE):
                yield page
        finally:
            cursor.close()

    def _fast_verify(
        self, conn: Connection, head: Checkpoint | None, anchor: Checkpoint | None
    ) -> int | None:
        """The count if everything is right, else None (then the full walk explains)."""
        key = self._key
        if (head is not None and not head.authentic(key)) or (
            anchor is not None and not anchor.authentic(key)
        ):
            return None
        expected_seq = anchor.seq + 1 if anchor else 1
        prev = anchor.hash if anchor else GENESIS
        for page in self._scan(conn, expected_seq):
            walked = check_rows(key, page, expected_seq, prev)
            if walked is None:
                return None
            expected_seq, prev = walked
        last = expected_seq - 1
        if head is not None and (head.seq != last or head.hash != prev):
            return None
        return last - (anchor.seq if anchor else 0)

    def query(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        type: str | None = None,
        actor: str | None = None,
        limit: int | None = 1000,
        newest_first: bool = False,
        after_seq: int | None = None,
    ) -> list[AuditRecord]:
        """Records matching every filter given; ``type`` may end in ``*`` for a prefix."""
        query = select(*_COLUMNS)
        if since is not None:
            query = query.where(_R.c.time >= format_time(since))
        if until is not None:
            query = query.where(_R.c.time < format_time(until))
        if type is not None:
            if type.endswith("*"):
                query = query.where(_R.c.type.startswith(type[:-1], autoescape=True))
            else:
                query = query.where(_R.c.type == type)
        if actor is not None:
            query = query.where(_R.c.actor == actor)
        if after_seq is not None:
            query = query.where(_R.c.seq > after_seq)
        query = query.order_by(_R.c.seq.desc() if newest_first else _R.c.seq)
        if limit is not None:
            query = query.limit(limit)
        with self._engine.connect() as conn:
            return [AuditRecord(*row) for row in conn.execute(query)]

    def prune(self, before: datetime) -> int:
        """Delete records older than ``before``, leaving a signed anchor at the cut."""
        with begin_write(self._engine) as conn:
            last = conn.execute(
                select(_R.c.seq, _R.c.hash)
                .where(_R.c.time < format_time(before))
                .order_by(_R.c.seq.desc())
                .limit(1)
            ).first()
            if last is None:
                return 0
            seq, hash_ = int(last.seq), str(last.hash)
            conn.execute(insert(schema.checkpoints).values(
                seq=seq, kind="prune", hash=hash_, time=format_time(self._clock.now()),
                mac=checkpoint_mac(self._key, "prune", seq, hash_),
            ))  # fmt: skip
            removed = conn.execute(delete(_R).where(_R.c.seq <= seq)).rowcount
        return int(removed)
